// File: server/api/request_auth.h
//
// Authentication and ownership checks shared by the /v1 handlers (the *_routes.cc files) and the
// job log endpoint (job_logs.cc), so both answer 401/403/404 by the same rules:
// - Authenticate: exactly "Authorization: Bearer <token>" (capital B, one space), like the
//   original; anything else is Unauthenticated "Authentication required".
// - A project is visible to its owner, and to a per-job token only inside the token's project.
//   Projects and workspaces of others are NotFound; snapshots and jobs of others are
//   PermissionDenied "Access denied" (like the original API).
//
// Example:
//   FASTEST_ASSIGN_OR_RETURN(AuthInfo auth, AuthenticateRequest(store, req));
//   FASTEST_ASSIGN_OR_RETURN(core::Job job, OwnedJob(store, auth, req.Param("jobId")));
#ifndef FASTEST_SERVER_API_REQUEST_AUTH_H_
#define FASTEST_SERVER_API_REQUEST_AUTH_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/model/model.h"
#include "core/net/http_server.h"
#include "server/store/store.h"

namespace fastest::server {

// The caller of `req` by its bearer token (the store caches token checks).
absl::StatusOr<AuthInfo> AuthenticateRequest(Store* store, const net::Request& req);

bool CanSeeProject(const AuthInfo& auth, const core::Project& p);

// NotFound "Project not found" / "Workspace not found" when not visible.
absl::StatusOr<core::Project> OwnedProject(Store* store, const AuthInfo& auth,
                                           const std::string& id);
absl::StatusOr<core::Workspace> OwnedWorkspace(Store* store, const AuthInfo& auth,
                                               const std::string& id);
// PermissionDenied "Access denied" when not visible.
absl::StatusOr<core::Snapshot> OwnedSnapshot(Store* store, const AuthInfo& auth,
                                             const std::string& id);
absl::StatusOr<core::Job> OwnedJob(Store* store, const AuthInfo& auth, const std::string& id);

}  // namespace fastest::server

#endif  // FASTEST_SERVER_API_REQUEST_AUTH_H_
