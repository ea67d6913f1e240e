// File: server/api/api_service.h
//
// ApiService: the HTTP handlers of fastest-server, registered on a core/net Router:
//   - the embedded Fastest API /v1 (PROTOCOLS.md §1.4–1.8), wire-compatible with the original:
//     same paths, fields, status codes and error JSON `{"error":{"code","message"}}`;
//   - the worker endpoints (§3.1): GET /health, POST /run-next, POST /run-job;
//   - GET /metrics (Prometheus text).
//
// Deliberate differences from the original (its bugs):
//   - Every route but /health requires `Authorization: Bearer <token>` (also the worker routes);
//     missing/unknown → 401 {"error":{"code":"UNAUTHORIZED","message":"Authentication required"}}.
//   - Malformed JSON, a non-object body, or a field of the wrong type → 400 BAD_REQUEST
//     (the original answered 500). Missing/blank required fields stay 422 VALIDATION_ERROR.
//   - ?limit= that is not an integer → 400 BAD_REQUEST; values are clamped to 1..100.
//   - Unknown base_snapshot_id (workspace create) / output_snapshot_id (job status) → 422
//     VALIDATION_ERROR (the original: 500 FK error).
//   - Job status changes follow core::IsLegalTransition: an illegal one → 409 INVALID_STATE; cancel
//     of a job that is not pending/running → 409 INVALID_STATE (the original: 422).
//   - Snapshot create is atomic (no 500 on a concurrent duplicate).
//   - /v1/jobs/next never returns a job already claimed by the dispatcher.
//   - Per-job tokens (minted by the dispatcher) reach only what their runner needs: their job
//     (read, status along legal transitions, reporting only the snapshot they created), its
//     workspace, its base snapshot with that manifest and its blobs, blob/manifest upload and
//     exists, and one output snapshot in the job's project. Every other route answers 403.
//   - Blobs and manifests are visible per user (BlobAccess): exists/download answer only for
//     content the caller's user uploaded; uploads count against a per-user quota (413
//     QUOTA_EXCEEDED). GET /metrics needs the admin user's token or --metrics_token.
//   - Worker: /run-next with an empty queue → 200 {"message":"No pending jobs"}; /run-job without
//     job_id → 400 with the API error shape; /run-job waits for the job unless `"wait": false`
//     in the body or `?wait=false` (→ 202 {"job_id","status":"accepted"}); same for /run-next.
//     Unknown job → 404; job not pending or already claimed → 409 INVALID_STATE. Without a
//     backend (--backend=none) both answer 503 UNAVAILABLE.
#ifndef FASTEST_SERVER_API_API_SERVICE_H_
#define FASTEST_SERVER_API_API_SERVICE_H_

#include <string>

#include "server/dispatch/dispatcher.h"
#include "core/net/http_server.h"
#include "server/api/oauth_routes.h"
#include "server/metrics/metrics.h"
#include "server/store/blob_access.h"
#include "server/store/blob_store.h"
#include "server/store/store.h"

namespace fastest::server {

struct ApiServiceOptions {
  // Remote mode: the worker routes run jobs of the external API: /run-job does not look the job
  // up in the local store and /run-next is not limited to the caller's projects.
  bool remote_jobs = false;
  // GET /metrics answers unscoped tokens of this user, and `metrics_token` if set.
  std::string admin_user_id;
  std::string metrics_token;
  OAuthOptions oauth;
};

class ApiService {
 public:
  // `dispatcher` may be null (no backend): worker routes then answer 503.
  ApiService(Store* store, BlobStore* blobs, BlobAccess* access, Dispatcher* dispatcher,
             Metrics* metrics, ApiServiceOptions options);

  void Register(net::Router& router);

 private:
  Store* store_;
  BlobStore* blobs_;
  BlobAccess* access_;
  Dispatcher* dispatcher_;
  Metrics* metrics_;
  ApiServiceOptions options_;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_API_API_SERVICE_H_
