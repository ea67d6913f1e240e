// Jobs: create, list, next pending, read (also by the job's token), cancel, status updates.
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
using api_request::Trim;
using api_request::Validation;
using net::Request;
using net::Response;
using nlohmann::json;

}  // namespace

void RegisterJobRoutes(const ApiContext& ctx, net::Router& router) {
  AuthedRoutes routes(ctx, router);
  Store* store = ctx.store;
  Dispatcher* dispatcher = ctx.dispatcher;
  std::shared_ptr<JobScopes> scopes = ctx.scopes;
  routes.Post("/v1/jobs", [store, dispatcher](const Request& req, const AuthInfo& auth) {
    json body;
    if (auto err = ParseObject(req, &body, false)) return *err;
    std::optional<std::string> workspace_id, prompt;
    if (auto err = OptString(body, "workspace_id", &workspace_id)) return *err;
    if (auto err = OptString(body, "prompt", &prompt)) return *err;
    if (!workspace_id || workspace_id->empty()) return Validation("workspace_id is required");
    std::string trimmed = Trim(prompt);
    if (trimmed.empty()) return Validation("prompt is required");
    auto ws = store->GetWorkspace(*workspace_id);
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    auto p = store->GetProject(ws->project_id);
    if (!p.ok() || !CanSeeProject(auth, *p)) {
      return ErrorResponse(403, "FORBIDDEN", "Access denied");
    }
    auto job = store->CreateJob(*ws, trimmed);
    if (!job.ok()) return ResponseFromStatus(job.status());
    if (dispatcher) dispatcher->NotifyJobCreated();
    return Response::Json(201, {{"job", core::ToJson(*job)}});
  });
  routes.Get("/v1/jobs", [store](const Request& req, const AuthInfo& auth) {
    JobFilter f;
    if (auto err = ParseLimit(req, 20, &f.limit)) return *err;
    f.owner_user_id = auth.user_id;
    f.project_scope = auth.project_scope;
    if (!req.Query("workspace_id").empty()) f.workspace_id = req.Query("workspace_id");
    if (!req.Query("project_id").empty()) f.project_id = req.Query("project_id");
    if (!req.Query("status").empty()) f.status = req.Query("status");
    auto jobs = store->ListJobs(f);
    if (!jobs.ok()) return ResponseFromStatus(jobs.status());
    return Response::Json(200, {{"jobs", JsonArray(*jobs)}});
  });
  routes.Get("/v1/jobs/next", [store](const Request&, const AuthInfo& auth) {
    auto job = store->NextPendingJob(auth.user_id, auth.project_scope);
    if (!job.ok()) return ResponseFromStatus(job.status());
    return Response::Json(200, {{"job", *job ? core::ToJson(**job) : json(nullptr)}});
  });
  routes.Get("/v1/jobs/:jobId", [store](const Request& req, const AuthInfo& auth) {
    if (auth.job_scope && *auth.job_scope != req.Param("jobId")) return Forbidden();
    auto job = OwnedJob(store, auth, req.Param("jobId"));
    if (!job.ok()) return ResponseFromStatus(job.status());
    return Response::Json(200, {{"job", core::ToJson(*job)}});
  }, Audience::kJobToken);
  routes.Post("/v1/jobs/:jobId/cancel", [store, dispatcher](const Request& req,
                                                            const AuthInfo& auth) {
    auto job = OwnedJob(store, auth, req.Param("jobId"));
    if (!job.ok()) return ResponseFromStatus(job.status());
    auto cancelled = store->CancelJob(job->id);
    if (!cancelled.ok()) return ResponseFromStatus(cancelled.status());
    if (dispatcher) dispatcher->NotifyJobCancelled(job->id);
    return Response::Json(200, {{"job", core::ToJson(*cancelled)}});
  });
  routes.Post("/v1/jobs/:jobId/status", [store, scopes](const Request& req, const AuthInfo& auth) {
    if (auth.job_scope && *auth.job_scope != req.Param("jobId")) return Forbidden();
    json body;
    if (auto err = ParseObject(req, &body, false)) return *err;
    std::optional<std::string> status, output, error;
    if (auto err = OptString(body, "status", &status)) return *err;
    if (auto err = OptString(body, "output_snapshot_id", &output)) return *err;
    if (auto err = OptString(body, "error", &error)) return *err;
    auto job = OwnedJob(store, auth, req.Param("jobId"));
    if (!job.ok()) return ResponseFromStatus(job.status());
    auto to = core::ParseJobStatus(status.value_or(""));
    if (!to.ok()) return Validation("Invalid status");
    if (NonEmpty(output)) {
      auto snap = store->GetSnapshot(*output);
      if (!snap.ok() || snap->project_id != job->project_id) {
        return Validation("output_snapshot_id does not name a snapshot of this project");
      }
      if (auth.job_scope && !scopes->MayReportOutput(*auth.job_scope, *output)) {
        return ErrorResponse(403, "FORBIDDEN",
                             "output_snapshot_id must be the snapshot this job created");
      }
    }
    auto updated = store->UpdateJobStatus(job->id, *to, NonEmpty(output), NonEmpty(error),
                                          /*enforce_transitions=*/true);
    if (!updated.ok()) return ResponseFromStatus(updated.status());
    return Response::Json(200, {{"job", core::ToJson(*updated)}});
  }, Audience::kJobToken);
}

}  // namespace fastest::server
