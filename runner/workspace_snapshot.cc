#include "runner/workspace_snapshot.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/snapshot/directory_scan.h"
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"

namespace fastest::runner {

absl::StatusOr<SnapshotResult> SnapshotWorkspace(core::ApiClient& api,
                                                 const SnapshotRequest& request) {
  const absl::Time start = absl::Now();
  SnapshotResult result;
  core::ScanOptions options;
  core::ScanStats scan;
  FASTEST_ASSIGN_OR_RETURN(
      result.manifest,
      core::BuildManifestFromDirectory(request.root, options, request.cache, &scan));
  result.scan_duration = absl::Now() - start;
  result.files = result.manifest.files.size();
  result.hashed = scan.hashed;
  // Serialized once: the same bytes are hashed and uploaded.
  const std::string manifest_text = core::SerializeManifest(result.manifest);
  result.manifest_hash = core::Sha256Hex(manifest_text);
  static const core::Manifest kEmpty;
  result.diff = core::DiffManifests(
      request.base_manifest != nullptr ? *request.base_manifest : kEmpty, result.manifest);

  // Unique hashes, with one path to read each from.
  std::unordered_map<std::string, std::string> path_of;
  std::vector<std::string> unknown;
  std::unordered_set<std::string> known;
  if (request.base_manifest != nullptr) {
    for (const auto& e : request.base_manifest->files) known.insert(e.hash);
  }
  for (const auto& e : result.manifest.files) {
    if (path_of.emplace(e.hash, e.path).second && known.count(e.hash) == 0) {
      unknown.push_back(e.hash);
    }
  }
  result.unique_blobs = path_of.size();
  result.blobs_checked = unknown.size();
  std::vector<std::string> missing;
  if (!unknown.empty()) {
    FASTEST_ASSIGN_OR_RETURN(missing, api.MissingBlobs(unknown));
  }

  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  absl::Status first_error;
  auto worker = [&]() {
    while (!failed.load()) {
      size_t i = next.fetch_add(1);
      if (i >= missing.size()) return;
      const std::string& hash = missing[i];
      const std::string& rel = path_of[hash];
      absl::StatusOr<core::BlobUploadResult> up =
          api.UploadBlobFromFile(hash, absl::StrCat(request.root, "/", rel));
      if (!up.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) {
          first_error = core::Annotate(up.status(), absl::StrCat("upload \"", rel, "\""));
        }
        failed = true;
        return;
      }
      bytes += up->size;
    }
  };
  int threads = std::max(1, std::min<int>(request.upload_parallelism,
                                          static_cast<int>(missing.size())));
  if (!missing.empty()) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
  }
  if (!first_error.ok()) return first_error;
  result.blobs_uploaded = missing.size();
  result.bytes_uploaded = bytes;

  FASTEST_RETURN_IF_ERROR(core::Annotate(
      api.UploadManifest(result.manifest_hash, manifest_text),
      "upload manifest"));
  FASTEST_ASSIGN_OR_RETURN(
      core::CreateSnapshotResult snap,
      api.CreateSnapshot(request.project_id, result.manifest_hash, request.parent_snapshot_id,
                         request.source));
  result.snapshot = std::move(snap.snapshot);
  result.created = snap.created;
  result.duration = absl::Now() - start;
  return result;
}

}  // namespace fastest::runner
