// Blob grants (who uploaded which blob/manifest), see blob_access.h.
#include "server/store/store.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "core/status/status_macros.h"
#include "server/store/sqlite_statement.h"

namespace fastest::server {
namespace {

using store_internal::Stmt;
using store_internal::Txn;

}  // namespace

absl::Status Store::ForEachBlobGrant(
    const std::function<void(const std::string&, int, const std::string&, int64_t)>& fn) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "SELECT user_id, kind, hash, size FROM blob_grants");
  for (;;) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return absl::OkStatus();
    fn(s.Text(0), static_cast<int>(s.Int(1)), s.Text(2), s.Int(3));
  }
}

absl::Status Store::AddBlobGrants(
    const std::vector<std::pair<std::string, BlobGrant>>& grants) {
  if (grants.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  Stmt s(db_, "INSERT OR IGNORE INTO blob_grants(user_id, kind, hash, size) VALUES(?, ?, ?, ?)");
  for (const auto& [user_id, g] : grants) {
    sqlite3_reset(s.raw());
    FASTEST_RETURN_IF_ERROR(
        s.Bind(1, user_id).Bind(2, int64_t{g.kind}).Bind(3, g.hash).Bind(4, g.size).Run());
  }
  return txn.Commit();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Store::ListSnapshotOwners() {
  absl::MutexLock lock(&mu_);
  Stmt s(db_,
         "SELECT p.owner_user_id, s.manifest_hash FROM snapshots s "
         "JOIN projects p ON p.id = s.project_id");
  std::vector<std::pair<std::string, std::string>> out;
  for (;;) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    out.emplace_back(s.Text(0), s.Text(1));
  }
}

}  // namespace fastest::server
