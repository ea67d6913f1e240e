// GET /health: no authentication, answered on the io thread.
#include "absl/strings/str_cat.h"
#include "core/model/model.h"
#include "server/api/api_routes.h"

namespace fastest::server {

void RegisterHealthRoutes(const ApiContext&, net::Router& router) {
  router.AddSync("GET", "/health", [](const net::Request&) {
    // The original API's body ({status, timestamp}) plus our own fields. Written directly (the
    // timestamp needs no escaping): load balancers and benchmarks call this one the most.
    return JsonText(absl::StrCat(R"({"service":"fastest-server","status":"ok","timestamp":")",
                                 core::NowIso8601(), R"("})"));
  });
}

}  // namespace fastest::server
