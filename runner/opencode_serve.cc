#include "runner/opencode_serve.h"

#include <ctime>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/encoding/percent_encoding.h"
#include "core/http/asio_http_client.h"
#include "core/net/http_server.h"
#include "core/status/status_macros.h"

namespace fastest::runner {
namespace {

constexpr char kListening[] = "listening on http://127.0.0.1:";

std::string Shortened(std::string text, size_t max) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text.size() > max ? text.substr(0, max) + "..." : text;
}

// The message of an OpenCode error object ({name, data: {message}}), else its JSON.
std::string ErrorMessage(const nlohmann::json& error) {
  if (error.is_object()) {
    auto data = error.find("data");
    if (data != error.end() && data->is_object() && data->contains("message") &&
        (*data)["message"].is_string()) {
      return absl::StrCat(error.value("name", "Error"), ": ",
                          (*data)["message"].get<std::string>());
    }
  }
  return error.dump();
}

class Api {
 public:
  explicit Api(int port) : base_(absl::StrCat("http://127.0.0.1:", port)) {}

  core::HttpRequest Request(const std::string& method, const std::string& path,
                            const std::string& dir) const {
    core::HttpRequest req;
    req.method = method;
    req.url = absl::StrCat(base_, path, "?directory=", core::PercentEncode(dir, "/"));
    req.headers.push_back({"Content-Type", "application/json"});
    return req;
  }

  absl::StatusOr<nlohmann::json> Call(const std::string& method, const std::string& path,
                                      const std::string& dir, const nlohmann::json& body,
                                      std::chrono::milliseconds timeout) {
    core::HttpRequest req = Request(method, path, dir);
    req.body = body.dump();
    req.timeout = timeout;
    absl::StatusOr<core::HttpResponse> resp = http_.Send(req);
    if (!resp.ok()) return resp.status();
    if (resp->status / 100 != 2) {
      return absl::InternalError(absl::StrCat("OpenCode ", method, " ", path, ": HTTP ",
                                              resp->status, ": ", Shortened(resp->body, 400)));
    }
    nlohmann::json parsed = nlohmann::json::parse(resp->body, nullptr, false);
    if (parsed.is_discarded()) {
      return absl::InternalError(absl::StrCat("OpenCode ", method, " ", path, ": not JSON"));
    }
    return parsed;
  }

  core::AsioHttpClient& http() { return http_; }

 private:
  std::string base_;
  core::AsioHttpClient http_;
};

}  // namespace

int ParseListeningPort(const std::string& line) {
  size_t at = line.find(kListening);
  if (at == std::string::npos) return 0;
  std::string rest = line.substr(at + sizeof(kListening) - 1);
  size_t end = 0;
  while (end < rest.size() && rest[end] >= '0' && rest[end] <= '9') ++end;
  int port = 0;
  if (!absl::SimpleAtoi(rest.substr(0, end), &port) || port <= 0 || port > 65535) return 0;
  return port;
}

std::string DescribeEvent(const nlohmann::json& event, const std::string& session_id) {
  if (!event.is_object()) return "";
  const std::string type = event.value("type", "");
  const nlohmann::json props = event.value("properties", nlohmann::json::object());
  if (!props.is_object()) return "";
  if (type == "session.error") {
    if (props.value("sessionID", "") != session_id) return "";
    return absl::StrCat("error: ", ErrorMessage(props.value("error", nlohmann::json())));
  }
  if (type != "message.part.updated") return "";
  const nlohmann::json part = props.value("part", nlohmann::json::object());
  if (!part.is_object() || part.value("sessionID", "") != session_id) return "";
  const std::string part_type = part.value("type", "");
  if (part_type == "text") {
    nlohmann::json time = part.value("time", nlohmann::json::object());
    if (!time.is_object() || !time.contains("end")) return "";
    return absl::StrCat("text: ", Shortened(part.value("text", ""), 2000));
  }
  if (part_type == "tool") {
    nlohmann::json state = part.value("state", nlohmann::json::object());
    if (!state.is_object()) return "";
    const std::string status = state.value("status", "");
    const std::string tool = part.value("tool", "?");
    if (status == "completed") {
      return absl::StrCat("tool ", tool, ": ", Shortened(state.value("title", ""), 300));
    }
    if (status == "error") {
      return absl::StrCat("tool ", tool, " failed: ", Shortened(state.value("error", ""), 500));
    }
  }
  return "";
}


