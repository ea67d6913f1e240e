#include "server/store/store.h"

#include <sqlite3.h>

#include <cctype>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/crypto/secure_random.h"
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"

namespace fastest::server {
namespace {

using core::ActivityEvent;
using core::DriftReport;
using core::Job;
using core::JobStatus;
using core::Project;
using core::Snapshot;
using core::Workspace;

// Schema migrations: entry i moves the schema from user_version i to i + 1. Append only.
const char* const kMigrations[] = {
    // 1: initial schema.
    R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  token_hash TEXT NOT NULL UNIQUE,
  project_id TEXT,
  job_id TEXT,
  created_at TEXT NOT NULL,
  expires_at TEXT);
CREATE INDEX tokens_job ON tokens(job_id);
CREATE TABLE projects (
  id TEXT PRIMARY KEY,
  owner_user_id TEXT NOT NULL REFERENCES users(id),
  name TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  last_snapshot_id TEXT);
CREATE TABLE snapshots (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL REFERENCES projects(id),
  manifest_hash TEXT NOT NULL,
  parent_snapshot_id TEXT,
  source TEXT NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE(project_id, manifest_hash));
CREATE TABLE workspaces (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL REFERENCES projects(id),
  name TEXT NOT NULL,
  machine_id TEXT,
  base_snapshot_id TEXT REFERENCES snapshots(id),
  local_path TEXT,
  last_seen_at TEXT,
  created_at TEXT NOT NULL);
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id),
  project_id TEXT NOT NULL REFERENCES projects(id),
  prompt TEXT NOT NULL,
  status TEXT NOT NULL,
  output_snapshot_id TEXT REFERENCES snapshots(id),
  error TEXT,
  created_at TEXT NOT NULL,
  started_at TEXT,
  completed_at TEXT,
  claimed_by TEXT,
  claimed_at TEXT,
  sandbox_id TEXT);
CREATE INDEX jobs_status ON jobs(status, created_at);
CREATE TABLE activity_events (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL REFERENCES projects(id),
  workspace_id TEXT,
  actor TEXT NOT NULL,
  type TEXT NOT NULL,
  snapshot_id TEXT,
  message TEXT,
  created_at TEXT NOT NULL);
CREATE INDEX events_project ON activity_events(project_id, created_at);
CREATE TABLE drift_reports (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id),
  files_added INTEGER NOT NULL,
  files_modified INTEGER NOT NULL,
  files_deleted INTEGER NOT NULL,
  bytes_changed INTEGER NOT NULL,
  summary TEXT,
  reported_at TEXT NOT NULL);
CREATE INDEX drift_workspace ON drift_reports(workspace_id, reported_at);
)sql",
    // 2: who may read which blob / manifest (content is shared on disk, access is per user).
    R"sql(
CREATE TABLE blob_grants (
  user_id TEXT NOT NULL,
  kind INTEGER NOT NULL,
  hash TEXT NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY(user_id, kind, hash)) WITHOUT ROWID;
)sql",
    // 3: pending device logins (device_code_hash = SHA-256 of the device code).
    R"sql(
CREATE TABLE device_codes (
  device_code_hash TEXT PRIMARY KEY,
  user_code TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL,
  user_id TEXT,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL);
CREATE INDEX device_codes_expiry ON device_codes(expires_at);
)sql",
};
constexpr int kBlobGrantsVersion = 2;

