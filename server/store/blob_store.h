// File: server/store/blob_store.h
//
// BlobStore: the content-addressed blobs and manifests of the data directory.
//   blobs:     <data_dir>/packs/pack-N.{dat,idx}   (PackStore: appended in batches)
//   manifests: <data_dir>/manifests/<h[0:2]>/<h>   (one file each; one per snapshot)
// Two namespaces, like the original API (a manifest is not downloadable as a blob). Every write
// is verified (SHA-256 of the bytes must equal the key) and atomic: a blob becomes visible only
// once its bytes are written (pack index record after the data), a manifest through a rename of
// a temp file in its own shard directory. Keys must be 64 lowercase hex chars.
//
// Blobs written by earlier versions as one file each (<data_dir>/blobs/<h[0:2]>/<h>) are still
// found and served; new blobs always go to the packs.
//
// Durability: with `fsync_writes`, storing a manifest first makes every blob stored before it
// durable (PackStore::Sync: a couple of fdatasyncs), then fsyncs the manifest and its directory.
// A client uploads a snapshot's blobs, then its manifest, then creates the snapshot row, so a
// row never outlives what it references. Blob batches themselves are not synced one by one
// (their writeback starts at once); a machine crash before the manifest can lose them, never
// expose a partial one, and `exists` then reports them missing. Without `fsync_writes` nothing
// is synced.
//
// Thread-safe. One process owns a data directory (Init fails if another one holds it).
#ifndef FASTEST_SERVER_STORE_BLOB_STORE_H_
#define FASTEST_SERVER_STORE_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/store/pack_store.h"

namespace fastest::server {

class BlobStore {
 public:
  enum class Kind { kBlob, kManifest };

  explicit BlobStore(std::string data_dir, bool fsync_writes = false);
  ~BlobStore();
  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;
  // Creates the directories (all 256 manifest shard directories up front) and opens the packs.
  absl::Status Init();

  // True if stored. Invalid keys are simply absent.
  bool Exists(Kind kind, absl::string_view hash) const;
  // Size of a stored entry; nullopt if absent (or the key is invalid).
  std::optional<uint64_t> Size(Kind kind, absl::string_view hash) const;
  // Stores bytes under hash. Returns true if newly created, false if it already existed.
  // InvalidArgument("hash mismatch: content hash <hex>") if sha256(bytes) != hash (or hash is not
  // lowercase hex).
  absl::StatusOr<bool> Put(Kind kind, absl::string_view hash, absl::string_view bytes);
  struct BlobPut {
    absl::string_view hash, data;
  };
  struct PutResult {
    enum Outcome { kCreated, kExisted, kHashMismatch } outcome;
    std::string content_hash;  // for kHashMismatch: the SHA-256 of the bytes sent
  };
  // Verifies and stores a batch of blobs with one pack append. A mismatching blob is reported
  // and not stored; the others are. An error status means nothing new may have been stored.
  absl::StatusOr<std::vector<PutResult>> PutBlobs(absl::Span<const BlobPut> blobs);
  // The packs (for logs and tests); null before Init.
  const PackStore* packs() const { return packs_.get(); }
  // Makes every stored blob durable (with fsync_writes; a no-op without).
  absl::Status Sync();
  // NotFound if absent. Reads the stored bytes into one buffer of the right size.
  absl::StatusOr<std::string> Get(Kind kind, absl::string_view hash) const;
  // Appends the stored bytes to *out (one read into the grown buffer); returns the byte count.
  // NotFound if absent.
  absl::StatusOr<uint64_t> AppendTo(Kind kind, absl::string_view hash, std::string* out) const;

 private:
  // Loose files: every operation is relative to the namespace directory's fd ("ab/<hash>"): a
  // short path walk instead of the whole data_dir path per call. blobs_fd_ is -1 unless the
  // data directory has blobs from an earlier version.
  int DirFd(Kind kind) const { return kind == Kind::kBlob ? legacy_blobs_fd_ : manifests_fd_; }
  static std::string RelPath(absl::string_view hash);
  std::string PathFor(Kind kind, absl::string_view hash) const;  // for messages only
  std::optional<uint64_t> LooseSize(Kind kind, absl::string_view hash) const;
  absl::StatusOr<uint64_t> LooseAppendTo(Kind kind, absl::string_view hash, std::string* out) const;
  absl::StatusOr<bool> PutLoose(Kind kind, absl::string_view hash, absl::string_view bytes);

  std::string data_dir_;
  bool fsync_writes_;
  std::unique_ptr<PackStore> packs_;
  int legacy_blobs_fd_ = -1;
  int manifests_fd_ = -1;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_STORE_BLOB_STORE_H_