// The scripted model of the warm-up session: a minimal OpenAI-compatible chat-completions endpoint
// on 127.0.0.1 (core/net's server, one io thread). Agent turns, chosen by how many assistant
// messages the history has: write, read, edit (of a scratch file outside the workspace) and bash
// at once, then a final text; requests without tools get a short text.
class OpenCodeServer::WarmupModel {
 public:
  explicit WarmupModel(std::string scratch_file) : scratch_file_(std::move(scratch_file)) {
    net::HttpServerOptions options;
    options.threads = 1;
    options.worker_threads = 1;
    options.max_body_bytes = 8 * 1024 * 1024;
    // Anyone on the loopback can connect (the agent too, were it running): a few at a time.
    options.max_connections = 8;
    options.max_connections_per_ip = 8;
    options.read_timeout = absl::Seconds(5);
    options.stop_grace = absl::Seconds(1);
    server_ = std::make_unique<net::HttpServer>(options);
    server_->router().AddSync("POST", "/v1/chat/completions",
                              [this](const net::Request& req) { return Answer(req.body); });
    if (!server_->Start().ok()) server_.reset();
  }
  ~WarmupModel() = default;  // the server stops with its owner
  int port() const { return server_ ? server_->port() : 0; }
  int requests() const { return requests_; }

 private:
  // The answer for a request: text (finish "stop") or tool calls (finish "tool_calls").
  nlohmann::json Turn(const nlohmann::json& request) const {
    auto tools = request.find("tools");
    if (tools == request.end() || !tools->is_array() || tools->empty()) {
      return {{"text", "Warm-up"}};
    }
    int assistants = 0;
    if (request.contains("messages") && request["messages"].is_array()) {
      for (const auto& m : request["messages"]) {
        if (m.is_object() && m.value("role", "") == "assistant") ++assistants;
      }
    }
    auto call = [](const std::string& id, const std::string& name, const nlohmann::json& args) {
      return nlohmann::json{{"id", id}, {"name", name}, {"arguments", args.dump()}};
    };
    // One turn with every tool at once (OpenCode runs them in parallel; the edit may fail for
    // want of a read first — loading the tool is what counts), then the final text: two round
    // trips, so a cold runner whose prompt waits for the warm-up loses little.
    if (assistants == 0) {
      return {{"calls",
               {call("warm_w", "write", {{"filePath", scratch_file_}, {"content", "warm\n"}}),
                call("warm_r", "read", {{"filePath", scratch_file_}}),
                call("warm_e", "edit", {{"filePath", scratch_file_},
                                        {"oldString", "warm"},
                                        {"newString", "ready"}}),
                call("warm_b", "bash", {{"command", "true"}, {"description", "warm-up"}})}}};
    }
    return {{"text", "Warm."}};
  }

