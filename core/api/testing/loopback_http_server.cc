#include "core/api/testing/loopback_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fastest::core::testing {

std::string TestRequest::Header(const std::string& lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return "";
}

LoopbackHttpServer::LoopbackHttpServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 64) != 0) {
    std::abort();
  }
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

LoopbackHttpServer::~LoopbackHttpServer() {
  stop_ = true;
  thread_.join();
  close(listen_fd_);
}

std::string LoopbackHttpServer::base_url() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

std::vector<TestRequest> LoopbackHttpServer::requests() {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void LoopbackHttpServer::Serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    HandleConnection(fd);
    close(fd);
  }
}

void LoopbackHttpServer::HandleConnection(int fd) {
  std::string data;
  char buf[65536];
  size_t header_end = std::string::npos;
  while (header_end == std::string::npos) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    data.append(buf, n);
    header_end = data.find("\r\n\r\n");
  }
  TestRequest req;
  std::vector<std::string> lines = absl::StrSplit(data.substr(0, header_end), "\r\n");
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  if (first.size() < 2) return;
  req.method = first[0];
  req.target = first[1];
  size_t content_length = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (name == "content-length") absl::SimpleAtoi(value, &content_length);
    if (name == "expect") {
      std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
      (void)!write(fd, cont.data(), cont.size());
    }
    req.headers.emplace_back(name, value);
  }
  req.body = data.substr(header_end + 4);
  while (req.body.size() < content_length) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    req.body.append(buf, n);
  }
  TestResponse resp = handler_(req);
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(req);
  }
  std::string out = absl::StrCat("HTTP/1.1 ", resp.status, " X\r\nContent-Type: ",
                                 resp.content_type, "\r\nContent-Length: ", resp.body.size(),
                                 "\r\nConnection: close\r\n\r\n", resp.body);
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = write(fd, out.data() + off, out.size() - off);
    if (n <= 0) return;
    off += n;
  }
}

}  // namespace fastest::core::testing
