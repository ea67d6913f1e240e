#include "server/api/request_auth.h"

#include "absl/strings/match.h"
#include "core/status/status_macros.h"

namespace fastest::server {

absl::StatusOr<AuthInfo> AuthenticateRequest(Store* store, const net::Request& req) {
  const std::string header = req.Header("authorization");
  if (!absl::StartsWith(header, "Bearer ")) {
    return absl::UnauthenticatedError("Authentication required");
  }
  const std::string token = header.substr(7);
  if (token.empty()) return absl::UnauthenticatedError("Authentication required");
  return store->Authenticate(token);
}

bool CanSeeProject(const AuthInfo& auth, const core::Project& p) {
  return p.owner_user_id == auth.user_id && (!auth.project_scope || *auth.project_scope == p.id);
}

absl::StatusOr<core::Project> OwnedProject(Store* store, const AuthInfo& auth,
                                           const std::string& id) {
  absl::StatusOr<core::Project> p = store->GetProject(id);
  if (!p.ok()) return p.status();
  if (!CanSeeProject(auth, *p)) return absl::NotFoundError("Project not found");
  return p;
}

absl::StatusOr<core::Workspace> OwnedWorkspace(Store* store, const AuthInfo& auth,
                                               const std::string& id) {
  FASTEST_ASSIGN_OR_RETURN(core::Workspace ws, store->GetWorkspace(id));
  absl::StatusOr<core::Project> p = store->GetProject(ws.project_id);
  if (!p.ok() || !CanSeeProject(auth, *p)) return absl::NotFoundError("Workspace not found");
  return ws;
}

absl::StatusOr<core::Snapshot> OwnedSnapshot(Store* store, const AuthInfo& auth,
                                             const std::string& id) {
  FASTEST_ASSIGN_OR_RETURN(core::Snapshot s, store->GetSnapshot(id));
  absl::StatusOr<core::Project> p = store->GetProject(s.project_id);
  if (!p.ok() || !CanSeeProject(auth, *p)) return absl::PermissionDeniedError("Access denied");
  return s;
}

absl::StatusOr<core::Job> OwnedJob(Store* store, const AuthInfo& auth, const std::string& id) {
  FASTEST_ASSIGN_OR_RETURN(core::Job j, store->GetJob(id));
  absl::StatusOr<core::Project> p = store->GetProject(j.project_id);
  if (!p.ok() || !CanSeeProject(auth, *p)) return absl::PermissionDeniedError("Access denied");
  return j;
}

}  // namespace fastest::server