// Minimal RAII wrapper around a prepared statement.
class Stmt {
 public:
  Stmt(sqlite3* db, absl::string_view sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  absl::Status status() const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("sqlite prepare: ", sqlite3_errmsg(db_)));
  }
  Stmt& Bind(int i, absl::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) { return Bind(i, absl::string_view(v)); }
  Stmt& Bind(int i, const char* v) { return Bind(i, absl::string_view(v)); }
  Stmt& Bind(int i, const std::optional<std::string>& v) {
    if (v) return Bind(i, *v);
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // Returns true for a row, false when done; errors as Internal.
  absl::StatusOr<bool> Step() {
    if (rc_ != SQLITE_OK) return status();
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
      return absl::FailedPreconditionError(absl::StrCat("constraint: ", sqlite3_errmsg(db_)));
    }
    return absl::InternalError(absl::StrCat("sqlite step: ", sqlite3_errmsg(db_)));
  }
  absl::Status Run() {
    auto r = Step();
    return r.ok() ? absl::OkStatus() : r.status();
  }
  std::string Text(int col) const {
    const unsigned char* t = sqlite3_column_text(stmt_, col);
    return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, col))
             : std::string();
  }
  std::optional<std::string> OptText(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return Text(col);
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  sqlite3_stmt* raw() const { return stmt_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

std::string TokenHash(absl::string_view token) { return core::Sha256Hex(token); }

const char kProjectCols[] = "id, owner_user_id, name, created_at, updated_at, last_snapshot_id";
Project ReadProject(const Stmt& s) {
  Project p;
  p.id = s.Text(0);
  p.owner_user_id = s.Text(1);
  p.name = s.Text(2);
  p.created_at = s.Text(3);
  p.updated_at = s.Text(4);
  p.last_snapshot_id = s.OptText(5);
  return p;
}

const char kWorkspaceCols[] =
    "id, project_id, name, machine_id, base_snapshot_id, local_path, last_seen_at, created_at";
Workspace ReadWorkspace(const Stmt& s) {
  Workspace w;
  w.id = s.Text(0);
  w.project_id = s.Text(1);
  w.name = s.Text(2);
  w.machine_id = s.OptText(3);
  w.base_snapshot_id = s.OptText(4);
  w.local_path = s.OptText(5);
  w.last_seen_at = s.OptText(6);
  w.created_at = s.Text(7);
  return w;
}

const char kSnapshotCols[] =
    "id, project_id, manifest_hash, parent_snapshot_id, source, created_at";
Snapshot ReadSnapshot(const Stmt& s) {
  Snapshot n;
  n.id = s.Text(0);
  n.project_id = s.Text(1);
  n.manifest_hash = s.Text(2);
  n.parent_snapshot_id = s.OptText(3);
  n.source = s.Text(4);
  n.created_at = s.Text(5);
  return n;
}

const char kJobCols[] =
    "j.id, j.workspace_id, j.project_id, j.prompt, j.status, j.output_snapshot_id, j.error, "
    "j.created_at, j.started_at, j.completed_at, j.claimed_by, j.sandbox_id";
JobClaim ReadJob(const Stmt& s) {
  JobClaim c;
  Job& j = c.job;
  j.id = s.Text(0);
  j.workspace_id = s.Text(1);
  j.project_id = s.Text(2);
  j.prompt = s.Text(3);
  j.status = core::ParseJobStatus(s.Text(4)).value_or(JobStatus::kFailed);
  j.output_snapshot_id = s.OptText(5);
  j.error = s.OptText(6);
  j.created_at = s.Text(7);
  j.started_at = s.OptText(8);
  j.completed_at = s.OptText(9);
  c.claimed_by = s.OptText(10);
  c.sandbox_id = s.OptText(11);
  return c;
}

const char kEventCols[] =
    "id, project_id, workspace_id, actor, type, snapshot_id, message, created_at";
ActivityEvent ReadEvent(const Stmt& s) {
  ActivityEvent e;
  e.id = s.Text(0);
  e.project_id = s.Text(1);
  e.workspace_id = s.OptText(2);
  e.actor = s.Text(3);
  e.type = s.Text(4);
  e.snapshot_id = s.OptText(5);
  e.message = s.OptText(6);
  e.created_at = s.Text(7);
  return e;
}

const char kDriftCols[] =
    "id, workspace_id, files_added, files_modified, files_deleted, bytes_changed, summary, "
    "reported_at";
DriftReport ReadDrift(const Stmt& s) {
  DriftReport d;
  d.id = s.Text(0);
  d.workspace_id = s.Text(1);
  d.files_added = s.Int(2);
  d.files_modified = s.Int(3);
  d.files_deleted = s.Int(4);
  d.bytes_changed = s.Int(5);
  d.summary = s.OptText(6);
  d.reported_at = s.Text(7);
  return d;
}

// BEGIN IMMEDIATE ... COMMIT, rolled back unless Commit() was called.
class Txn {
 public:
  explicit Txn(sqlite3* db) : db_(db) {
    ok_ = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~Txn() {
    if (ok_ && !done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  absl::Status status() const {
    return ok_ ? absl::OkStatus()
               : absl::InternalError(absl::StrCat("sqlite begin: ", sqlite3_errmsg(db_)));
  }
  absl::Status Commit() {
    done_ = true;
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      auto s = absl::InternalError(absl::StrCat("sqlite commit: ", sqlite3_errmsg(db_)));
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return s;
    }
    return absl::OkStatus();
  }

 private:
  sqlite3* db_;
  bool ok_ = false;
  bool done_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create data dir ", data_dir, ": ", ec.message()));
  }
  std::unique_ptr<Store> store(new Store());
  absl::MutexLock lock(&store->mu_);
  const std::string path = data_dir + "/fastest.db";
  int rc = sqlite3_open_v2(path.c_str(), &store->db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", path, ": ", sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(store->db_, 5000);
  FASTEST_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  FASTEST_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=NORMAL"));
  FASTEST_RETURN_IF_ERROR(store->Exec("PRAGMA foreign_keys=ON"));
  FASTEST_RETURN_IF_ERROR(store->Migrate());
  {
    Stmt s(store->db_, "SELECT value FROM meta WHERE key='server_id'");
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) store->server_id_ = s.Text(0);
  }
  if (store->server_id_.empty()) {
    store->server_id_ = core::NewId();
    Stmt s(store->db_, "INSERT INTO meta(key, value) VALUES('server_id', ?)");
    FASTEST_RETURN_IF_ERROR(s.Bind(1, store->server_id_).Run());
  }
  return store;
}

Store::~Store() {
  absl::MutexLock lock(&mu_);
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

absl::Status Store::Exec(absl::string_view sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("sqlite: ", msg));
  }
  return absl::OkStatus();
}

absl::Status Store::Migrate() {
  int version = 0;
  {
    Stmt s(db_, "PRAGMA user_version");
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) version = static_cast<int>(s.Int(0));
  }
  const int target = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));
  if (version > target) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema version ", version, " is newer than this server (", target,
        "); use a newer fastest-server"));
  }
  blob_grants_created_ = version < kBlobGrantsVersion;
  for (int v = version; v < target; ++v) {
    FASTEST_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status s = Exec(kMigrations[v]);
    if (s.ok()) s = Exec(absl::StrCat("PRAGMA user_version = ", v + 1));
    if (!s.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return core::Annotate(s, absl::StrCat("migration ", v + 1));
    }
    FASTEST_RETURN_IF_ERROR(Exec("COMMIT"));
  }
  schema_version_ = target;
  return absl::OkStatus();
}

