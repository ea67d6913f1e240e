// Jobs: creation, listing, status transitions, and the dispatcher's claims.
#include "server/store/store.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "core/model/model.h"
#include "core/status/status_macros.h"
#include "server/store/sqlite_statement.h"

namespace fastest::server {
namespace {

using store_internal::Stmt;
using store_internal::Txn;
using core::Job;
using core::JobStatus;
using core::Workspace;
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

}  // namespace

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

}  // namespace fastest::server
