// File: core/json/json_util.h
//
// The two JSON helpers every part of fastest uses, so none of them calls a throwing nlohmann API:
// DumpJson never throws (invalid UTF-8 becomes U+FFFD), ParseJsonObject reports bad input as a
// status naming what was being parsed.
#ifndef FASTEST_CORE_JSON_JSON_UTIL_H_
#define FASTEST_CORE_JSON_JSON_UTIL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fastest::core {

// Compact serialization that never throws (nlohmann's dump() throws on invalid UTF-8).
std::string DumpJson(const nlohmann::json& json);

// Parses `text` as a JSON object without throwing; InvalidArgument naming `what` otherwise.
absl::StatusOr<nlohmann::json> ParseJsonObject(absl::string_view text, absl::string_view what);

}  // namespace fastest::core

#endif  // FASTEST_CORE_JSON_JSON_UTIL_H_
