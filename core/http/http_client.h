// File: core/http/http_client.h
//
// HttpClient: the one HTTP client of fastest, on libcurl. Used for the Fastest v1 API (runner, CLI,
// server in remote mode), the Docker/Podman Engine API over a unix socket, and the Cloudflare
// Sandbox bridge (server-sent events).
//
// - Endpoints: "http://host:port", "https://...", "unix:///path/to.sock", "tcp://host:port"
//   (see ParseEndpoint). For unix sockets the request URL's host is ignored.
// - HTTP status codes are NOT errors: Send() returns OK with the response for any status. Transport
//   failures map to absl codes: connection refused / reset -> kUnavailable, timeout ->
//   kDeadlineExceeded, bad URL -> kInvalidArgument, body sink abort -> kCancelled.
// - Bearer tokens go in HttpRequest::bearer_token and are never logged or put in error messages.
// - Thread-safe: one HttpClient may be shared; connections are pooled and reused (keep-alive).
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
#include "absl/strings/string_view.h"

namespace fastest::core {

// Where to send requests: a base URL ("http://127.0.0.1:2375") and, for unix sockets, the socket
// path (base_url is then "http://localhost").
struct Endpoint {
  std::string base_url;
  std::string unix_socket;
};

// Parses "unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "http(s)://host[:port][/prefix]".
// A trailing '/' is dropped from base_url.
absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view endpoint);

struct HttpRequest {
  std::string method = "GET";
  // Absolute URL. With a unix socket, e.g. "http://localhost/v1.41/containers/json".
  std::string url;
  std::string unix_socket;  // empty = TCP
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Adds "Authorization: Bearer <token>". Never logged, never part of error messages.
  std::string bearer_token;
  // Whole-request deadline; zero = none (use for streams that follow until EOF).
  std::chrono::milliseconds timeout{30000};
  std::chrono::milliseconds connect_timeout{5000};
  // Streaming download: when set, body chunks are delivered here as they arrive and not buffered in
  // HttpResponse::body. Return false to abort the transfer (Send then returns kCancelled, unless the
  // abort came after the response completed).
  std::function<bool(absl::string_view chunk)> on_body_chunk;
  // Streaming upload: when set, `body` is ignored and the request body is read from this callback
  // (return bytes written into buf, 0 at the end); body_size is the Content-Length (-1 = chunked).
  std::function<size_t(char* buf, size_t max)> body_reader;
  long long body_size = -1;
};

struct HttpResponse {
  long status = 0;
  // Header names lower-cased, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // First header with this (case-insensitive) name, or "".
  std::string Header(absl::string_view name) const;
};

struct HttpClientOptions {
  // Idle connections kept per client for reuse.
  int max_idle_handles = 16;
  std::string user_agent = "fastest/0.1";
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs one request. See the file comment for error mapping.
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request);

 private:
  struct Pool;
  std::unique_ptr<Pool> pool_;
  HttpClientOptions options_;
};

}  // namespace fastest::core

#endif  // FASTEST_CORE_HTTP_HTTP_CLIENT_H_
