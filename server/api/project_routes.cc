// /v1/projects: create, list, one project with its recent records, status, events.
#include <optional>
#include <string>

#include "server/api/api_error.h"
#include "server/api/api_routes.h"
#include "server/api/request_auth.h"
#include "server/api/request_parsing.h"

namespace fastest::server {
namespace {

using api_request::OptString;
using api_request::ParseLimit;
using api_request::ParseObject;
using api_request::Trim;
using api_request::Validation;
using net::Request;
using net::Response;
using nlohmann::json;

}  // namespace

void RegisterProjectRoutes(const ApiContext& ctx, net::Router& router) {
  AuthedRoutes routes(ctx, router);
  Store* store = ctx.store;
  routes.Post("/v1/projects", [store](const Request& req, const AuthInfo& auth) {
    json body;
    if (auto err = ParseObject(req, &body, false)) return *err;
    std::optional<std::string> name;
    if (auto err = OptString(body, "name", &name)) return *err;
    std::string trimmed = Trim(name);
    if (trimmed.empty()) return Validation("Project name is required");
    if (auth.project_scope) return ErrorResponse(403, "FORBIDDEN", "Access denied");
    auto p = store->CreateProject(auth.user_id, trimmed);
    if (!p.ok()) return ResponseFromStatus(p.status());
    return Response::Json(201, {{"project", core::ToJson(*p)}});
  });
  routes.Get("/v1/projects", [store](const Request&, const AuthInfo& auth) {
    auto ps = store->ListProjects(auth.user_id);
    if (!ps.ok()) return ResponseFromStatus(ps.status());
    json a = json::array();
    for (const auto& p : *ps) {
      if (CanSeeProject(auth, p)) a.push_back(core::ToJson(p));
    }
    return Response::Json(200, {{"projects", a}});
  });
  routes.Get("/v1/projects/:projectId", [store](const Request& req, const AuthInfo& auth) {
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    auto ws = store->ListWorkspaces(p->id);
    auto snaps = store->ListSnapshots(p->id, 10);
    auto events = store->ListEvents(p->id, 20);
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    if (!snaps.ok()) return ResponseFromStatus(snaps.status());
    if (!events.ok()) return ResponseFromStatus(events.status());
    return Response::Json(200, {{"project", core::ToJson(*p)},
                                {"workspaces", JsonArray(*ws)},
                                {"snapshots", JsonArray(*snaps)},
                                {"events", JsonArray(*events)}});
  });
  routes.Get("/v1/projects/:projectId/status", [store](const Request& req, const AuthInfo& auth) {
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    auto events = store->ListEvents(p->id, 1);
    if (!events.ok()) return ResponseFromStatus(events.status());
    json last = nullptr;
    if (!events->empty()) {
      last = {{"type", (*events)[0].type}, {"created_at", (*events)[0].created_at}};
    }
    return Response::Json(
        200, {{"last_snapshot_id", p->last_snapshot_id ? json(*p->last_snapshot_id) : json()},
              {"updated_at", p->updated_at},
              {"last_activity", last}});
  });
  routes.Get("/v1/projects/:projectId/events", [store](const Request& req, const AuthInfo& auth) {
    int limit;
    if (auto err = ParseLimit(req, 20, &limit)) return *err;
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    auto events = store->ListEvents(p->id, limit);
    if (!events.ok()) return ResponseFromStatus(events.status());
    return Response::Json(200, {{"events", JsonArray(*events)}});
  });
}

}  // namespace fastest::server
