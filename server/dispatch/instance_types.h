// File: server/dispatch/instance_types.h
//
// Instance types (PROTOCOLS.md §4.9, Cloudflare Containers) as sandbox resource limits:
//   lite 1/16 vCPU 256 MiB 2 GB · basic 1/4 vCPU 1 GiB 4 GB · standard-1 1/2 vCPU 4 GiB 8 GB ·
//   standard-2 1 vCPU 6 GiB 12 GB · standard-3 2 vCPU 8 GiB 16 GB · standard-4 4 vCPU 12 GiB 20 GB.
// pids_limit is ours (not in the table): 256 for lite/basic, 1024 above.
#ifndef FASTEST_SERVER_DISPATCH_INSTANCE_TYPES_H_
#define FASTEST_SERVER_DISPATCH_INSTANCE_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace fastest::server {

struct InstanceType {
  std::string name;
  int64_t nano_cpus = 0;
  int64_t memory_bytes = 0;
  int64_t disk_bytes = 0;
  int64_t pids_limit = 0;
};

// nullopt for an unknown name.
std::optional<InstanceType> FindInstanceType(absl::string_view name);

}  // namespace fastest::server

#endif  // FASTEST_SERVER_DISPATCH_INSTANCE_TYPES_H_