// ---------------------------------------------------------------- users and tokens

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

// ---------------------------------------------------------------- device login

namespace {
constexpr char kDeviceCodeAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
// No 0/O/1/I: the user types this code.
constexpr char kUserCodeAlphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

std::string NormalizeUserCode(absl::string_view code) {
  std::string out;
  for (char c : code) {
    if (c == '-' || c == ' ') continue;
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}
}  // namespace

absl::StatusOr<Store::DeviceCodes> Store::CreateDeviceCode(absl::Duration ttl, int max_pending) {
  absl::MutexLock lock(&mu_);
  const std::string now = core::NowIso8601();
  {
    Stmt purge(db_, "DELETE FROM device_codes WHERE expires_at < ?");
    FASTEST_RETURN_IF_ERROR(purge.Bind(1, now).Run());
  }
  {
    Stmt count(db_, "SELECT COUNT(*) FROM device_codes");
    FASTEST_ASSIGN_OR_RETURN(bool row, count.Step());
    if (row && count.Int(0) >= max_pending) {
      return absl::ResourceExhaustedError("Too many pending device codes; try again later");
    }
  }
  // A user code collision (32^8 space) is retried with a new code.
  for (int attempt = 0; attempt < 5; ++attempt) {
    DeviceCodes codes;
    codes.device_code = core::SecureRandomString(kDeviceCodeAlphabet, 32);
    const std::string user = core::SecureRandomString(kUserCodeAlphabet, 8);
    codes.user_code = user.substr(0, 4) + "-" + user.substr(4);
    Stmt s(db_,
           "INSERT INTO device_codes(device_code_hash, user_code, status, created_at, expires_at) "
           "VALUES(?, ?, 'pending', ?, ?)");
    absl::Status st = s.Bind(1, TokenHash(codes.device_code))
                          .Bind(2, user)
                          .Bind(3, now)
                          .Bind(4, core::FormatIso8601(absl::Now() + ttl))
                          .Run();
    if (st.ok()) return codes;
    if (!absl::IsFailedPrecondition(st)) return st;
  }
  return absl::InternalError("could not allocate a unique user code");
}

absl::Status Store::ApproveDeviceCode(absl::string_view user_code, const std::string& user_id) {
  const std::string code = NormalizeUserCode(user_code);
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "SELECT status, expires_at FROM device_codes WHERE user_code = ?");
  s.Bind(1, code);
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("Invalid code");
  if (s.Text(0) != "pending") return absl::FailedPreconditionError("Code already used");
  if (s.Text(1) < core::NowIso8601()) return absl::DeadlineExceededError("Code expired");
  Stmt u(db_,
         "UPDATE device_codes SET status = 'approved', user_id = ? "
         "WHERE user_code = ? AND status = 'pending'");
  return u.Bind(1, user_id).Bind(2, code).Run();
}

absl::Status Store::DenyDeviceCode(absl::string_view user_code) {
  absl::MutexLock lock(&mu_);
  Stmt u(db_, "UPDATE device_codes SET status = 'denied' WHERE user_code = ? AND status = 'pending'");
  return u.Bind(1, NormalizeUserCode(user_code)).Run();
}

