// File: core/status/status_macros.h
//
// FASTEST_RETURN_IF_ERROR / FASTEST_ASSIGN_OR_RETURN: Debian's Abseil (20220623) predates
// ABSL_RETURN_IF_ERROR and ABSL_ASSIGN_OR_RETURN, so fastest carries this small equivalent.
//
// Example:
//   absl::StatusOr<Job> LoadJob(Store& store, absl::string_view id) {
//     FASTEST_ASSIGN_OR_RETURN(auto row, store.FindJob(id));
//     FASTEST_RETURN_IF_ERROR(Validate(row));
//     return row;
//   }
#ifndef FASTEST_CORE_STATUS_STATUS_MACROS_H_
#define FASTEST_CORE_STATUS_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define FASTEST_STATUS_CONCAT_INNER_(a, b) a##b
#define FASTEST_STATUS_CONCAT_(a, b) FASTEST_STATUS_CONCAT_INNER_(a, b)

#define FASTEST_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::absl::Status fastest_status_ = (expr);           \
    if (!fastest_status_.ok()) return fastest_status_; \
  } while (0)

#define FASTEST_ASSIGN_OR_RETURN(lhs, rexpr) \
  FASTEST_ASSIGN_OR_RETURN_IMPL_(FASTEST_STATUS_CONCAT_(fastest_statusor_, __LINE__), lhs, rexpr)

#define FASTEST_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()

namespace fastest::core {

// Prefixes a status message with context, keeping the code: "docker: create container: <cause>".
inline absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace fastest::core

#endif  // FASTEST_CORE_STATUS_STATUS_MACROS_H_
