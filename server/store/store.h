// File: server/store/store.h
//
// Store: fastest-server's persistent state in SQLite (<data_dir>/fastest.db, WAL, busy_timeout):
// users, API tokens (SHA-256 hashed at rest), projects, workspaces, snapshots
// (UNIQUE(project_id, manifest_hash)), jobs (with a dispatch claim), activity events and drift
// reports. The schema is migrated on Open() and versioned with PRAGMA user_version.
//
// Activity events are written by the same call that changes the data, in one transaction, with the
// original API's types and actors (project.created/web, workspace.created/cli,
// snapshot.pushed/<source>, drift.reported/cli, job.created/web, job.started|completed|failed|
// updated/system, job.cancelled/web).
//
// Implemented per area: store.cc (open/close), store_schema.cc (migrations), store_tokens.cc,
// store_device_codes.cc, store_projects.cc (projects, events, workspaces, drift, snapshots),
// store_jobs.cc (jobs and dispatch claims), store_blob_grants.cc; sqlite_statement.h holds the
// statement/transaction helpers they share.
//
// Thread-safety: all methods are thread-safe (one connection behind a mutex; every call is short).
// Errors: NotFound for unknown ids ("Job not found", ...), FailedPrecondition for illegal job
// transitions, Internal for SQLite failures (message names the statement, never a secret).
//
// Example:
//   FASTEST_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open("./.fastest"));
//   FASTEST_ASSIGN_OR_RETURN(std::string user, store->EnsureUser("admin@localhost"));
//   FASTEST_ASSIGN_OR_RETURN(std::string token, store->CreateToken(user, {}));  // print once
#ifndef FASTEST_SERVER_STORE_STORE_H_
#define FASTEST_SERVER_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/model/model.h"

struct sqlite3;

namespace fastest::server {

// Who is calling: the token's user, and for per-job tokens the project (and job) it is limited to.
struct AuthInfo {
  std::string user_id;
  std::string token_id;
  std::optional<std::string> project_scope;
  std::optional<std::string> job_scope;
};

struct JobFilter {
  std::string owner_user_id;
  std::optional<std::string> project_scope;
  std::optional<std::string> workspace_id;
  std::optional<std::string> project_id;
  std::optional<std::string> status;
  int limit = 20;
};

// Dispatch bookkeeping of a job, beside the wire-visible core::Job.
struct JobClaim {
  core::Job job;
  std::optional<std::string> claimed_by;
  std::optional<std::string> sandbox_id;
};

class Store {
 public:
  // Opens (creating if needed) <data_dir>/fastest.db and migrates the schema.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& data_dir);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // A stable id of this data directory (generated on first open); labels sandboxes.
  const std::string& server_id() const { return server_id_; }
  int schema_version() const { return schema_version_; }

  // ---- users and tokens ----
  // Returns the id of the user with this email, creating it if needed.
  absl::StatusOr<std::string> EnsureUser(absl::string_view email);
  // Mints a new random token ("fst_" + 48 hex) for user_id, optionally limited to a project/job.
  // Only the SHA-256 is stored; the plaintext is returned once.
  absl::StatusOr<std::string> CreateToken(const std::string& user_id,
                                          std::optional<std::string> project_scope,
                                          std::optional<std::string> job_scope = std::nullopt);
  // Stores an externally chosen token (e.g. FASTEST_API_TOKEN) for user_id; no-op if present.
  absl::Status ImportToken(const std::string& user_id, absl::string_view token);
  // Unauthenticated if the token is unknown or expired. Known tokens are cached in memory (by
  // token hash) for kAuthCacheTtl, so the per-request check usually costs no SQLite query; any
  // token change made through this Store clears the cache, and the token's own expiry is checked
  // on every hit.
  static constexpr absl::Duration kAuthCacheTtl = absl::Seconds(30);
  absl::StatusOr<AuthInfo> Authenticate(absl::string_view token);
  absl::Status DeleteTokensForJob(const std::string& job_id);
  absl::StatusOr<int64_t> CountTokens();

