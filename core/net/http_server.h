// File: core/net/http_server.h
//
// HttpServer: a small asynchronous HTTP/1.1 server on Boost.Asio + Beast, used by fastest-server
// and by test tools (bridge emulator, model stub). It knows no application's error shape: the
// errors it answers itself (below) go through the router's ErrorFormatter.
//
//   - No thread per connection: `threads` io threads, each with its own io_context, serve every
//     connection; a connection stays on one of them, so its handlers never race and an answer
//     given at once is written on the same thread (no hand-off). Routes added with
//     Execution::kWorkerPool run on `worker_threads` pool threads instead, so blocking handlers
//     (SQLite, fsync) never hold an io thread.
//   - Each read has a deadline (`read_timeout`): slow or half-open clients are dropped without
//     holding resources. The head's deadline is checked by a periodic sweep (every read_timeout/4,
//     within 10 ms..1 s, so a connection may live that much longer), bodies and writes that do not
//     complete at once use a timer. While a handler is working the connection has no deadline
//     (a /run-job may legitimately take minutes).
//   - Bodies above `max_body_bytes` -> 413 PAYLOAD_TOO_LARGE (checked on Content-Length before
//     reading, and while reading chunked bodies). `Expect: 100-continue` is answered.
//     Unparseable requests -> 400 BAD_REQUEST. Unknown routes -> Router::NotFound (404 NOT_FOUND).
//   - Keep-alive (one request at a time per connection); chunked / SSE streaming via Responder.
//   - CORS off by default; `cors_origin` allows one origin (OPTIONS -> 204).
//   - Before auth, nothing expensive: `admit_body` sees the head before any body byte is read
//     or `100 Continue` is sent; a Content-Length body is read into a buffer that grows as bytes
//     arrive (a client announcing 100 MiB and sending nothing holds a small buffer).
//   - Connection caps (global, per IP; idle connections make room) and, when accept fails for
//     lack of file descriptors, a 50 ms back-off (and an idle connection closed) instead of a
//     busy loop.
//   - Stop(): stops accepting, closes idle connections, lets in-flight requests finish for up to
//     `stop_grace`, then stops the io threads. StopOnSignals() wires SIGINT/SIGTERM to a stop
//     request that Wait() carries out.
//
// Routes must be added before Start(). A handler gets the Request by const reference: copy what
// it needs before answering later.
//
// Example:
//   HttpServerOptions options;  // 127.0.0.1, port 0
//   fastest::net::HttpServer server(options);
//   server.router().SetErrorFormatter(MyErrorShape);  // optional
//   server.router().AddSync("GET", "/health", [](const Request&) {
//     return Response::Json(200, {{"status", "ok"}});
//   });
//   server.router().Add("GET", "/events", [](const Request&, std::shared_ptr<Responder> r) {
//     r->StartStream(200, {{"Content-Type", "text/event-stream"}});
//     r->SendEvent("", "hello");
//     r->End();
//   });
//   FASTEST_RETURN_IF_ERROR(server.Start());
//   printf("listening on %d\n", server.port());
//   server.StopOnSignals();
//   server.Wait();  // until SIGINT/SIGTERM or Stop()
#ifndef FASTEST_CORE_NET_HTTP_SERVER_H_
#define FASTEST_CORE_NET_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/net/http_types.h"
#include "core/net/responder.h"
#include "core/net/router.h"

namespace fastest::net {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 = pick a free port; see port()
  int threads = 2;  // io threads
  // Threads for routes added with Execution::kWorkerPool (blocking handlers).
  int worker_threads = 4;
  size_t max_body_bytes = 64 * 1024 * 1024;
  absl::Duration read_timeout = absl::Seconds(30);
  absl::Duration write_timeout = absl::Seconds(60);
  absl::Duration stop_grace = absl::Seconds(5);
  // CORS: empty = off (no Access-Control-* headers, OPTIONS is an ordinary route); otherwise
  // this origin (e.g. "https://app.example" or "*") is allowed and OPTIONS answers 204.
  std::string cors_origin;
  // Called once a request's head is parsed, before any of its body is read or `100 Continue`
  // sent, for requests that announce a body. The Request has method, target, path, query and
  // headers, no body. Returns false to answer 401 UNAUTHORIZED without reading the body (the
  // connection is closed). Empty = every body is read.
  std::function<bool(const Request&)> admit_body;
  // Open connections at most, and per client IP. A new connection past a cap closes the one of
  // that IP (or any) that has waited longest for a request; if none is idle, the new one is
  // closed. The global cap is also kept below RLIMIT_NOFILE (minus a reserve for files).
  int max_connections = 4096;
  int max_connections_per_ip = 512;
  // Called for every finished request (method, target, status, duration); may be empty.
  std::function<void(const Request&, int status, absl::Duration)> access_log;
};

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Router& router();
  const Router& router() const;

  // Binds and starts the io threads. kUnavailable if the address cannot be bound.
  absl::Status Start();
  // The bound port (valid after Start()).
  int port() const { return port_; }

  // Installs SIGINT/SIGTERM handling: the signal requests a stop that Wait() performs.
  void StopOnSignals();
  // Asks Wait() to stop the server. Safe from any thread, including handlers.
  void RequestStop();
  // Blocks until a stop is requested, then stops (like Stop()).
  void Wait();
  // Blocks until a stop is requested (signal or RequestStop()) without stopping, so the caller
  // can wind down other parts first and then call Stop().
  void WaitForStopRequest();
  // Stops now. Must not be called from a handler (it joins the io threads). Idempotent.
  void Stop();

  // Number of open connections (for tests and metrics).
  int open_connections() const;

  struct Context;  // implementation detail (shared with connections)

 private:
  std::shared_ptr<Context> ctx_;
  std::vector<std::thread> threads_;
  int port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace fastest::net

#endif  // FASTEST_CORE_NET_HTTP_SERVER_H_
