// File: runner/workspace_restore.h
//
// RestoreWorkspace: makes `root` hold exactly the files of `manifest` (PROTOCOLS §2.7, done right).
//   1. Every manifest path is resolved with ResolveInsideWorkspace BEFORE anything is touched: a
//      `..`/absolute path, a path through an existing symlink, or a file/directory conflict fails the
//      restore with nothing written or deleted.
//   2. Entries not in the manifest are deleted (symlinks are removed, never followed).
//   3. Files already present with the right content (SHA-256) are kept (mode fixed if needed); the
//      others are downloaded `parallelism` at a time, verified against their hash before being
//      written, and written atomically with their mode.
//   4. Every restored/kept file is recorded in `cache` (then sealed), so the next snapshot only
//      re-hashes files that changed afterwards.
#ifndef FASTEST_RUNNER_WORKSPACE_RESTORE_H_
#define FASTEST_RUNNER_WORKSPACE_RESTORE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/api/api_client.h"
#include "core/snapshot/hash_cache.h"
#include "core/snapshot/manifest.h"

namespace fastest::runner {

struct RestoreStats {
  uint64_t files = 0;             // entries in the manifest
  uint64_t downloaded = 0;        // blobs fetched
  uint64_t reused = 0;            // files kept because their hash already matched
  uint64_t deleted = 0;           // entries removed because the manifest does not have them
  uint64_t bytes_downloaded = 0;
  absl::Duration duration;
};

// Called with (done, total) now and then from worker threads (serialized).
using RestoreProgress = std::function<void(uint64_t done, uint64_t total)>;

absl::StatusOr<RestoreStats> RestoreWorkspace(core::ApiClient& api, const core::Manifest& manifest,
                                              const std::string& root, core::HashCache* cache,
                                              int parallelism,
                                              const RestoreProgress& progress = nullptr);

}  // namespace fastest::runner

#endif  // FASTEST_RUNNER_WORKSPACE_RESTORE_H_
