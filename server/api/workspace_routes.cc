// Workspaces: create and list in a project, read (also by the job's token), heartbeat, drift.
#include <optional>
#include <string>
#include <utility>

#include "server/api/api_error.h"
#include "server/api/api_routes.h"
#include "server/api/request_auth.h"
#include "server/api/request_parsing.h"

namespace fastest::server {
namespace {

using api_request::Forbidden;
using api_request::NonEmpty;
using api_request::OptInt;
using api_request::OptString;
using api_request::ParseLimit;
using api_request::ParseObject;
using api_request::Trim;
using api_request::Validation;
using core::Workspace;
using net::Request;
using net::Response;
using nlohmann::json;

json DriftSummary(const core::DriftReport& d) {
  return json{{"files_added", d.files_added},
              {"files_modified", d.files_modified},
              {"files_deleted", d.files_deleted},
              {"bytes_changed", d.bytes_changed},
              {"summary", d.summary ? json(*d.summary) : json(nullptr)},
              {"reported_at", d.reported_at}};
}

}  // namespace

void RegisterWorkspaceRoutes(const ApiContext& ctx, net::Router& router) {
  AuthedRoutes routes(ctx, router);
  Store* store = ctx.store;
  std::shared_ptr<JobScopes> scopes = ctx.scopes;
  routes.Post("/v1/projects/:projectId/workspaces", [store](const Request& req,
                                                            const AuthInfo& auth) {
    json body;
    if (auto err = ParseObject(req, &body, false)) return *err;
    std::optional<std::string> name, base, machine, local_path;
    if (auto err = OptString(body, "name", &name)) return *err;
    if (auto err = OptString(body, "base_snapshot_id", &base)) return *err;
    if (auto err = OptString(body, "machine_id", &machine)) return *err;
    if (auto err = OptString(body, "local_path", &local_path)) return *err;
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    std::string trimmed = Trim(name);
    if (trimmed.empty()) return Validation("Workspace name is required");
    Workspace ws;
    ws.project_id = p->id;
    ws.name = trimmed;
    ws.base_snapshot_id = NonEmpty(base);
    ws.machine_id = NonEmpty(machine);
    ws.local_path = NonEmpty(local_path);
    auto created = store->CreateWorkspace(ws);
    if (absl::IsNotFound(created.status())) {
      return Validation("base_snapshot_id does not name a snapshot of this project");
    }
    if (!created.ok()) return ResponseFromStatus(created.status());
    return Response::Json(201, {{"workspace", core::ToJson(*created)}});
  });
  routes.Get("/v1/projects/:projectId/workspaces", [store](const Request& req,
                                                           const AuthInfo& auth) {
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    auto ws = store->ListWorkspaces(p->id);
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    json a = json::array();
    for (const auto& w : *ws) {
      json item = core::ToJson(w);
      auto drift = store->ListDriftReports(w.id, 1);
      item["drift"] = drift.ok() && !drift->empty() ? DriftSummary((*drift)[0]) : json(nullptr);
      a.push_back(std::move(item));
    }
    return Response::Json(200, {{"workspaces", a}});
  });
  routes.Get("/v1/workspaces/:workspaceId", [store, scopes](const Request& req,
                                                            const AuthInfo& auth) {
    if (auth.job_scope && !scopes->IsOwnWorkspace(*auth.job_scope, req.Param("workspaceId"))) {
      return Forbidden();
    }
    auto ws = OwnedWorkspace(store, auth, req.Param("workspaceId"));
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    auto drift = store->ListDriftReports(ws->id, 1);
    if (!drift.ok()) return ResponseFromStatus(drift.status());
    return Response::Json(200, {{"workspace", core::ToJson(*ws)},
                                {"drift", drift->empty() ? json(nullptr)
                                                         : core::ToJson((*drift)[0])}});
  }, Audience::kJobToken);
  routes.Post("/v1/workspaces/:workspaceId/heartbeat", [store](const Request& req,
                                                               const AuthInfo& auth) {
    auto ws = OwnedWorkspace(store, auth, req.Param("workspaceId"));
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    auto seen = store->Heartbeat(ws->id);
    if (!seen.ok()) return ResponseFromStatus(seen.status());
    return Response::Json(200, {{"success", true}, {"last_seen_at", *seen}});
  });
  routes.Post("/v1/workspaces/:workspaceId/drift", [store](const Request& req,
                                                           const AuthInfo& auth) {
    json body;
    if (auto err = ParseObject(req, &body, true)) return *err;
    core::DriftReport d;
    std::optional<std::string> summary;
    if (auto err = OptInt(body, "files_added", &d.files_added)) return *err;
    if (auto err = OptInt(body, "files_modified", &d.files_modified)) return *err;
    if (auto err = OptInt(body, "files_deleted", &d.files_deleted)) return *err;
    if (auto err = OptInt(body, "bytes_changed", &d.bytes_changed)) return *err;
    if (auto err = OptString(body, "summary", &summary)) return *err;
    auto ws = OwnedWorkspace(store, auth, req.Param("workspaceId"));
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    d.workspace_id = ws->id;
    d.summary = NonEmpty(summary);
    auto saved = store->AddDriftReport(d);
    if (!saved.ok()) return ResponseFromStatus(saved.status());
    return Response::Json(201, {{"drift_report", core::ToJson(*saved)}});
  });
  routes.Get("/v1/workspaces/:workspaceId/drift", [store](const Request& req,
                                                          const AuthInfo& auth) {
    int limit;
    if (auto err = ParseLimit(req, 10, &limit)) return *err;
    auto ws = OwnedWorkspace(store, auth, req.Param("workspaceId"));
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    auto reports = store->ListDriftReports(ws->id, limit);
    if (!reports.ok()) return ResponseFromStatus(reports.status());
    return Response::Json(200, {{"drift_reports", JsonArray(*reports)},
                                {"latest", reports->empty() ? json(nullptr)
                                                            : core::ToJson((*reports)[0])}});
  });
}

}  // namespace fastest::server
