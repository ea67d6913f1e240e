#include "server/api/route_cases.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace fastest::server {

absl::StatusOr<std::vector<RouteCase>> RouteCases(
    const net::Router& router, const std::map<std::string, std::string>& values) {
  std::vector<RouteCase> out;
  for (const auto& [method, pattern] : router.List()) {
    std::vector<std::string> parts;
    for (absl::string_view segment : absl::StrSplit(pattern, '/', absl::SkipEmpty())) {
      if (segment == "*") {
        parts.emplace_back("x");
      } else if (absl::StartsWith(segment, ":")) {
        auto value = values.find(std::string(segment.substr(1)));
        if (value == values.end()) {
          return absl::InvalidArgumentError(absl::StrCat(
              method, " ", pattern, ": no test value for parameter ", segment));
        }
        parts.push_back(value->second);
      } else {
        parts.emplace_back(segment);
      }
    }
    out.push_back({method, pattern, "/" + absl::StrJoin(parts, "/")});
  }
  return out;
}

bool IsPublicRoute(const RouteCase& route) {
  // The device flow's start and poll: the CLI has no token yet (approving needs one).
  if (route.method == "POST" &&
      (route.pattern == "/v1/oauth/device" || route.pattern == "/v1/oauth/token")) {
    return true;
  }
  return route.pattern == "/health" || route.pattern == "/v1/standby/assignment" ||
         route.method == "OPTIONS" ||
         (route.method == "GET" && !absl::StartsWith(route.pattern, "/v1/") &&
          route.pattern != "/metrics");
}

}  // namespace fastest::server
