#include "runner/opencode_serve.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/encoding/percent_encoding.h"
#include "core/http/asio_http_client.h"
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

OpenCodeServer::OpenCodeServer(AgentLaunch launch, std::string cwd, AgentProcessOptions options,
                               AgentLineSink sink)
    : launch_(std::move(launch)), options_(options), sink_(std::move(sink)) {
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

absl::Status OpenCodeServer::Warm(const std::string& dir) {
  FASTEST_RETURN_IF_ERROR(WaitListening());
  Api api(port_);
  // Creating a session bootstraps the directory's instance (config, plugins, tools).
  return api.Call("POST", "/session", dir, nlohmann::json::object(), std::chrono::seconds(120))
      .status();
}

AgentResult OpenCodeServer::RunPrompt(const std::string& dir, const std::string& provider_id,
                                      const std::string& model_id, const std::string& prompt) {
  const absl::Time start = absl::Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    prompt_deadline_ = start + options_.timeout;
  }
  AgentResult outcome;
  std::string failure;
  if (absl::Status listening = WaitListening(); !listening.ok()) {
    failure = std::string(listening.message());
  } else {
    Api api(port_);
    // The live log: follow the directory's events until the server stops.
    std::string session_id;
    bool session_idle = false;
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
    });
    absl::StatusOr<nlohmann::json> session =
        api.Call("POST", "/session", dir, nlohmann::json::object(), std::chrono::seconds(120));
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
