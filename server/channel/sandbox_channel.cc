#include "server/channel/sandbox_channel.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "server/channel/model_gateway.h"
#include "server/util/log.h"

namespace fastest::server {
namespace {

constexpr size_t kMaxHead = 64 * 1024;
constexpr int kHeadTimeoutMs = 30000;

std::string Errno(absl::string_view what) { return absl::StrCat(what, ": ", strerror(errno)); }

// Equal strings in time independent of where they differ.
bool SameSecret(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

void RefuseHttp(int fd, int status, absl::string_view reason, absl::string_view message) {
  std::string body = absl::StrCat("{\"error\":\"", message, "\"}");
  channel_io::WriteAll(fd, absl::StrCat("HTTP/1.1 ", status, " ", reason,
                                        "\r\nContent-Type: application/json\r\nContent-Length: ",
                                        body.size(), "\r\nConnection: close\r\n\r\n", body));
}

// Removes everything below `path` (not following symlinks), then `path` itself.
void RemoveTree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* dir = opendir(path.c_str())) {
      while (struct dirent* entry = readdir(dir)) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        RemoveTree(absl::StrCat(path, "/", entry->d_name));
      }
      closedir(dir);
    }
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

std::string SafeName(absl::string_view key) {
  std::string out;
  for (char c : key) {
    out.push_back(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c
                                                                                             : '_');
  }
  return out.substr(0, 64);
}

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
  bool a_open = true, b_open = true;  // read sides
  char buf[64 * 1024];
  while (a_open || b_open) {
    struct pollfd p[2] = {{a, static_cast<short>(a_open ? POLLIN : 0), 0},
                          {b, static_cast<short>(b_open ? POLLIN : 0), 0}};
    int r = poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return;
    for (int i = 0; i < 2; ++i) {
      if (p[i].revents == 0) continue;
      int from = i == 0 ? a : b, to = i == 0 ? b : a;
      ssize_t n = recv(from, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        (i == 0 ? a_open : b_open) = false;
        shutdown(to, SHUT_WR);
        if (n < 0) return;
        continue;
      }
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

absl::StatusOr<std::string> CheckApiRequestHead(absl::string_view head, absl::string_view token) {
  if (!absl::EndsWith(head, "\r\n\r\n")) return absl::InvalidArgumentError("incomplete head");
  std::vector<absl::string_view> lines =
      absl::StrSplit(head.substr(0, head.size() - 4), "\r\n");
  if (lines.empty() || !absl::StrContains(lines[0], " HTTP/1.")) {
    return absl::InvalidArgumentError("not an HTTP/1.x request");
  }
  std::string out = absl::StrCat(lines[0], "\r\n");
  int authorizations = 0;
  bool authorized = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos || colon == 0 || line[0] == ' ' || line[0] == '\t') {
      // No folded or nameless headers: the server might read them differently than we do.
      return absl::InvalidArgumentError("malformed header line");
    }
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (name == "connection" || name == "keep-alive" || name == "proxy-connection") continue;
    if (name == "authorization") {
      ++authorizations;
      absl::string_view credentials = value;
      authorized = absl::ConsumePrefix(&credentials, "Bearer ") && SameSecret(credentials, token);
    }
    absl::StrAppend(&out, line, "\r\n");
  }
  if (authorizations != 1 || !authorized) {
    return absl::PermissionDeniedError("this channel accepts only its job's token");
  }
  absl::StrAppend(&out, "Connection: close\r\n\r\n");
  return out;
}

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
  int wake = eventfd(0, EFD_CLOEXEC);
  if (wake < 0) {
    close(fd);
    return absl::InternalError(Errno("eventfd"));
  }
  std::unique_ptr<SocketListener> listener(new SocketListener(fd, wake, std::move(handler)));
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
    open_fds_.push_back(client);
    connections_.emplace_back([this, client] {
      handler_(client);
      std::lock_guard<std::mutex> inner(mu_);
      for (auto it = open_fds_.begin(); it != open_fds_.end(); ++it) {
        if (*it == client) {
          open_fds_.erase(it);
          break;
        }
      }
      close(client);
    });
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
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A handler blocked on its client sees EOF / EPIPE and ends.
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
    threads.swap(connections_);
  }
  for (std::thread& t : threads) t.join();
  close(listen_fd_);
  close(wake_fd_);
}

// ---- SandboxChannel ----