  net::Response Answer(const std::string& body) {
    ++requests_;
    nlohmann::json req = nlohmann::json::parse(body, nullptr, false);
    if (!req.is_object()) req = nlohmann::json::object();
    const nlohmann::json turn = Turn(req);
    const std::string model = req.value("model", std::string(kWarmupModel));
    const std::string id = absl::StrCat("chatcmpl-warmup-", requests_.load());
    const int64_t created = static_cast<int64_t>(std::time(nullptr));
    const bool tools = turn.contains("calls");
    auto chunk = [&](nlohmann::json delta, const nlohmann::json& finish) {
      return nlohmann::json{{"id", id},
                            {"object", "chat.completion.chunk"},
                            {"created", created},
                            {"model", model},
                            {"choices", {{{"index", 0},
                                          {"delta", std::move(delta)},
                                          {"finish_reason", finish}}}}};
    };
    const nlohmann::json usage = {{"prompt_tokens", 1}, {"completion_tokens", 1},
                                  {"total_tokens", 2}};
    if (req.value("stream", false)) {
      std::vector<nlohmann::json> events;
      events.push_back(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
      if (tools) {
        int i = 0;
        for (const auto& c : turn["calls"]) {
          events.push_back(chunk({{"tool_calls",
                                   {{{"index", i++},
                                     {"id", c["id"]},
                                     {"type", "function"},
                                     {"function", {{"name", c["name"]},
                                                   {"arguments", c["arguments"]}}}}}}},
                                 nullptr));
        }
      } else {
        events.push_back(chunk({{"content", turn["text"]}}, nullptr));
      }
      events.push_back(chunk(nlohmann::json::object(), tools ? "tool_calls" : "stop"));
      nlohmann::json last = chunk(nlohmann::json::object(), nullptr);
      last["choices"] = nlohmann::json::array();
      last["usage"] = usage;
      events.push_back(last);
      std::string sse;
      for (const auto& e : events) sse += absl::StrCat("data: ", e.dump(), "\n\n");
      sse += "data: [DONE]\n\n";
      net::Response out = net::Response::Text(200, std::move(sse), "text/event-stream");
      out.SetHeader("Cache-Control", "no-cache");
      return out;
    }
    nlohmann::json message = {{"role", "assistant"}};
    if (tools) {
      message["content"] = nullptr;
      message["tool_calls"] = nlohmann::json::array();
      for (const auto& c : turn["calls"]) {
        message["tool_calls"].push_back(
            {{"id", c["id"]}, {"type", "function"},
             {"function", {{"name", c["name"]}, {"arguments", c["arguments"]}}}});
      }
    } else {
      message["content"] = turn["text"];
    }
    return net::Response::Json(
        200, {{"id", id},
              {"object", "chat.completion"},
              {"created", created},
              {"model", model},
              {"choices",
               {{{"index", 0}, {"message", message}, {"finish_reason", tools ? "tool_calls" : "stop"}}}},
              {"usage", usage}});
  }

  const std::string scratch_file_;
  std::atomic<int> requests_{0};
  std::unique_ptr<net::HttpServer> server_;  // last: stops (and joins) before the rest goes
};

OpenCodeServer::OpenCodeServer(AgentLaunch launch, std::string cwd, AgentProcessOptions options,
                               AgentLineSink sink)
    : launch_(std::move(launch)), options_(options), sink_(std::move(sink)) {
  // The warm-up model listens before OpenCode starts: the config reads its URL from the
  // environment. Its scratch file lives in the agent's HOME, never in the workspace.
  auto home = launch_.env.find("HOME");
  const std::string scratch =
      (home == launch_.env.end() || home->second.empty() ? std::string("/tmp") : home->second) +
      "/.fastest-warmup/warm.txt";
  warmup_model_ = std::make_unique<WarmupModel>(scratch);
  if (warmup_model_->port() > 0) {
    launch_.env[kWarmupUrlEnv] = absl::StrCat("http://127.0.0.1:", warmup_model_->port(), "/v1");
  }
  AgentProcessOptions process_options = options_;
  process_options.stop = &stop_server_;
  // Once the prompt is answered nothing of the server is needed any more.
  process_options.kill_grace = absl::Milliseconds(300);
  process_options.timeout = absl::InfiniteDuration();
  process_ = std::thread([this, cwd = std::move(cwd), process_options] {
    absl::StatusOr<AgentResult> result = RunAgentProcess(
        launch_, cwd, process_options, [this](bool is_stderr, const std::string& line) {
          if (int port = ParseListeningPort(line); port > 0) {
            std::lock_guard<std::mutex> lock(mu_);
            if (port_ == 0) {
              port_ = port;
              cv_.notify_all();
              return;
            }
          }
          if (sink_) sink_(is_stderr, line);
        });
    std::lock_guard<std::mutex> lock(mu_);
    process_result_ = std::move(result);
    exited_ = true;
    cv_.notify_all();
  });
  // The caller's stop flag (a cancelled job) stops the server, which ends any pending request.
  // The prompt's deadline too.
  stop_forwarder_ = std::thread([this] {
    while (!done_) {
      if (options_.stop != nullptr && options_.stop->load()) stop_server_ = true;
      std::unique_lock<std::mutex> lock(mu_);
      if (exited_) break;
      if (absl::Now() >= prompt_deadline_ && !prompt_timed_out_) {
        prompt_timed_out_ = true;
        stop_server_ = true;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(20));
    }
  });
}

OpenCodeServer::~OpenCodeServer() { Stop(); }

void OpenCodeServer::Stop() {
  stop_server_ = true;
  done_ = true;
  cv_.notify_all();
  if (process_.joinable()) process_.join();
  if (stop_forwarder_.joinable()) stop_forwarder_.join();
}

absl::Status OpenCodeServer::WaitListening() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return port_ > 0 || exited_; });
  if (port_ > 0) return absl::OkStatus();
  std::string why = "OpenCode server exited before listening";
  if (process_result_ && !process_result_->ok()) {
    return process_result_->status();
  }
  if (process_result_) {
    why = absl::StrCat(why, " (exit code ", (*process_result_)->exit_code, "); last output:\n",
                       (*process_result_)->tail);
  }
  return absl::FailedPreconditionError(why);
}

