// File: server/store/blob_store.h
//
// BlobStore: content-addressed files under the data directory.
//   blobs:     <data_dir>/blobs/<h[0:2]>/<h>
//   manifests: <data_dir>/manifests/<h[0:2]>/<h>
// Two namespaces, like the original API (a manifest is not downloadable as a blob). A write is
// verified (SHA-256 of the bytes must equal the key) and atomic: a temp file in the key's own
// shard directory, then rename (so concurrent uploads do not all contend on one tmp/ directory).
// Keys must be 64 lowercase hex chars, which also keeps paths inside the store.
//
// Durability: by default a write is NOT fsync'ed (an fsync per blob made uploads of many small
// files disk-bound). A crash can therefore lose a just-uploaded blob or manifest, never expose a
// partial one (rename is atomic, and a torn temp file is never visible under the final name).
// A lost blob is re-uploaded by the next snapshot of the same content, since `exists` checks the
// file itself. Pass `fsync_writes = true` to fsync every file (and its directory) instead.
//
// Thread-safe (the file system is the only state; concurrent writers of one key race to rename
// identical bytes).
#ifndef FASTEST_SERVER_STORE_BLOB_STORE_H_
#define FASTEST_SERVER_STORE_BLOB_STORE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fastest::server {

class BlobStore {
 public:
  enum class Kind { kBlob, kManifest };

  explicit BlobStore(std::string data_dir, bool fsync_writes = false);
  ~BlobStore();
  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;
  // Creates the directories (including all 256 shard directories of each namespace).
  absl::Status Init();

  // True if stored. Invalid keys are simply absent.
  bool Exists(Kind kind, absl::string_view hash) const;
  // Size of a stored entry; nullopt if absent (or the key is invalid).
  std::optional<uint64_t> Size(Kind kind, absl::string_view hash) const;
  // Stores bytes under hash. Returns true if newly created, false if it already existed.
  // InvalidArgument("hash mismatch: content hash <hex>") if sha256(bytes) != hash (or hash is not
  // lowercase hex).
  absl::StatusOr<bool> Put(Kind kind, absl::string_view hash, absl::string_view bytes);
  // NotFound if absent. Reads the file into one buffer of the right size.
  absl::StatusOr<std::string> Get(Kind kind, absl::string_view hash) const;
  // Appends the stored bytes to *out (one read into the grown buffer); returns the byte count.
  // NotFound if absent.
  absl::StatusOr<uint64_t> AppendTo(Kind kind, absl::string_view hash, std::string* out) const;

 private:
  // Every file operation is relative to the namespace directory's fd ("ab/<hash>"): a short path
  // walk instead of the whole data_dir path per call.
  int DirFd(Kind kind) const { return kind == Kind::kBlob ? blobs_fd_ : manifests_fd_; }
  static std::string RelPath(absl::string_view hash);
  std::string PathFor(Kind kind, absl::string_view hash) const;  // for messages only
  std::string data_dir_;
  bool fsync_writes_;
  int blobs_fd_ = -1;
  int manifests_fd_ = -1;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_STORE_BLOB_STORE_H_
