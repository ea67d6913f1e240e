// File: core/plugin/capabilities.h
//
// BackendCapabilities: what a backend can do, typed, parsed once from its two sources:
//   - the static FASTEST_CAP_* bits of its table (FASTEST_DEFINE_BACKEND's capabilities argument),
//   - its `describe` document ({"log_streaming":bool,"warm_pool":bool,"network_modes":[...],
//     "default_network_mode":"...","max_parallel_sandboxes":int,"health":"ok"|"<reason>",...};
//     the SDK adds "resource_limits" from the bits).
// The two must agree; ParseBackendCapabilities refuses a backend whose document contradicts its
// bits (FailedPrecondition naming the field), so a capability is never true in one and false in
// the other:
//   FASTEST_CAP_LOG_STREAMING   <-> "log_streaming"
//   FASTEST_CAP_WARM_POOL       <-> "warm_pool"
//   FASTEST_CAP_RESOURCE_LIMITS <-> "resource_limits" (when the document has it)
//   FASTEST_CAP_NETWORK_MODES   <-> more than one entry in "network_modes" (a choice exists)
//
// Example:
//   FASTEST_ASSIGN_OR_RETURN(BackendCapabilities caps, backend->Capabilities());
//   if (caps.log_streaming) follow_logs();
#ifndef FASTEST_CORE_PLUGIN_CAPABILITIES_H_
#define FASTEST_CORE_PLUGIN_CAPABILITIES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace fastest::core {

struct BackendCapabilities {
  std::string name;
  std::string version;
  bool log_streaming = false;    // ReadLogs honours follow
  bool warm_pool = false;        // sandboxes may start from a pre-warmed pool
  bool resource_limits = false;  // SandboxSpec's cpu/memory/pids limits are enforced
  std::vector<std::string> network_modes;  // what SandboxSpec::network_mode may name
  std::string default_network_mode;
  int64_t max_parallel_sandboxes = 0;  // 0 = unlimited
  std::string health = "ok";           // "ok" or why not

  bool healthy() const { return health == "ok"; }
  // The FASTEST_CAP_* bits these capabilities correspond to.
  uint32_t bits() const;
};

// ParseBackendCapabilities: `describe` (an object) as BackendCapabilities. With `static_bits`
// (a loaded plugin's table), a field missing from the document is taken from the bits and a
// field present must agree with them (FailedPrecondition otherwise). Malformed fields are
// InvalidArgument.
absl::StatusOr<BackendCapabilities> ParseBackendCapabilities(
    const nlohmann::json& describe, std::optional<uint32_t> static_bits = std::nullopt);

}  // namespace fastest::core

#endif  // FASTEST_CORE_PLUGIN_CAPABILITIES_H_
