#include "core/http/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

// A tiny real HTTP/1.1 server on a socket: answers each request with `reply(request_text)` and
// closes the connection. Enough to exercise the client end to end without mocks.
class TinyServer {
 public:
  using Reply = std::function<std::string(const std::string& request)>;

  TinyServer(Reply reply, const std::string& unix_path = "") : reply_(std::move(reply)) {
    if (unix_path.empty()) {
      fd_ = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = 0;
      EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
      socklen_t len = sizeof(addr);
      getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin_port);
    } else {
      fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      unlink(unix_path.c_str());
      snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", unix_path.c_str());
      EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    }
    listen(fd_, 16);
    thread_ = std::thread([this] { Loop(); });
  }
  ~TinyServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::string last_request() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_request_;
  }

 private:
  void Loop() {
    while (!stop_) {
      int client = accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      std::string request;
      char buf[4096];
      // Read headers, then Content-Length bytes of body.
      size_t header_end = std::string::npos;
      size_t need = 0;
      while (true) {
        ssize_t n = read(client, buf, sizeof(buf));
        if (n <= 0) break;
        request.append(buf, n);
        if (header_end == std::string::npos) {
          header_end = request.find("\r\n\r\n");
          if (header_end != std::string::npos) {
            size_t pos = request.find("Content-Length: ");
            if (pos != std::string::npos && pos < header_end) need = std::atoi(request.c_str() + pos + 16);
          }
        }
        if (header_end != std::string::npos && request.size() >= header_end + 4 + need) break;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_request_ = request;
      }
      std::string response = reply_(request);
      size_t off = 0;
      while (off < response.size()) {
        ssize_t n = write(client, response.data() + off, response.size() - off);
        if (n <= 0) break;
        off += n;
      }
      close(client);
    }
  }

  Reply reply_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string last_request_;
};

std::string Ok(const std::string& body, const std::string& extra_headers = "") {
  return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", body.size(),
                      "\r\nConnection: close\r\nX-Test: yes\r\n", extra_headers, "\r\n", body);
}

TEST(ParseEndpointTest, AcceptsTheFourForms) {
  auto unix = ParseEndpoint("unix:///var/run/docker.sock");
  ASSERT_TRUE(unix.ok());
  EXPECT_EQ(unix->unix_socket, "/var/run/docker.sock");
  EXPECT_EQ(unix->base_url, "http://localhost");
  auto tcp = ParseEndpoint("tcp://127.0.0.1:2375");
  ASSERT_TRUE(tcp.ok());
  EXPECT_EQ(tcp->base_url, "http://127.0.0.1:2375");
  auto http = ParseEndpoint("https://api.example.test/base/");
  ASSERT_TRUE(http.ok());
  EXPECT_EQ(http->base_url, "https://api.example.test/base");
  EXPECT_EQ(ParseEndpoint("ftp://x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseEndpoint("unix://relative.sock").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HttpClientTest, PostsBodyWithBearerAndReadsResponse) {
  TinyServer server([](const std::string&) { return Ok("{\"ok\":true}"); });
  HttpClient client;
  HttpRequest req;
  req.method = "POST";
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/v1/jobs");
  req.body = "{\"prompt\":\"hi\"}";
  req.headers.push_back({"Content-Type", "application/json"});
  req.bearer_token = "secret-token-123";
  auto resp = client.Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "{\"ok\":true}");
  EXPECT_EQ(resp->Header("x-TEST"), "yes");
  std::string seen = server.last_request();
  EXPECT_TRUE(absl::StartsWith(seen, "POST /v1/jobs HTTP/1.1")) << seen;
  EXPECT_TRUE(absl::StrContains(seen, "Authorization: Bearer secret-token-123"));
  EXPECT_TRUE(absl::StrContains(seen, "{\"prompt\":\"hi\"}"));
  EXPECT_FALSE(absl::StrContains(seen, "Expect:"));
}

TEST(HttpClientTest, HttpErrorStatusIsNotATransportError) {
  TinyServer server([](const std::string&) {
    return "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno";
  });
  HttpClient client;
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/missing");
  auto resp = client.Send(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 404);
  EXPECT_EQ(resp->body, "no");
}

TEST(HttpClientTest, ConnectionRefusedIsUnavailableAndHidesToken) {
  // Bind then close to get a port nobody listens on.
  int port;
  {
    TinyServer server([](const std::string&) { return Ok(""); });
    port = server.port();
  }
  HttpClient client;
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", port, "/x");
  req.bearer_token = "do-not-print-me";
  auto resp = client.Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(absl::StrContains(resp.status().message(), "do-not-print-me"));
  EXPECT_TRUE(absl::StrContains(resp.status().message(), "/x"));
}

TEST(HttpClientTest, TimeoutIsDeadlineExceeded) {
  TinyServer server([](const std::string&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    return Ok("late");
  });
  HttpClient client;
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/slow");
  req.timeout = std::chrono::milliseconds(200);
  auto resp = client.Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(HttpClientTest, StreamsBodyChunksAndCanAbort) {
  std::string big(1 << 20, 'x');
  TinyServer server([&](const std::string&) { return Ok(big); });
  HttpClient client;
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/big");
  size_t received = 0;
  req.on_body_chunk = [&](absl::string_view chunk) {
    received += chunk.size();
    return true;
  };
  auto resp = client.Send(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(received, big.size());
  EXPECT_TRUE(resp->body.empty());

  req.on_body_chunk = [](absl::string_view) { return false; };
  auto aborted = client.Send(req);
  EXPECT_EQ(aborted.status().code(), absl::StatusCode::kCancelled);
}

TEST(HttpClientTest, StreamingUploadSendsExactBytes) {
  TinyServer server([](const std::string&) { return Ok("stored"); });
  HttpClient client;
  HttpRequest req;
  req.method = "PUT";
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/v1/blobs/upload/abc");
  std::string payload = "0123456789abcdef";
  size_t offset = 0;
  req.body_reader = [&](char* buf, size_t max) {
    size_t n = std::min(max, payload.size() - offset);
    memcpy(buf, payload.data() + offset, n);
    offset += n;
    return n;
  };
  req.body_size = payload.size();
  auto resp = client.Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  std::string seen = server.last_request();
  EXPECT_TRUE(absl::StartsWith(seen, "PUT /v1/blobs/upload/abc")) << seen;
  EXPECT_TRUE(absl::EndsWith(seen, payload));
}

TEST(HttpClientTest, TalksOverUnixSocket) {
  // sun_path holds 108 bytes; Bazel's TEST_TMPDIR is longer than that, so use /tmp.
  char dir_template[] = "/tmp/fastest-http-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string path = absl::StrCat(dir_template, "/s.sock");
  TinyServer server([](const std::string&) { return Ok("OK"); }, path);
  auto endpoint = ParseEndpoint(absl::StrCat("unix://", path));
  ASSERT_TRUE(endpoint.ok());
  HttpClient client;
  HttpRequest req;
  req.url = endpoint->base_url + "/_ping";
  req.unix_socket = endpoint->unix_socket;
  auto resp = client.Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->body, "OK");
  EXPECT_TRUE(absl::StartsWith(server.last_request(), "GET /_ping HTTP/1.1"));
}

}  // namespace
}  // namespace fastest::core
