// File: server/store/blob_store.h
//
// BlobStore: content-addressed files under the data directory.
//   blobs:     <data_dir>/blobs/<h[0:2]>/<h>
//   manifests: <data_dir>/manifests/<h[0:2]>/<h>
// Two namespaces, like the original API (a manifest is not downloadable as a blob). A write is
// verified (SHA-256 of the bytes must equal the key) and atomic: temp file in <data_dir>/tmp,
// fsync, rename. Keys must be 64 lowercase hex chars, which also keeps paths inside the store.
//
// Thread-safe (the file system is the only state; concurrent writers of one key race to rename
// identical bytes).
#ifndef FASTEST_SERVER_STORE_BLOB_STORE_H_
#define FASTEST_SERVER_STORE_BLOB_STORE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fastest::server {

class BlobStore {
 public:
  enum class Kind { kBlob, kManifest };

  explicit BlobStore(std::string data_dir);
  // Creates the directories.
  absl::Status Init();

  // True if stored. Invalid keys are simply absent.
  bool Exists(Kind kind, absl::string_view hash) const;
  // Stores bytes under hash. Returns true if newly created, false if it already existed.
  // InvalidArgument("hash mismatch: ...") if sha256(bytes) != hash (or hash is not lowercase hex).
  absl::StatusOr<bool> Put(Kind kind, absl::string_view hash, absl::string_view bytes);
  // NotFound if absent.
  absl::StatusOr<std::string> Get(Kind kind, absl::string_view hash) const;

 private:
  std::string PathFor(Kind kind, absl::string_view hash) const;
  std::string data_dir_;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_STORE_BLOB_STORE_H_
