// Snapshots: create in a project (a job's token: its one output snapshot), list, read.
#include <optional>
#include <string>

#include "server/api/api_error.h"
#include "server/api/api_routes.h"
#include "server/api/request_auth.h"
#include "server/api/request_parsing.h"

namespace fastest::server {
namespace {

using api_request::Forbidden;
using api_request::NonEmpty;
using api_request::OptString;
using api_request::ParseLimit;
using api_request::ParseObject;
using api_request::Validation;
using net::Request;
using net::Response;
using nlohmann::json;

}  // namespace

void RegisterSnapshotRoutes(const ApiContext& ctx, net::Router& router) {
  AuthedRoutes routes(ctx, router);
  Store* store = ctx.store;
  std::shared_ptr<JobScopes> scopes = ctx.scopes;
  routes.Post("/v1/projects/:projectId/snapshots", [ctx, store, scopes](const Request& req,
                                                                     const AuthInfo& auth) {
    json body;
    if (auto err = ParseObject(req, &body, false)) return *err;
    std::optional<std::string> hash, parent, source;
    if (auto err = OptString(body, "manifest_hash", &hash)) return *err;
    if (auto err = OptString(body, "parent_snapshot_id", &parent)) return *err;
    if (auto err = OptString(body, "source", &source)) return *err;
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    if (!hash || hash->empty()) return Validation("manifest_hash is required");
    if (auth.job_scope) {
      // One output snapshot, of a manifest this job may read (it uploaded it, or its base).
      auto existing = scopes->OutputSnapshot(*auth.job_scope);
      if (!existing.ok()) return ResponseFromStatus(existing.status());
      if (!CanReadContent(ctx, auth, BlobStore::Kind::kManifest, *hash)) return Forbidden();
      if (*existing) {
        auto prior = store->GetSnapshot(**existing);
        if (!prior.ok() || prior->manifest_hash != *hash) {
          return ErrorResponse(403, "FORBIDDEN", "This job already created its output snapshot");
        }
      }
    }
    auto created = store->CreateSnapshot(p->id, *hash, NonEmpty(parent),
                                         NonEmpty(source).value_or("cli"));
    if (!created.ok()) return ResponseFromStatus(created.status());
    if (auth.job_scope) scopes->SetOutputSnapshot(*auth.job_scope, created->first.id);
    return Response::Json(created->second ? 201 : 200,
                          {{"snapshot", core::ToJson(created->first)},
                           {"created", created->second}});
  }, Audience::kJobToken);
  routes.Get("/v1/projects/:projectId/snapshots", [store](const Request& req,
                                                          const AuthInfo& auth) {
    int limit;
    if (auto err = ParseLimit(req, 50, &limit)) return *err;
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    auto snaps = store->ListSnapshots(p->id, limit);
    if (!snaps.ok()) return ResponseFromStatus(snaps.status());
    return Response::Json(200, {{"snapshots", JsonArray(*snaps)}});
  });
  routes.Get("/v1/snapshots/:snapshotId", [store, scopes](const Request& req,
                                                          const AuthInfo& auth) {
    if (auth.job_scope) {
      // Its base snapshot and its own output, nothing else of the project.
      if (!scopes->MayReadSnapshot(*auth.job_scope, req.Param("snapshotId"))) return Forbidden();
    }
    auto s = OwnedSnapshot(store, auth, req.Param("snapshotId"));
    if (!s.ok()) return ResponseFromStatus(s.status());
    return Response::Json(200, {{"snapshot", core::ToJson(*s)}});
  }, Audience::kJobToken);
}

}  // namespace fastest::server
