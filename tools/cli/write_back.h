// File: tools/cli/write_back.h
//
// Carrying out a WritePlan (write_policy.h): into the user's directory (`fastest run --yes`,
// `fastest apply`), or as a git-style diff / patch (`--diff`, `--patch`). Only the plan's accepted
// changes are touched; the refusals never are.
//
// ApplyPlan is careful with the user's files: every path is checked again with
// ResolveInsideWorkspace right before it is written (no `..`, no absolute paths, no symlink
// components, the target a regular file or missing), files are written to a temporary file in the
// same directory and renamed over the target (never half-written, a symlink at the target is
// replaced, not followed) with exactly the plan's permission bits (0777 at most), and mode changes
// go through an O_NOFOLLOW descriptor. A file the user changed locally since the upload (its hash
// is no longer the base's) is left alone and reported as a conflict instead.
#ifndef FASTEST_TOOLS_CLI_WRITE_BACK_H_
#define FASTEST_TOOLS_CLI_WRITE_BACK_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/cli/write_policy.h"

namespace fastest::cli {

struct ApplyResult {
  std::vector<std::string> added, modified, deleted, mode_changed;
  std::vector<std::string> conflicts;  // "<path>: <why>", left untouched
  std::vector<Refusal> refused;        // failed the path check at write time, left untouched
  size_t written() const {
    return added.size() + modified.size() + deleted.size() + mode_changed.size();
  }
};

absl::StatusOr<ApplyResult> ApplyPlan(const std::string& root, const WritePlan& plan,
                                      const BlobFetcher& fetch);

enum class DiffStyle {
  kReview,  // for reading: binary and very large files as one "... differ" line
  kPatch,   // for `git apply`: every text change in full, binary files as git binary patches
};

// A git-style unified diff of the plan's accepted changes ("" when there are none). Modes are
// written as git knows them (100644 / 100755).
absl::StatusOr<std::string> DiffPlan(const WritePlan& plan, const BlobFetcher& fetch,
                                     DiffStyle style = DiffStyle::kReview);

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_WRITE_BACK_H_
