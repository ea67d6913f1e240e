// File: core/http/http_status.h
//
// What an HTTP status means to a client of fastest, said once for every client (the /v1 API
// client, the Cloudflare bridge client, the CLI):
//   400, 413, 422 -> InvalidArgument     401 -> Unauthenticated     403 -> PermissionDenied
//   404 -> NotFound     409 -> AlreadyExists     429 -> ResourceExhausted
//   500 -> Internal     other 5xx -> Unavailable     anything else -> Unknown
// A client refines this where its server's error codes say more (ApiClient: 422 INVALID_STATE ->
// FailedPrecondition; the bridge: 401 -> FailedPrecondition, its 429/5xx -> Unavailable).
#ifndef FASTEST_CORE_HTTP_HTTP_STATUS_H_
#define FASTEST_CORE_HTTP_HTTP_STATUS_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/http/http_transport.h"

namespace fastest::core {

// StatusCodeForHttp: the absl code for a non-2xx HTTP status (table above).
absl::StatusCode StatusCodeForHttp(long http_status);

// IsRetryableHttpStatus: 429 and 5xx; a later identical request may succeed.
bool IsRetryableHttpStatus(long http_status);

// RetryAfter: the delay a response's "Retry-After: <seconds>" asks for; nullopt when absent,
// not a positive integer (the HTTP-date form is not used by our servers).
std::optional<absl::Duration> RetryAfter(const HttpResponse& response);

}  // namespace fastest::core

#endif  // FASTEST_CORE_HTTP_HTTP_STATUS_H_