int OpenCodeServer::WarmupRequests() const { return warmup_requests_; }

void OpenCodeServer::StopWarmupModel() {
  if (warmup_model_ == nullptr) return;
  warmup_requests_ = warmup_model_->requests();
  warmup_model_.reset();
}

absl::Status OpenCodeServer::BootInstance(const std::string& dir) {
  FASTEST_RETURN_IF_ERROR(WaitListening());
  StopWarmupModel();
  Api api(port_);
  return api.Call("POST", "/session", dir, {{"title", "fastest boot"}}, std::chrono::seconds(120))
      .status();
}

absl::Status OpenCodeServer::Warm(const std::string& dir) {
  FASTEST_RETURN_IF_ERROR(WaitListening());
  Api api(port_);
  // Creating a session bootstraps the directory's instance (config, plugins, tools).
  absl::StatusOr<nlohmann::json> session = api.Call(
      "POST", "/session", dir, {{"title", "fastest warm-up"}}, std::chrono::seconds(120));
  if (!session.ok()) return session.status();
  if (warmup_model_ == nullptr || warmup_model_->port() == 0) {
    return absl::UnavailableError("warm-up model: no loopback port; only the instance is warm");
  }
  // The scripted session loads the prompt pipeline, provider SDK and tools.
  nlohmann::json body = {
      {"parts", {{{"type", "text"}, {"text", "Warm-up: run the scripted tool calls."}}}},
      {"model", {{"providerID", kWarmupProvider}, {"modelID", kWarmupModel}}}};
  absl::StatusOr<nlohmann::json> answer =
      api.Call("POST", absl::StrCat("/session/", session->value("id", ""), "/message"), dir, body,
               std::chrono::seconds(120));
  // Nothing asks it anything more (the session has its own title): no listener left behind.
  StopWarmupModel();
  if (!answer.ok()) return answer.status();
  nlohmann::json info = answer->value("info", nlohmann::json::object());
  if (info.is_object() && info.contains("error") && !info["error"].is_null()) {
    return absl::InternalError(absl::StrCat("warm-up session: ", ErrorMessage(info["error"])));
  }
  return absl::OkStatus();
}

