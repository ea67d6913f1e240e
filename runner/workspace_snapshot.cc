#include "runner/workspace_snapshot.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
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
constexpr size_t kBatchMaxBytes = 1u << 20;
// Concurrent exists+upload pipelines.
constexpr int kBatchStreams = 3;
// Batch buffers in existence at once (filling + queued + uploading): bounds the memory of the
// kept file contents to kBatchBuffers * kBatchMaxBytes (5 MiB). Reused, so their pages are
// faulted in once per snapshot.
constexpr int kBatchBuffers = kBatchStreams + 2;

// A batch's fixed-size buffer (its address must not move while the scan reads into it).
class BatchBuffer {
 public:
  BatchBuffer() : data_(static_cast<char*>(std::malloc(kBatchMaxBytes))) {
    if (data_ == nullptr) throw std::bad_alloc();
  }
  ~BatchBuffer() { std::free(data_); }
  BatchBuffer(const BatchBuffer&) = delete;
  BatchBuffer& operator=(const BatchBuffer&) = delete;
  char* data() const { return data_; }

 private:
  char* data_;
};

// Read-once uploading: the scan reads every file straight into a batch buffer (Acquire), hashes
// it there and hands it over (Offer), which keeps blobs not known to be stored; worker threads
// ask `exists` for a full batch and upload the missing blobs straight from the buffer (gathered,
// not copied) while the scan goes on.
class BlobPipeline {
 public:
  BlobPipeline(core::ApiClient& api, const std::unordered_set<std::string>& known, int streams)
      : api_(api), known_(known) {
    for (int i = 0; i < kBatchBuffers; ++i) free_.push_back(std::make_unique<Batch>());
    for (int i = 0; i < streams; ++i) workers_.emplace_back([this] { Work(); });
  }
  ~BlobPipeline() { Finish().IgnoreError(); }

  // Room for `bytes` in the filling batch (nullptr if it can never fit, or after a failure).
  // Blocks while every buffer is queued or uploading (back-pressure on the scan).
  char* Acquire(size_t bytes) {
    if (bytes > kBatchMaxBytes) return nullptr;
    std::unique_lock<std::mutex> lock(mu_);
    Batch* batch = FillingBatch(lock, bytes);
    if (batch == nullptr) return nullptr;
    char* at = batch->buffer.data() + batch->used;
    reservations_.emplace(at, Reservation{batch, batch->used});
    batch->used += bytes;
    ++batch->pending;
    return at;
  }

