// File: server/api/oauth_routes.h
//
// Device login (RFC 8628 device authorization grant), wire compatible with the original API's
// /v1/oauth/* routes, and GET /v1/auth/me:
//   POST /v1/oauth/device            no auth: new device_code + user_code (pending codes capped)
//   POST /v1/oauth/device/authorize  user token (job tokens 403): approves a user_code for the
//                                    token's user (the original needs no auth here; we do)
//   POST /v1/oauth/device/deny       user token: denies a user_code
//   POST /v1/oauth/token             no auth: device_code -> new 30-day API token, or RFC 8628
//                                    {"error","error_description"} (HTTP 400)
//   GET  /v1/auth/me                 any token: {"user":{"id","email"}}
// The two unauthenticated routes take a body before any token is known: AdmitsUnauthenticatedBody
// tells the server's pre-auth body gate which requests those are (small bodies only).
#ifndef FASTEST_SERVER_API_OAUTH_ROUTES_H_
#define FASTEST_SERVER_API_OAUTH_ROUTES_H_

#include "absl/time/time.h"
#include "core/net/http_server.h"
#include "server/store/store.h"

namespace fastest::server {

struct OAuthOptions {
  absl::Duration device_code_ttl = absl::Seconds(900);
  absl::Duration token_ttl = absl::Hours(24 * 30);
  // Unexpired device codes at most: the create route is unauthenticated.
  int max_pending_device_codes = 1000;
};

inline constexpr size_t kMaxUnauthenticatedBodyBytes = 4096;

void RegisterOAuthRoutes(net::Router& router, Store* store, OAuthOptions options);

// True for a POST to /v1/oauth/device or /v1/oauth/token with a Content-Length of at most
// kMaxUnauthenticatedBodyBytes.
bool AdmitsUnauthenticatedBody(const net::Request& req);

}  // namespace fastest::server

#endif  // FASTEST_SERVER_API_OAUTH_ROUTES_H_
