// File: core/api/api_client_internal.h
//
// Helpers shared by the files of ApiClient (api_client.cc: the typed /v1 resources; api_call.cc:
// the retrying caller and error mapping; blob_transfer.cc: blobs, manifests' bodies and the batch
// extension). Not part of the public interface (a private source of //core/api:api_client):
// include core/api/api_client.h.
#ifndef FASTEST_CORE_API_API_CLIENT_INTERNAL_H_
#define FASTEST_CORE_API_API_CLIENT_INTERNAL_H_

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/http/http_transport.h"
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace fastest::core {

// The status payload carrying "<http status> <server code>" (GetApiErrorInfo reads it back).
inline constexpr char kPayloadUrl[] = "type.fastest.dev/api-error";

inline std::chrono::milliseconds ToChrono(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

// Lowercase 64-hex check, so a hostile hash never becomes part of a URL path.
inline absl::Status CheckHash(absl::string_view hash) {
  if (IsLowerHexSha256(hash)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("not a lowercase sha256 hex hash: \"", hash.substr(0, 80), "\""));
}

// Only ids made of safe characters go into URL paths.
inline absl::Status CheckId(absl::string_view what, absl::string_view id) {
  if (id.empty() || id.size() > 128) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", what, " id"));
  }
  for (char c : id) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
      return absl::InvalidArgumentError(absl::StrCat("invalid ", what, " id: \"", id, "\""));
    }
  }
  return absl::OkStatus();
}

inline absl::StatusOr<nlohmann::json> ParseBody(absl::string_view method, absl::string_view path,
                                                const HttpResponse& resp) {
  nlohmann::json j = nlohmann::json::parse(resp.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InternalError(
        absl::StrCat(method, " ", path, ": HTTP ", resp.status, ": response is not a JSON object"));
  }
  return j;
}

template <typename T, typename F>
absl::StatusOr<T> Field(const nlohmann::json& j, const char* key, F from_json) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) {
    return absl::InternalError(absl::StrCat("API response lacks object \"", key, "\""));
  }
  return from_json(*it);
}

template <typename T, typename F>
absl::StatusOr<std::vector<T>> ListField(const nlohmann::json& j, const char* key, F from_json) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) {
    return absl::InternalError(absl::StrCat("API response lacks array \"", key, "\""));
  }
  std::vector<T> out;
  out.reserve(it->size());
  for (const auto& item : *it) {
    FASTEST_ASSIGN_OR_RETURN(T value, from_json(item));
    out.push_back(std::move(value));
  }
  return out;
}

}  // namespace fastest::core

#endif  // FASTEST_CORE_API_API_CLIENT_INTERNAL_H_