absl::StatusOr<Store::DeviceLogin> Store::ExchangeDeviceCode(absl::string_view device_code,
                                                             absl::Duration token_ttl) {
  // Looked up by SHA-256: the stored value is a hash, so the lookup leaks nothing timing-wise
  // about the code itself.
  const std::string hash = TokenHash(device_code);
  absl::MutexLock lock(&mu_);
  Stmt s(db_,
         "SELECT status, user_id, expires_at FROM device_codes WHERE device_code_hash = ?");
  s.Bind(1, hash);
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("Invalid or already used device code");
  const std::string status = s.Text(0);
  const std::optional<std::string> user_id = s.OptText(1);
  if (status == "used") return absl::NotFoundError("Invalid or already used device code");
  if (s.Text(2) < core::NowIso8601()) return absl::DeadlineExceededError("Device code expired");
  if (status == "pending") return absl::UnavailableError("Authorization pending");
  auto consume = [&]() {
    // Kept (until it expires and is purged) so a second authorize answers "already used".
    Stmt d(db_, "UPDATE device_codes SET status = 'used' WHERE device_code_hash = ?");
    return d.Bind(1, hash).Run();
  };
  if (status == "denied") {
    FASTEST_RETURN_IF_ERROR(consume());
    return absl::PermissionDeniedError("The user denied the request");
  }
  if (status != "approved" || !user_id) return absl::NotFoundError("Invalid device code");
  DeviceLogin login;
  login.user_id = *user_id;
  {
    Stmt e(db_, "SELECT email FROM users WHERE id = ?");
    e.Bind(1, *user_id);
    FASTEST_ASSIGN_OR_RETURN(bool found, e.Step());
    if (!found) return absl::NotFoundError("Invalid device code");
    login.email = e.Text(0);
  }
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  FASTEST_RETURN_IF_ERROR(consume());
  FASTEST_ASSIGN_OR_RETURN(login.access_token,
                           CreateTokenLocked(*user_id, std::nullopt, std::nullopt,
                                             core::FormatIso8601(absl::Now() + token_ttl)));
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return login;
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

// ---------------------------------------------------------------- events

absl::Status Store::AddEventLocked(const std::string& project_id,
                                   const std::optional<std::string>& workspace_id,
                                   const std::string& actor, const std::string& type,
                                   const std::optional<std::string>& snapshot_id,
                                   const std::optional<std::string>& message) {
  Stmt s(db_, absl::StrCat("INSERT INTO activity_events(", kEventCols,
                           ") VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
  return s.Bind(1, core::NewId())
      .Bind(2, project_id)
      .Bind(3, workspace_id)
      .Bind(4, actor)
      .Bind(5, type)
      .Bind(6, snapshot_id)
      .Bind(7, message)
      .Bind(8, core::NowIso8601())
      .Run();
}

absl::StatusOr<std::vector<ActivityEvent>> Store::ListEvents(const std::string& project_id,
                                                            int limit) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kEventCols,
                           " FROM activity_events WHERE project_id = ? "
                           "ORDER BY created_at DESC, rowid DESC LIMIT ?"));
  s.Bind(1, project_id).Bind(2, int64_t{limit});
  std::vector<ActivityEvent> out;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadEvent(s));
  }
  return out;
}

// ---------------------------------------------------------------- projects

absl::StatusOr<Project> Store::CreateProject(const std::string& owner_user_id,
                                             const std::string& name) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  Project p;
  p.id = core::NewId();
  p.owner_user_id = owner_user_id;
  p.name = name;
  p.created_at = p.updated_at = core::NowIso8601();
  Stmt s(db_, absl::StrCat("INSERT INTO projects(", kProjectCols, ") VALUES(?, ?, ?, ?, ?, ?)"));
  FASTEST_RETURN_IF_ERROR(s.Bind(1, p.id)
                              .Bind(2, p.owner_user_id)
                              .Bind(3, p.name)
                              .Bind(4, p.created_at)
                              .Bind(5, p.updated_at)
                              .Bind(6, p.last_snapshot_id)
                              .Run());
  FASTEST_RETURN_IF_ERROR(AddEventLocked(p.id, std::nullopt, "web", "project.created",
                                         std::nullopt, absl::StrCat("Project \"", name,
                                                                    "\" created")));
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return p;
}

absl::StatusOr<Project> Store::GetProjectLocked(const std::string& id) {
  Stmt s(db_, absl::StrCat("SELECT ", kProjectCols, " FROM projects WHERE id = ?"));
  s.Bind(1, id);
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("Project not found");
  return ReadProject(s);
}

absl::StatusOr<Project> Store::GetProject(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return GetProjectLocked(id);
}

absl::StatusOr<std::vector<Project>> Store::ListProjects(const std::string& owner_user_id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kProjectCols,
                           " FROM projects WHERE owner_user_id = ? "
                           "ORDER BY updated_at DESC, rowid DESC"));
  s.Bind(1, owner_user_id);
  std::vector<Project> out;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadProject(s));
  }
  return out;
}

