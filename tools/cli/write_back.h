// File: tools/cli/write_back.h
//
// Bringing a job's output snapshot back to the user's directory (`fastest run`), or showing it as
// a unified diff (`fastest run --diff`). Both compare the job's base manifest (what was uploaded)
// with its output manifest; only the differences are fetched.
//
// ApplyOutput is careful with the user's files: every path goes through ResolveInsideWorkspace (no
// `..`, no absolute paths, no symlink components), files are replaced atomically with their exact
// mode, and a file the user changed locally since the upload (its hash is no longer the base's) is
// left alone and reported as a conflict instead of being overwritten or deleted.
#ifndef FASTEST_TOOLS_CLI_WRITE_BACK_H_
#define FASTEST_TOOLS_CLI_WRITE_BACK_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/snapshot/manifest.h"

namespace fastest::cli {

// Returns the verified content of a blob (e.g. ApiClient::DownloadVerifiedBlob).
using BlobFetcher = std::function<absl::StatusOr<std::string>(const std::string& hash)>;

struct ApplyResult {
  std::vector<std::string> added, modified, deleted, mode_changed;
  std::vector<std::string> conflicts;  // "<path>: <why>", left untouched
};

absl::StatusOr<ApplyResult> ApplyOutput(const std::string& root, const core::Manifest& base,
                                        const core::Manifest& output, const BlobFetcher& fetch);

// A git-style unified diff of base -> output ("" when they are equal).
absl::StatusOr<std::string> DiffOutput(const core::Manifest& base, const core::Manifest& output,
                                       const BlobFetcher& fetch);

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_WRITE_BACK_H_
