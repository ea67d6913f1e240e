// File: server/api/api_routes.h
//
// Private to server/api: what the route files of ApiService share. ApiService::Register builds
// one ApiContext and hands it to one Register*Routes function per resource (health, projects,
// workspaces, snapshots, blobs, jobs, worker endpoints). Handlers copy the pointers they need;
// the objects behind them outlive the router.
//
// AuthedRoutes registers handlers behind bearer-token authentication and picks where they run:
// every route that reads SQLite or fsyncs on the worker pool; only the snapshot hot path
// (PostOnIoThread: exists, batch upload/download, answered from memory and the page cache) on the
// io thread that read the request.
//
// Example:
//   AuthedRoutes routes(ctx, router);
//   routes.Get("/v1/jobs/:jobId", [store](const Request& req, const AuthInfo& auth) { ... },
//              Audience::kJobToken);
#ifndef FASTEST_SERVER_API_API_ROUTES_H_
#define FASTEST_SERVER_API_API_ROUTES_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/model/model.h"
#include "core/net/http_server.h"
#include "nlohmann/json.hpp"
#include "server/api/api_service.h"
#include "server/api/job_scopes.h"
#include "server/dispatch/dispatcher.h"
#include "server/metrics/metrics.h"
#include "server/store/blob_access.h"
#include "server/store/blob_store.h"
#include "server/store/store.h"

namespace fastest::server {

// The dependencies of the route handlers.
struct ApiContext {
  Store* store = nullptr;
  BlobStore* blobs = nullptr;
  BlobAccess* access = nullptr;
  Dispatcher* dispatcher = nullptr;  // null without a backend: worker routes answer 503
  Metrics* metrics = nullptr;
  ApiServiceOptions options;
  std::shared_ptr<JobScopes> scopes;  // what per-job tokens may reach (shared by all routes)
};

void RegisterHealthRoutes(const ApiContext& ctx, net::Router& router);
void RegisterProjectRoutes(const ApiContext& ctx, net::Router& router);
void RegisterWorkspaceRoutes(const ApiContext& ctx, net::Router& router);
void RegisterSnapshotRoutes(const ApiContext& ctx, net::Router& router);
void RegisterBlobRoutes(const ApiContext& ctx, net::Router& router);
void RegisterJobRoutes(const ApiContext& ctx, net::Router& router);
void RegisterWorkerRoutes(const ApiContext& ctx, net::Router& router);

// Who may call a route. Per-job tokens reach only kJobToken routes (and there only their own
// job's records, checked by the handler through JobScopes); elsewhere they get 403 before the
// handler runs.
enum class Audience { kUserOnly, kJobToken };

using AuthedHandler = std::function<net::Response(const net::Request&, const AuthInfo&)>;
using AuthedAsyncHandler =
    std::function<void(const net::Request&, const AuthInfo&, std::shared_ptr<net::Responder>)>;

class AuthedRoutes {
 public:
  AuthedRoutes(const ApiContext& ctx, net::Router& router) : store_(ctx.store), router_(router) {}

  // On the worker pool. A missing/unknown token answers 401, a store failure its error.
  void Get(const char* path, AuthedHandler fn, Audience audience = Audience::kUserOnly);
  void Post(const char* path, AuthedHandler fn, Audience audience = Audience::kUserOnly);
  void Put(const char* path, AuthedHandler fn, Audience audience = Audience::kUserOnly);
  // On the io thread that read the request: only for handlers that never block (the token check
  // reaches SQLite only on a cache miss).
  void PostOnIoThread(const char* path, AuthedHandler fn, Audience audience = Audience::kUserOnly);
  // On the worker pool, answering through the Responder (possibly later): user tokens only; any
  // authentication failure answers 401.
  void PostAsync(const char* path, AuthedAsyncHandler fn);

 private:
  net::SyncHandler Authed(AuthedHandler fn, Audience audience) const;

  Store* store_;
  net::Router& router_;
};

// Whether the caller may see a blob/manifest: its user uploaded it (BlobAccess), and for a
// per-job token it is also part of the job's base snapshot or the job's own upload.
bool CanReadContent(const ApiContext& ctx, const AuthInfo& auth, BlobStore::Kind kind,
                    absl::string_view hash);

// A 200 answer with a JSON body written by the caller.
net::Response JsonText(std::string body);

// The records' JSON forms as an array.
template <typename T>
nlohmann::json JsonArray(const std::vector<T>& items) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& i : items) a.push_back(core::ToJson(i));
  return a;
}

}  // namespace fastest::server

#endif  // FASTEST_SERVER_API_API_ROUTES_H_
