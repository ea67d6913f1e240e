// The retrying caller of ApiClient: request construction, retries with backoff, and the mapping
// of error answers to absl::Status.
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/api/api_client.h"
#include "core/api/api_client_internal.h"
#include "core/http/http_status.h"
#include "core/json/json_util.h"
#include "core/retry/backoff.h"
#include "core/status/status_macros.h"

namespace fastest::core {
namespace {

absl::StatusCode CodeForHttp(long status, absl::string_view server_code) {
  if (status == 422 && server_code == "INVALID_STATE") return absl::StatusCode::kFailedPrecondition;
  return StatusCodeForHttp(status);
}

}  // namespace

std::optional<ApiErrorInfo> GetApiErrorInfo(const absl::Status& status) {
  auto payload = status.GetPayload(kPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  std::string text(*payload);
  ApiErrorInfo info;
  size_t sep = text.find(' ');
  if (sep == std::string::npos) return std::nullopt;
  if (!absl::SimpleAtoi(text.substr(0, sep), &info.http_status)) return std::nullopt;
  info.code = text.substr(sep + 1);
  return info;
}

absl::Status StatusFromHttpError(absl::string_view method, absl::string_view path,
                                 const HttpResponse& response) {
  std::string code;
  std::string message;
  nlohmann::json j = nlohmann::json::parse(response.body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    auto err = j.find("error");
    if (err != j.end() && err->is_object()) {
      if (err->contains("code") && (*err)["code"].is_string()) code = (*err)["code"];
      if (err->contains("message") && (*err)["message"].is_string()) message = (*err)["message"];
    } else if (err != j.end() && err->is_string()) {
      code = err->get<std::string>();  // RFC 8628 style
      if (j.contains("error_description") && j["error_description"].is_string()) {
        message = j["error_description"];
      }
    }
  }
  if (code.empty() && message.empty()) {
    message = response.body.substr(0, 300);
  }
  std::string text = absl::StrCat(method, " ", path, ": HTTP ", response.status);
  if (!code.empty()) absl::StrAppend(&text, " ", code);
  if (!message.empty()) absl::StrAppend(&text, ": ", message);
  absl::Status status(CodeForHttp(response.status, code), text);
  status.SetPayload(kPayloadUrl, absl::Cord(absl::StrCat(response.status, " ", code)));
  return status;
}

ApiClient::ApiClient(HttpTransport& http, std::string base_url, std::string token,
                     RetryPolicy retry)
    : http_(http),
      base_url_(std::string(absl::StripSuffix(base_url, "/"))),
      token_(std::move(token)),
      retry_(retry) {}

BackoffPolicy RetryPolicy::Backoff() const {
  BackoffPolicy policy;
  policy.max_attempts = max_attempts;
  policy.initial = initial_backoff;
  policy.max = max_backoff;
  policy.multiplier = multiplier;
  policy.min_factor = 1.0 - jitter;
  policy.max_factor = 1.0 + jitter;
  policy.max_elapsed = max_elapsed;
  return policy;
}

absl::StatusOr<HttpResponse> ApiClient::SendWithRetry(
    absl::string_view method, absl::string_view path,
    const std::function<HttpRequest()>& make_request, bool idempotent,
    const std::function<std::string()>& streamed_error_body) {
  Backoff backoff(retry_.Backoff());
  absl::Status last;
  while (true) {
    HttpRequest req = make_request();
    req.method = std::string(method);
    req.url = absl::StrCat(base_url_, path);
    req.bearer_token = token_;
    absl::StatusOr<HttpResponse> resp = http_.Send(req);
    bool transient = false;
    if (!resp.ok()) {
      // Transport failure. Refused/reset (kUnavailable) never reached the handler; a timeout might
      // have, so it is retried only for idempotent calls.
      last = Annotate(resp.status(), absl::StrCat(method, " ", path));
      last.SetPayload(kPayloadUrl, absl::Cord("0 "));
      transient = resp.status().code() == absl::StatusCode::kUnavailable ||
                  (idempotent && resp.status().code() == absl::StatusCode::kDeadlineExceeded);
    } else if (resp->status >= 200 && resp->status < 300) {
      return resp;
    } else {
      if (streamed_error_body) resp->body = streamed_error_body();
      last = StatusFromHttpError(method, path, *resp);
      transient = idempotent ? IsRetryableHttpStatus(resp->status)
                             : (resp->status == 429 || resp->status == 503);
    }
    if (!transient) return last;
    std::optional<absl::Duration> wait = backoff.NextWait();
    if (!wait.has_value()) return last;
    absl::SleepFor(*wait);
  }
}

absl::StatusOr<nlohmann::json> ApiClient::CallJson(absl::string_view method, absl::string_view path,
                                                   const nlohmann::json* body, bool idempotent) {
  std::string body_text = body != nullptr ? DumpJson(*body) : std::string();
  const bool has_body = body != nullptr;
  auto make = [&]() {
    HttpRequest req;
    req.timeout = ToChrono(retry_.request_timeout);
    if (has_body) {
      req.body = body_text;
      req.headers.emplace_back("Content-Type", "application/json");
    }
    return req;
  };
  FASTEST_ASSIGN_OR_RETURN(HttpResponse resp, SendWithRetry(method, path, make, idempotent));
  return ParseBody(method, path, resp);
}

absl::Status ApiClient::Health() {
  auto make = [&]() {
    HttpRequest req;
    req.timeout = ToChrono(retry_.request_timeout);
    return req;
  };
  return SendWithRetry("GET", "/health", make, true).status();
}

absl::StatusOr<std::string> ApiClient::GetContent(const std::string& path) {
  auto make = [&]() {
    HttpRequest req;
    req.timeout = ToChrono(retry_.transfer_timeout);
    return req;
  };
  FASTEST_ASSIGN_OR_RETURN(HttpResponse resp, SendWithRetry("GET", path, make, true));
  return std::move(resp.body);
}

}  // namespace fastest::core
