#include "core/json/config_fields.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fastest::core {
namespace {

// The field, or nullptr when it is missing or null.
const nlohmann::json* Find(const nlohmann::json& config, absl::string_view key) {
  if (!config.is_object()) return nullptr;
  auto it = config.find(std::string(key));
  if (it == config.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status WrongType(absl::string_view what, absl::string_view key, absl::string_view type) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": \"", key, "\" must be ", type));
}

}  // namespace

absl::StatusOr<std::string> OptionalString(const nlohmann::json& config, absl::string_view key,
                                           absl::string_view fallback, absl::string_view what) {
  const nlohmann::json* field = Find(config, key);
  if (field == nullptr) return std::string(fallback);
  if (!field->is_string()) return WrongType(what, key, "a string");
  return field->get<std::string>();
}

absl::StatusOr<int64_t> OptionalInt(const nlohmann::json& config, absl::string_view key,
                                    int64_t fallback, absl::string_view what) {
  const nlohmann::json* field = Find(config, key);
  if (field == nullptr) return fallback;
  if (!field->is_number_integer()) return WrongType(what, key, "an integer");
  return field->get<int64_t>();
}

absl::StatusOr<bool> OptionalBool(const nlohmann::json& config, absl::string_view key, bool fallback,
                                  absl::string_view what) {
  const nlohmann::json* field = Find(config, key);
  if (field == nullptr) return fallback;
  if (!field->is_boolean()) return WrongType(what, key, "a boolean");
  return field->get<bool>();
}

absl::StatusOr<nlohmann::json> ConfigObject(const nlohmann::json& config, absl::string_view what) {
  if (config.is_null()) return nlohmann::json::object();
  if (!config.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, " must be a JSON object"));
  return config;
}

}  // namespace fastest::core
