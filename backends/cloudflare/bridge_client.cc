#include "backends/cloudflare/bridge_client.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backends/cloudflare/bridge_protocol.h"
#include "core/http/http_client.h"
#include "core/http/http_status.h"
#include "core/retry/backoff.h"
#include "core/status/status_macros.h"

namespace fastest::backends::cloudflare {
namespace {

// Error bodies are kept for messages, capped so a misbehaving peer cannot balloon them.
constexpr size_t kMaxErrorBody = 4096;

std::chrono::milliseconds ToChrono(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

std::string TrimForMessage(absl::string_view body) {
  std::string text(absl::StripAsciiWhitespace(body.substr(0, 300)));
  return text;
}

}  // namespace

BridgeClient::BridgeClient(BridgeClientOptions options)
    : options_(std::move(options)), http_(std::make_unique<core::HttpClient>()) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/') options_.base_url.pop_back();
  if (options_.max_attempts < 1) options_.max_attempts = 1;
}

absl::Time BridgeClient::last_answer() const {
  int64_t ns = last_answer_unix_ns_.load();
  return ns == 0 ? absl::InfinitePast() : absl::FromUnixNanos(ns);
}

void BridgeClient::NoteAnswer() { last_answer_unix_ns_.store(absl::ToUnixNanos(absl::Now())); }

bool BridgeClient::SleepBeforeRetry(absl::Duration wait, absl::Time deadline) {
  if (deadline != absl::InfiniteFuture() && absl::Now() + wait >= deadline) return false;
  absl::SleepFor(wait);
  return true;
}

absl::Status BridgeClient::StatusFromBridgeResponse(long http_status, absl::string_view body,
                                                    absl::string_view what) {
  std::string code;
  std::string message;
  nlohmann::json parsed = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (!parsed.is_discarded() && parsed.is_object()) {
    if (parsed.contains("code") && parsed["code"].is_string()) code = parsed["code"];
    if (parsed.contains("error") && parsed["error"].is_string()) message = parsed["error"];
  }
  if (message.empty()) message = TrimForMessage(body);
  std::string text = absl::StrCat("bridge ", what, ": HTTP ", http_status,
                                  code.empty() ? "" : absl::StrCat(" ", code), ": ", message);
  if (code == "capacity_exceeded") return absl::ResourceExhaustedError(text);
  if (http_status == 401) {
    // The key is ours to fix, not the caller's credentials: FailedPrecondition, with a hint.
    return absl::FailedPreconditionError(
        absl::StrCat(text, " (check SANDBOX_API_KEY / the api_key config)"));
  }
  // The bridge's 429 and 5xx are all worth a later try (none means "our bug" like the API's 500).
  if (core::IsRetryableHttpStatus(http_status)) return absl::UnavailableError(text);
  absl::StatusCode mapped = core::StatusCodeForHttp(http_status);
  if (mapped == absl::StatusCode::kUnknown) mapped = absl::StatusCode::kInternal;
  return absl::Status(mapped, text);
}

bool BridgeClient::IsRetryable(long http_status, absl::string_view body) {
  if (http_status == 503 && body.find("capacity_exceeded") != absl::string_view::npos) return false;
  return http_status == 429 || http_status == 500 || http_status == 502 || http_status == 503 ||
         http_status == 504;
}

absl::Duration BridgeClient::Backoff(int attempt, const core::HttpResponse* response) const {
  // "Equal jitter": half fixed, half random, so waits never collapse to 0.
  core::BackoffPolicy policy;
  policy.initial = options_.backoff_initial;
  policy.max = options_.backoff_cap;
  policy.min_factor = 0.5;
  policy.max_factor = 1.0;
  std::optional<absl::Duration> retry_after;
  if (response != nullptr) retry_after = core::RetryAfter(*response);
  return core::BackoffWait(policy, attempt, retry_after.value_or(absl::ZeroDuration()));
}

core::HttpRequest BridgeClient::NewRequest(absl::string_view method, absl::string_view path) const {
  core::HttpRequest request;
  request.method = std::string(method);
  request.url = absl::StrCat(options_.base_url, path);
  request.bearer_token = options_.api_key;
  request.timeout = ToChrono(options_.request_timeout);
  return request;
}

absl::StatusOr<core::HttpResponse> BridgeClient::SendWithRetry(core::HttpRequest request,
                                                               absl::string_view what) {
  absl::Status last;
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    absl::StatusOr<core::HttpResponse> response = http_->Send(request);
    if (response.ok()) {
      NoteAnswer();
      if (!IsRetryable(response->status, response->body)) return response;
      last = StatusFromBridgeResponse(response->status, response->body, what);
      if (attempt + 1 < options_.max_attempts) absl::SleepFor(Backoff(attempt, &*response));
      continue;
    }
    if (!absl::IsUnavailable(response.status()) && !absl::IsDeadlineExceeded(response.status())) {
      return core::Annotate(response.status(), absl::StrCat("bridge ", what));
    }
    last = core::Annotate(response.status(), absl::StrCat("bridge ", what));
    if (attempt + 1 < options_.max_attempts) absl::SleepFor(Backoff(attempt, nullptr));
  }
  return core::Annotate(last, absl::StrCat("gave up after ", options_.max_attempts, " attempts"));
}

