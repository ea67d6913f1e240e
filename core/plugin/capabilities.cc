#include "core/plugin/capabilities.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/abi/backend_abi.h"

namespace fastest::core {
namespace {

// A boolean capability: from the document when present (and then equal to the bit), else the bit.
absl::Status ReadFlag(const nlohmann::json& doc, const char* key, uint32_t bit,
                      std::optional<uint32_t> static_bits, bool* out) {
  const bool from_bits = static_bits.has_value() && (*static_bits & bit) != 0;
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) {
    *out = from_bits;
    return absl::OkStatus();
  }
  if (!it->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat("describe: \"", key, "\" must be a boolean"));
  }
  *out = it->get<bool>();
  if (static_bits.has_value() && *out != from_bits) {
    return absl::FailedPreconditionError(absl::StrCat(
        "describe says \"", key, "\":", *out ? "true" : "false", " but the plugin's static "
        "capability bits say ", from_bits ? "true" : "false", "; make FASTEST_DEFINE_BACKEND's "
        "capabilities and Describe() agree"));
  }
  return absl::OkStatus();
}

absl::Status ReadString(const nlohmann::json& doc, const char* key, std::string* out) {
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("describe: \"", key, "\" must be a string"));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

}  // namespace

uint32_t BackendCapabilities::bits() const {
  uint32_t out = 0;
  if (log_streaming) out |= FASTEST_CAP_LOG_STREAMING;
  if (warm_pool) out |= FASTEST_CAP_WARM_POOL;
  if (resource_limits) out |= FASTEST_CAP_RESOURCE_LIMITS;
  if (network_modes.size() > 1) out |= FASTEST_CAP_NETWORK_MODES;
  return out;
}

absl::StatusOr<BackendCapabilities> ParseBackendCapabilities(const nlohmann::json& describe,
                                                             std::optional<uint32_t> static_bits) {
  if (!describe.is_object()) return absl::InvalidArgumentError("describe: not a JSON object");
  BackendCapabilities caps;
  if (absl::Status s = ReadString(describe, "name", &caps.name); !s.ok()) return s;
  if (absl::Status s = ReadString(describe, "version", &caps.version); !s.ok()) return s;
  if (absl::Status s = ReadString(describe, "health", &caps.health); !s.ok()) return s;
  if (absl::Status s = ReadString(describe, "default_network_mode", &caps.default_network_mode);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadFlag(describe, "log_streaming", FASTEST_CAP_LOG_STREAMING, static_bits,
                                &caps.log_streaming);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ReadFlag(describe, "warm_pool", FASTEST_CAP_WARM_POOL, static_bits, &caps.warm_pool);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadFlag(describe, "resource_limits", FASTEST_CAP_RESOURCE_LIMITS,
                                static_bits, &caps.resource_limits);
      !s.ok()) {
    return s;
  }

  auto modes = describe.find("network_modes");
  if (modes != describe.end() && !modes->is_null()) {
    if (!modes->is_array()) {
      return absl::InvalidArgumentError("describe: \"network_modes\" must be an array of strings");
    }
    for (const nlohmann::json& mode : *modes) {
      if (!mode.is_string()) {
        return absl::InvalidArgumentError("describe: \"network_modes\" must be an array of strings");
      }
      caps.network_modes.push_back(mode.get<std::string>());
    }
  }
  if (!caps.default_network_mode.empty() && !caps.network_modes.empty() &&
      std::find(caps.network_modes.begin(), caps.network_modes.end(),
                caps.default_network_mode) == caps.network_modes.end()) {
    return absl::InvalidArgumentError(absl::StrCat("describe: default_network_mode \"",
                                                   caps.default_network_mode,
                                                   "\" is not one of network_modes"));
  }
  if (static_bits.has_value()) {
    const bool bit = (*static_bits & FASTEST_CAP_NETWORK_MODES) != 0;
    const bool choice = caps.network_modes.size() > 1;
    if (bit != choice) {
      return absl::FailedPreconditionError(absl::StrCat(
          "describe lists ", caps.network_modes.size(), " network_modes but the plugin's static "
          "capability bits ", bit ? "claim" : "do not claim", " FASTEST_CAP_NETWORK_MODES (set it "
          "exactly when more than one mode can be chosen)"));
    }
  }

  auto max = describe.find("max_parallel_sandboxes");
  if (max != describe.end() && !max->is_null()) {
    if (!max->is_number_integer() || max->get<int64_t>() < 0) {
      return absl::InvalidArgumentError(
          "describe: \"max_parallel_sandboxes\" must be an integer >= 0 (0 = unlimited)");
    }
    caps.max_parallel_sandboxes = max->get<int64_t>();
  }
  return caps;
}

}  // namespace fastest::core
