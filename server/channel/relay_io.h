// File: server/channel/relay_io.h
//
// Byte relays over sockets, shared by the server's sandbox channels and the runner (which exposes
// the model and egress sockets inside the sandbox on 127.0.0.1): a listener that hands each
// connection to a thread, and the fd helpers the relays are made of. Depends on Abseil only.
#ifndef FASTEST_SERVER_CHANNEL_RELAY_IO_H_
#define FASTEST_SERVER_CHANNEL_RELAY_IO_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fastest::server {

// Connections accepted on one unix socket, each handled on a thread of its own.
class SocketListener {
 public:
  using Handler = std::function<void(int client_fd)>;
  // Binds `name` inside the directory `dir_fd` (mode 0600), listens, starts accepting.
  static absl::StatusOr<std::unique_ptr<SocketListener>> Start(int dir_fd, absl::string_view name,
                                                               Handler handler);
  // A TCP listener on 127.0.0.1 (port 0 = any); `port` receives the bound port.
  static absl::StatusOr<std::unique_ptr<SocketListener>> StartLoopback(int port, Handler handler,
                                                                       int* bound_port);
  ~SocketListener();  // Stop()
  // Stops accepting, shuts every open connection down, joins all threads.
  void Stop();

 private:
  SocketListener(int listen_fd, int wake_fd, Handler handler);
  // Starts accepting on a listening socket (closed on failure).
  static absl::StatusOr<std::unique_ptr<SocketListener>> Launch(int listen_fd, Handler handler);
  void AcceptLoop();

  int listen_fd_;
  int wake_fd_;
  Handler handler_;
  std::mutex mu_;
  bool stopped_ = false;
  std::vector<int> open_fds_;
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Connection> connections_;
  std::thread acceptor_;
};

// Fd helpers shared by the channel relays.
namespace channel_io {
// Writes all of `data`; false on error.
bool WriteAll(int fd, absl::string_view data);
// Reads until "\r\n\r\n" (at most `max` bytes, `timeout_ms` in all). On success `head` ends with
// the blank line and `rest` holds bytes read past it.
absl::Status ReadHead(int fd, size_t max, int timeout_ms, std::string* head, std::string* rest);
// Copies bytes both ways until either side ends or fails (no half-close: HTTP clients do not
// half-close, and a relay must not outlive its channel waiting for an idle peer).
void Pump(int a, int b);
// One header of a request head: lower-cased name, the whole line, the trimmed value.
struct HeadLine {
  std::string name;
  absl::string_view line;
  absl::string_view value;
};
// Splits a complete request head (ending in "\r\n\r\n") into its request line and headers.
// InvalidArgument when it is not an HTTP/1.x request or has folded or nameless header lines (the
// server behind a relay might read those differently than the relay does).
absl::StatusOr<std::vector<HeadLine>> ParseRequestHead(absl::string_view head,
                                                      absl::string_view* request_line);
// Answers with `status` `reason` and {"error": message} (message must need no JSON escaping),
// then the connection closes.
bool WriteJsonError(int fd, int status, absl::string_view reason, absl::string_view message);
// A connected TCP socket to host:port (numeric host), or an error.
absl::StatusOr<int> ConnectTcp(const std::string& host, int port, int timeout_ms);
// A connected TCP socket to host:port, resolving `host` (getaddrinfo; tries each address).
absl::StatusOr<int> ConnectHost(const std::string& host, int port, int timeout_ms);
// A connected unix socket.
absl::StatusOr<int> ConnectUnix(const std::string& path);
}  // namespace channel_io

}  // namespace fastest::server

#endif  // FASTEST_SERVER_CHANNEL_RELAY_IO_H_
