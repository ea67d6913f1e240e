// File: server/dispatch/job_source.h
//
// JobSource: where the dispatcher gets jobs from and reports their end.
//   - StoreJobSource: the embedded API's SQLite store. Claims are atomic in SQL; sandboxes get a
//     token minted for the job's project (revoked when the job ends).
//   - RemoteJobSource: an external Fastest API (remote mode, --api_url) through core::ApiClient.
//     The original API has no claim, so claims are kept in this process: run ONE dispatcher per
//     remote API. Sandboxes get the server's API token (the original cannot mint scoped ones),
//     which main.cc allows only with --share_remote_token_with_sandboxes.
// Thread-safe.
#ifndef FASTEST_SERVER_DISPATCH_JOB_SOURCE_H_
#define FASTEST_SERVER_DISPATCH_JOB_SOURCE_H_

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/api/api_client.h"
#include "core/model/model.h"
#include "server/store/store.h"

namespace fastest::server {

class JobSource {
 public:
  virtual ~JobSource() = default;
  // Claims the oldest pending job (of owner_user_id's projects if set); nullopt if none.
  virtual absl::StatusOr<std::optional<core::Job>> ClaimNext(
      const std::optional<std::string>& owner_user_id) = 0;
  // Claims one job: NotFound; FailedPrecondition if not pending or already claimed.
  virtual absl::Status Claim(const std::string& job_id) = 0;
  virtual absl::Status Release(const std::string& job_id) = 0;
  virtual absl::StatusOr<core::Job> GetJob(const std::string& job_id) = 0;
  virtual void SetSandbox(const std::string& job_id, const std::string& sandbox_id) = 0;
  // API_TOKEN for the job's sandbox.
  virtual absl::StatusOr<std::string> TokenForJob(const core::Job& job) = 0;
  // The job ended (any way): drop its claim bookkeeping / tokens.
  virtual void JobEnded(const std::string& job_id) = 0;
  // Ends a still pending/running job; false if it was already terminal.
  virtual absl::StatusOr<bool> FinishIfActive(const std::string& job_id, core::JobStatus to,
                                              const std::string& error) = 0;
  // Jobs this server had claimed and that are still active (for start-up reconciliation).
  virtual absl::StatusOr<std::vector<JobClaim>> ActiveClaims() = 0;
  // True when jobs can appear without NotifyJobCreated (the feeder then polls slowly).
  virtual bool NeedsPolling() const = 0;
};

class StoreJobSource : public JobSource {
 public:
  explicit StoreJobSource(Store* store) : store_(store) {}
  absl::StatusOr<std::optional<core::Job>> ClaimNext(
      const std::optional<std::string>& owner_user_id) override;
  absl::Status Claim(const std::string& job_id) override;
  absl::Status Release(const std::string& job_id) override;
  absl::StatusOr<core::Job> GetJob(const std::string& job_id) override;
  void SetSandbox(const std::string& job_id, const std::string& sandbox_id) override;
  absl::StatusOr<std::string> TokenForJob(const core::Job& job) override;
  void JobEnded(const std::string& job_id) override;
  absl::StatusOr<bool> FinishIfActive(const std::string& job_id, core::JobStatus to,
                                      const std::string& error) override;
  absl::StatusOr<std::vector<JobClaim>> ActiveClaims() override;
  bool NeedsPolling() const override { return false; }

 private:
  Store* store_;
};

class RemoteJobSource : public JobSource {
 public:
  // `api` and its transport must outlive this. `token` is given to sandboxes.
  RemoteJobSource(core::ApiClient* api, std::string token)
      : api_(api), token_(std::move(token)) {}
  absl::StatusOr<std::optional<core::Job>> ClaimNext(
      const std::optional<std::string>& owner_user_id) override;
  absl::Status Claim(const std::string& job_id) override;
  absl::Status Release(const std::string& job_id) override;
  absl::StatusOr<core::Job> GetJob(const std::string& job_id) override;
  void SetSandbox(const std::string&, const std::string&) override {}
  absl::StatusOr<std::string> TokenForJob(const core::Job&) override { return token_; }
  void JobEnded(const std::string& job_id) override;
  absl::StatusOr<bool> FinishIfActive(const std::string& job_id, core::JobStatus to,
                                      const std::string& error) override;
  absl::StatusOr<std::vector<JobClaim>> ActiveClaims() override { return std::vector<JobClaim>(); }
  bool NeedsPolling() const override { return true; }

 private:
  core::ApiClient* api_;
  std::string token_;
  absl::Mutex mu_;
  std::set<std::string> claimed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_DISPATCH_JOB_SOURCE_H_
