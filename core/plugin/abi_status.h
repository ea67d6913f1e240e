// File: core/plugin/abi_status.h
//
// The ABI's int32 result codes are numbered exactly as absl::StatusCode (backend_abi.h), so the
// mapping is a range-checked cast. Shared by the host facade and the backend SDK.
#ifndef FASTEST_CORE_PLUGIN_ABI_STATUS_H_
#define FASTEST_CORE_PLUGIN_ABI_STATUS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "core/abi/backend_abi.h"

namespace fastest::core {

// StatusCodeFromAbi: a plugin's code as absl::StatusCode; codes outside 0..16 become kUnknown.
inline absl::StatusCode StatusCodeFromAbi(int32_t code) {
  if (code < FASTEST_OK || code > FASTEST_UNAUTHENTICATED) return absl::StatusCode::kUnknown;
  return static_cast<absl::StatusCode>(code);
}

// AbiCodeFromStatus: the ABI code for an absl::StatusCode (kUnknown for values absl may add).
inline int32_t AbiCodeFromStatus(absl::StatusCode code) {
  int32_t value = static_cast<int32_t>(code);
  if (value < FASTEST_OK || value > FASTEST_UNAUTHENTICATED) return FASTEST_UNKNOWN;
  return value;
}

}  // namespace fastest::core

#endif  // FASTEST_CORE_PLUGIN_ABI_STATUS_H_
