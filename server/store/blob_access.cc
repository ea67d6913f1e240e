#include "server/store/blob_access.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/snapshot/manifest.h"
#include "core/status/status_macros.h"

namespace fastest::server {

std::string BlobAccess::Key(BlobStore::Kind kind, absl::string_view hash) {
  return absl::StrCat(kind == BlobStore::Kind::kBlob ? "b" : "m", hash);
}

absl::Status BlobAccess::Init(BlobStore* blobs) {
  if (store_->blob_grants_created()) {
    // Content stored before grants existed belongs to the owners of the snapshots that use it.
    FASTEST_ASSIGN_OR_RETURN(auto owners, store_->ListSnapshotOwners());
    for (const auto& [user_id, manifest_hash] : owners) {
      auto text = blobs->Get(BlobStore::Kind::kManifest, manifest_hash);
      if (!text.ok()) continue;  // a snapshot whose manifest never arrived: nothing to grant
      std::vector<Item> items = {{BlobStore::Kind::kManifest, manifest_hash, text->size()}};
      auto manifest = core::ParseManifest(*text);
      if (manifest.ok()) {
        for (const auto& f : manifest->files) {
          if (blobs->Exists(BlobStore::Kind::kBlob, f.hash)) {
            items.push_back({BlobStore::Kind::kBlob, f.hash, f.size});
          }
        }
      }
      std::vector<std::pair<std::string, Store::BlobGrant>> rows;
      rows.reserve(items.size());
      for (const Item& i : items) {
        rows.push_back({user_id, {static_cast<int>(i.kind), i.hash, static_cast<int64_t>(i.size)}});
      }
      FASTEST_RETURN_IF_ERROR(store_->AddBlobGrants(rows));
    }
  }
  absl::MutexLock lock(&mu_);
  return store_->ForEachBlobGrant(
      [this](const std::string& user_id, int kind, const std::string& hash, int64_t size)
          ABSL_NO_THREAD_SAFETY_ANALYSIS {
            UserGrants& u = users_[user_id];
            if (u.keys.insert(Key(static_cast<BlobStore::Kind>(kind), hash)).second) {
              u.bytes += static_cast<uint64_t>(size);
            }
          });
}

bool BlobAccess::CanRead(const std::string& user_id, BlobStore::Kind kind,
                         absl::string_view hash) const {
  absl::MutexLock lock(&mu_);
  auto it = users_.find(user_id);
  return it != users_.end() && it->second.keys.contains(Key(kind, hash));
}

BlobAccess::QuotaHold::QuotaHold(QuotaHold&& other) noexcept
    : access_(other.access_), user_id_(std::move(other.user_id_)), bytes_(other.bytes_) {
  other.access_ = nullptr;
  other.bytes_ = 0;
}

BlobAccess::QuotaHold::~QuotaHold() {
  if (access_ == nullptr) return;
  absl::MutexLock lock(&access_->mu_);
  access_->ReleaseHold(this);
}

void BlobAccess::ReleaseHold(QuotaHold* hold) {
  if (hold->access_ != this || hold->bytes_ == 0) return;
  UserGrants& u = users_[hold->user_id_];
  u.held -= std::min(u.held, hold->bytes_);
  hold->bytes_ = 0;
  hold->access_ = nullptr;
}

absl::StatusOr<BlobAccess::QuotaHold> BlobAccess::ReserveQuota(const std::string& user_id,
                                                               const std::vector<Item>& items) {
  QuotaHold hold;
  if (quota_bytes_ == 0) return hold;
  absl::MutexLock lock(&mu_);
  UserGrants& u = users_[user_id];
  uint64_t added = 0;
  for (const Item& i : items) {
    if (!u.keys.contains(Key(i.kind, i.hash))) added += i.size;
  }
  if (u.bytes + u.held + added > quota_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "Upload quota exceeded: ", u.bytes, " of ", quota_bytes_, " bytes used",
        u.held > 0 ? absl::StrCat(", ", u.held, " held by uploads in progress") : "",
        ", this request adds ", added));
  }
  u.held += added;
  hold.access_ = this;
  hold.user_id_ = user_id;
  hold.bytes_ = added;
  return hold;
}

absl::Status BlobAccess::Grant(const std::string& user_id, const std::vector<Item>& items,
                               QuotaHold* hold) {
  bool flush = false;
  {
    absl::MutexLock lock(&mu_);
    if (hold != nullptr) ReleaseHold(hold);
    UserGrants& u = users_[user_id];
    for (const Item& i : items) {
      if (u.keys.insert(Key(i.kind, i.hash)).second) {
        u.bytes += i.size;
        pending_.push_back(
            {user_id, {static_cast<int>(i.kind), i.hash, static_cast<int64_t>(i.size)}});
      }
      // A manifest is the durability point of a snapshot (its blobs are synced with it):
      // its grants and those of the blobs before it are written now, in one transaction.
      if (i.kind == BlobStore::Kind::kManifest) flush = true;
    }
    flush = flush || pending_.size() >= kMaxPendingGrants;
  }
  return flush ? Flush() : absl::OkStatus();
}

absl::Status BlobAccess::Flush() {
  absl::MutexLock flush_lock(&flush_mu_);  // one writer at a time, rows in grant order
  std::vector<std::pair<std::string, Store::BlobGrant>> rows;
  {
    absl::MutexLock lock(&mu_);
    rows.swap(pending_);
  }
  absl::Status s = store_->AddBlobGrants(rows);
  if (!s.ok()) {
    // Kept for the next flush: the grants stay in memory and must reach the disk eventually.
    absl::MutexLock lock(&mu_);
    pending_.insert(pending_.begin(), rows.begin(), rows.end());
  }
  return s;
}

uint64_t BlobAccess::UsedBytes(const std::string& user_id) const {
  absl::MutexLock lock(&mu_);
  auto it = users_.find(user_id);
  return it == users_.end() ? 0 : it->second.bytes;
}

}  // namespace fastest::server
