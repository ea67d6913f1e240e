#include "server/dispatch/job_source.h"

#include "absl/strings/str_cat.h"
#include "core/status/status_macros.h"

namespace fastest::server {

using core::Job;
using core::JobStatus;

// ---------------------------------------------------------------- StoreJobSource

absl::StatusOr<std::optional<Job>> StoreJobSource::ClaimNext(
    const std::optional<std::string>& owner_user_id) {
  return store_->ClaimNextJob(store_->server_id(), owner_user_id);
}

absl::Status StoreJobSource::Claim(const std::string& job_id) {
  FASTEST_ASSIGN_OR_RETURN(JobClaim c, store_->GetJobClaim(job_id));
  if (c.job.status != JobStatus::kPending) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Job is not pending (status '", core::JobStatusName(c.job.status), "')"));
  }
  FASTEST_ASSIGN_OR_RETURN(bool claimed, store_->ClaimJob(job_id, store_->server_id()));
  if (!claimed) return absl::FailedPreconditionError("Job is already claimed by a dispatcher");
  return absl::OkStatus();
}

absl::Status StoreJobSource::Release(const std::string& job_id) {
  return store_->ReleaseClaim(job_id);
}

absl::StatusOr<Job> StoreJobSource::GetJob(const std::string& job_id) {
  return store_->GetJob(job_id);
}

void StoreJobSource::SetSandbox(const std::string& job_id, const std::string& sandbox_id) {
  store_->SetJobSandbox(job_id, sandbox_id).IgnoreError();
}

absl::StatusOr<std::string> StoreJobSource::TokenForJob(const Job& job) {
  // A token that can only touch this job's project; revoked in JobEnded.
  FASTEST_ASSIGN_OR_RETURN(core::Project project, store_->GetProject(job.project_id));
  return store_->CreateToken(project.owner_user_id, job.project_id, job.id);
}

void StoreJobSource::JobEnded(const std::string& job_id) {
  store_->DeleteTokensForJob(job_id).IgnoreError();
}

absl::StatusOr<bool> StoreJobSource::FinishIfActive(const std::string& job_id, JobStatus to,
                                                    const std::string& error) {
  return store_->FinishJobIfActive(job_id, to, error);
}

absl::StatusOr<std::vector<JobClaim>> StoreJobSource::ActiveClaims() {
  return store_->ListActiveClaims(store_->server_id());
}

// ---------------------------------------------------------------- RemoteJobSource

absl::StatusOr<std::optional<Job>> RemoteJobSource::ClaimNext(
    const std::optional<std::string>&) {
  // /v1/jobs/next returns the oldest pending job, claimed or not: skip ours.
  core::JobFilter filter;
  filter.status = JobStatus::kPending;
  filter.limit = 100;
  FASTEST_ASSIGN_OR_RETURN(std::vector<Job> jobs, api_->ListJobs(filter));
  absl::MutexLock lock(&mu_);
  // ListJobs is newest first; claim the oldest unclaimed.
  for (auto it = jobs.rbegin(); it != jobs.rend(); ++it) {
    if (it->status == JobStatus::kPending && claimed_.insert(it->id).second) {
      return std::optional<Job>(*it);
    }
  }
  return std::optional<Job>();
}

absl::Status RemoteJobSource::Claim(const std::string& job_id) {
  FASTEST_ASSIGN_OR_RETURN(Job job, api_->GetJob(job_id));
  if (job.status != JobStatus::kPending) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Job is not pending (status '", core::JobStatusName(job.status), "')"));
  }
  absl::MutexLock lock(&mu_);
  if (!claimed_.insert(job_id).second) {
    return absl::FailedPreconditionError("Job is already claimed by a dispatcher");
  }
  return absl::OkStatus();
}

absl::Status RemoteJobSource::Release(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  claimed_.erase(job_id);
  return absl::OkStatus();
}

absl::StatusOr<Job> RemoteJobSource::GetJob(const std::string& job_id) {
  return api_->GetJob(job_id);
}

void RemoteJobSource::JobEnded(const std::string& job_id) {
  // Keep it claimed: a finished job must never be dispatched again by this process even if the
  // remote API moves it back to pending (the original allows any transition).
  (void)job_id;
}

absl::StatusOr<bool> RemoteJobSource::FinishIfActive(const std::string& job_id, JobStatus to,
                                                     const std::string& error) {
  FASTEST_ASSIGN_OR_RETURN(Job job, api_->GetJob(job_id));
  if (core::IsTerminal(job.status)) return false;
  if (to == JobStatus::kCancelled) {
    FASTEST_RETURN_IF_ERROR(api_->CancelJob(job_id).status());
  } else {
    FASTEST_RETURN_IF_ERROR(
        api_->UpdateJobStatus(job_id, to, std::nullopt,
                              error.empty() ? std::nullopt : std::optional<std::string>(error))
            .status());
  }
  return true;
}

}  // namespace fastest::server
