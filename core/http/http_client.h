// File: core/http/http_client.h
//
// HttpClient: the libcurl HttpTransport. Used for the Fastest v1 API (CLI, server in remote mode),
// the Docker/Podman Engine API over a unix socket, and the Cloudflare Sandbox bridge (server-sent
// events). The runner uses AsioHttpClient instead (see http_transport.h for why).
//
// - Endpoints: "http://host:port", "https://...", "unix:///path/to.sock", "tcp://host:port"
//   (see ParseEndpoint). For unix sockets the request URL's host is ignored.
// - HTTP status codes are NOT errors: Send() returns OK with the response for any status. Transport
//   failures map to absl codes: connection refused / reset -> kUnavailable, timeout ->
//   kDeadlineExceeded, bad URL -> kInvalidArgument, body sink abort -> kCancelled.
// - Bearer tokens go in HttpRequest::bearer_token and are never logged or put in error messages.
// - Thread-safe: one HttpClient may be shared; connections are pooled and reused (keep-alive).
// - Proxies: libcurl's environment rules apply (http_proxy -- lowercase only for http:// --,
//   HTTPS_PROXY, ALL_PROXY, NO_PROXY), so the CLI and the server work behind a proxy. Unix-socket
//   requests never use one. The runner's AsioHttpClient deliberately ignores them (README.md).
//
// Example:
//   fastest::core::HttpClient http;
//   HttpRequest req;
//   req.method = "GET";
//   req.url = "http://127.0.0.1:8788/v1/jobs/next";
//   req.bearer_token = token;
//   FASTEST_ASSIGN_OR_RETURN(HttpResponse resp, http.Send(req));
//   if (resp.status != 200) ...
#ifndef FASTEST_CORE_HTTP_HTTP_CLIENT_H_
#define FASTEST_CORE_HTTP_HTTP_CLIENT_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/http/http_transport.h"

namespace fastest::core {

struct HttpClientOptions {
  // Idle connections kept per client for reuse.
  int max_idle_handles = 16;
  std::string user_agent = "fastest/0.1";
};

class HttpClient : public HttpTransport {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient() override;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs one request. See the file comment for error mapping.
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override;

 private:
  struct Pool;
  std::unique_ptr<Pool> pool_;
  HttpClientOptions options_;
};

}  // namespace fastest::core

#endif  // FASTEST_CORE_HTTP_HTTP_CLIENT_H_