// ---------------------------------------------------------------- workspaces

absl::StatusOr<Workspace> Store::GetWorkspaceLocked(const std::string& id) {
  Stmt s(db_, absl::StrCat("SELECT ", kWorkspaceCols, " FROM workspaces WHERE id = ?"));
  s.Bind(1, id);
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("Workspace not found");
  return ReadWorkspace(s);
}

absl::StatusOr<Workspace> Store::CreateWorkspace(Workspace ws) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  if (ws.base_snapshot_id) {
    auto snap = GetSnapshotLocked(*ws.base_snapshot_id);
    if (!snap.ok() || snap->project_id != ws.project_id) {
      return absl::NotFoundError("Base snapshot not found");
    }
  }
  ws.id = core::NewId();
  ws.created_at = core::NowIso8601();
  Stmt s(db_, absl::StrCat("INSERT INTO workspaces(", kWorkspaceCols,
                           ") VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
  FASTEST_RETURN_IF_ERROR(s.Bind(1, ws.id)
                              .Bind(2, ws.project_id)
                              .Bind(3, ws.name)
                              .Bind(4, ws.machine_id)
                              .Bind(5, ws.base_snapshot_id)
                              .Bind(6, ws.local_path)
                              .Bind(7, ws.last_seen_at)
                              .Bind(8, ws.created_at)
                              .Run());
  FASTEST_RETURN_IF_ERROR(AddEventLocked(ws.project_id, ws.id, "cli", "workspace.created",
                                         ws.base_snapshot_id,
                                         absl::StrCat("Workspace \"", ws.name, "\" created")));
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return ws;
}

absl::StatusOr<Workspace> Store::GetWorkspace(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return GetWorkspaceLocked(id);
}

absl::StatusOr<std::vector<Workspace>> Store::ListWorkspaces(const std::string& project_id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kWorkspaceCols,
                           " FROM workspaces WHERE project_id = ? "
                           "ORDER BY created_at DESC, rowid DESC"));
  s.Bind(1, project_id);
  std::vector<Workspace> out;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadWorkspace(s));
  }
  return out;
}

absl::StatusOr<std::string> Store::Heartbeat(const std::string& workspace_id) {
  absl::MutexLock lock(&mu_);
  FASTEST_RETURN_IF_ERROR(GetWorkspaceLocked(workspace_id).status());
  std::string now = core::NowIso8601();
  Stmt s(db_, "UPDATE workspaces SET last_seen_at = ? WHERE id = ?");
  FASTEST_RETURN_IF_ERROR(s.Bind(1, now).Bind(2, workspace_id).Run());
  return now;
}

absl::StatusOr<DriftReport> Store::AddDriftReport(DriftReport d) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  FASTEST_ASSIGN_OR_RETURN(Workspace ws, GetWorkspaceLocked(d.workspace_id));
  d.id = core::NewId();
  d.reported_at = core::NowIso8601();
  Stmt s(db_, absl::StrCat("INSERT INTO drift_reports(", kDriftCols,
                           ") VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
  FASTEST_RETURN_IF_ERROR(s.Bind(1, d.id)
                              .Bind(2, d.workspace_id)
                              .Bind(3, d.files_added)
                              .Bind(4, d.files_modified)
                              .Bind(5, d.files_deleted)
                              .Bind(6, d.bytes_changed)
                              .Bind(7, d.summary)
                              .Bind(8, d.reported_at)
                              .Run());
  Stmt u(db_, "UPDATE workspaces SET last_seen_at = ? WHERE id = ?");
  FASTEST_RETURN_IF_ERROR(u.Bind(1, d.reported_at).Bind(2, d.workspace_id).Run());
  if (d.files_added > 0 || d.files_modified > 0 || d.files_deleted > 0) {
    FASTEST_RETURN_IF_ERROR(AddEventLocked(
        ws.project_id, ws.id, "cli", "drift.reported", std::nullopt,
        d.summary ? *d.summary
                  : absl::StrCat(d.files_added, " added, ", d.files_modified, " modified, ",
                                 d.files_deleted, " deleted")));
  }
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return d;
}

absl::StatusOr<std::vector<DriftReport>> Store::ListDriftReports(
    const std::string& workspace_id, int limit) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kDriftCols,
                           " FROM drift_reports WHERE workspace_id = ? "
                           "ORDER BY reported_at DESC, rowid DESC LIMIT ?"));
  s.Bind(1, workspace_id).Bind(2, int64_t{limit});
  std::vector<DriftReport> out;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadDrift(s));
  }
  return out;
}

// ---------------------------------------------------------------- snapshots