  // A reservation that will not be offered (the file changed while being read).
  void Release(char* at) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = reservations_.find(at);
    if (it == reservations_.end()) return;
    Batch* batch = it->second.batch;
    reservations_.erase(it);
    Settle(batch);
  }

  // From the scan's hashing threads: a file's bytes and hash, in the buffer Acquire gave. Bytes
  // elsewhere (Acquire refused) are not kept: the blob is then not "offered", and is uploaded
  // from its file after the scan like any other.
  void Offer(const std::string& hash, absl::string_view data) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = reservations_.find(const_cast<char*>(data.data()));
    if (it == reservations_.end()) return;
    const Reservation r = it->second;
    reservations_.erase(it);
    if (!failed_ && known_.count(hash) == 0 && offered_.insert(hash).second) {
      r.batch->items.push_back(Item{hash, r.offset, data.size()});
    }  // else its bytes are dead space in the buffer
    Settle(r.batch);
  }

  // Hashes offered (whether or not the upload of their batch finished).
  bool Offered(const std::string& hash) {
    std::lock_guard<std::mutex> lock(mu_);
    return offered_.count(hash) != 0;
  }

  // Sends what is left and waits for the workers; the first error, if any.
  absl::Status Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (filling_ != nullptr) CloseFilling();
      done_ = true;
      cv_.notify_all();
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }

  void Abort() {
    std::lock_guard<std::mutex> lock(mu_);
    failed_ = true;
    cv_.notify_all();
  }

  uint64_t checked() const { return checked_; }
  uint64_t uploaded() const { return uploaded_; }
  uint64_t bytes() const { return bytes_; }

 private:
  struct Item {
    std::string hash;
    size_t offset, size;
  };
  struct Batch {
    BatchBuffer buffer;
    size_t used = 0;   // reserved or filled up to here
    int pending = 0;   // reservations not yet offered or released
    bool closed = false;
    std::vector<Item> items;
  };
  struct Reservation {
    Batch* batch;
    size_t offset;
  };

  // The batch to put `bytes` into, switching to a fresh buffer when the current one is full.
  // nullptr after a failure. Caller holds mu_ (through `lock`, which may wait).
  Batch* FillingBatch(std::unique_lock<std::mutex>& lock, size_t bytes) {
    for (;;) {
      if (failed_) return nullptr;
      if (filling_ != nullptr &&
          (filling_->items.size() + filling_->pending >= kBatchMaxBlobs ||
           filling_->used + bytes > kBatchMaxBytes)) {
        CloseFilling();
      }
      if (filling_ != nullptr) return filling_.get();
      if (!free_.empty()) {
        filling_ = std::move(free_.back());
        free_.pop_back();
        continue;
      }
      cv_.wait(lock);
    }
  }

  // No more reservations in the filling batch; it is queued once its pending reads are in.
  void CloseFilling() {
    filling_->closed = true;
    Batch* batch = filling_.get();
    closing_.push_back(std::move(filling_));
    Settle(batch, /*release=*/false);
  }

  // After a reservation ends (release = one fewer pending): queue a closed batch whose reads are
  // all in (or recycle it if it holds nothing).
  void Settle(Batch* batch, bool release = true) {
    if (release) --batch->pending;
    if (!batch->closed || batch->pending > 0) return;
    auto it = std::find_if(closing_.begin(), closing_.end(),
                           [batch](const auto& b) { return b.get() == batch; });
    if (it == closing_.end()) return;
    std::unique_ptr<Batch> owned = std::move(*it);
    closing_.erase(it);
    if (owned->items.empty() || failed_) {
      Recycle(std::move(owned));
    } else {
      queue_.push_back(std::move(owned));
    }
    cv_.notify_all();
  }

  void Recycle(std::unique_ptr<Batch> batch) {
    batch->used = 0;
    batch->pending = 0;
    batch->closed = false;
    batch->items.clear();
    free_.push_back(std::move(batch));
  }

  void Work() {
    for (;;) {
      std::unique_ptr<Batch> batch;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return failed_ || done_ || !queue_.empty(); });
        if (failed_ || queue_.empty()) return;
        batch = std::move(queue_.front());
        queue_.pop_front();
      }
      absl::Status s = Upload(*batch);
      std::lock_guard<std::mutex> lock(mu_);
      Recycle(std::move(batch));
      if (!s.ok()) {
        if (first_error_.ok()) first_error_ = s;
        failed_ = true;
      }
      cv_.notify_all();
    }
  }

  absl::Status Upload(const Batch& batch) {
    std::vector<std::string> hashes;
    hashes.reserve(batch.items.size());
    for (const Item& i : batch.items) hashes.push_back(i.hash);
    checked_ += hashes.size();
    absl::StatusOr<std::vector<std::string>> missing = api_.MissingBlobs(hashes);
    if (!missing.ok()) return core::Annotate(missing.status(), "check blobs");
    if (missing->empty()) return absl::OkStatus();
    std::unordered_set<std::string> want(missing->begin(), missing->end());
    std::vector<core::BlobData> blobs;
    blobs.reserve(want.size());
    for (const Item& i : batch.items) {
      if (want.count(i.hash) != 0) {
        blobs.push_back(
            core::BlobData{i.hash, absl::string_view(batch.buffer.data() + i.offset, i.size)});
      }
    }
    absl::StatusOr<core::BatchUploadResult> up = api_.UploadBlobs(blobs);
    if (!up.ok()) return core::Annotate(up.status(), "upload blobs");
    uploaded_ += blobs.size();
    bytes_ += up->bytes;
    return absl::OkStatus();
  }

  core::ApiClient& api_;
  const std::unordered_set<std::string>& known_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_set<std::string> offered_;
  std::unordered_map<char*, Reservation> reservations_;
  std::unique_ptr<Batch> filling_;
  std::vector<std::unique_ptr<Batch>> closing_;  // closed, reads still in progress
  std::deque<std::unique_ptr<Batch>> queue_;
  std::vector<std::unique_ptr<Batch>> free_;
  bool done_ = false;
  bool failed_ = false;
  absl::Status first_error_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> checked_{0}, uploaded_{0}, bytes_{0};
};

}  // namespace

