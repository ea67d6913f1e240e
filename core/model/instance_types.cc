#include "core/model/instance_types.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fastest::core {

const std::vector<InstanceType>& InstanceTypes() {
  constexpr int64_t kMiB = 1024 * 1024;
  constexpr int64_t kGiB = 1024 * kMiB;
  constexpr int64_t kGB = 1000LL * 1000 * 1000;
  constexpr int64_t kCpu = 1000000000;  // nano CPUs per vCPU
  static const auto* types = new std::vector<InstanceType>{
      {"lite", kCpu / 16, 256 * kMiB, 2 * kGB, 256},
      {"basic", kCpu / 4, 1 * kGiB, 4 * kGB, 256},
      {"standard-1", kCpu / 2, 4 * kGiB, 8 * kGB, 1024},
      {"standard-2", 1 * kCpu, 6 * kGiB, 12 * kGB, 1024},
      {"standard-3", 2 * kCpu, 8 * kGiB, 16 * kGB, 1024},
      {"standard-4", 4 * kCpu, 12 * kGiB, 20 * kGB, 1024},
  };
  return *types;
}

std::optional<InstanceType> FindInstanceType(absl::string_view name) {
  for (const InstanceType& type : InstanceTypes()) {
    if (type.name == name) return type;
  }
  return std::nullopt;
}

absl::StatusOr<InstanceType> LookupInstanceType(absl::string_view name) {
  if (std::optional<InstanceType> type = FindInstanceType(name)) return *type;
  std::vector<std::string> names;
  for (const InstanceType& type : InstanceTypes()) names.push_back(type.name);
  return absl::InvalidArgumentError(absl::StrCat("unknown instance_type \"", name, "\" (one of ",
                                                 absl::StrJoin(names, ", "), ")"));
}

}  // namespace fastest::core
