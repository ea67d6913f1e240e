#include "tools/model_stub/model_stub.h"

#include <cstdio>
#include <ctime>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/net/http_types.h"
#include "core/net/responder.h"

namespace fastest::tools::model_stub {

using net::Request;
using net::Responder;
using net::Response;

namespace {

constexpr char kDefaultModel[] = "stub-model";

nlohmann::json Chunk(const std::string& id, const std::string& model, nlohmann::json delta,
                     const nlohmann::json& finish_reason) {
  return {{"id", id},
          {"object", "chat.completion.chunk"},
          {"created", static_cast<int64_t>(std::time(nullptr))},
          {"model", model},
          {"choices",
           nlohmann::json::array(
               {{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", finish_reason}}})}};
}

nlohmann::json Usage() {
  return {{"prompt_tokens", 10}, {"completion_tokens", 5}, {"total_tokens", 15}};
}

// Splits text into up to `parts` pieces so clients see several deltas.
std::vector<std::string> Split(const std::string& s, size_t parts) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  size_t step = (s.size() + parts - 1) / parts;
  for (size_t i = 0; i < s.size(); i += step) out.push_back(s.substr(i, step));
  return out;
}

std::string Truncate(std::string s, size_t n) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (s.size() > n) s = s.substr(0, n) + "...";
  return s;
}

// One-line description of the last message, e.g. the tool result OpenCode sends back.
std::string LastMessageSummary(const nlohmann::json& body) {
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
    return "-";
  }
  const nlohmann::json& m = body["messages"].back();
  std::string role = m.value("role", "?");
  std::string content;
  if (m.contains("content") && m["content"].is_string()) {
    content = m["content"].get<std::string>();
  } else if (m.contains("content") && m["content"].is_array()) {
    for (const auto& part : m["content"]) {
      if (part.is_object() && part.value("type", "") == "text") content += part.value("text", "");
    }
  }
  if (role == "tool") role = absl::StrCat("tool(", m.value("tool_call_id", "?"), ")");
  return absl::StrCat(role, ": \"", Truncate(content, 160), "\"");
}

}  // namespace

bool IsAgentRequest(const nlohmann::json& request) {
  auto it = request.find("tools");
  return it != request.end() && it->is_array() && !it->empty();
}

std::vector<std::string> BuildStreamChunks(const Turn& turn, const std::string& model,
                                           const std::string& completion_id, bool include_usage) {
  std::vector<std::string> out;
  const std::string& id = completion_id;
  out.push_back(Chunk(id, model, {{"role", "assistant"}, {"content", ""}}, nullptr).dump());
  for (const std::string& piece : Split(turn.text, 3)) {
    out.push_back(Chunk(id, model, {{"content", piece}}, nullptr).dump());
  }
  std::string finish = "stop";
  if (turn.kind == Turn::Kind::kToolCalls) {
    finish = "tool_calls";
    for (size_t i = 0; i < turn.tool_calls.size(); ++i) {
      const ToolCall& c = turn.tool_calls[i];
      // The header (id, name) first, then the arguments in two deltas, like real providers.
      nlohmann::json head = {{"index", i},
                             {"id", c.id},
                             {"type", "function"},
                             {"function", {{"name", c.name}, {"arguments", ""}}}};
      out.push_back(
          Chunk(id, model, {{"tool_calls", nlohmann::json::array({head})}}, nullptr).dump());
      for (const std::string& piece : Split(c.arguments, 2)) {
        nlohmann::json d = {{"index", i}, {"function", {{"arguments", piece}}}};
        out.push_back(
            Chunk(id, model, {{"tool_calls", nlohmann::json::array({d})}}, nullptr).dump());
      }
    }
  }
  out.push_back(Chunk(id, model, nlohmann::json::object(), finish).dump());
  if (include_usage) {
    nlohmann::json usage = {{"id", id},
                            {"object", "chat.completion.chunk"},
                            {"created", static_cast<int64_t>(std::time(nullptr))},
                            {"model", model},
                            {"choices", nlohmann::json::array()},
                            {"usage", Usage()}};
    out.push_back(usage.dump());
  }
  return out;
}

nlohmann::json BuildCompletion(const Turn& turn, const std::string& model,
                               const std::string& completion_id) {
  nlohmann::json message = {{"role", "assistant"}};
  message["content"] = turn.text.empty() && turn.kind == Turn::Kind::kToolCalls
                           ? nlohmann::json(nullptr)
                           : nlohmann::json(turn.text);
  std::string finish = "stop";
  if (turn.kind == Turn::Kind::kToolCalls) {
    finish = "tool_calls";
    nlohmann::json calls = nlohmann::json::array();
    for (const ToolCall& c : turn.tool_calls) {
      calls.push_back({{"id", c.id},
                       {"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
    message["tool_calls"] = calls;
  }
  return {{"id", completion_id},
          {"object", "chat.completion"},
          {"created", static_cast<int64_t>(std::time(nullptr))},
          {"model", model},
          {"choices", nlohmann::json::array(
                          {{{"index", 0}, {"message", message}, {"finish_reason", finish}}})},
          {"usage", Usage()}};
}

struct ModelStub::Shared {
  Scenario scenario;
  bool log = true;

  mutable absl::Mutex mu;
  struct Session {
    size_t next_turn = 0;
    int uses = 0;  // answers given by the current sticky (error/stall) turn
  };
  std::map<std::string, Session> sessions ABSL_GUARDED_BY(mu);
  int agent_requests ABSL_GUARDED_BY(mu) = 0;
  int title_requests ABSL_GUARDED_BY(mu) = 0;
  int completions ABSL_GUARDED_BY(mu) = 0;
  int unauthorized ABSL_GUARDED_BY(mu) = 0;
  std::vector<ModelStub::RequestRecord> requests ABSL_GUARDED_BY(mu);
  std::string required_key;  // set before serving
  int active ABSL_GUARDED_BY(mu) = 0;
  bool stopping ABSL_GUARDED_BY(mu) = false;

  // Records an arriving request; returns its index for MarkAnswered.
  size_t Record(const std::string& session, bool agent, const std::string& label,
                absl::Time received) ABSL_LOCKS_EXCLUDED(mu) {
    absl::MutexLock lock(&mu);
    ModelStub::RequestRecord r;
    r.seq = static_cast<int>(requests.size()) + 1;
    r.session = session;
    r.agent = agent;
    r.label = label;
    r.received = received;
    requests.push_back(std::move(r));
    return requests.size() - 1;
  }
  void MarkAnswered(size_t index) ABSL_LOCKS_EXCLUDED(mu) {
    absl::Time now = absl::Now();
    absl::MutexLock lock(&mu);
    // ClearRequests may have dropped it meanwhile.
    if (index < requests.size()) requests[index].answered = now;
  }

  void Log(const std::string& line) {
    if (log) fprintf(stderr, "model-stub: %s\n", line.c_str());
  }

  // Picks the answer for an agent request of `session` and advances the session.
  // Returns the turn and a label like "turn 2/5".
  std::pair<Turn, std::string> NextTurn(const std::string& session) ABSL_LOCKS_EXCLUDED(mu) {
    absl::MutexLock lock(&mu);
    ++agent_requests;
    Session& s = sessions[session];
    const std::vector<Turn>& turns = scenario.turns;
    if (s.next_turn >= turns.size()) {
      if (scenario.repeat_last && !turns.empty()) {
        return {turns.back(), absl::StrCat("turn ", turns.size(), "/", turns.size(), " (repeat)")};
      }
      Turn done;
      done.kind = Turn::Kind::kText;
      done.text = "Scenario finished.";
      return {done, "after last turn"};
    }
    size_t index = s.next_turn;
    const Turn& t = turns[index];
    bool sticky = t.kind == Turn::Kind::kError || t.kind == Turn::Kind::kStall;
    if (!sticky || (t.times > 0 && ++s.uses >= t.times)) {
      ++s.next_turn;
      s.uses = 0;
    }
    return {t, absl::StrCat("turn ", index + 1, "/", turns.size())};
  }
};

ModelStub::ModelStub(Scenario scenario, bool log_to_stderr) : shared_(std::make_shared<Shared>()) {
  shared_->scenario = std::move(scenario);
  shared_->log = log_to_stderr;
}

ModelStub::~ModelStub() {
  absl::MutexLock lock(&shared_->mu);
  shared_->stopping = true;
  shared_->mu.Await(absl::Condition(
      +[](int* active) { return *active == 0; }, &shared_->active));
}

nlohmann::json ModelStub::State() const {
  absl::MutexLock lock(&shared_->mu);
  nlohmann::json sessions = nlohmann::json::object();
  for (const auto& [id, s] : shared_->sessions) sessions[id] = {{"next_turn", s.next_turn}};
  return {{"turns", shared_->scenario.turns.size()},
          {"agent_requests", shared_->agent_requests},
          {"title_requests", shared_->title_requests},
          {"completions", shared_->completions},
          {"unauthorized", shared_->unauthorized},
          {"sessions", sessions}};
}

std::vector<ModelStub::RequestRecord> ModelStub::Requests() const {
  absl::MutexLock lock(&shared_->mu);
  return shared_->requests;
}

void ModelStub::ClearRequests() {
  absl::MutexLock lock(&shared_->mu);
  shared_->requests.clear();
}

void ModelStub::RequireKey(std::string key) { shared_->required_key = std::move(key); }

void ModelStub::Register(net::Router& router) {
  std::shared_ptr<Shared> shared = shared_;
  // Errors the HTTP server answers itself (unknown route, body too large) in OpenAI's shape.
  router.SetErrorFormatter([](int status, absl::string_view code, absl::string_view message) {
    return Response::Json(status, {{"error",
                                    {{"message", std::string(message)},
                                     {"type", "invalid_request_error"},
                                     {"code", absl::AsciiStrToLower(code)}}}});
  });
  router.AddSync("GET", "/health", [](const Request&) {
    return Response::Json(200, {{"status", "ok"}, {"service", "fastest-model-stub"}});
  });
  router.AddSync("GET", "/v1/models", [](const Request&) {
    nlohmann::json model = {{"id", kDefaultModel}, {"object", "model"}, {"owned_by", "fastest"}};
    return Response::Json(200, {{"object", "list"}, {"data", nlohmann::json::array({model})}});
  });
  router.AddSync("GET", "/stub/state", [this](const Request&) {
    return Response::Json(200, State());
  });
  router.AddSync("GET", "/stub/requests", [this](const Request&) {
    auto unix_ms = [](absl::Time t) -> nlohmann::json {
      if (t == absl::InfiniteFuture()) return nullptr;
      return absl::ToDoubleMilliseconds(t - absl::UnixEpoch());
    };
    nlohmann::json list = nlohmann::json::array();
    for (const RequestRecord& r : Requests()) {
      list.push_back({{"seq", r.seq},
                      {"session", r.session},
                      {"agent", r.agent},
                      {"label", r.label},
                      {"received_ms", unix_ms(r.received)},
                      {"answered_ms", unix_ms(r.answered)}});
    }
    return Response::Json(200, {{"requests", list}});
  });
  router.Add("POST", "/v1/chat/completions",
             [shared](const Request& req, std::shared_ptr<Responder> responder) {
    const absl::Time received = absl::Now();
    if (!shared->required_key.empty() &&
        req.Header("authorization") != "Bearer " + shared->required_key) {
      {
        absl::MutexLock lock(&shared->mu);
        ++shared->unauthorized;
      }
      responder->Send(Response::Json(
          401, {{"error", {{"message", "missing or wrong API key"}, {"type", "auth_error"}}}}));
      return;
    }
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      responder->Send(Response::Json(
          400, {{"error", {{"message", "request body is not a JSON object"},
                           {"type", "invalid_request_error"}}}}));
      return;
    }
    std::string session = req.Header("x-session-id");
    if (session.empty()) session = "default";
    std::string model = body.value("model", kDefaultModel);
    bool stream = body.value("stream", false);
    bool include_usage = body.contains("stream_options") && body["stream_options"].is_object() &&
                         body["stream_options"].value("include_usage", false);
    size_t n_tools = IsAgentRequest(body) ? body["tools"].size() : 0;
    size_t n_msgs = body.contains("messages") && body["messages"].is_array()
                        ? body["messages"].size() : 0;

    Turn turn;
    std::string label;
    if (n_tools == 0) {
      turn.kind = Turn::Kind::kText;
      turn.text = shared->scenario.title;
      label = "title/no-tools reply";
      absl::MutexLock lock(&shared->mu);
      ++shared->title_requests;
    } else {
      std::tie(turn, label) = shared->NextTurn(session);
    }
    std::string what = std::string(TurnKindName(turn.kind));
    if (turn.kind == Turn::Kind::kToolCalls) {
      std::vector<std::string> names;
      for (const ToolCall& c : turn.tool_calls) names.push_back(c.name);
      what = absl::StrCat("tool_calls [", absl::StrJoin(names, ","), "]");
    } else if (turn.kind == Turn::Kind::kError) {
      what = absl::StrCat("error ", turn.error_status);
    } else if (turn.kind == Turn::Kind::kStall) {
      what = absl::StrCat("stall ", turn.stall_ms, " ms");
    }
    const size_t record = shared->Record(session, n_tools > 0, label, received);
    shared->Log(absl::StrCat("POST /v1/chat/completions session=", session, " model=", model,
                             " stream=", stream ? "1" : "0", " tools=", n_tools,
                             " messages=", n_msgs, " last=", LastMessageSummary(body), " -> ",
                             label, ": ", what));

    {
      absl::MutexLock lock(&shared->mu);
      if (shared->stopping) {
        responder->Send(Response::Json(503, {{"error", {{"message", "stub stopping"}}}}));
        return;
      }
      ++shared->active;
    }
    std::thread([shared, responder, turn, model, stream, include_usage, record] {
      auto finish = [&shared, record] {
        shared->MarkAnswered(record);
        absl::MutexLock lock(&shared->mu);
        --shared->active;
      };
      if (turn.stall_ms > 0) {
        absl::MutexLock lock(&shared->mu);
        bool* stopping = &shared->stopping;
        shared->mu.AwaitWithTimeout(
            absl::Condition(+[](bool* s) { return *s; }, stopping),
            absl::Milliseconds(turn.stall_ms));
      }
      if (turn.kind == Turn::Kind::kStall) {
        responder->Send(Response::Json(
            504, {{"error", {{"message", "model stub: stalled request ended"},
                             {"type", "timeout"}}}}));
        finish();
        return;
      }
      if (turn.kind == Turn::Kind::kError) {
        Response r = Response::Json(
            turn.error_status,
            {{"error", {{"message", turn.error_message}, {"type", "server_error"},
                        {"code", turn.error_status}}}});
        if (turn.retry_after_ms >= 0) {
          r.SetHeader("retry-after-ms", std::to_string(turn.retry_after_ms));
        }
        responder->Send(std::move(r));
        finish();
        return;
      }
      std::string id;
      {
        absl::MutexLock lock(&shared->mu);
        id = absl::StrCat("chatcmpl-stub-", ++shared->completions);
      }
      if (!stream) {
        responder->Send(Response::Json(200, BuildCompletion(turn, model, id)));
        finish();
        return;
      }
      responder->StartStream(200, {{"Content-Type", "text/event-stream"},
                                   {"Cache-Control", "no-cache"}});
      for (const std::string& data : BuildStreamChunks(turn, model, id, include_usage)) {
        if (!responder->SendEvent("", data)) break;
      }
      responder->SendEvent("", "[DONE]");
      responder->End();
      finish();
    }).detach();
  });
}

}  // namespace fastest::tools::model_stub