AgentResult OpenCodeServer::RunPrompt(const std::string& dir, const std::string& provider_id,
                                      const std::string& model_id, const std::string& prompt) {
  const absl::Time start = absl::Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    prompt_deadline_ = start + options_.timeout;
  }
  StopWarmupModel();  // the job never talks to it
  AgentResult outcome;
  std::string failure;
  if (absl::Status listening = WaitListening(); !listening.ok()) {
    failure = std::string(listening.message());
  } else {
    Api api(port_);
    // The live log: follow the directory's events until the server stops.
    std::string session_id;
    bool session_idle = false;
    bool events_connected = false;
    std::mutex session_mu;
    std::condition_variable idle_cv;
    std::thread events([&] {
      core::HttpRequest req = api.Request("GET", "/event", dir);
      req.timeout = std::chrono::milliseconds(0);
      std::string buffer;
      req.on_body_chunk = [&](absl::string_view chunk) {
        buffer.append(chunk.data(), chunk.size());
        size_t end;
        while ((end = buffer.find("\n\n")) != std::string::npos) {
          std::string block = buffer.substr(0, end);
          buffer.erase(0, end + 2);
          {
            // OpenCode greets a new subscriber (server.connected) at once.
            std::lock_guard<std::mutex> lock(session_mu);
            if (!events_connected) {
              events_connected = true;
              idle_cv.notify_all();
            }
          }
          if (!absl::StartsWith(block, "data: ")) continue;
          nlohmann::json event = nlohmann::json::parse(block.substr(6), nullptr, false);
          std::string id;
          {
            std::lock_guard<std::mutex> lock(session_mu);
            id = session_id;
          }
          std::string line = id.empty() ? "" : DescribeEvent(event, id);
          if (!line.empty() && sink_) sink_(false, line);
          if (!id.empty() && event.is_object() && event.value("type", "") == "session.idle" &&
              event.contains("properties") && event["properties"].is_object() &&
              event["properties"].value("sessionID", "") == id) {
            std::lock_guard<std::mutex> lock(session_mu);
            session_idle = true;
            idle_cv.notify_all();
          }
        }
        return !stop_server_.load();
      };
      (void)api.http().Send(req);
      std::lock_guard<std::mutex> lock(session_mu);
      events_connected = true;  // failed: nothing to wait for
      idle_cv.notify_all();
    });
    {
      // A warm instance runs the first tool steps within ~100 ms: without the subscription in
      // place their events would be missed by the live log.
      std::unique_lock<std::mutex> lock(session_mu);
      idle_cv.wait_for(lock, std::chrono::seconds(5), [&] { return events_connected; });
    }
    // A session with a title of its own gets no title-generation call to the model (OpenCode
    // only generates one for a default title): one model request less per job.
    absl::StatusOr<nlohmann::json> session = api.Call(
        "POST", "/session", dir, {{"title", "fastest job"}}, std::chrono::seconds(120));
    if (!session.ok()) {
      failure = absl::StrCat("OpenCode session: ", session.status().message());
    } else {
      {
        std::lock_guard<std::mutex> lock(session_mu);
        session_id = session->value("id", "");
      }
      nlohmann::json body = {
          {"parts", {{{"type", "text"}, {"text", prompt}}}},
          {"model", {{"providerID", provider_id}, {"modelID", model_id}}}};
      // No deadline of its own: the server's deadline (and a cancellation) end it.
      absl::StatusOr<nlohmann::json> answer =
          api.Call("POST", absl::StrCat("/session/", session_id, "/message"), dir, body,
                   std::chrono::milliseconds(0));
      if (!answer.ok()) {
        failure = absl::StrCat("OpenCode prompt: ", answer.status().message());
      } else {
        nlohmann::json info = answer->value("info", nlohmann::json::object());
        if (info.is_object() && info.contains("error") && !info["error"].is_null()) {
          failure = ErrorMessage(info["error"]);
        }
      }
    }
    {
      // The answer can overtake the last events (the final text); they are all sent by the time
      // the session reports idle.
      std::unique_lock<std::mutex> lock(session_mu);
      idle_cv.wait_for(lock, std::chrono::seconds(1), [&] { return session_idle; });
    }
    stop_server_ = true;
    Stop();
    events.join();
  }
  Stop();
  std::lock_guard<std::mutex> lock(mu_);
  if (process_result_ && process_result_->ok()) {
    outcome = **process_result_;
  } else if (process_result_) {
    failure = absl::StrCat(failure, failure.empty() ? "" : "; ",
                           process_result_->status().message());
  }
  outcome.stopped = options_.stop != nullptr && options_.stop->load();
  outcome.timed_out = prompt_timed_out_ && !outcome.stopped;
  outcome.term_signal = 0;
  outcome.exit_code = failure.empty() ? 0 : 1;
  if (!failure.empty()) {
    outcome.tail = outcome.tail.empty() ? failure : absl::StrCat(failure, "\n", outcome.tail);
  }
  outcome.duration = absl::Now() - start;
  return outcome;
}

}  // namespace fastest::runner
