#include "server/api/api_error.h"

#include "nlohmann/json.hpp"

namespace fastest::server {

net::Response ErrorResponse(int http_status, absl::string_view code, absl::string_view message) {
  nlohmann::json j;
  j["error"]["code"] = std::string(code);
  j["error"]["message"] = std::string(message);
  return net::Response::Json(http_status, j);
}

std::string ErrorCodeFromStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return "BAD_REQUEST";
    case absl::StatusCode::kUnauthenticated:
      return "UNAUTHORIZED";
    case absl::StatusCode::kPermissionDenied:
      return "FORBIDDEN";
    case absl::StatusCode::kNotFound:
      return "NOT_FOUND";
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return "INVALID_STATE";
    case absl::StatusCode::kAlreadyExists:
      return "CONFLICT";
    case absl::StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kUnimplemented:
      return "NOT_IMPLEMENTED";
    case absl::StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case absl::StatusCode::kDeadlineExceeded:
      return "TIMEOUT";
    default:
      return "INTERNAL_ERROR";
  }
}

net::Response ResponseFromStatus(const absl::Status& status) {
  return ErrorResponse(net::HttpStatusFromStatus(status), ErrorCodeFromStatus(status),
                       status.message());
}

}  // namespace fastest::server
