// File: core/model/instance_types.h
//
// Instance types (PROTOCOLS.md §4.9, Cloudflare Containers) as sandbox resource limits, the one
// table every backend and the server read:
//   lite 1/16 vCPU 256 MiB 2 GB · basic 1/4 vCPU 1 GiB 4 GB · standard-1 1/2 vCPU 4 GiB 8 GB ·
//   standard-2 1 vCPU 6 GiB 12 GB · standard-3 2 vCPU 8 GiB 16 GB · standard-4 4 vCPU 12 GiB 20 GB.
// pids_limit is ours (not in the table): 256 for lite/basic, 1024 above.
//
// Example:
//   FASTEST_ASSIGN_OR_RETURN(InstanceType type, LookupInstanceType("standard-1"));
//   spec.memory_bytes = type.memory_bytes;
#ifndef FASTEST_CORE_MODEL_INSTANCE_TYPES_H_
#define FASTEST_CORE_MODEL_INSTANCE_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fastest::core {

struct InstanceType {
  std::string name;
  int64_t nano_cpus = 0;     // 1e9 = one vCPU
  int64_t memory_bytes = 0;  // binary units (MiB, GiB)
  int64_t disk_bytes = 0;    // decimal units (MB, GB), as the table states them
  int64_t pids_limit = 0;

  double vcpu() const { return static_cast<double>(nano_cpus) / 1e9; }
  int64_t memory_mib() const { return memory_bytes / (1024 * 1024); }
  int64_t disk_mb() const { return disk_bytes / (1000 * 1000); }
};

// Every type, smallest first.
const std::vector<InstanceType>& InstanceTypes();

// FindInstanceType: the row for `name`; nullopt for an unknown name.
std::optional<InstanceType> FindInstanceType(absl::string_view name);

// LookupInstanceType: the row for `name`; InvalidArgument "unknown instance_type ... (one of ...)".
absl::StatusOr<InstanceType> LookupInstanceType(absl::string_view name);

}  // namespace fastest::core

#endif  // FASTEST_CORE_MODEL_INSTANCE_TYPES_H_