absl::StatusOr<Snapshot> Store::GetSnapshotLocked(const std::string& id) {
  Stmt s(db_, absl::StrCat("SELECT ", kSnapshotCols, " FROM snapshots WHERE id = ?"));
  s.Bind(1, id);
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("Snapshot not found");
  return ReadSnapshot(s);
}

absl::StatusOr<Snapshot> Store::GetSnapshot(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return GetSnapshotLocked(id);
}

absl::StatusOr<std::pair<Snapshot, bool>> Store::CreateSnapshot(
    const std::string& project_id, const std::string& manifest_hash,
    std::optional<std::string> parent_snapshot_id, const std::string& source) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  FASTEST_RETURN_IF_ERROR(GetProjectLocked(project_id).status());
  {
    Stmt s(db_, absl::StrCat("SELECT ", kSnapshotCols,
                             " FROM snapshots WHERE project_id = ? AND manifest_hash = ?"));
    s.Bind(1, project_id).Bind(2, manifest_hash);
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) return std::make_pair(ReadSnapshot(s), false);
  }
  Snapshot n;
  n.id = core::NewId();
  n.project_id = project_id;
  n.manifest_hash = manifest_hash;
  n.parent_snapshot_id = std::move(parent_snapshot_id);
  n.source = source;
  n.created_at = core::NowIso8601();
  Stmt s(db_, absl::StrCat("INSERT INTO snapshots(", kSnapshotCols, ") VALUES(?, ?, ?, ?, ?, ?)"));
  FASTEST_RETURN_IF_ERROR(s.Bind(1, n.id)
                              .Bind(2, n.project_id)
                              .Bind(3, n.manifest_hash)
                              .Bind(4, n.parent_snapshot_id)
                              .Bind(5, n.source)
                              .Bind(6, n.created_at)
                              .Run());
  Stmt u(db_, "UPDATE projects SET last_snapshot_id = ?, updated_at = ? WHERE id = ?");
  FASTEST_RETURN_IF_ERROR(u.Bind(1, n.id).Bind(2, n.created_at).Bind(3, project_id).Run());
  FASTEST_RETURN_IF_ERROR(AddEventLocked(project_id, std::nullopt, source, "snapshot.pushed",
                                         n.id, absl::StrCat("Snapshot ", n.id, " pushed")));
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return std::make_pair(n, true);
}

absl::StatusOr<std::vector<Snapshot>> Store::ListSnapshots(const std::string& project_id,
                                                          int limit) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kSnapshotCols,
                           " FROM snapshots WHERE project_id = ? "
                           "ORDER BY created_at DESC, rowid DESC LIMIT ?"));
  s.Bind(1, project_id).Bind(2, int64_t{limit});
  std::vector<Snapshot> out;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadSnapshot(s));
  }
  return out;
}

// ---------------------------------------------------------------- jobs

absl::StatusOr<JobClaim> Store::GetJobLocked(const std::string& id) {
  Stmt s(db_, absl::StrCat("SELECT ", kJobCols, " FROM jobs j WHERE j.id = ?"));
  s.Bind(1, id);
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("Job not found");
  return ReadJob(s);
}

absl::StatusOr<Job> Store::GetJob(const std::string& id) {
  absl::MutexLock lock(&mu_);
  FASTEST_ASSIGN_OR_RETURN(JobClaim c, GetJobLocked(id));
  return c.job;
}

absl::StatusOr<JobClaim> Store::GetJobClaim(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return GetJobLocked(id);
}

absl::StatusOr<Job> Store::CreateJob(const Workspace& ws, const std::string& prompt) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  Job j;
  j.id = core::NewId();
  j.workspace_id = ws.id;
  j.project_id = ws.project_id;
  j.prompt = prompt;
  j.status = JobStatus::kPending;
  j.created_at = core::NowIso8601();
  Stmt s(db_,
         "INSERT INTO jobs(id, workspace_id, project_id, prompt, status, created_at) "
         "VALUES(?, ?, ?, ?, 'pending', ?)");
  FASTEST_RETURN_IF_ERROR(
      s.Bind(1, j.id).Bind(2, j.workspace_id).Bind(3, j.project_id).Bind(4, j.prompt).Bind(
           5, j.created_at).Run());
  FASTEST_RETURN_IF_ERROR(AddEventLocked(j.project_id, j.workspace_id, "web", "job.created",
                                         std::nullopt, absl::StrCat("Job created: ", prompt)));
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return j;
}

