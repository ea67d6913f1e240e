// File: core/http/asio_http_client.h
//
// AsioHttpClient: the HttpTransport on Boost.Asio/Beast + OpenSSL, for the runner. It starts once per
// job, and libcurl's ~35 shared libraries cost ~8 ms of loader work at every start; this client
// needs only what the runner links statically anyway (OpenSSL, libstdc++). Same contract as
// HttpClient (see http_transport.h):
//
// - HTTP/1.1 over http://host[:port], https://host[:port] (verify_peer against OpenSSL's default
//   verify paths, so SSL_CERT_FILE / SSL_CERT_DIR apply; SNI; host name / IP check) and unix sockets
//   (HttpRequest::unix_socket; the URL's host only feeds the Host header).
// - HTTP status codes are not errors. Connection refused / reset / DNS failure -> kUnavailable,
//   timeout -> kDeadlineExceeded, bad URL -> kInvalidArgument, body sink abort -> kCancelled.
// - Thread-safe; keep-alive connections are pooled per (scheme, host, port, unix socket). A pooled
//   connection the server closed meanwhile is retried once on a fresh connection when nothing of
//   the response arrived and the request can be replayed.
// - No body size limit; on_body_chunk streams without buffering; body_reader streams the upload
//   (Content-Length from body_size, chunked when it is -1); body_pieces are written gathered,
//   without a copy (staged into TLS records over https).
// - No proxy, ever: HTTP_PROXY / HTTPS_PROXY / ALL_PROXY (either case) are ignored. The runner
//   talks to the API address the server handed it (loopback, the host, or a unix socket in a
//   sealed sandbox); a proxy variable planted in the sandbox environment must not redirect its
//   bearer token. Use HttpClient where a proxy must be honoured.
// - Host names are resolved by getaddrinfo on a thread of its own, waited for only until the
//   connect deadline (a hung lookup is kDeadlineExceeded on time). IP literals skip the lookup.
//
// Example:
//   fastest::core::AsioHttpClient http;
//   HttpRequest req;
//   req.url = "http://127.0.0.1:8788/v1/jobs/next";
//   req.bearer_token = token;
//   FASTEST_ASSIGN_OR_RETURN(HttpResponse resp, http.Send(req));
#ifndef FASTEST_CORE_HTTP_ASIO_HTTP_CLIENT_H_
#define FASTEST_CORE_HTTP_ASIO_HTTP_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/http/http_transport.h"

namespace fastest::core {

struct AsioHttpClientOptions {
  // Idle keep-alive connections kept per client for reuse.
  int max_idle_connections = 16;
  std::string user_agent = "fastest/0.1";
};

class AsioHttpClient : public HttpTransport {
 public:
  explicit AsioHttpClient(AsioHttpClientOptions options = {});
  ~AsioHttpClient() override;
  AsioHttpClient(const AsioHttpClient&) = delete;
  AsioHttpClient& operator=(const AsioHttpClient&) = delete;

  // Performs one request. See the file comment for the error mapping.
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fastest::core

#endif  // FASTEST_CORE_HTTP_ASIO_HTTP_CLIENT_H_
