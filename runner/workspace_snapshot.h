// File: runner/workspace_snapshot.h
//
// SnapshotWorkspace: re-snapshots a workspace after the agent ran (PROTOCOLS §2.7, done right):
// build the manifest with the default ignore rules + .fstignore (the HashCache skips unchanged
// files), ask the API which blobs are missing (<= 100 hashes per call; blobs of the base manifest
// are known to be stored and are not asked about), upload only those (parallel, bounded), upload
// the manifest, then create the snapshot row {parent = base, source} — idempotent per hash. An
// unchanged workspace sends neither (see SnapshotRequest::base_snapshot). The manifest is written
// in the base manifest's order: ICU (en-US) collation when the original TypeScript runner wrote
// the base, byte order otherwise (SnapshotOrderForBase).
// Each file is read once: the scan hands its bytes to upload batches (at most 20 MiB kept), and
// the exists checks and uploads of full batches run while later files are still being hashed; the
// uploaded bytes are exactly the hashed ones. Files whose hash came from the cache (or larger than
// 4 MiB) are uploaded from their files after the scan, if the server lacks them.
#ifndef FASTEST_RUNNER_WORKSPACE_SNAPSHOT_H_
#define FASTEST_RUNNER_WORKSPACE_SNAPSHOT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/api/api_client.h"
#include "core/snapshot/hash_cache.h"
#include "core/snapshot/manifest.h"
#include "core/snapshot/manifest_order.h"

namespace fastest::runner {

struct SnapshotRequest {
  std::string root;
  std::string project_id;
  std::optional<std::string> parent_snapshot_id;
  std::string source = "agent";
  const core::Manifest* base_manifest = nullptr;  // its blobs are known to exist; may be null
  // The snapshot base_manifest came from (may be null). When the workspace is unchanged its
  // manifest is already stored and, in the same project, the API would answer with this very row
  // (PROTOCOLS §1.6), so neither request is sent.
  const core::Snapshot* base_snapshot = nullptr;
  core::HashCache* cache = nullptr;
  int upload_parallelism = 8;
};

struct SnapshotResult {
  core::Snapshot snapshot;
  bool created = false;
  core::Manifest manifest;  // in `order`
  std::string manifest_hash;
  // The base manifest's order (byte or ICU en-US, core/snapshot/manifest_order.h) and one sentence
  // saying why, for the log: "new tree", "neither ... using byte order", ICU unavailable, ...
  core::PathOrder order = core::PathOrder::kBytes;
  std::string order_note;
  core::ManifestDiff diff;  // vs base (all files "added" without a base)
  bool manifest_uploaded = false;  // false: unchanged from the base, already stored
  uint64_t files = 0;
  uint64_t hashed = 0;           // files read during the scan (the rest came from the cache)
  uint64_t unique_blobs = 0;
  uint64_t blobs_checked = 0;    // hashes sent to /v1/blobs/exists
  uint64_t blobs_uploaded = 0;
  uint64_t bytes_uploaded = 0;
  absl::Duration scan_duration;
  absl::Duration upload_duration;  // exists checks + uploads still running after the scan (they
                                   // overlap it)
  absl::Duration duration;
};

absl::StatusOr<SnapshotResult> SnapshotWorkspace(core::ApiClient& api, const SnapshotRequest& request);

}  // namespace fastest::runner

#endif  // FASTEST_RUNNER_WORKSPACE_SNAPSHOT_H_
