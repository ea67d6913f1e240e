// File: core/http/http_transport.h
//
// The request/response types every HTTP client of fastest shares, and HttpTransport, the interface
// code that only sends requests (core/api's ApiClient) depends on. Two implementations:
//   - HttpClient (core/http/http_client.h), libcurl: the server, CLI, backends and tests.
//   - AsioHttpClient (core/http/asio_http_client.h), Boost.Beast + OpenSSL: the runner, which starts
//     once per job and so must not pay for loading libcurl's ~35 shared libraries every time.
// Both follow the same contract (see HttpTransport::Send), with one deliberate difference: proxies.
// HttpClient honours http_proxy / HTTPS_PROXY / NO_PROXY (libcurl's rules); AsioHttpClient ignores
// every proxy variable, because the runner's environment inside a sandbox is partly the user's
// and the agent's, and its bearer token must only go to the API address the server gave it.
// core/http/README.md has the reasoning; proxy_env_test pins both behaviours.
#ifndef FASTEST_CORE_HTTP_HTTP_TRANSPORT_H_
#define FASTEST_CORE_HTTP_HTTP_TRANSPORT_H_

#include <chrono>
#include <cstddef>
#include <functional>
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
  // Gathered upload: when non-empty (and no body_reader), `body` is ignored and the body is these
  // pieces back to back. They point into the caller's memory, which must stay valid until Send
  // returns; over plain TCP and unix sockets they are written without being copied, and a
  // request can be replayed (unlike body_reader).
  std::vector<absl::string_view> body_pieces;
};

// Total size of a gathered body.
size_t BodyPiecesSize(const HttpRequest& request);

// Copies a gathered body into a buffer piece by piece, for transports that cannot send the
// pieces as they are (libcurl's read callback, TLS records).
class BodyPiecesReader {
 public:
  explicit BodyPiecesReader(const std::vector<absl::string_view>& pieces) : pieces_(pieces) {}
  // Bytes copied into buf (at most max); 0 at the end.
  size_t Read(char* buf, size_t max);

 private:
  const std::vector<absl::string_view>& pieces_;
  size_t piece_ = 0, offset_ = 0;
};

struct HttpResponse {
  long status = 0;
  // Header names lower-cased, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // First header with this (case-insensitive) name, or "".
  std::string Header(absl::string_view name) const;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // Performs one request. HTTP status codes are NOT errors: returns OK with the response for any
  // status. Transport failures map to absl codes: connection refused / reset -> kUnavailable,
  // timeout -> kDeadlineExceeded, bad URL -> kInvalidArgument, body sink abort -> kCancelled.
  // Thread-safe; connections are pooled and reused (keep-alive). The bearer token never appears
  // in error messages.
  virtual absl::StatusOr<HttpResponse> Send(const HttpRequest& request) = 0;
};

}  // namespace fastest::core

#endif  // FASTEST_CORE_HTTP_HTTP_TRANSPORT_H_
