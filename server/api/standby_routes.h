// File: server/api/standby_routes.h
//
// The standby channel of warm sandboxes (a fastest extension of the API; the original's routes
// are unchanged; server/dispatch/warm_pool.h):
//
//   GET /v1/standby/assignment[?wait=SECONDS]     Authorization: Bearer <standby credential>
//     200 {"job_id","api_token"}  this sandbox's job and the job's own token (once: the
//                                 credential is spent, a later poll answers 401)
//     204                         no job yet within `wait` (default 20, at most 25): poll again
//     410 {"error":{"code":"RETIRED",...}}  this sandbox will get no job (idle TTL, eviction,
//                                 drain at shutdown): the runner exits
//     401 {"error":{"code":"UNAUTHORIZED",...}}  anything but a current standby credential
//
// A standby credential is no API token: every other route answers it 401, and it names exactly
// one sandbox, so it can fetch no other sandbox's assignment. The long-poll holds no thread: the
// answer is sent from the pool when a job is assigned or the wait ends. Answers say
// `Cache-Control: no-store`.
#ifndef FASTEST_SERVER_API_STANDBY_ROUTES_H_
#define FASTEST_SERVER_API_STANDBY_ROUTES_H_

#include "core/net/router.h"
#include "server/dispatch/dispatcher.h"

namespace fastest::server {

// `dispatcher` may be null (no backend): every poll answers 401.
void RegisterStandbyRoutes(net::Router& router, Dispatcher* dispatcher);

}  // namespace fastest::server

#endif  // FASTEST_SERVER_API_STANDBY_ROUTES_H_
