// The worker endpoints (POST /run-next, POST /run-job) and GET /metrics.
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "core/crypto/secure_random.h"
#include "server/api/api_error.h"
#include "server/api/api_routes.h"
#include "server/api/request_auth.h"
#include "server/api/request_parsing.h"
#include "server/api/run_result_json.h"

namespace fastest::server {
namespace {

using api_request::Forbidden;
using api_request::OptString;
using api_request::ParseObject;
using api_request::Unauthorized;
using api_request::WaitRequested;
using net::Request;
using net::Responder;
using net::Response;
using nlohmann::json;

// With `wait`, the job's RunResult answers the request when the job ends; without, nothing.
Dispatcher::DoneCallback AnswerWhenDone(bool wait, const std::shared_ptr<Responder>& r) {
  if (!wait) return nullptr;
  return [r](const RunResult& result) { r->Send(Response::Json(200, RunResultToJson(result))); };
}

}  // namespace

void RegisterWorkerRoutes(const ApiContext& ctx, net::Router& router) {
  AuthedRoutes routes(ctx, router);
  Store* store = ctx.store;
  Dispatcher* dispatcher = ctx.dispatcher;
  Metrics* metrics = ctx.metrics;
  const ApiServiceOptions& options = ctx.options;
  const bool remote = options.remote_jobs;
  // Admin only: an unscoped token of the admin user, or the dedicated --metrics_token.
  router.AddSync("GET", "/metrics", [store, metrics, options](const Request& req) {
    const std::string header = req.Header("authorization");
    const bool metrics_token =
        !options.metrics_token.empty() && absl::StartsWith(header, "Bearer ") &&
        core::ConstantTimeEquals(absl::string_view(header).substr(7), options.metrics_token);
    if (!metrics_token) {
      auto auth = AuthenticateRequest(store, req);
      if (!auth.ok()) {
        if (absl::IsUnauthenticated(auth.status())) return Unauthorized();
        return ResponseFromStatus(auth.status());
      }
      if (auth->user_id != options.admin_user_id || auth->project_scope || auth->job_scope) {
        return Forbidden();
      }
    }
    auto counts = store->CountJobsByStatus();
    if (!counts.ok()) return ResponseFromStatus(counts.status());
    return Response::Text(200, metrics->Render(*counts), "text/plain; version=0.0.4");
  }, net::Execution::kWorkerPool);
  routes.PostAsync("/run-next", [dispatcher, remote](const Request& req, const AuthInfo& auth,
                                                     std::shared_ptr<Responder> r) {
    json body;
    if (auto err = ParseObject(req, &body, true)) return r->Send(*err);
    if (auth.project_scope) return r->Send(ErrorResponse(403, "FORBIDDEN", "Access denied"));
    if (!dispatcher) {
      return r->Send(ErrorResponse(503, "UNAVAILABLE", "No sandbox backend configured"));
    }
    const bool wait = WaitRequested(req, body);
    Dispatcher::DoneCallback done = AnswerWhenDone(wait, r);
    auto id = dispatcher->RunNext(
        remote ? std::nullopt : std::optional<std::string>(auth.user_id), done);
    if (!id.ok()) return r->Send(ResponseFromStatus(id.status()));
    if (!*id) return r->Send(Response::Json(200, {{"message", "No pending jobs"}}));
    if (!wait) r->Send(Response::Json(202, {{"job_id", **id}, {"status", "accepted"}}));
  });
  routes.PostAsync("/run-job", [store, dispatcher, remote](const Request& req,
                                                          const AuthInfo& auth,
                                                          std::shared_ptr<Responder> r) {
    json body;
    if (auto err = ParseObject(req, &body, false)) return r->Send(*err);
    std::optional<std::string> job_id;
    if (auto err = OptString(body, "job_id", &job_id)) return r->Send(*err);
    if (!job_id || job_id->empty()) {
      return r->Send(ErrorResponse(400, "VALIDATION_ERROR", "job_id is required"));
    }
    if (auth.project_scope) return r->Send(ErrorResponse(403, "FORBIDDEN", "Access denied"));
    if (!remote) {
      auto job = OwnedJob(store, auth, *job_id);
      if (!job.ok()) return r->Send(ResponseFromStatus(job.status()));
    }
    if (!dispatcher) {
      return r->Send(ErrorResponse(503, "UNAVAILABLE", "No sandbox backend configured"));
    }
    const bool wait = WaitRequested(req, body);
    Dispatcher::DoneCallback done = AnswerWhenDone(wait, r);
    absl::Status s = dispatcher->RunJob(*job_id, done);
    if (!s.ok()) return r->Send(ResponseFromStatus(s));
    if (!wait) r->Send(Response::Json(202, {{"job_id", *job_id}, {"status", "accepted"}}));
  });
}

}  // namespace fastest::server
