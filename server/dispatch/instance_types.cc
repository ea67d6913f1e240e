#include "server/dispatch/instance_types.h"

namespace fastest::server {

std::optional<InstanceType> FindInstanceType(absl::string_view name) {
  constexpr int64_t kMiB = 1024 * 1024;
  constexpr int64_t kGiB = 1024 * kMiB;
  constexpr int64_t kGB = 1000LL * 1000 * 1000;
  constexpr int64_t kCpu = 1000000000;  // nano CPUs per vCPU
  static const InstanceType kTypes[] = {
      {"lite", kCpu / 16, 256 * kMiB, 2 * kGB, 256},
      {"basic", kCpu / 4, 1 * kGiB, 4 * kGB, 256},
      {"standard-1", kCpu / 2, 4 * kGiB, 8 * kGB, 1024},
      {"standard-2", 1 * kCpu, 6 * kGiB, 12 * kGB, 1024},
      {"standard-3", 2 * kCpu, 8 * kGiB, 16 * kGB, 1024},
      {"standard-4", 4 * kCpu, 12 * kGiB, 20 * kGB, 1024},
  };
  for (const auto& t : kTypes) {
    if (t.name == name) return t;
  }
  return std::nullopt;
}

}  // namespace fastest::server