absl::StatusOr<std::vector<Job>> Store::ListJobs(const JobFilter& f) {
  absl::MutexLock lock(&mu_);
  std::string sql = absl::StrCat("SELECT ", kJobCols,
                                 " FROM jobs j JOIN projects p ON p.id = j.project_id "
                                 "WHERE p.owner_user_id = ?1");
  if (f.project_scope) sql += " AND j.project_id = ?2";
  if (f.workspace_id) sql += " AND j.workspace_id = ?3";
  if (f.project_id) sql += " AND j.project_id = ?4";
  if (f.status) sql += " AND j.status = ?5";
  sql += " ORDER BY j.created_at DESC, j.rowid DESC LIMIT ?6";
  Stmt s(db_, sql);
  s.Bind(1, f.owner_user_id)
      .Bind(2, f.project_scope)
      .Bind(3, f.workspace_id)
      .Bind(4, f.project_id)
      .Bind(5, f.status)
      .Bind(6, int64_t{f.limit});
  std::vector<Job> out;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadJob(s).job);
  }
  return out;
}

absl::StatusOr<std::optional<Job>> Store::NextPendingJob(
    const std::string& owner_user_id, const std::optional<std::string>& project_scope) {
  absl::MutexLock lock(&mu_);
  std::string sql = absl::StrCat("SELECT ", kJobCols,
                                 " FROM jobs j JOIN projects p ON p.id = j.project_id "
                                 "WHERE p.owner_user_id = ?1 AND j.status = 'pending' "
                                 "AND j.claimed_by IS NULL");
  if (project_scope) sql += " AND j.project_id = ?2";
  sql += " ORDER BY j.created_at ASC, j.rowid ASC LIMIT 1";
  Stmt s(db_, sql);
  s.Bind(1, owner_user_id).Bind(2, project_scope);
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<Job>();
  return std::optional<Job>(ReadJob(s).job);
}

absl::StatusOr<Job> Store::UpdateJobStatus(const std::string& id, JobStatus to,
                                           const std::optional<std::string>& output_snapshot_id,
                                           const std::optional<std::string>& error,
                                           bool enforce_transitions) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  FASTEST_ASSIGN_OR_RETURN(JobClaim c, GetJobLocked(id));
  const JobStatus from = c.job.status;
  if (enforce_transitions && !core::IsLegalTransition(from, to)) {
    return absl::FailedPreconditionError(
        absl::StrCat("Cannot change job status from '", core::JobStatusName(from), "' to '",
                     core::JobStatusName(to), "'"));
  }
  if (output_snapshot_id && !output_snapshot_id->empty()) {
    auto snap = GetSnapshotLocked(*output_snapshot_id);
    if (!snap.ok()) return absl::NotFoundError("Output snapshot not found");
  }
  const std::string now = core::NowIso8601();
  Stmt s(db_,
         "UPDATE jobs SET status = ?1, "
         "started_at = CASE WHEN ?1 = 'running' AND started_at IS NULL THEN ?2 ELSE started_at END, "
         "completed_at = CASE WHEN ?1 IN ('completed','failed','cancelled') AND completed_at IS NULL "
         "THEN ?2 ELSE completed_at END, "
         "output_snapshot_id = COALESCE(NULLIF(?3, ''), output_snapshot_id), "
         "error = COALESCE(NULLIF(?4, ''), error) WHERE id = ?5");
  FASTEST_RETURN_IF_ERROR(s.Bind(1, core::JobStatusName(to))
                              .Bind(2, now)
                              .Bind(3, output_snapshot_id)
                              .Bind(4, error)
                              .Bind(5, id)
                              .Run());
  std::string type = "job.updated";
  std::string message = absl::StrCat("Job status: ", core::JobStatusName(to));
  if (to == JobStatus::kRunning) {
    type = "job.started";
    message = "Job started";
  } else if (to == JobStatus::kCompleted) {
    type = "job.completed";
    message = "Job completed";
  } else if (to == JobStatus::kFailed) {
    type = "job.failed";
    message = absl::StrCat("Job failed: ", error && !error->empty() ? *error : "Unknown error");
  }
  FASTEST_RETURN_IF_ERROR(AddEventLocked(c.job.project_id, c.job.workspace_id, "system", type,
                                         output_snapshot_id, message));
  FASTEST_ASSIGN_OR_RETURN(JobClaim updated, GetJobLocked(id));
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return updated.job;
}

absl::StatusOr<Job> Store::CancelJob(const std::string& id) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  FASTEST_ASSIGN_OR_RETURN(JobClaim c, GetJobLocked(id));
  if (c.job.status != JobStatus::kPending && c.job.status != JobStatus::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Cannot cancel job with status '", core::JobStatusName(c.job.status), "'"));
  }
  Stmt s(db_, "UPDATE jobs SET status = 'cancelled', completed_at = ? WHERE id = ?");
  FASTEST_RETURN_IF_ERROR(s.Bind(1, core::NowIso8601()).Bind(2, id).Run());
  FASTEST_RETURN_IF_ERROR(AddEventLocked(c.job.project_id, c.job.workspace_id, "web",
                                         "job.cancelled", std::nullopt, "Job cancelled"));
  FASTEST_ASSIGN_OR_RETURN(JobClaim updated, GetJobLocked(id));
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return updated.job;
}

