#include "server/api/api_routes.h"

#include <utility>

#include "absl/status/status.h"
#include "server/api/api_error.h"
#include "server/api/request_auth.h"
#include "server/api/request_parsing.h"

namespace fastest::server {

using net::Request;
using net::Responder;
using net::Response;

net::SyncHandler AuthedRoutes::Authed(AuthedHandler fn, Audience audience) const {
  return [store = store_, fn = std::move(fn), audience](const Request& req) -> Response {
    auto auth = AuthenticateRequest(store, req);
    if (!auth.ok()) {
      if (absl::IsUnauthenticated(auth.status())) return api_request::Unauthorized();
      return ResponseFromStatus(auth.status());
    }
    if (auth->job_scope && audience != Audience::kJobToken) return api_request::Forbidden();
    return fn(req, *auth);
  };
}

// Every authenticated route reads SQLite (the token, then the records): off the io threads.
void AuthedRoutes::Get(const char* path, AuthedHandler fn, Audience audience) {
  router_.AddSync("GET", path, Authed(std::move(fn), audience), net::Execution::kWorkerPool);
}

void AuthedRoutes::Post(const char* path, AuthedHandler fn, Audience audience) {
  router_.AddSync("POST", path, Authed(std::move(fn), audience), net::Execution::kWorkerPool);
}

void AuthedRoutes::Put(const char* path, AuthedHandler fn, Audience audience) {
  router_.AddSync("PUT", path, Authed(std::move(fn), audience), net::Execution::kWorkerPool);
}

// The snapshot hot path (exists, batch upload/download): CPU work on data in memory and the
// page cache (token cache, in-memory grants and pack index, hash checks, appends without sync;
// grants reach SQLite at most once per 20,000 new blobs, a token only on a cache miss), answered
// on the io thread that read the request: two thread hops per batch made a full snapshot
// 20-40 ms slower on 2 cores. Manifest uploads (fsync) and everything else use the pool.
void AuthedRoutes::PostOnIoThread(const char* path, AuthedHandler fn, Audience audience) {
  router_.AddSync("POST", path, Authed(std::move(fn), audience), net::Execution::kIoThread);
}

void AuthedRoutes::PostAsync(const char* path, AuthedAsyncHandler fn) {
  router_.Add(
      "POST", path,
      [store = store_, fn = std::move(fn)](const Request& req, std::shared_ptr<Responder> r) {
        auto auth = AuthenticateRequest(store, req);
        if (!auth.ok()) return r->Send(api_request::Unauthorized());
        if (auth->job_scope) return r->Send(api_request::Forbidden());
        fn(req, *auth, std::move(r));
      },
      net::Execution::kWorkerPool);
}

bool CanReadContent(const ApiContext& ctx, const AuthInfo& auth, BlobStore::Kind kind,
                    absl::string_view hash) {
  if (!ctx.access->CanRead(auth.user_id, kind, hash)) return false;
  if (!auth.job_scope) return true;
  return ctx.scopes->MayRead(*auth.job_scope, kind, hash);
}

Response JsonText(std::string body) {
  Response r;
  r.status = 200;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

}  // namespace fastest::server
