#include "runner/workspace_snapshot.h"

#include <algorithm>
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
namespace {

// Upload batches: bounded so several requests are in flight and a retry resends little.
constexpr size_t kBatchMaxBlobs = 500;
constexpr uint64_t kBatchMaxBytes = 8ull << 20;
// Concurrent exists+upload pipelines.
constexpr int kBatchStreams = 3;

}  // namespace

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
  std::unordered_map<std::string, uint64_t> size_of;
  for (const auto& e : result.manifest.files) size_of.emplace(e.hash, e.size);

  // Pipelined: each worker takes <= 100 unknown hashes, asks `exists`, adds the missing ones to its
  // own batch and uploads the batch once it is big enough, so exists calls, file reads and
  // uploads of different workers overlap. Few workers: every request carries many blobs.
  const absl::Time upload_start = absl::Now();
  const size_t groups = (unknown.size() + core::ApiClient::kMaxHashesPerCall - 1) /
                        core::ApiClient::kMaxHashesPerCall;
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> uploaded{0}, bytes{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  absl::Status first_error;
  auto fail = [&](const absl::Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    if (first_error.ok()) first_error = s;
    failed = true;
  };
  auto worker = [&]() {
    std::vector<core::BlobFile> batch;
    uint64_t batch_bytes = 0;
    auto flush = [&]() -> bool {
      if (batch.empty()) return true;
      absl::StatusOr<core::BatchUploadResult> up = api.UploadBlobFiles(batch);
      if (!up.ok()) {
        fail(core::Annotate(up.status(), "upload blobs"));
        return false;
      }
      uploaded += batch.size();
      bytes += up->bytes;
      batch.clear();
      batch_bytes = 0;
      return true;
    };
    while (!failed.load()) {
      size_t g = next.fetch_add(1);
      if (g >= groups) break;
      size_t begin = g * core::ApiClient::kMaxHashesPerCall;
      size_t end = std::min(unknown.size(), begin + core::ApiClient::kMaxHashesPerCall);
      std::vector<std::string> group(unknown.begin() + begin, unknown.begin() + end);
      absl::StatusOr<std::vector<std::string>> missing = api.MissingBlobs(group);
      if (!missing.ok()) return fail(core::Annotate(missing.status(), "check blobs"));
      for (std::string& hash : *missing) {
        batch_bytes += size_of.at(hash);
        batch.push_back(core::BlobFile{hash, absl::StrCat(request.root, "/", path_of.at(hash))});
        if (batch.size() >= kBatchMaxBlobs || batch_bytes >= kBatchMaxBytes) {
          if (!flush()) return;
        }
      }
    }
    if (!failed.load()) flush();
  };
  int threads = std::max(1, std::min<int>(std::min(request.upload_parallelism, kBatchStreams),
                                          static_cast<int>(groups)));
  if (groups > 0) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
  }
  if (!first_error.ok()) return first_error;
  result.upload_duration = absl::Now() - upload_start;
  result.blobs_uploaded = uploaded;
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