  // ---- device login (RFC 8628 device authorization grant) ----
  // Codes of a new device login: device_code (32 alnum, kept by the client, stored as SHA-256
  // only) and user_code ("ABCD-1234", typed by the user; stored normalized: upper case, no dash).
  struct DeviceCodes {
    std::string device_code;
    std::string user_code;
  };
  // ResourceExhausted when max_pending unexpired codes already wait: the endpoint is
  // unauthenticated and must not let anyone fill the database. Expired codes are purged here.
  absl::StatusOr<DeviceCodes> CreateDeviceCode(absl::Duration ttl, int max_pending);
  // Approves a pending code for user_id. The user code is compared case-insensitively without
  // dashes. NotFound: unknown code; DeadlineExceeded: expired; FailedPrecondition: already used.
  absl::Status ApproveDeviceCode(absl::string_view user_code, const std::string& user_id);
  // Marks a pending code denied; unknown or used codes are ignored (like the original).
  absl::Status DenyDeviceCode(absl::string_view user_code);
  struct DeviceLogin {
    std::string access_token;
    std::string user_id;
    std::string email;
  };
  // Exchanges an approved device code for a new API token of the approving user, expiring after
  // token_ttl; the code is then used up. NotFound: unknown or used; DeadlineExceeded: expired;
  // Unavailable: not yet approved (authorization_pending); PermissionDenied: denied.
  absl::StatusOr<DeviceLogin> ExchangeDeviceCode(absl::string_view device_code,
                                                 absl::Duration token_ttl);
  // The email of a user id; NotFound if unknown.
  absl::StatusOr<std::string> UserEmail(const std::string& user_id);

  // ---- projects ----
  absl::StatusOr<core::Project> CreateProject(const std::string& owner_user_id,
                                              const std::string& name);
  absl::StatusOr<core::Project> GetProject(const std::string& id);
  absl::StatusOr<std::vector<core::Project>> ListProjects(const std::string& owner_user_id);

  // ---- workspaces ----
  // `ws.project_id` and `ws.name` required; id/created_at filled in. A base_snapshot_id that does
  // not exist in the project -> NotFound("Base snapshot not found").
  absl::StatusOr<core::Workspace> CreateWorkspace(core::Workspace ws);
  absl::StatusOr<core::Workspace> GetWorkspace(const std::string& id);
  absl::StatusOr<std::vector<core::Workspace>> ListWorkspaces(const std::string& project_id);
  // Sets last_seen_at = now and returns it.
  absl::StatusOr<std::string> Heartbeat(const std::string& workspace_id);
  absl::StatusOr<core::DriftReport> AddDriftReport(core::DriftReport report);
  absl::StatusOr<std::vector<core::DriftReport>> ListDriftReports(const std::string& workspace_id,
                                                                  int limit);

  // ---- snapshots ----
  // Idempotent per (project, manifest_hash): returns {snapshot, created}. Atomic.
  absl::StatusOr<std::pair<core::Snapshot, bool>> CreateSnapshot(
      const std::string& project_id, const std::string& manifest_hash,
      std::optional<std::string> parent_snapshot_id, const std::string& source);
  absl::StatusOr<core::Snapshot> GetSnapshot(const std::string& id);
  absl::StatusOr<std::vector<core::Snapshot>> ListSnapshots(const std::string& project_id,
                                                           int limit);

  // ---- activity ----
  absl::StatusOr<std::vector<core::ActivityEvent>> ListEvents(const std::string& project_id,
                                                             int limit);

