#include "server/api/standby_routes.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "server/api/api_error.h"
#include "core/net/responder.h"
#include "server/api/request_parsing.h"

namespace fastest::server {
namespace {

constexpr int kDefaultWaitSeconds = 20;

net::Response NoStore(net::Response r) {
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace

void RegisterStandbyRoutes(net::Router& router, Dispatcher* dispatcher) {
  router.Add(
      "GET", "/v1/standby/assignment",
      [dispatcher](const net::Request& req, std::shared_ptr<net::Responder> r) {
        const std::string header = req.Header("authorization");
        // Exactly "Bearer <credential>", like every other route.
        if (dispatcher == nullptr || !absl::StartsWith(header, "Bearer ") || header.size() == 7) {
          return r->Send(api_request::Unauthorized());
        }
        int wait_seconds = kDefaultWaitSeconds;
        if (req.HasQuery("wait") &&
            (!absl::SimpleAtoi(req.Query("wait"), &wait_seconds) || wait_seconds < 0)) {
          return r->Send(ErrorResponse(400, "BAD_REQUEST", "wait must be a whole number of seconds"));
        }
        dispatcher->AwaitStandbyAssignment(
            absl::string_view(header).substr(7), absl::Seconds(wait_seconds),
            [r](StandbyAnswer answer) -> void {
              switch (answer.kind) {
                case StandbyAnswer::Kind::kAssigned:
                  r->Send(NoStore(net::Response::Json(
                      200, {{"job_id", answer.job_id}, {"api_token", answer.api_token}})));
                  return;
                case StandbyAnswer::Kind::kNotYet: {
                  net::Response none;
                  none.status = 204;
                  r->Send(NoStore(std::move(none)));
                  return;
                }
                case StandbyAnswer::Kind::kRetired:
                  r->Send(NoStore(ErrorResponse(
                      410, "RETIRED", "This warm sandbox was retired without a job")));
                  return;
                case StandbyAnswer::Kind::kUnknown:
                  r->Send(api_request::Unauthorized());
                  return;
              }
            });
      },
      // Lookups in memory only: answered on the io thread; a pending poll holds no thread.
      net::Execution::kIoThread);
}

}  // namespace fastest::server