absl::StatusOr<bool> Store::FinishJobIfActive(const std::string& id, JobStatus to,
                                              const std::string& error) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  FASTEST_ASSIGN_OR_RETURN(JobClaim c, GetJobLocked(id));
  if (core::IsTerminal(c.job.status)) return false;
  Stmt s(db_,
         "UPDATE jobs SET status = ?, error = NULLIF(?, ''), "
         "completed_at = COALESCE(completed_at, ?) "
         "WHERE id = ? AND status IN ('pending', 'running')");
  FASTEST_RETURN_IF_ERROR(
      s.Bind(1, core::JobStatusName(to)).Bind(2, error).Bind(3, core::NowIso8601()).Bind(4, id)
          .Run());
  const std::string type = to == JobStatus::kCancelled   ? "job.cancelled"
                           : to == JobStatus::kCompleted ? "job.completed"
                                                         : "job.failed";
  FASTEST_RETURN_IF_ERROR(AddEventLocked(
      c.job.project_id, c.job.workspace_id, "system", type, std::nullopt,
      to == JobStatus::kFailed ? absl::StrCat("Job failed: ", error) : error));
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return true;
}

// ---------------------------------------------------------------- dispatch

absl::StatusOr<std::optional<Job>> Store::ClaimNextJob(
    const std::string& claimer, const std::optional<std::string>& owner_user_id) {
  absl::MutexLock lock(&mu_);
  // One statement: the WHERE re-checks status and claim, so even several server processes on
  // one database cannot claim a job twice.
  std::string sql =
      "UPDATE jobs SET claimed_by = ?1, claimed_at = ?2 WHERE id = ("
      "SELECT j.id FROM jobs j JOIN projects p ON p.id = j.project_id "
      "WHERE j.status = 'pending' AND j.claimed_by IS NULL";
  if (owner_user_id) sql += " AND p.owner_user_id = ?3";
  sql += " ORDER BY j.created_at ASC, j.rowid ASC LIMIT 1) "
         "AND status = 'pending' AND claimed_by IS NULL RETURNING id";
  std::string id;
  {
    Stmt s(db_, sql);
    s.Bind(1, claimer).Bind(2, core::NowIso8601()).Bind(3, owner_user_id);
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<Job>();
    id = s.Text(0);
    FASTEST_ASSIGN_OR_RETURN(bool more, s.Step());
    (void)more;
  }
  FASTEST_ASSIGN_OR_RETURN(JobClaim c, GetJobLocked(id));
  return std::optional<Job>(c.job);
}

absl::StatusOr<bool> Store::ClaimJob(const std::string& id, const std::string& claimer) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_,
         "UPDATE jobs SET claimed_by = ?, claimed_at = ? "
         "WHERE id = ? AND status = 'pending' AND claimed_by IS NULL");
  FASTEST_RETURN_IF_ERROR(s.Bind(1, claimer).Bind(2, core::NowIso8601()).Bind(3, id).Run());
  return sqlite3_changes(db_) == 1;
}

absl::Status Store::ReleaseClaim(const std::string& id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_,
         "UPDATE jobs SET claimed_by = NULL, claimed_at = NULL, sandbox_id = NULL WHERE id = ?");
  return s.Bind(1, id).Run();
}

absl::Status Store::SetJobSandbox(const std::string& id, const std::string& sandbox_id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "UPDATE jobs SET sandbox_id = ? WHERE id = ?");
  return s.Bind(1, sandbox_id).Bind(2, id).Run();
}

absl::StatusOr<std::vector<JobClaim>> Store::ListActiveClaims(const std::string& claimer) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kJobCols,
                           " FROM jobs j WHERE j.claimed_by = ? "
                           "AND j.status IN ('pending', 'running')"));
  s.Bind(1, claimer);
  std::vector<JobClaim> out;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadJob(s));
  }
  return out;
}

absl::StatusOr<std::map<std::string, int64_t>> Store::CountJobsByStatus() {
  absl::MutexLock lock(&mu_);
  std::map<std::string, int64_t> out;
  for (auto st : {JobStatus::kPending, JobStatus::kRunning, JobStatus::kCompleted,
                  JobStatus::kFailed, JobStatus::kCancelled}) {
    out[std::string(core::JobStatusName(st))] = 0;
  }
  Stmt s(db_, "SELECT status, COUNT(*) FROM jobs GROUP BY status");
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out[s.Text(0)] = s.Int(1);
  }
  return out;
}

// ---------------------------------------------------------------- blob grants

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
