// File: server/api/route_cases.h
//
// The API's routes as test cases: every route the router holds (net::Router::List), its path
// parameters filled in. The attacker tests (api_routes_test, standby_routes_test) walk these
// instead of a hand-written list, so a route added tomorrow is attacked by them the day it lands.
//
//   auto cases = RouteCases(api.router(), {{"projectId", pid}, {"jobId", jid}, ...});
//   for (const RouteCase& c : *cases) { if (IsPublicRoute(c)) continue; ... c.method, c.path ... }
#ifndef FASTEST_SERVER_API_ROUTE_CASES_H_
#define FASTEST_SERVER_API_ROUTE_CASES_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/net/router.h"

namespace fastest::server {

struct RouteCase {
  std::string method;
  std::string pattern;  // as registered: /v1/jobs/:jobId
  std::string path;     // parameters filled: /v1/jobs/job_123
};

// Every route of `router`, each ":name" segment replaced by values[name] and a trailing "*" by
// "x". InvalidArgument naming the route when a parameter has no value (a new parameter name:
// give the tests a value for it).
absl::StatusOr<std::vector<RouteCase>> RouteCases(const net::Router& router,
                                                  const std::map<std::string, std::string>& values);

// Routes that answer without a user's API token by design: the health check, the device-code
// login's start and poll (a CLI has no token yet; approving needs one), the standby long-poll (its
// own credential) and static GETs outside /v1 (the dashboard), /metrics excepted.
bool IsPublicRoute(const RouteCase& route);

}  // namespace fastest::server

#endif  // FASTEST_SERVER_API_ROUTE_CASES_H_
