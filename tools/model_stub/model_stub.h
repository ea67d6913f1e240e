// File: tools/model_stub/model_stub.h
//
// ModelStub: an offline OpenAI-compatible chat-completions endpoint driven by a Scenario, so the
// real OpenCode agent can run with no provider key (tests, demo). Registers on an HttpServer:
//
//   POST /v1/chat/completions  stream:true -> SSE `chat.completion.chunk`s + `data: [DONE]`;
//                              stream:false -> one `chat.completion` JSON
//   GET  /v1/models            the model list
//   GET  /health               {"status":"ok"}
//   GET  /stub/state           counters and per-session progress (for tests)
//   GET  /stub/requests        every completion request in arrival order with its receive and
//                              answer times (benchmarks: time to first request, per-step overhead)
//
// What OpenCode (1.18) sends, measured: every call is streaming with
// `stream_options.include_usage`; first a title request (no `tools`, system prompt "You are a title
// generator"), then agent turns offering tools (bash, edit, glob, grep, read, skill, task,
// todowrite, webfetch, write) with the history (assistant `tool_calls`, `tool` results) appended,
// and headers `x-session-id` / `x-session-affinity`. Scenario progress is kept per `x-session-id`
// so every OpenCode session starts at turn 0. Requests without tools never consume a turn.
//
// Each answer is produced on its own thread (stalls must not block the server's io threads);
// the destructor wakes stalled answers and waits for all of them.
#ifndef FASTEST_TOOLS_MODEL_STUB_MODEL_STUB_H_
#define FASTEST_TOOLS_MODEL_STUB_MODEL_STUB_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "core/net/router.h"
#include "tools/model_stub/scenario.h"

namespace fastest::tools::model_stub {

// True when the request offers tools (an agent turn); title/summary requests offer none.
bool IsAgentRequest(const nlohmann::json& request);

// The `data:` payloads (JSON text, without framing) of a streamed answer for `turn`, ending with
// the finish chunk and, when `include_usage`, a usage chunk. "[DONE]" is not included.
std::vector<std::string> BuildStreamChunks(const Turn& turn, const std::string& model,
                                           const std::string& completion_id, bool include_usage);
// A non-streamed `chat.completion` for `turn`.
nlohmann::json BuildCompletion(const Turn& turn, const std::string& model,
                               const std::string& completion_id);

class ModelStub {
 public:
  explicit ModelStub(Scenario scenario, bool log_to_stderr = true);
  ~ModelStub();
  ModelStub(const ModelStub&) = delete;
  ModelStub& operator=(const ModelStub&) = delete;

  // Adds the routes; `this` must outlive the server.
  void Register(net::Router& router);

  // Counters and per-session progress (also served at GET /stub/state).
  nlohmann::json State() const;

  // One completion request: when it arrived and when its answer was fully sent (the last byte
  // handed to the connection; Infinite future while still unanswered).
  struct RequestRecord {
    int seq = 0;            // 1-based arrival order
    std::string session;    // x-session-id ("default" when absent)
    bool agent = false;     // offered tools (an agent turn); false = title/summary request
    std::string label;      // "turn 2/4", "title/no-tools reply", ...
    absl::Time received;
    absl::Time answered = absl::InfiniteFuture();
  };
  // Every completion request so far (also served at GET /stub/requests, times as Unix
  // milliseconds with fractions, unanswered = null).
  std::vector<RequestRecord> Requests() const;
  // Forgets the recorded requests (not the scenario progress), e.g. between benchmark rounds.
  void ClearRequests();

  // When set, POST /v1/chat/completions without "Authorization: Bearer <key>" gets 401 (and
  // counts as "unauthorized" in State()).
  void RequireKey(std::string key);

  struct Shared;  // implementation detail

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace fastest::tools::model_stub

#endif  // FASTEST_TOOLS_MODEL_STUB_MODEL_STUB_H_