absl::StatusOr<SnapshotResult> SnapshotWorkspace(core::ApiClient& api,
                                                 const SnapshotRequest& request) {
  const absl::Time start = absl::Now();
  SnapshotResult result;
  std::unordered_set<std::string> known;
  if (request.base_manifest != nullptr) {
    for (const auto& e : request.base_manifest->files) known.insert(e.hash);
  }
  const int streams = std::max(1, std::min(request.upload_parallelism, kBatchStreams));
  // Files the scan reads go straight into upload batches (one read per file); uploads start
  // while later files are still being hashed.
  BlobPipeline pipeline(api, known, streams);
  core::ScanOptions options;
  options.content_max_bytes = kBatchMaxBytes - 1;  // + 1 byte of slack fits a batch
  options.acquire_content_buffer = [&pipeline](size_t bytes) { return pipeline.Acquire(bytes); };
  options.release_content_buffer = [&pipeline](char* at) { pipeline.Release(at); };
  options.on_file_content = [&pipeline](const std::string&, const std::string& hash,
                                        absl::string_view data) { pipeline.Offer(hash, data); };
  core::ScanStats scan;
  absl::StatusOr<core::Manifest> manifest =
      core::BuildManifestFromDirectory(request.root, options, request.cache, &scan);
  result.scan_duration = absl::Now() - start;
  const absl::Time scan_end = absl::Now();
  if (!manifest.ok()) {
    pipeline.Abort();
    pipeline.Finish().IgnoreError();
    return manifest.status();
  }
  result.manifest = *std::move(manifest);
  result.files = result.manifest.files.size();
  result.hashed = scan.hashed;
  // In the base manifest's order (byte or ICU, manifest_order.h), so that an unchanged tree keeps
  // the base's hash whichever original producer wrote it. Serialized once: the same bytes are
  // hashed and uploaded.
  absl::StatusOr<core::PathOrder> order =
      core::SnapshotOrderForBase(request.base_manifest, &result.order_note);
  if (!order.ok()) {
    result.order_note = absl::StrCat(order.status().message(), ": using byte order");
    order = core::PathOrder::kBytes;
  }
  result.order = *order;
  FASTEST_RETURN_IF_ERROR(core::SortManifestInOrder(&result.manifest, result.order));
  const std::string manifest_text = core::SerializeManifestAsGiven(result.manifest);
  result.manifest_hash = core::Sha256Hex(manifest_text);
  static const core::Manifest kEmpty;
  result.diff = core::DiffManifests(
      request.base_manifest != nullptr ? *request.base_manifest : kEmpty, result.manifest);

  // Blobs the scan did not hand over (hash from the cache, or too large to keep): checked and
  // uploaded from their files, as before.
  std::unordered_map<std::string, std::string> path_of;
  std::unordered_set<std::string> unique;
  std::vector<std::string> rest;
  for (const auto& e : result.manifest.files) {
    if (!unique.insert(e.hash).second) continue;
    if (known.count(e.hash) != 0 || pipeline.Offered(e.hash)) continue;
    path_of.emplace(e.hash, e.path);
    rest.push_back(e.hash);
  }
  result.unique_blobs = unique.size();
  FASTEST_RETURN_IF_ERROR(pipeline.Finish());

  uint64_t checked = pipeline.checked(), uploaded = pipeline.uploaded(),
           bytes = pipeline.bytes();
  if (!rest.empty()) {
    checked += rest.size();
    absl::StatusOr<std::vector<std::string>> missing = api.MissingBlobs(rest);
    if (!missing.ok()) return core::Annotate(missing.status(), "check blobs");
    std::vector<core::BlobFile> files;
    files.reserve(missing->size());
    for (const std::string& hash : *missing) {
      files.push_back(core::BlobFile{hash, absl::StrCat(request.root, "/", path_of.at(hash))});
    }
    if (!files.empty()) {
      absl::StatusOr<core::BatchUploadResult> up =
          api.UploadBlobFiles(files, request.upload_parallelism);
      if (!up.ok()) return core::Annotate(up.status(), "upload blobs");
      uploaded += files.size();
      bytes += up->bytes;
    }
  }
  result.upload_duration = absl::Now() - scan_end;
  result.blobs_checked = checked;
  result.blobs_uploaded = uploaded;
  result.bytes_uploaded = bytes;

  const core::Snapshot* base = request.base_snapshot;
  const bool unchanged = base != nullptr && base->manifest_hash == result.manifest_hash;
  if (!unchanged) {
    FASTEST_RETURN_IF_ERROR(core::Annotate(
        api.UploadManifest(result.manifest_hash, manifest_text), "upload manifest"));
    result.manifest_uploaded = true;
  }
  if (unchanged && base->project_id == request.project_id) {
    result.snapshot = *base;
    result.created = false;
  } else {
    FASTEST_ASSIGN_OR_RETURN(
        core::CreateSnapshotResult snap,
        api.CreateSnapshot(request.project_id, result.manifest_hash, request.parent_snapshot_id,
                           request.source));
    result.snapshot = std::move(snap.snapshot);
    result.created = snap.created;
  }
  result.duration = absl::Now() - start;
  return result;
}

}  // namespace fastest::runner