  // ---- jobs ----
  absl::StatusOr<core::Job> CreateJob(const core::Workspace& ws, const std::string& prompt);
  absl::StatusOr<core::Job> GetJob(const std::string& id);
  absl::StatusOr<JobClaim> GetJobClaim(const std::string& id);
  absl::StatusOr<std::vector<core::Job>> ListJobs(const JobFilter& filter);
  // Oldest pending, unclaimed job of the user's projects (scope-limited), or nullopt.
  absl::StatusOr<std::optional<core::Job>> NextPendingJob(
      const std::string& owner_user_id, const std::optional<std::string>& project_scope);
  // The runner callback. With `enforce_transitions`, an illegal move -> FailedPrecondition.
  // Timestamps follow the original: started_at set once on running, completed_at once on a
  // terminal status; output_snapshot_id/error written only when non-empty.
  absl::StatusOr<core::Job> UpdateJobStatus(const std::string& id, core::JobStatus to,
                                            const std::optional<std::string>& output_snapshot_id,
                                            const std::optional<std::string>& error,
                                            bool enforce_transitions);
  // pending|running -> cancelled (completed_at = now); otherwise FailedPrecondition
  // "Cannot cancel job with status '<s>'".
  absl::StatusOr<core::Job> CancelJob(const std::string& id);
  // Ends a job that is still pending/running (dispatcher: timeout, sandbox exit). Returns false
  // when the job had already reached a terminal state (nothing changed).
  absl::StatusOr<bool> FinishJobIfActive(const std::string& id, core::JobStatus to,
                                         const std::string& error);

  // ---- dispatch ----
  // Atomically claims the oldest pending unclaimed job (optionally only of one owner's projects).
  absl::StatusOr<std::optional<core::Job>> ClaimNextJob(
      const std::string& claimer, const std::optional<std::string>& owner_user_id);
  // Claims one given job; false if it is not pending or already claimed.
  absl::StatusOr<bool> ClaimJob(const std::string& id, const std::string& claimer);
  absl::Status ReleaseClaim(const std::string& id);
  absl::Status SetJobSandbox(const std::string& id, const std::string& sandbox_id);
  // Jobs claimed by `claimer` that are still pending or running.
  absl::StatusOr<std::vector<JobClaim>> ListActiveClaims(const std::string& claimer);
  // Count of jobs per status name (all five present).
  absl::StatusOr<std::map<std::string, int64_t>> CountJobsByStatus();

  // ---- blob grants (see server/store/blob_access.h) ----
  struct BlobGrant {
    int kind;  // BlobStore::Kind as int
    std::string hash;
    int64_t size;
  };
  absl::Status ForEachBlobGrant(
      const std::function<void(const std::string& user_id, int kind, const std::string& hash,
                               int64_t size)>& fn);
  // One transaction for all rows (user id, grant); existing grants are left alone.
  absl::Status AddBlobGrants(const std::vector<std::pair<std::string, BlobGrant>>& grants);
  // (owner user id, manifest hash) of every snapshot: the backfill of grants of a data
  // directory written before grants existed.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListSnapshotOwners();
  // True if this Open() created the blob_grants table (an older data directory: backfill).
  bool blob_grants_created() const { return blob_grants_created_; }

 private:
  Store() = default;
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(absl::string_view sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AddEventLocked(const std::string& project_id,
                              const std::optional<std::string>& workspace_id,
                              const std::string& actor, const std::string& type,
                              const std::optional<std::string>& snapshot_id,
                              const std::optional<std::string>& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<JobClaim> GetJobLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<core::Project> GetProjectLocked(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<core::Snapshot> GetSnapshotLocked(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<core::Workspace> GetWorkspaceLocked(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::StatusOr<std::string> CreateTokenLocked(const std::string& user_id,
                                                const std::optional<std::string>& project_scope,
                                                const std::optional<std::string>& job_scope,
                                                const std::optional<std::string>& expires_at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ClearAuthCache();

  mutable absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_) = nullptr;
  struct CachedAuth {
    AuthInfo info;
    std::optional<std::string> expires_at;  // the token's own expiry (ISO 8601), if any
    absl::Time cached_until;
  };
  absl::Mutex auth_mu_;
  absl::flat_hash_map<std::string, CachedAuth> auth_cache_ ABSL_GUARDED_BY(auth_mu_);
  uint64_t auth_generation_ ABSL_GUARDED_BY(auth_mu_) = 0;  // bumped by every token change
  std::string server_id_;
  int schema_version_ = 0;
  bool blob_grants_created_ = false;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_STORE_STORE_H_
