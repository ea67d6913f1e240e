// File: core/net/http_types.h
//
// Request / Response values of the HTTP server, the hook through which an application gives the
// server's own errors (404, 413, ...) its error shape, and the absl::Status -> HTTP status mapping.
#ifndef FASTEST_CORE_NET_HTTP_TYPES_H_
#define FASTEST_CORE_NET_HTTP_TYPES_H_

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fastest::net {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// One parsed HTTP request. Header names are lower-cased; query values are percent-decoded.
struct Request {
  std::string method;  // upper case, e.g. "GET"
  std::string target;  // raw request target, path + query
  std::string path;    // percent-decoded path, no query
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> params;  // ":name" segments of the matched route
  HeaderList headers;
  std::string body;
  std::string remote_address;

  // First header with this (case-insensitive) name, or "".
  std::string Header(absl::string_view name) const;
  // Query parameter or `fallback`.
  std::string Query(absl::string_view name, absl::string_view fallback = "") const;
  bool HasQuery(absl::string_view name) const;
  // Route parameter (":jobId" -> Param("jobId")) or "".
  std::string Param(absl::string_view name) const;
};

struct Response {
  int status = 200;
  HeaderList headers;  // Content-Length is set by the server
  std::string body;

  // application/json body.
  static Response Json(int status, const nlohmann::json& body);
  static Response Text(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
  // Sets or replaces a header.
  Response& SetHeader(std::string name, std::string value);
};

// Builds the body of an error the server answers itself (unknown route, body too large, malformed
// request, authentication refused, a handler that threw or did not answer). `code` is a stable
// upper-case name (NOT_FOUND, PAYLOAD_TOO_LARGE, BAD_REQUEST, UNAUTHORIZED, INTERNAL_ERROR), the
// message is for people. Each application gives its own shape (see Router::SetErrorFormatter).
using ErrorFormatter =
    std::function<Response(int http_status, absl::string_view code, absl::string_view message)>;

// The default ErrorFormatter: `message` as text/plain.
Response PlainTextError(int http_status, absl::string_view code, absl::string_view message);

// The mapping of absl::StatusCode to HTTP status:
//   InvalidArgument/OutOfRange -> 400, Unauthenticated -> 401, PermissionDenied -> 403,
//   NotFound -> 404, FailedPrecondition/Aborted/AlreadyExists -> 409, ResourceExhausted -> 429,
//   Unimplemented -> 501, Unavailable -> 503, DeadlineExceeded -> 504, others -> 500.
int HttpStatusFromStatus(const absl::Status& status);

// Reason phrase for a status code ("Not Found").
absl::string_view ReasonPhrase(int status);

}  // namespace fastest::net

#endif  // FASTEST_CORE_NET_HTTP_TYPES_H_
