// The schema and its migrations.
#include "server/store/store.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "core/status/status_macros.h"
#include "server/store/sqlite_statement.h"

namespace fastest::server {
namespace {

using store_internal::Stmt;

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

}  // namespace

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

}  // namespace fastest::server
