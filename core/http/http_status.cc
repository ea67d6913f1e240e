#include "core/http/http_status.h"

#include <string>

#include "absl/strings/numbers.h"

namespace fastest::core {

absl::StatusCode StatusCodeForHttp(long http_status) {
  switch (http_status) {
    case 400:
    case 413:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return absl::StatusCode::kAlreadyExists;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 500:
      return absl::StatusCode::kInternal;
    default:
      break;
  }
  if (http_status > 500 && http_status < 600) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kUnknown;
}

bool IsRetryableHttpStatus(long http_status) {
  return http_status == 429 || (http_status >= 500 && http_status < 600);
}

std::optional<absl::Duration> RetryAfter(const HttpResponse& response) {
  int seconds = 0;
  const std::string header = response.Header("retry-after");
  if (header.empty() || !absl::SimpleAtoi(header, &seconds) || seconds <= 0) return std::nullopt;
  return absl::Seconds(seconds);
}

}  // namespace fastest::core
