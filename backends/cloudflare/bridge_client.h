// File: backends/cloudflare/bridge_client.h
//
// BridgeClient: a typed client of the Cloudflare Sandbox bridge HTTP API (PROTOCOLS.md §4) on
// core/http's HttpClient. One method per endpoint the backend needs; exec follows the SSE stream
// (base64 stdout/stderr chunks, one terminal `exit` or `error` event).
//
// Errors: HTTP answers become absl::Status with the bridge's {"error","code"} in the message:
//   400 -> InvalidArgument, 401 -> FailedPrecondition (check SANDBOX_API_KEY), 403 ->
//   PermissionDenied, 404 -> NotFound, 413 -> InvalidArgument, 503 capacity_exceeded ->
//   ResourceExhausted (never retried: the caller decides to queue), other 5xx/429 -> Unavailable;
//   the rest as core/http/http_status.h maps them (unmapped -> Internal).
// Retries: 429, 500, 502, 503 (not capacity), 504 and transport failures are retried with
// exponential backoff and jitter (capped) up to `max_attempts`. An exec stream that breaks after
// it started (EOF without a terminal event) is retried only when the caller marks the command
// idempotent; otherwise it is an Unavailable "transport error" (the command's fate is unknown).
// The API key is sent as a bearer token and never appears in messages.
//
// Example:
//   BridgeClientOptions options;
//   options.base_url = "https://sandbox.example.workers.dev";
//   options.api_key = key;
//   BridgeClient bridge(options);
//   FASTEST_ASSIGN_OR_RETURN(std::string id, bridge.CreateSandbox());
//   ExecRequest exec;
//   exec.argv = {"sh", "-c", "echo hi"};
//   FASTEST_ASSIGN_OR_RETURN(ExecResult r, bridge.Exec(id, exec, /*idempotent=*/true));
//   FASTEST_RETURN_IF_ERROR(bridge.DeleteSandbox(id));
#ifndef FASTEST_BACKENDS_CLOUDFLARE_BRIDGE_CLIENT_H_
#define FASTEST_BACKENDS_CLOUDFLARE_BRIDGE_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/http/http_client.h"
#include "nlohmann/json.hpp"

namespace fastest::backends::cloudflare {

struct BridgeClientOptions {
  std::string base_url;  // "https://<worker>.workers.dev" or "http://127.0.0.1:<port>"
  std::string api_key;   // SANDBOX_API_KEY; empty = no Authorization header
  absl::Duration request_timeout = absl::Seconds(30);
  int max_attempts = 5;  // total tries for a retryable failure
  absl::Duration backoff_initial = absl::Milliseconds(200);
  absl::Duration backoff_cap = absl::Seconds(5);
};

struct ExecRequest {
  std::vector<std::string> argv;
  int64_t timeout_ms = 0;  // bridge-side timeout (exit 124); 0 = none
  std::string cwd;         // optional, within /workspace
  std::string session_id;  // optional Session-Id header
  // Bounds the whole call, retries included: each attempt waits at most until then, and no
  // retry starts after it (the last error is returned; DeadlineExceeded if none was tried).
  absl::Time deadline = absl::InfiniteFuture();
};

struct ExecResult {
  int exit_code = -1;
  std::string stdout_data;
  std::string stderr_data;
};

// Called with decoded output as it arrives (stream 1 = stdout, 2 = stderr).
using ExecOutputSink = std::function<void(int stream, absl::string_view data)>;

class BridgeClient {
 public:
  explicit BridgeClient(BridgeClientOptions options);

  const BridgeClientOptions& options() const { return options_; }

  // When the bridge last answered anything (an HTTP response, any status); InfinitePast if it
  // never did. Tells "the bridge is silent" (timeouts, refused connections) from "the bridge
  // answered with an error".
  absl::Time last_answer() const;

  // GET /health -> the JSON body ({"ok":true}); Unavailable if the bridge does not answer 200.
  absl::StatusOr<nlohmann::json> Health();
  // POST /v1/sandbox -> the new id.
  absl::StatusOr<std::string> CreateSandbox();
  // DELETE /v1/sandbox/:id (204).
  absl::Status DeleteSandbox(const std::string& id);
  // POST /v1/sandbox/:id/exec, following the SSE stream to its terminal event. An `error` event
  // becomes Internal (exec_error) / Unavailable (exec_transport_error). `idempotent` allows a
  // retry after a broken stream.
  absl::StatusOr<ExecResult> Exec(const std::string& id, const ExecRequest& request, bool idempotent,
                                  const ExecOutputSink& sink = nullptr);
  // PUT /v1/sandbox/:id/file/<path> (path absolute, within /workspace).
  absl::Status PutFile(const std::string& id, absl::string_view path, const std::string& bytes);
  // GET /v1/sandbox/:id/file/<path>.
  absl::StatusOr<std::string> GetFile(const std::string& id, absl::string_view path);
  // GET /v1/sandbox/:id/running.
  absl::StatusOr<bool> Running(const std::string& id);
  // POST /v1/sandbox/:id/session -> session id.
  absl::StatusOr<std::string> CreateSession(const std::string& id,
                                            const std::map<std::string, std::string>& env,
                                            const std::string& cwd);

  // StatusFromBridgeResponse: the error mapping above (public for tests).
  static absl::Status StatusFromBridgeResponse(long http_status, absl::string_view body,
                                               absl::string_view what);

 private:
  // Sends `request`, retrying retryable answers and transport failures (see the file comment).
  absl::StatusOr<core::HttpResponse> SendWithRetry(core::HttpRequest request, absl::string_view what);
  core::HttpRequest NewRequest(absl::string_view method, absl::string_view path) const;
  absl::Duration Backoff(int attempt, const core::HttpResponse* response) const;
  static bool IsRetryable(long http_status, absl::string_view body);

  void NoteAnswer();
  // Sleeps `wait` before a retry unless that would pass `deadline` (then false: do not retry).
  static bool SleepBeforeRetry(absl::Duration wait, absl::Time deadline);

  BridgeClientOptions options_;
  std::unique_ptr<core::HttpClient> http_;
  std::atomic<int64_t> last_answer_unix_ns_{0};  // 0 = never
};

}  // namespace fastest::backends::cloudflare

#endif  // FASTEST_BACKENDS_CLOUDFLARE_BRIDGE_CLIENT_H_