SandboxChannel::~SandboxChannel() {
  for (auto& listener : listeners_) listener->Stop();
  listeners_.clear();
  if (dir_fd_ >= 0) close(dir_fd_);
  RemoveTree(dir_);
}

void SandboxChannel::HandleApi(int client_fd) {
  std::string head, rest;
  if (!channel_io::ReadHead(client_fd, kMaxHead, kHeadTimeoutMs, &head, &rest).ok()) return;
  absl::StatusOr<std::string> forward = CheckApiRequestHead(head, token_);
  if (!forward.ok()) {
    ++api_refused_;
    if (absl::IsPermissionDenied(forward.status())) {
      RefuseHttp(client_fd, 401, "Unauthorized", "this channel accepts only its job's token");
    } else {
      RefuseHttp(client_fd, 400, "Bad Request", "malformed request head");
    }
    return;
  }
  ++api_requests_;
  // The runner has the token in memory now: the file has done its job.
  if (token_file_present_.exchange(false)) unlinkat(dir_fd_, kTokenFileName, 0);
  absl::StatusOr<int> upstream = channel_io::ConnectTcp(upstream_host_, upstream_port_, 5000);
  if (!upstream.ok()) {
    RefuseHttp(client_fd, 502, "Bad Gateway", "fastest-server is not reachable");
    return;
  }
  if (channel_io::WriteAll(*upstream, *forward) && channel_io::WriteAll(*upstream, rest)) {
    channel_io::Pump(client_fd, *upstream);
  }
  close(*upstream);
}

// ---- ChannelHub ----

absl::StatusOr<std::unique_ptr<ChannelHub>> ChannelHub::Create(ChannelHubOptions options) {
  if (options.root.empty()) return absl::InvalidArgumentError("channel root is empty");
  if (mkdir(options.root.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(Errno(absl::StrCat("mkdir ", options.root)));
  }
  chmod(options.root.c_str(), 0700);
  // Channels of a previous server process are dead: nothing listens on their sockets.
  if (DIR* dir = opendir(options.root.c_str())) {
    while (struct dirent* entry = readdir(dir)) {
      if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
      RemoveTree(absl::StrCat(options.root, "/", entry->d_name));
    }
    closedir(dir);
  }
  return std::unique_ptr<ChannelHub>(new ChannelHub(std::move(options)));
}

absl::StatusOr<std::unique_ptr<SandboxChannel>> ChannelHub::Open(absl::string_view key,
                                                                 absl::string_view job_id,
                                                                 absl::string_view token,
                                                                 ChannelLog log) {
  if (options_.api_port <= 0) return absl::FailedPreconditionError("API port unknown");
  std::unique_ptr<SandboxChannel> channel(new SandboxChannel());
  channel->dir_ = absl::StrCat(options_.root, "/", SafeName(key));
  RemoveTree(channel->dir_);
  if (mkdir(channel->dir_.c_str(), 0700) != 0) {
    return absl::InternalError(Errno(absl::StrCat("mkdir ", channel->dir_)));
  }
  channel->dir_fd_ = open(channel->dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (channel->dir_fd_ < 0) return absl::InternalError(Errno("open channel dir"));
  channel->token_ = std::string(token);
  channel->upstream_host_ = options_.api_host;
  channel->upstream_port_ = options_.api_port;

  int dir_fd = open(channel->dir_.c_str(), O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return absl::InternalError(Errno("open channel dir"));
  int token_fd = openat(dir_fd, kTokenFileName, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  close(dir_fd);
  if (token_fd < 0) return absl::InternalError(Errno("create token file"));
  bool written = channel_io::WriteAll(token_fd, token);
  close(token_fd);
  if (!written) return absl::InternalError(Errno("write token file"));

  SandboxChannel* raw = channel.get();
  auto api = SocketListener::Start(channel->dir_fd_, kApiSocketName,
                                   [raw](int fd) { raw->HandleApi(fd); });
  if (!api.ok()) return api.status();
  channel->listeners_.push_back(std::move(*api));
  if (options_.model_gateway != nullptr) {
    ModelGateway* gateway = options_.model_gateway;
    std::string job(job_id);
    auto model = SocketListener::Start(
        channel->dir_fd_, kModelSocketName,
        [gateway, job, log](int fd) { gateway->Serve(fd, job, log); });
    if (!model.ok()) return model.status();
    channel->listeners_.push_back(std::move(*model));
  }
  return channel;
}

}  // namespace fastest::server
