#include "server/api/request_parsing.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/api/api_error.h"

namespace fastest::server::api_request {

using net::Request;
using net::Response;
using nlohmann::json;

Response Unauthorized() {
  return ErrorResponse(401, "UNAUTHORIZED", "Authentication required");
}
Response Validation(absl::string_view msg) { return ErrorResponse(422, "VALIDATION_ERROR", msg); }
Response BadRequest(absl::string_view msg) { return ErrorResponse(400, "BAD_REQUEST", msg); }

// Parses the body as a JSON object. An empty body counts as {} only if `allow_empty`.
std::optional<Response> ParseObject(const Request& req, json* out, bool allow_empty) {
  if (absl::StripAsciiWhitespace(req.body).empty()) {
    if (allow_empty) {
      *out = json::object();
      return std::nullopt;
    }
    return BadRequest("Request body must be a JSON object");
  }
  json j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return BadRequest("Malformed JSON body");
  if (!j.is_object()) return BadRequest("Request body must be a JSON object");
  *out = std::move(j);
  return std::nullopt;
}

// Absent or null → nullopt; a string → value; anything else → 400.
std::optional<Response> OptString(const json& j, const char* key, std::optional<std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    *out = std::nullopt;
    return std::nullopt;
  }
  if (!it->is_string()) return BadRequest(absl::StrCat("'", key, "' must be a string"));
  *out = it->get<std::string>();
  return std::nullopt;
}

std::optional<Response> OptInt(const json& j, const char* key, int64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    *out = 0;
    return std::nullopt;
  }
  if (!it->is_number_integer()) return BadRequest(absl::StrCat("'", key, "' must be an integer"));
  *out = it->get<int64_t>();
  return std::nullopt;
}

std::string Trim(const std::optional<std::string>& s) {
  return s ? std::string(absl::StripAsciiWhitespace(*s)) : std::string();
}

// An empty optional string is treated as absent (the original writes only truthy values).
std::optional<std::string> NonEmpty(const std::optional<std::string>& s) {
  if (s && !s->empty()) return s;
  return std::nullopt;
}

std::optional<Response> ParseLimit(const Request& req, int fallback, int* out) {
  *out = fallback;
  if (!req.HasQuery("limit")) return std::nullopt;
  int v;
  if (!absl::SimpleAtoi(req.Query("limit"), &v)) {
    return BadRequest("'limit' must be an integer");
  }
  *out = std::max(1, std::min(100, v));
  return std::nullopt;
}

// Hashes from a {"hashes":[...]} body: the first 100 only, like the original.
std::optional<Response> ParseHashes(const Request& req, std::vector<std::string>* out) {
  json body;
  if (auto err = ParseObject(req, &body, false)) return err;
  auto it = body.find("hashes");
  if (it == body.end() || !it->is_array()) return Validation("hashes array is required");
  for (const auto& h : *it) {
    if (!h.is_string()) return BadRequest("'hashes' must contain strings");
    if (out->size() < 100) out->push_back(h.get<std::string>());
  }
  return std::nullopt;
}

Response Forbidden() { return ErrorResponse(403, "FORBIDDEN", "Access denied"); }

bool WaitRequested(const Request& req, const json& body) {
  if (req.HasQuery("wait")) {
    std::string v = absl::AsciiStrToLower(req.Query("wait"));
    return !(v == "false" || v == "0" || v == "no");
  }
  auto it = body.find("wait");
  if (it != body.end() && it->is_boolean()) return it->get<bool>();
  return true;
}

}  // namespace fastest::server::api_request
