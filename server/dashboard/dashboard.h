// File: server/dashboard/dashboard.h
//
// The web dashboard: a small single-page app (server/dashboard/assets) compiled into
// fastest-server. It is a plain client of the /v1 API; the page holds the user's API token in
// sessionStorage and sends it as `Authorization: Bearer`, so these routes need no auth and
// serve nothing but the static files.
//
//   GET /                   -> index.html
//   GET /dashboard/<file>   -> one asset (404 for anything else)
//
// Every answer carries a strict Content-Security-Policy (no inline script, nothing from
// another origin), nosniff, no-referrer, DENY framing and same-origin COOP/CORP, and an ETag
// (If-None-Match -> 304).
//
// Example:
//   net::HttpServer server(options);
//   dashboard::Register(server.router());
#ifndef FASTEST_SERVER_DASHBOARD_DASHBOARD_H_
#define FASTEST_SERVER_DASHBOARD_DASHBOARD_H_

#include "absl/strings/string_view.h"
#include "core/net/http_types.h"
#include "core/net/router.h"

namespace fastest::server::dashboard {

// The Content-Security-Policy of every dashboard answer.
inline constexpr char kContentSecurityPolicy[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

// Adds GET / and GET /dashboard/:file.
void Register(net::Router& router);

// The answer for asset `name` ("index.html", "app.js", ...) given the request's If-None-Match
// header: 200 with the bytes, 304, or 404.
net::Response AssetResponse(absl::string_view name, absl::string_view if_none_match);

}  // namespace fastest::server::dashboard

#endif  // FASTEST_SERVER_DASHBOARD_DASHBOARD_H_
