#include "server/channel/relay_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace fastest::server {
namespace {

std::string Errno(absl::string_view what) { return absl::StrCat(what, ": ", strerror(errno)); }

}  // namespace

namespace channel_io {

bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ENOTSOCK) n = write(fd, data.data(), data.size());
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

absl::Status ReadHead(int fd, size_t max, int timeout_ms, std::string* head, std::string* rest) {
  std::string buf;
  const absl::Time deadline = absl::Now() + absl::Milliseconds(timeout_ms);
  char chunk[4096];
  while (true) {
    size_t end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      *head = buf.substr(0, end + 4);
      *rest = buf.substr(end + 4);
      return absl::OkStatus();
    }
    if (buf.size() > max) return absl::ResourceExhaustedError("request head too large");
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0) return absl::DeadlineExceededError("no request head in time");
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return absl::DeadlineExceededError("no request head in time");
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("connection closed before the request head");
    buf.append(chunk, static_cast<size_t>(n));
  }
}

void Pump(int a, int b) {
  char buf[64 * 1024];
  while (true) {
    struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    int r = poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return;
    for (int i = 0; i < 2; ++i) {
      if (p[i].revents == 0) continue;
      int from = i == 0 ? a : b, to = i == 0 ? b : a;
      ssize_t n = recv(from, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      // One side is done (or gone): so is the exchange. Waiting for the other could take forever
      // (an idle peer), and a relay must end when its channel closes.
      if (n <= 0) return;
      if (!WriteAll(to, absl::string_view(buf, static_cast<size_t>(n)))) return;
    }
  }
}

absl::StatusOr<int> ConnectTcp(const std::string& host, int port, int timeout_ms) {
  struct sockaddr_in6 addr6 = {};
  struct sockaddr_in addr4 = {};
  const struct sockaddr* addr;
  socklen_t len;
  int family;
  if (inet_pton(AF_INET, host.c_str(), &addr4.sin_addr) == 1) {
    addr4.sin_family = AF_INET;
    addr4.sin_port = htons(static_cast<uint16_t>(port));
    addr = reinterpret_cast<const struct sockaddr*>(&addr4);
    len = sizeof(addr4);
    family = AF_INET;
  } else if (inet_pton(AF_INET6, host.c_str(), &addr6.sin6_addr) == 1) {
    addr6.sin6_family = AF_INET6;
    addr6.sin6_port = htons(static_cast<uint16_t>(port));
    addr = reinterpret_cast<const struct sockaddr*>(&addr6);
    len = sizeof(addr6);
    family = AF_INET6;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("not a numeric address: ", host));
  }
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::InternalError(Errno("socket"));
  int r = connect(fd, addr, len);
  if (r != 0 && errno == EINPROGRESS) {
    struct pollfd p = {fd, POLLOUT, 0};
    r = poll(&p, 1, timeout_ms);
    int err = 0;
    socklen_t err_len = sizeof(err);
    if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) == 0 && err == 0) {
      r = 0;
    } else {
      errno = r == 0 ? ETIMEDOUT : (err != 0 ? err : errno);
      r = -1;
    }
  }
  if (r != 0) {
    std::string message = Errno(absl::StrCat("connect ", host, ":", port));
    close(fd);
    return absl::UnavailableError(message);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

absl::StatusOr<std::vector<HeadLine>> ParseRequestHead(absl::string_view head,
                                                      absl::string_view* request_line) {
  if (!absl::EndsWith(head, "\r\n\r\n")) return absl::InvalidArgumentError("incomplete head");
  std::vector<absl::string_view> lines = absl::StrSplit(head.substr(0, head.size() - 4), "\r\n");
  if (lines.empty() || !absl::StrContains(lines[0], " HTTP/1.")) {
    return absl::InvalidArgumentError("not an HTTP/1.x request");
  }
  *request_line = lines[0];
  std::vector<HeadLine> out;
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos || colon == 0 || line[0] == ' ' || line[0] == '\t') {
      return absl::InvalidArgumentError("malformed header line");
    }
    out.push_back(HeadLine{absl::AsciiStrToLower(line.substr(0, colon)), line,
                           absl::StripAsciiWhitespace(line.substr(colon + 1))});
  }
  return out;
}

bool WriteJsonError(int fd, int status, absl::string_view reason, absl::string_view message) {
  std::string body = absl::StrCat("{\"error\":\"", message, "\"}");
  return WriteAll(fd, absl::StrCat("HTTP/1.1 ", status, " ", reason,
                                   "\r\nContent-Type: application/json\r\nContent-Length: ",
                                   body.size(), "\r\nConnection: close\r\n\r\n", body));
}

