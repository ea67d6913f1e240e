// File: server/http/http_types.h
//
// Request / Response values of fastest's HTTP server, the error JSON shape of the Fastest API
// (`{"error":{"code":STRING,"message":STRING}}`) and the single absl::Status -> HTTP mapping.
#ifndef FASTEST_SERVER_HTTP_HTTP_TYPES_H_
#define FASTEST_SERVER_HTTP_HTTP_TYPES_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fastest::server::http {

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

// `{"error":{"code":code,"message":message}}` with the given HTTP status.
Response ErrorResponse(int http_status, absl::string_view code, absl::string_view message);

// The one mapping of absl::StatusCode to HTTP:
//   InvalidArgument/OutOfRange -> 400 BAD_REQUEST, Unauthenticated -> 401 UNAUTHORIZED,
//   PermissionDenied -> 403 FORBIDDEN, NotFound -> 404 NOT_FOUND,
//   FailedPrecondition/Aborted -> 409 INVALID_STATE, AlreadyExists -> 409 CONFLICT,
//   ResourceExhausted -> 429 RESOURCE_EXHAUSTED, Unimplemented -> 501 NOT_IMPLEMENTED,
//   Unavailable -> 503 UNAVAILABLE, DeadlineExceeded -> 504 TIMEOUT, others -> 500 INTERNAL_ERROR.
int HttpStatusFromStatus(const absl::Status& status);
std::string ErrorCodeFromStatus(const absl::Status& status);
// ErrorResponse(HttpStatusFromStatus(s), ErrorCodeFromStatus(s), s.message()).
Response ResponseFromStatus(const absl::Status& status);

// Reason phrase for a status code ("Not Found").
absl::string_view ReasonPhrase(int status);

// Percent-decoding ('+' stays '+' in paths; `plus_is_space` for query strings).
std::string PercentDecode(absl::string_view in, bool plus_is_space);

}  // namespace fastest::server::http

#endif  // FASTEST_SERVER_HTTP_HTTP_TYPES_H_
