// File: server/api/request_parsing.h
//
// Reading API requests: the JSON body and its typed fields, query parameters, and the standard
// error answers (401, 403, 400, 422) in the API's error shape. Each parser returns nullopt on
// success and the error Response to send otherwise.
//
// Example:
//   json body;
//   if (auto err = ParseObject(req, &body, /*allow_empty=*/false)) return *err;
//   std::optional<std::string> name;
//   if (auto err = OptString(body, "name", &name)) return *err;
#ifndef FASTEST_SERVER_API_REQUEST_PARSING_H_
#define FASTEST_SERVER_API_REQUEST_PARSING_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/net/http_types.h"
#include "nlohmann/json.hpp"

namespace fastest::server::api_request {

net::Response Unauthorized();                         // 401 UNAUTHORIZED
net::Response Forbidden();                            // 403 FORBIDDEN
net::Response BadRequest(absl::string_view msg);      // 400 BAD_REQUEST
net::Response Validation(absl::string_view msg);      // 422 VALIDATION_ERROR

// Parses the body as a JSON object. An empty body counts as {} only if `allow_empty`.
std::optional<net::Response> ParseObject(const net::Request& req, nlohmann::json* out,
                                         bool allow_empty);
// Absent or null -> nullopt; a string -> value; anything else -> 400.
std::optional<net::Response> OptString(const nlohmann::json& j, const char* key,
                                       std::optional<std::string>* out);
// Absent or null -> 0; an integer -> value; anything else -> 400.
std::optional<net::Response> OptInt(const nlohmann::json& j, const char* key, int64_t* out);
// The trimmed string, "" when absent.
std::string Trim(const std::optional<std::string>& s);
// An empty optional string is treated as absent (the original writes only truthy values).
std::optional<std::string> NonEmpty(const std::optional<std::string>& s);
// ?limit=N clamped to 1..100, `fallback` when absent; not an integer -> 400.
std::optional<net::Response> ParseLimit(const net::Request& req, int fallback, int* out);
// Hashes from a {"hashes":[...]} body: the first 100 only, like the original.
std::optional<net::Response> ParseHashes(const net::Request& req, std::vector<std::string>* out);
// ?wait= (false/0/no = no) or the body's "wait" boolean; default true.
bool WaitRequested(const net::Request& req, const nlohmann::json& body);

}  // namespace fastest::server::api_request

#endif  // FASTEST_SERVER_API_REQUEST_PARSING_H_
