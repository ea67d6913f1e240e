// File: server/api/job_scopes.h
//
// JobScopes: what a per-job token (minted by the dispatcher for one job's runner) may reach
// beyond its job record: the job's workspace, its base snapshot with that snapshot's manifest and
// files, the blobs and manifests it uploaded itself, and the one output snapshot it creates (or
// its base, when nothing changed). The API routes ask here after authenticating a job token; user
// tokens never come here.
//
// A job's scope is loaded on first use (one manifest parse) and kept in memory, at most 4096
// jobs (then all are forgotten and reloaded on demand). A restart forgets uploads; the job's
// stored output snapshot is read back from the store. Thread-safe.
//
// Example:
//   JobScopes scopes(store, blobs);
//   if (auth.job_scope && !scopes.MayReadSnapshot(*auth.job_scope, id)) return Forbidden();
#ifndef FASTEST_SERVER_API_JOB_SCOPES_H_
#define FASTEST_SERVER_API_JOB_SCOPES_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/store/blob_access.h"
#include "server/store/blob_store.h"
#include "server/store/store.h"

namespace fastest::server {

class JobScopes {
 public:
  JobScopes(Store* store, BlobStore* blobs) : store_(store), blobs_(blobs) {}

  // Whether the job may read the blob/manifest: its base snapshot's manifest or one of that
  // manifest's files, or content the job uploaded. False for an unknown job.
  bool MayRead(const std::string& job_id, BlobStore::Kind kind, absl::string_view hash);
  // Records content the job uploaded (and was granted): readable by the job afterwards.
  void AddUploaded(const std::string& job_id, const std::vector<BlobAccess::Item>& items);
  // Whether `workspace_id` is the job's workspace. False for an unknown job.
  bool IsOwnWorkspace(const std::string& job_id, const std::string& workspace_id);
  // Whether the job may read the snapshot: its base or its own output. False for an unknown job.
  bool MayReadSnapshot(const std::string& job_id, const std::string& snapshot_id);
  // Whether the job may report `snapshot_id` as its output: the one it created, or its base when
  // nothing changed — never one of its choosing. False for an unknown job.
  bool MayReportOutput(const std::string& job_id, const std::string& snapshot_id);
  // The output snapshot the job created, if any. NotFound for an unknown job.
  absl::StatusOr<std::optional<std::string>> OutputSnapshot(const std::string& job_id);
  // Records the job's output snapshot once it is created.
  void SetOutputSnapshot(const std::string& job_id, const std::string& snapshot_id);

 private:
  struct Scope {
    std::string workspace_id;
    std::optional<std::string> base_snapshot_id;
    std::optional<std::string> output_snapshot_id;
    absl::flat_hash_set<std::string> readable;  // kind char + hash
  };
  static std::string Key(BlobStore::Kind kind, absl::string_view hash);
  // Runs `fn` on the job's scope under the lock, loading it first if needed. NotFound if the job
  // is unknown.
  absl::Status With(const std::string& job_id, const std::function<void(Scope&)>& fn);
  absl::StatusOr<Scope> Load(const std::string& job_id);

  Store* store_;
  BlobStore* blobs_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Scope> scopes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_API_JOB_SCOPES_H_