absl::StatusOr<nlohmann::json> BridgeClient::Health() {
  core::HttpRequest request = NewRequest("GET", "/health");
  request.bearer_token.clear();
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse response, SendWithRetry(request, "health"));
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (response.status != 200 || body.is_discarded()) {
    return absl::UnavailableError(absl::StrCat("bridge health: HTTP ", response.status, ": ",
                                               TrimForMessage(response.body)));
  }
  return body;
}

absl::StatusOr<std::string> BridgeClient::CreateSandbox() {
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse response,
                           SendWithRetry(NewRequest("POST", "/v1/sandbox"), "create sandbox"));
  if (response.status != 200) {
    return StatusFromBridgeResponse(response.status, response.body, "create sandbox");
  }
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("id") || !body["id"].is_string() ||
      !IsValidSandboxId(body["id"].get<std::string>())) {
    return absl::InternalError(absl::StrCat("bridge create sandbox: unexpected answer: ",
                                            TrimForMessage(response.body)));
  }
  return body["id"].get<std::string>();
}

absl::Status BridgeClient::DeleteSandbox(const std::string& id) {
  if (!IsValidSandboxId(id)) return absl::InvalidArgumentError("invalid sandbox id");
  FASTEST_ASSIGN_OR_RETURN(
      core::HttpResponse response,
      SendWithRetry(NewRequest("DELETE", absl::StrCat("/v1/sandbox/", id)), "delete sandbox"));
  if (response.status != 204 && response.status != 200) {
    return StatusFromBridgeResponse(response.status, response.body, "delete sandbox");
  }
  return absl::OkStatus();
}

absl::StatusOr<ExecResult> BridgeClient::Exec(const std::string& id, const ExecRequest& exec,
                                              bool idempotent, const ExecOutputSink& sink) {
  if (!IsValidSandboxId(id)) return absl::InvalidArgumentError("invalid sandbox id");
  nlohmann::json body = {{"argv", exec.argv}};
  if (exec.timeout_ms > 0) body["timeout_ms"] = exec.timeout_ms;
  if (!exec.cwd.empty()) body["cwd"] = exec.cwd;
  std::string body_text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  absl::Status last;
  int attempts = 0;
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    core::HttpRequest request = NewRequest("POST", absl::StrCat("/v1/sandbox/", id, "/exec"));
    request.headers.emplace_back("Content-Type", "application/json");
    if (!exec.session_id.empty()) request.headers.emplace_back("Session-Id", exec.session_id);
    request.body = body_text;
    absl::Duration attempt_timeout = options_.request_timeout;
    if (exec.timeout_ms > 0) {
      // The bridge ends the command itself; leave room for its final events.
      attempt_timeout += absl::Milliseconds(exec.timeout_ms);
    }
    if (exec.deadline != absl::InfiniteFuture()) {
      absl::Duration left = exec.deadline - absl::Now();
      if (left < absl::Milliseconds(10)) {  // curl reads a 0 ms timeout as "none"
        if (!last.ok()) break;
        return absl::DeadlineExceededError("bridge exec: no time left for the request");
      }
      attempt_timeout = std::min(attempt_timeout, left);
    }
    request.timeout = ToChrono(attempt_timeout);
    ++attempts;

    ExecResult result;
    bool terminal = false;
    bool bad_event = false;
    absl::Status event_error;
    std::string raw;  // first bytes, for non-200 error bodies
    SseParser parser([&](absl::string_view event, absl::string_view data) {
      if (event == "stdout" || event == "stderr") {
        std::string decoded;
        if (!absl::Base64Unescape(data, &decoded)) {
          bad_event = true;
          return false;
        }
        int stream = event == "stdout" ? 1 : 2;
        (stream == 1 ? result.stdout_data : result.stderr_data) += decoded;
        if (sink) sink(stream, decoded);
        return true;
      }
      if (event == "exit") {
        nlohmann::json j = nlohmann::json::parse(data.begin(), data.end(), nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("exit_code") ||
            !j["exit_code"].is_number_integer()) {
          bad_event = true;
          return false;
        }
        result.exit_code = j["exit_code"].get<int>();
        terminal = true;
        return false;
      }
      if (event == "error") {
        nlohmann::json j = nlohmann::json::parse(data.begin(), data.end(), nullptr, false);
        std::string message = "unknown error";
        std::string code = "exec_error";
        if (!j.is_discarded() && j.is_object()) {
          if (j.contains("error") && j["error"].is_string()) message = j["error"];
          if (j.contains("code") && j["code"].is_string()) code = j["code"];
        }
        std::string text = absl::StrCat("bridge exec: ", code, ": ", message);
        event_error = code == "exec_transport_error" ? absl::UnavailableError(text)
                                                     : absl::InternalError(text);
        terminal = true;
        return false;
      }
      return true;  // unknown events are ignored
    });
    request.on_body_chunk = [&](absl::string_view chunk) {
      if (raw.size() < kMaxErrorBody) raw.append(chunk.data(), std::min(chunk.size(), kMaxErrorBody - raw.size()));
      if (terminal || bad_event) return true;  // drain to the end
      parser.Feed(chunk);
      return true;
    };

    absl::StatusOr<core::HttpResponse> response = http_->Send(request);
    if (response.ok()) NoteAnswer();
    if (!response.ok()) {
      last = core::Annotate(response.status(), "bridge exec");
      if (terminal && event_error.ok()) return result;  // finished; only the close failed
      if (!event_error.ok()) return event_error;
      bool started = !raw.empty();
      if (absl::IsUnavailable(response.status()) || absl::IsDeadlineExceeded(response.status())) {
        if (started && !idempotent) {
          return absl::UnavailableError(
              "bridge exec: transport error: the stream broke before the exit event; the "
              "command's fate is unknown");
        }
        if (attempt + 1 < options_.max_attempts &&
            !SleepBeforeRetry(Backoff(attempt, nullptr), exec.deadline)) {
          break;
        }
        continue;
      }
      return last;
    }
    if (response->status != 200) {
      if (IsRetryable(response->status, raw)) {
        last = StatusFromBridgeResponse(response->status, raw, "exec");
        if (attempt + 1 < options_.max_attempts &&
            !SleepBeforeRetry(Backoff(attempt, &*response), exec.deadline)) {
          break;
        }
        continue;
      }
      return StatusFromBridgeResponse(response->status, raw, "exec");
    }
    if (bad_event) return absl::InternalError("bridge exec: malformed event in the SSE stream");
    if (!event_error.ok()) return event_error;
    if (terminal) return result;
    // EOF without exit/error: transport error (§4.4).
    last = absl::UnavailableError(
        "bridge exec: transport error: the stream ended without an exit or error event");
    if (!idempotent) return last;
    if (attempt + 1 < options_.max_attempts &&
        !SleepBeforeRetry(Backoff(attempt, nullptr), exec.deadline)) {
      break;
    }
  }
  return core::Annotate(
      last, absl::StrCat("gave up after ", attempts, attempts == 1 ? " attempt" : " attempts",
                         attempts < options_.max_attempts ? " (out of time)" : ""));
}

