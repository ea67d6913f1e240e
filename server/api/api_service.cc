#include "server/api/api_service.h"

#include <memory>
#include <utility>

#include "server/api/api_error.h"
#include "server/api/api_routes.h"
#include "server/api/job_scopes.h"
#include "server/api/oauth_routes.h"
#include "server/api/standby_routes.h"

namespace fastest::server {

ApiService::ApiService(Store* store, BlobStore* blobs, BlobAccess* access, Dispatcher* dispatcher,
                       Metrics* metrics, ApiServiceOptions options)
    : store_(store),
      blobs_(blobs),
      access_(access),
      dispatcher_(dispatcher),
      metrics_(metrics),
      options_(std::move(options)) {}

void ApiService::Register(net::Router& router) {
  // The server's own errors (unknown route, 413, 401 before the body) in the API's shape.
  router.SetErrorFormatter(ErrorResponse);
  ApiContext ctx;
  ctx.store = store_;
  ctx.blobs = blobs_;
  ctx.access = access_;
  ctx.dispatcher = dispatcher_;
  ctx.metrics = metrics_;
  ctx.options = options_;
  ctx.scopes = std::make_shared<JobScopes>(store_, blobs_);

  RegisterOAuthRoutes(router, store_, options_.oauth);
  RegisterHealthRoutes(ctx, router);
  RegisterProjectRoutes(ctx, router);
  RegisterWorkspaceRoutes(ctx, router);
  RegisterSnapshotRoutes(ctx, router);
  RegisterBlobRoutes(ctx, router);
  RegisterJobRoutes(ctx, router);
  RegisterWorkerRoutes(ctx, router);
  RegisterStandbyRoutes(router, dispatcher_);
}

}  // namespace fastest::server
