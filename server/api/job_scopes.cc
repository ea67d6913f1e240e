#include "server/api/job_scopes.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/model/model.h"
#include "core/snapshot/manifest.h"
#include "core/status/status_macros.h"

namespace fastest::server {

bool JobScopes::MayRead(const std::string& job_id, BlobStore::Kind kind, absl::string_view hash) {
  bool ok = false;
  const std::string key = Key(kind, hash);
  With(job_id, [&](Scope& scope) { ok = scope.readable.contains(key); }).IgnoreError();
  return ok;
}

void JobScopes::AddUploaded(const std::string& job_id, const std::vector<BlobAccess::Item>& items) {
  With(job_id, [&](Scope& scope) {
    for (const auto& i : items) scope.readable.insert(Key(i.kind, i.hash));
  }).IgnoreError();
}

bool JobScopes::IsOwnWorkspace(const std::string& job_id, const std::string& workspace_id) {
  bool own = false;
  absl::Status s = With(job_id, [&](Scope& scope) { own = scope.workspace_id == workspace_id; });
  return s.ok() && own;
}

bool JobScopes::MayReadSnapshot(const std::string& job_id, const std::string& snapshot_id) {
  bool own = false;
  absl::Status s = With(job_id, [&](Scope& scope) {
    own = scope.base_snapshot_id == snapshot_id || scope.output_snapshot_id == snapshot_id;
  });
  return s.ok() && own;
}

bool JobScopes::MayReportOutput(const std::string& job_id, const std::string& snapshot_id) {
  // The runner reuses the base instead of creating the same snapshot row again.
  return MayReadSnapshot(job_id, snapshot_id);
}

absl::StatusOr<std::optional<std::string>> JobScopes::OutputSnapshot(const std::string& job_id) {
  std::optional<std::string> output;
  FASTEST_RETURN_IF_ERROR(With(job_id, [&](Scope& scope) { output = scope.output_snapshot_id; }));
  return output;
}

void JobScopes::SetOutputSnapshot(const std::string& job_id, const std::string& snapshot_id) {
  With(job_id, [&](Scope& scope) { scope.output_snapshot_id = snapshot_id; }).IgnoreError();
}

std::string JobScopes::Key(BlobStore::Kind kind, absl::string_view hash) {
  return absl::StrCat(kind == BlobStore::Kind::kBlob ? "b" : "m", hash);
}

absl::Status JobScopes::With(const std::string& job_id, const std::function<void(Scope&)>& fn) {
  {
    absl::MutexLock lock(&mu_);
    auto it = scopes_.find(job_id);
    if (it != scopes_.end()) {
      fn(it->second);
      return absl::OkStatus();
    }
  }
  FASTEST_ASSIGN_OR_RETURN(Scope loaded, Load(job_id));
  absl::MutexLock lock(&mu_);
  if (scopes_.size() >= 4096) scopes_.clear();  // bounded; a cleared scope is reloaded
  auto [it, inserted] = scopes_.emplace(job_id, std::move(loaded));
  fn(it->second);
  return absl::OkStatus();
}

absl::StatusOr<JobScopes::Scope> JobScopes::Load(const std::string& job_id) {
  Scope scope;
  FASTEST_ASSIGN_OR_RETURN(core::Job job, store_->GetJob(job_id));
  FASTEST_ASSIGN_OR_RETURN(core::Workspace ws, store_->GetWorkspace(job.workspace_id));
  scope.workspace_id = ws.id;
  scope.base_snapshot_id = ws.base_snapshot_id;
  // A restart forgets the in-memory scope; the job's stored output snapshot is its own.
  scope.output_snapshot_id = job.output_snapshot_id;
  if (ws.base_snapshot_id) {
    FASTEST_ASSIGN_OR_RETURN(core::Snapshot snap, store_->GetSnapshot(*ws.base_snapshot_id));
    scope.readable.insert(Key(BlobStore::Kind::kManifest, snap.manifest_hash));
    auto text = blobs_->Get(BlobStore::Kind::kManifest, snap.manifest_hash);
    if (text.ok()) {
      auto manifest = core::ParseManifest(*text);
      if (manifest.ok()) {
        for (const auto& f : manifest->files) {
          scope.readable.insert(Key(BlobStore::Kind::kBlob, f.hash));
        }
      }
    }
  }
  return scope;
}

}  // namespace fastest::server