absl::StatusOr<int> ConnectHost(const std::string& host, int port, int timeout_ms) {
  struct addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  absl::Status last = absl::UnavailableError(absl::StrCat("no address for ", host));
  for (struct addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char numeric[INET6_ADDRSTRLEN] = {};
    if (getnameinfo(a->ai_addr, a->ai_addrlen, numeric, sizeof(numeric), nullptr, 0,
                    NI_NUMERICHOST) != 0) {
      continue;
    }
    absl::StatusOr<int> fd = ConnectTcp(numeric, port, timeout_ms);
    if (fd.ok()) {
      freeaddrinfo(found);
      return fd;
    }
    last = fd.status();
  }
  freeaddrinfo(found);
  return last;
}

absl::StatusOr<int> ConnectUnix(const std::string& path) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::string target = path;
  int dir_fd = -1;
  if (path.size() >= sizeof(addr.sun_path)) {
    // Through the directory's fd, like SocketListener binds.
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return absl::InvalidArgumentError("socket path too long");
    dir_fd = open(path.substr(0, slash).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return absl::UnavailableError(Errno(absl::StrCat("open ", path)));
    target = absl::StrCat("/proc/self/fd/", dir_fd, path.substr(slash));
  }
  memcpy(addr.sun_path, target.data(), std::min(target.size(), sizeof(addr.sun_path) - 1));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int r = fd < 0 ? -1 : connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
  std::string message = r == 0 ? "" : Errno(absl::StrCat("connect ", path));
  if (dir_fd >= 0) close(dir_fd);
  if (r != 0) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(message);
  }
  return fd;
}

}  // namespace channel_io

// ---- SocketListener ----

absl::StatusOr<std::unique_ptr<SocketListener>> SocketListener::Start(int dir_fd,
                                                                      absl::string_view name,
                                                                      Handler handler) {
  // Through the directory's fd: short whatever the directory's path is.
  std::string path = absl::StrCat("/proc/self/fd/", dir_fd, "/", name);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return absl::InternalError("socket path too long");
  memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(Errno("socket"));
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0 ||
      fchmodat(dir_fd, std::string(name).c_str(), 0600, 0) != 0 || listen(fd, 64) != 0) {
    std::string message = Errno(absl::StrCat("channel socket ", name));
    close(fd);
    return absl::InternalError(message);
  }
  return Launch(fd, std::move(handler));
}

absl::StatusOr<std::unique_ptr<SocketListener>> SocketListener::StartLoopback(int port,
                                                                              Handler handler,
                                                                              int* bound_port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(Errno("socket"));
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<struct sockaddr*>(&addr), &len) != 0) {
    std::string message = Errno("listen on 127.0.0.1");
    close(fd);
    return absl::InternalError(message);
  }
  if (bound_port != nullptr) *bound_port = ntohs(addr.sin_port);
  return Launch(fd, std::move(handler));
}

absl::StatusOr<std::unique_ptr<SocketListener>> SocketListener::Launch(int listen_fd,
                                                                       Handler handler) {
  int wake = eventfd(0, EFD_CLOEXEC);
  if (wake < 0) {
    close(listen_fd);
    return absl::InternalError(Errno("eventfd"));
  }
  std::unique_ptr<SocketListener> listener(new SocketListener(listen_fd, wake, std::move(handler)));
  listener->acceptor_ = std::thread([l = listener.get()] { l->AcceptLoop(); });
  return listener;
}

SocketListener::SocketListener(int listen_fd, int wake_fd, Handler handler)
    : listen_fd_(listen_fd), wake_fd_(wake_fd), handler_(std::move(handler)) {}

SocketListener::~SocketListener() { Stop(); }

void SocketListener::AcceptLoop() {
  while (true) {
    struct pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int r = poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || p[1].revents != 0) return;
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) {
      close(client);
      return;
    }
    // Join the threads of connections that ended (they hold their stacks until joined).
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
    open_fds_.push_back(client);
    auto done = std::make_shared<std::atomic<bool>>(false);
    connections_.push_back(Connection{std::thread([this, client, done] {
                                        handler_(client);
                                        std::lock_guard<std::mutex> inner(mu_);
                                        open_fds_.erase(std::find(open_fds_.begin(),
                                                                  open_fds_.end(), client));
                                        close(client);
                                        done->store(true);
                                      }),
                                      done});
  }
}

void SocketListener::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<Connection> connections;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A handler blocked on its client sees EOF / EPIPE and ends.
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
    connections.swap(connections_);
  }
  for (Connection& c : connections) c.thread.join();
  close(listen_fd_);
  close(wake_fd_);
}

}  // namespace fastest::server