absl::Status BridgeClient::PutFile(const std::string& id, absl::string_view path,
                                   const std::string& bytes) {
  if (!IsValidSandboxId(id)) return absl::InvalidArgumentError("invalid sandbox id");
  std::string rel(path);
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  core::HttpRequest request =
      NewRequest("PUT", absl::StrCat("/v1/sandbox/", id, "/file/", EncodeUriPath(rel)));
  request.headers.emplace_back("Content-Type", "application/octet-stream");
  request.body = bytes;
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse response, SendWithRetry(request, "write file"));
  if (response.status != 200) {
    return StatusFromBridgeResponse(response.status, response.body, "write file");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BridgeClient::GetFile(const std::string& id, absl::string_view path) {
  if (!IsValidSandboxId(id)) return absl::InvalidArgumentError("invalid sandbox id");
  std::string rel(path);
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  FASTEST_ASSIGN_OR_RETURN(
      core::HttpResponse response,
      SendWithRetry(NewRequest("GET", absl::StrCat("/v1/sandbox/", id, "/file/", EncodeUriPath(rel))),
                    "read file"));
  if (response.status != 200) {
    return StatusFromBridgeResponse(response.status, response.body, "read file");
  }
  return std::move(response.body);
}

absl::StatusOr<bool> BridgeClient::Running(const std::string& id) {
  if (!IsValidSandboxId(id)) return absl::InvalidArgumentError("invalid sandbox id");
  FASTEST_ASSIGN_OR_RETURN(
      core::HttpResponse response,
      SendWithRetry(NewRequest("GET", absl::StrCat("/v1/sandbox/", id, "/running")), "running"));
  if (response.status != 200) {
    return StatusFromBridgeResponse(response.status, response.body, "running");
  }
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("running") ||
      !body["running"].is_boolean()) {
    return absl::InternalError("bridge running: unexpected answer");
  }
  return body["running"].get<bool>();
}

absl::StatusOr<std::string> BridgeClient::CreateSession(
    const std::string& id, const std::map<std::string, std::string>& env, const std::string& cwd) {
  if (!IsValidSandboxId(id)) return absl::InvalidArgumentError("invalid sandbox id");
  nlohmann::json body = nlohmann::json::object();
  if (!env.empty()) body["env"] = env;
  if (!cwd.empty()) body["cwd"] = cwd;
  core::HttpRequest request = NewRequest("POST", absl::StrCat("/v1/sandbox/", id, "/session"));
  request.headers.emplace_back("Content-Type", "application/json");
  request.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse response, SendWithRetry(request, "create session"));
  if (response.status != 200) {
    return StatusFromBridgeResponse(response.status, response.body, "create session");
  }
  nlohmann::json parsed = nlohmann::json::parse(response.body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("id") ||
      !parsed["id"].is_string()) {
    return absl::InternalError("bridge create session: unexpected answer");
  }
  return parsed["id"].get<std::string>();
}

}  // namespace fastest::backends::cloudflare
