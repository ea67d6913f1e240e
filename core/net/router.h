// File: core/net/router.h
//
// Router: maps (method, path) to a handler. Patterns are '/'-separated segments; a segment
// ":name" matches any one non-empty segment and is stored in Request::params["name"]; a final
// segment "*" matches the rest of the path (params["*"]). Literal segments win over parameters
// when both match (e.g. /v1/jobs/next before /v1/jobs/:jobId).
//
// Example:
//   router.Add("GET", "/v1/jobs/:jobId", [](const Request& req, std::shared_ptr<Responder> r) {
//     r->Send(Response::Json(200, {{"id", req.Param("jobId")}}));
//   });
#ifndef FASTEST_CORE_NET_ROUTER_H_
#define FASTEST_CORE_NET_ROUTER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/net/http_types.h"

namespace fastest::net {

class Responder;

// A handler gets the request and a Responder. It may answer at once or keep the Responder and
// answer later from any thread. The Request stays valid until the handler has answered.
using Handler = std::function<void(const Request&, std::shared_ptr<Responder>)>;
// Convenience form for handlers that answer at once.
using SyncHandler = std::function<Response(const Request&)>;

// Where a route's handler runs.
enum class Execution {
  // On the io thread that read the request: for handlers that answer from memory (health, static
  // files, handing work to another thread). Never block here: the thread serves other connections.
  kIoThread,
  // On the server's worker pool (HttpServerOptions::worker_threads): for handlers that block on
  // SQLite, fsync or other slow calls.
  kWorkerPool,
};

class Router {
 public:
  void Add(absl::string_view method, absl::string_view pattern, Handler handler,
           Execution execution = Execution::kIoThread);
  void AddSync(absl::string_view method, absl::string_view pattern, SyncHandler handler,
               Execution execution = Execution::kIoThread);

  // The shape of the errors the server answers itself (default: PlainTextError).
  void SetErrorFormatter(ErrorFormatter formatter);
  Response Error(int http_status, absl::string_view code, absl::string_view message) const;
  // Answers requests that match no route (default: Error(404, "NOT_FOUND", "Route not found")).
  void SetNotFound(SyncHandler handler);
  Response NotFound(const Request& request) const;

  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
    Execution execution;
    bool wildcard = false;  // last segment is "*": matches any number of further segments
  };
  // Every route as {method, pattern} ("/v1/jobs/:jobId"), in the order added: tests that must
  // cover every route walk this list, so a new route is covered the day it is added.
  std::vector<std::pair<std::string, std::string>> List() const;

  // Finds the route for method+path; fills `params`. Returns nullptr when nothing matches;
  // `*path_matched` tells whether some route matched the path with another method.
  const Route* Match(absl::string_view method, absl::string_view path,
                     std::map<std::string, std::string>* params, bool* path_matched) const;

 private:
  static bool MatchRoute(const Route& route, absl::Span<const absl::string_view> segments,
                         std::map<std::string, std::string>* params, int* score);
  std::vector<Route> routes_;
  ErrorFormatter error_formatter_ = PlainTextError;
  SyncHandler not_found_;
};

}  // namespace fastest::net

#endif  // FASTEST_CORE_NET_ROUTER_H_
