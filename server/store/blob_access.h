// File: server/store/blob_access.h
//
// BlobAccess: who may see which blob and manifest. Content stays content-addressed and stored
// once on disk (BlobStore); access is per user: a user sees exactly the content one of its
// tokens uploaded (the bytes verified against the hash). Nothing else is visible, so:
//   - `exists` answers "existing" only for visible content; anything else is "missing", the
//     client uploads it, the bytes are verified and stored once (dedup), and the user is
//     granted access. Whether somebody else stored the same content is never revealed (the
//     upload answers `created` from the caller's point of view too).
//   - downloads of content the user never uploaded answer as if it did not exist (404 /
//     `missing` frame).
//   - every user has an upload quota: the sum of the sizes of the distinct content it was
//     granted; a grant past it is refused (ResourceExhausted) before anything is stored.
//     An upload holds its share of the quota (ReserveQuota) from the check until its grant, so
//     concurrent uploads cannot together pass a quota each of them fits alone.
// Per-job tokens are narrower still (ApiService): the blobs of their job's base snapshot and
// what they uploaded, within their user's grants.
//
// Grants live in memory (checked without I/O on every blob) and in SQLite (table blob_grants,
// loaded at start, written in one transaction per manifest upload; see Grant).
//
// Thread-safety: all methods are thread-safe.
#ifndef FASTEST_SERVER_STORE_BLOB_ACCESS_H_
#define FASTEST_SERVER_STORE_BLOB_ACCESS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/store/blob_store.h"
#include "server/store/store.h"

namespace fastest::server {

class BlobAccess {
 public:
  // `store` must outlive this. `quota_bytes` = 0: unlimited.
  BlobAccess(Store* store, uint64_t quota_bytes) : store_(store), quota_bytes_(quota_bytes) {}
  ~BlobAccess() { Flush().IgnoreError(); }
  BlobAccess(const BlobAccess&) = delete;
  BlobAccess& operator=(const BlobAccess&) = delete;

  // Loads the grants. On a data directory written before grants existed, first grants every
  // snapshot's owner its manifest and the manifest's blobs (read from `blobs`).
  absl::Status Init(BlobStore* blobs);

  bool CanRead(const std::string& user_id, BlobStore::Kind kind, absl::string_view hash) const;

  struct Item {
    BlobStore::Kind kind;
    std::string hash;
    uint64_t size;
  };
  // Quota held for content about to be stored: it counts against the user's quota until Grant
  // (given the hold) turns it into granted bytes, or the hold is dropped (a failed upload).
  class QuotaHold {
   public:
    QuotaHold() = default;
    QuotaHold(QuotaHold&& other) noexcept;
    QuotaHold& operator=(QuotaHold&&) = delete;
    QuotaHold(const QuotaHold&) = delete;
    ~QuotaHold();

   private:
    friend class BlobAccess;
    BlobAccess* access_ = nullptr;
    std::string user_id_;
    uint64_t bytes_ = 0;
  };
  // ResourceExhausted if the items the user has not been granted yet, with the holds of its
  // uploads in flight, would take it past its quota (nothing held); else a hold on their size.
  // Call before storing the bytes. (The same new blob in two concurrent uploads is held twice
  // until one is granted: a refusal at the very edge rather than an overshoot.)
  absl::StatusOr<QuotaHold> ReserveQuota(const std::string& user_id,
                                         const std::vector<Item>& items);
  // Grants the items (call after their bytes are stored and verified), releasing `hold` in the
  // same step: at once in memory; on disk with the next manifest grant (the snapshot's
  // durability point, like the blobs' own sync), every kMaxPendingGrants, or Flush(). One SQLite
  // transaction per flush: a commit per blob batch cost ~0.7 ms each (~75 ms of a 5,000-file
  // snapshot), one per manifest ~11 ms. Grants lost in a crash fail closed: the content reads as
  // missing and is uploaded again.
  absl::Status Grant(const std::string& user_id, const std::vector<Item>& items,
                     QuotaHold* hold = nullptr);
  // Writes pending grants (also called at shutdown).
  absl::Status Flush();

  uint64_t UsedBytes(const std::string& user_id) const;
  uint64_t quota_bytes() const { return quota_bytes_; }

 private:
  struct UserGrants {
    absl::flat_hash_set<std::string> keys;  // kind char + hash
    uint64_t bytes = 0;
    uint64_t held = 0;  // QuotaHolds not yet granted or dropped
  };
  void ReleaseHold(QuotaHold* hold) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static std::string Key(BlobStore::Kind kind, absl::string_view hash);

  static constexpr size_t kMaxPendingGrants = 20000;

  Store* store_;
  const uint64_t quota_bytes_;
  absl::Mutex flush_mu_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, UserGrants> users_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, Store::BlobGrant>> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_STORE_BLOB_ACCESS_H_
