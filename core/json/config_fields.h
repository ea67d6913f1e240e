// File: core/json/config_fields.h
//
// Typed readers for optional fields of a JSON configuration object (a backend's --backend_config).
// A missing or null field gives the fallback; a field of the wrong type is InvalidArgument
// "<what>: \"<key>\" must be a <type>" so the user knows which setting to fix.
//
// Example:
//   FASTEST_ASSIGN_OR_RETURN(std::string host, OptionalString(cfg, "host", "", "docker config"));
//   FASTEST_ASSIGN_OR_RETURN(int64_t nofile, OptionalInt(cfg, "nofile", 0, "podman config"));
#ifndef FASTEST_CORE_JSON_CONFIG_FIELDS_H_
#define FASTEST_CORE_JSON_CONFIG_FIELDS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fastest::core {

absl::StatusOr<std::string> OptionalString(const nlohmann::json& config, absl::string_view key,
                                           absl::string_view fallback, absl::string_view what);
absl::StatusOr<int64_t> OptionalInt(const nlohmann::json& config, absl::string_view key,
                                    int64_t fallback, absl::string_view what);
absl::StatusOr<bool> OptionalBool(const nlohmann::json& config, absl::string_view key, bool fallback,
                                  absl::string_view what);

// ConfigObject: `config` when it is an object, {} when null; InvalidArgument "<what> must be a
// JSON object" otherwise.
absl::StatusOr<nlohmann::json> ConfigObject(const nlohmann::json& config, absl::string_view what);

}  // namespace fastest::core

#endif  // FASTEST_CORE_JSON_CONFIG_FIELDS_H_
