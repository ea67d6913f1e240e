// Users and API tokens (stored as SHA-256), with the in-memory authentication cache.
#include "server/store/store.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "core/crypto/secure_random.h"
#include "core/model/model.h"
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"
#include "server/store/sqlite_statement.h"

namespace fastest::server {
namespace {

using store_internal::Stmt;

std::string TokenHash(absl::string_view token) { return core::Sha256Hex(token); }

}  // namespace

absl::StatusOr<std::string> Store::EnsureUser(absl::string_view email) {
  absl::MutexLock lock(&mu_);
  {
    Stmt s(db_, "SELECT id FROM users WHERE email = ?");
    s.Bind(1, email);
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) return s.Text(0);
  }
  std::string id = core::NewId();
  Stmt s(db_, "INSERT INTO users(id, email) VALUES(?, ?)");
  FASTEST_RETURN_IF_ERROR(s.Bind(1, id).Bind(2, email).Run());
  return id;
}

absl::StatusOr<std::string> Store::CreateToken(const std::string& user_id,
                                               std::optional<std::string> project_scope,
                                               std::optional<std::string> job_scope) {
  absl::MutexLock lock(&mu_);
  return CreateTokenLocked(user_id, project_scope, job_scope, std::nullopt);
}

absl::StatusOr<std::string> Store::CreateTokenLocked(
    const std::string& user_id, const std::optional<std::string>& project_scope,
    const std::optional<std::string>& job_scope, const std::optional<std::string>& expires_at) {
  std::string token = "fst_" + core::SecureRandomHex(24);
  Stmt s(db_,
         "INSERT INTO tokens(id, user_id, token_hash, project_id, job_id, created_at, expires_at) "
         "VALUES(?, ?, ?, ?, ?, ?, ?)");
  FASTEST_RETURN_IF_ERROR(s.Bind(1, core::NewId())
                              .Bind(2, user_id)
                              .Bind(3, TokenHash(token))
                              .Bind(4, project_scope)
                              .Bind(5, job_scope)
                              .Bind(6, core::NowIso8601())
                              .Bind(7, expires_at)
                              .Run());
  ClearAuthCache();
  return token;
}

absl::StatusOr<std::string> Store::UserEmail(const std::string& user_id) {
  absl::MutexLock lock(&mu_);
  Stmt e(db_, "SELECT email FROM users WHERE id = ?");
  e.Bind(1, user_id);
  FASTEST_ASSIGN_OR_RETURN(bool found, e.Step());
  if (!found) return absl::NotFoundError("User not found");
  return e.Text(0);
}

absl::Status Store::ImportToken(const std::string& user_id, absl::string_view token) {
  if (token.empty()) return absl::InvalidArgumentError("empty token");
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    Stmt s(db_,
           "INSERT OR IGNORE INTO tokens(id, user_id, token_hash, created_at) VALUES(?, ?, ?, ?)");
    status = s.Bind(1, core::NewId())
                 .Bind(2, user_id)
                 .Bind(3, TokenHash(token))
                 .Bind(4, core::NowIso8601())
                 .Run();
  }
  ClearAuthCache();
  return status;
}

absl::StatusOr<AuthInfo> Store::Authenticate(absl::string_view token) {
  const std::string token_hash = TokenHash(token);
  const absl::Time now = absl::Now();
  uint64_t generation;
  {
    absl::MutexLock lock(&auth_mu_);
    generation = auth_generation_;
    auto it = auth_cache_.find(token_hash);
    if (it != auth_cache_.end()) {
      if (now < it->second.cached_until &&
          (!it->second.expires_at || *it->second.expires_at >= core::NowIso8601())) {
        return it->second.info;
      }
      auth_cache_.erase(it);
    }
  }
  CachedAuth entry;
  {
    absl::MutexLock lock(&mu_);
    Stmt s(db_,
           "SELECT id, user_id, project_id, job_id, expires_at FROM tokens WHERE token_hash = ?");
    s.Bind(1, token_hash);
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return absl::UnauthenticatedError("Authentication required");
    entry.expires_at = s.OptText(4);
    if (entry.expires_at && *entry.expires_at < core::NowIso8601()) {
      return absl::UnauthenticatedError("Authentication required");
    }
    entry.info.token_id = s.Text(0);
    entry.info.user_id = s.Text(1);
    entry.info.project_scope = s.OptText(2);
    entry.info.job_scope = s.OptText(3);
  }
  entry.cached_until = now + kAuthCacheTtl;
  AuthInfo info = entry.info;
  absl::MutexLock lock(&auth_mu_);
  // A token change since our query started may have made this row stale: do not cache it.
  if (generation != auth_generation_) return info;
  // Bounded: a flood of distinct valid tokens cannot grow it without limit.
  if (auth_cache_.size() >= 4096) auth_cache_.clear();
  auth_cache_[token_hash] = std::move(entry);
  return info;
}

void Store::ClearAuthCache() {
  absl::MutexLock lock(&auth_mu_);
  ++auth_generation_;
  auth_cache_.clear();
}

absl::Status Store::DeleteTokensForJob(const std::string& job_id) {
  absl::Status s;
  {
    absl::MutexLock lock(&mu_);
    Stmt stmt(db_, "DELETE FROM tokens WHERE job_id = ?");
    s = stmt.Bind(1, job_id).Run();
  }
  // After the delete; the generation bump also stops a concurrent Authenticate that read the row
  // before the delete from caching it.
  ClearAuthCache();
  return s;
}

absl::StatusOr<int64_t> Store::CountTokens() {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "SELECT COUNT(*) FROM tokens");
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Int(0) : 0;
}

}  // namespace fastest::server
