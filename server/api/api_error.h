// File: server/api/api_error.h
//
// The error shape of the Fastest API, `{"error":{"code":STRING,"message":STRING}}`, and the one
// mapping of absl::Status to it. ApiService installs ErrorResponse as its router's
// ErrorFormatter, so the server's own errors (404, 413, 401 before the body, ...) share the shape.
#ifndef FASTEST_SERVER_API_API_ERROR_H_
#define FASTEST_SERVER_API_API_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/net/http_types.h"

namespace fastest::server {

// `{"error":{"code":code,"message":message}}` with the given HTTP status (a net::ErrorFormatter).
net::Response ErrorResponse(int http_status, absl::string_view code, absl::string_view message);

// The error code of a status: InvalidArgument/OutOfRange -> BAD_REQUEST, Unauthenticated ->
// UNAUTHORIZED, PermissionDenied -> FORBIDDEN, NotFound -> NOT_FOUND, FailedPrecondition/Aborted
// -> INVALID_STATE, AlreadyExists -> CONFLICT, ResourceExhausted -> RESOURCE_EXHAUSTED,
// Unimplemented -> NOT_IMPLEMENTED, Unavailable -> UNAVAILABLE, DeadlineExceeded -> TIMEOUT,
// others -> INTERNAL_ERROR. The HTTP status is net::HttpStatusFromStatus.
std::string ErrorCodeFromStatus(const absl::Status& status);
// ErrorResponse(net::HttpStatusFromStatus(s), ErrorCodeFromStatus(s), s.message()).
net::Response ResponseFromStatus(const absl::Status& status);

}  // namespace fastest::server

#endif  // FASTEST_SERVER_API_API_ERROR_H_
