// Transport tests: every case runs against both HttpTransport implementations (libcurl HttpClient
// and AsioHttpClient) through real loopback servers, no mocks.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "absl/strings/ascii.h"
#include "core/snapshot/sha256.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/http/asio_http_client.h"
#include "core/http/http_client.h"
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


// A keep-alive HTTP/1.1 server: one thread per connection, each serving requests until the client
// closes or the reply says "Connection: close". Decodes Content-Length and chunked request bodies.
class KeepAliveServer {
 public:
  struct Options {
    // Reply without "Connection: close", then close anyway: the client pools a dead connection.
    bool close_after_response = false;
    // Read the second request on a connection, then close without answering (once): the race
    // of a server dropping an idle connection just as it is reused.
    bool drop_second_request = false;
  };
  using Reply = std::function<std::string(const std::string& head, const std::string& body)>;

  explicit KeepAliveServer(Reply reply) : KeepAliveServer(std::move(reply), Options()) {}
  KeepAliveServer(Reply reply, Options options)
      : reply_(std::move(reply)), options_(options) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 64);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~KeepAliveServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : connection_fds_) shutdown(fd, SHUT_RDWR);
      threads.swap(threads_);
    }
    for (auto& thread : threads) thread.join();
    for (int fd : connection_fds_) close(fd);
  }

  int port() const { return port_; }
  int connections() const { return connections_; }
  int requests() const { return requests_; }
  std::string last_head() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_head_;
  }
  std::string last_body() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_body_;
  }

 private:
  void AcceptLoop() {
    while (true) {
      int client = accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      ++connections_;
      std::lock_guard<std::mutex> lock(mu_);
      connection_fds_.push_back(client);
      threads_.emplace_back([this, client] { Serve(client); });
    }
  }

  // Reads until `in` holds at least `size` bytes.
  static bool Fill(int fd, std::string* in, size_t size) {
    char buf[65536];
    while (in->size() < size) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) return false;
      in->append(buf, n);
    }
    return true;
  }

  // Reads up to and including the next CRLF into `line` (without the CRLF).
  static bool ReadLine(int fd, std::string* in, std::string* line) {
    size_t pos;
    while ((pos = in->find("\r\n")) == std::string::npos) {
      if (!Fill(fd, in, in->size() + 1)) return false;
    }
    *line = in->substr(0, pos);
    in->erase(0, pos + 2);
    return true;
  }

  static bool ReadRequest(int fd, std::string* in, std::string* head, std::string* body) {
    size_t end;
    while ((end = in->find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(fd, in, in->size() + 1)) return false;
    }
    *head = in->substr(0, end + 4);
    in->erase(0, end + 4);
    body->clear();
    std::string lower = absl::AsciiStrToLower(*head);
    size_t cl = lower.find("\r\ncontent-length:");
    if (absl::StrContains(lower, "\r\ntransfer-encoding: chunked")) {
      while (true) {
        std::string line;
        if (!ReadLine(fd, in, &line)) return false;
        size_t size = std::strtoul(line.c_str(), nullptr, 16);
        if (size == 0) {
          // Trailers end with an empty line.
          do {
            if (!ReadLine(fd, in, &line)) return false;
          } while (!line.empty());
          return true;
        }
        if (!Fill(fd, in, size + 2)) return false;
        body->append(*in, 0, size);
        in->erase(0, size + 2);
      }
    }
    if (cl != std::string::npos) {
      size_t size = std::strtoul(lower.c_str() + cl + 17, nullptr, 10);
      if (!Fill(fd, in, size)) return false;
      body->assign(*in, 0, size);
      in->erase(0, size);
    }
    return true;
  }

  void Serve(int fd) {
    std::string in, head, body;
    int on_this_connection = 0;
    while (ReadRequest(fd, &in, &head, &body)) {
      if (++on_this_connection == 2 && options_.drop_second_request && !dropped_.exchange(true)) {
        break;
      }
      ++requests_;
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_head_ = head;
        last_body_ = body;
      }
      std::string response = reply_(head, body);
      size_t off = 0;
      while (off < response.size()) {
        ssize_t n = write(fd, response.data() + off, response.size() - off);
        if (n <= 0) break;
        off += n;
      }
      if (options_.close_after_response || absl::StrContains(response, "Connection: close")) break;
    }
    shutdown(fd, SHUT_RDWR);  // closed (and the fd released) by the destructor
  }

  Reply reply_;
  Options options_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::atomic<bool> dropped_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<int> connection_fds_;
  std::vector<std::thread> threads_;
  std::string last_head_;
  std::string last_body_;
};

std::string KeepAliveOk(const std::string& body) {
  return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
}

struct TransportCase {
  const char* name;
  std::function<std::unique_ptr<HttpTransport>()> make;
};

class HttpTransportTest : public testing::TestWithParam<TransportCase> {
 protected:
  std::unique_ptr<HttpTransport> NewClient() { return GetParam().make(); }
};

TEST_P(HttpTransportTest, PostsBodyWithBearerAndReadsResponse) {
  TinyServer server([](const std::string&) { return Ok("{\"ok\":true}"); });
  auto client = NewClient();
  HttpRequest req;
  req.method = "POST";
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/v1/jobs");
  req.body = "{\"prompt\":\"hi\"}";
  req.headers.push_back({"Content-Type", "application/json"});
  req.bearer_token = "secret-token-123";
  auto resp = client->Send(req);
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

TEST_P(HttpTransportTest, HttpErrorStatusIsNotATransportError) {
  TinyServer server([](const std::string&) {
    return "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno";
  });
  auto client = NewClient();
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/missing");
  auto resp = client->Send(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 404);
  EXPECT_EQ(resp->body, "no");
}

TEST_P(HttpTransportTest, ConnectionRefusedIsUnavailableAndHidesToken) {
  // Bind then close to get a port nobody listens on.
  int port;
  {
    TinyServer server([](const std::string&) { return Ok(""); });
    port = server.port();
  }
  auto client = NewClient();
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", port, "/x");
  req.bearer_token = "do-not-print-me";
  auto resp = client->Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(absl::StrContains(resp.status().message(), "do-not-print-me"));
  EXPECT_TRUE(absl::StrContains(resp.status().message(), "/x"));
}

TEST_P(HttpTransportTest, TimeoutIsDeadlineExceeded) {
  TinyServer server([](const std::string&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    return Ok("late");
  });
  auto client = NewClient();
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/slow");
  req.timeout = std::chrono::milliseconds(200);
  auto resp = client->Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_P(HttpTransportTest, StreamsBodyChunksAndCanAbort) {
  std::string big(1 << 20, 'x');
  TinyServer server([&](const std::string&) { return Ok(big); });
  auto client = NewClient();
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/big");
  size_t received = 0;
  req.on_body_chunk = [&](absl::string_view chunk) {
    received += chunk.size();
    return true;
  };
  auto resp = client->Send(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(received, big.size());
  EXPECT_TRUE(resp->body.empty());

  req.on_body_chunk = [](absl::string_view) { return false; };
  auto aborted = client->Send(req);
  EXPECT_EQ(aborted.status().code(), absl::StatusCode::kCancelled);
}

TEST_P(HttpTransportTest, StreamingUploadSendsExactBytes) {
  TinyServer server([](const std::string&) { return Ok("stored"); });
  auto client = NewClient();
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
  auto resp = client->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  std::string seen = server.last_request();
  EXPECT_TRUE(absl::StartsWith(seen, "PUT /v1/blobs/upload/abc")) << seen;
  EXPECT_TRUE(absl::EndsWith(seen, payload));
}

TEST_P(HttpTransportTest, TalksOverUnixSocket) {
  // sun_path holds 108 bytes; Bazel's TEST_TMPDIR is longer than that, so use /tmp.
  char dir_template[] = "/tmp/fastest-http-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string path = absl::StrCat(dir_template, "/s.sock");
  TinyServer server([](const std::string&) { return Ok("OK"); }, path);
  auto endpoint = ParseEndpoint(absl::StrCat("unix://", path));
  ASSERT_TRUE(endpoint.ok());
  auto client = NewClient();
  HttpRequest req;
  req.url = endpoint->base_url + "/_ping";
  req.unix_socket = endpoint->unix_socket;
  auto resp = client->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->body, "OK");
  EXPECT_TRUE(absl::StartsWith(server.last_request(), "GET /_ping HTTP/1.1"));
}

TEST_P(HttpTransportTest, SendsHostAndUserAgent) {
  TinyServer server([](const std::string&) { return Ok("ok"); });
  auto client = NewClient();
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/v1/x?a=1&b=2");
  auto resp = client->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  std::string seen = server.last_request();
  EXPECT_TRUE(absl::StartsWith(seen, "GET /v1/x?a=1&b=2 HTTP/1.1\r\n")) << seen;
  EXPECT_TRUE(absl::StrContains(seen, absl::StrCat("Host: 127.0.0.1:", server.port(), "\r\n")))
      << seen;
  EXPECT_TRUE(absl::StrContains(seen, "User-Agent: fastest/0.1\r\n")) << seen;
}

TEST_P(HttpTransportTest, ReusesKeepAliveConnection) {
  KeepAliveServer server([](const std::string&, const std::string&) { return KeepAliveOk("hi"); });
  auto client = NewClient();
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/a");
  for (int i = 0; i < 2; ++i) {
    auto resp = client->Send(req);
    ASSERT_TRUE(resp.ok()) << resp.status();
    EXPECT_EQ(resp->body, "hi");
  }
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(server.connections(), 1);
}

TEST_P(HttpTransportTest, HonoursConnectionCloseFromServer) {
  KeepAliveServer server([](const std::string&, const std::string&) {
    return std::string("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
  });
  auto client = NewClient();
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/a");
  for (int i = 0; i < 2; ++i) {
    auto resp = client->Send(req);
    ASSERT_TRUE(resp.ok()) << resp.status();
  }
  EXPECT_EQ(server.connections(), 2);
}

TEST_P(HttpTransportTest, IdleConnectionClosedByServerIsNotAnError) {
  KeepAliveServer::Options options;
  options.close_after_response = true;
  KeepAliveServer server(
      [](const std::string&, const std::string&) { return KeepAliveOk("hi"); }, options);
  auto client = NewClient();
  HttpRequest req;
  req.method = "POST";
  req.body = "payload";
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/a");
  for (int i = 0; i < 3; ++i) {
    auto resp = client->Send(req);
    ASSERT_TRUE(resp.ok()) << i << ": " << resp.status();
    EXPECT_EQ(resp->body, "hi");
    // Let the server's FIN arrive, so the pooled connection is stale by the next Send.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(server.requests(), 3);
}

TEST_P(HttpTransportTest, RetriesOnceWhenPooledConnectionDropsTheRequest) {
  KeepAliveServer::Options options;
  options.drop_second_request = true;
  KeepAliveServer server(
      [](const std::string&, const std::string& body) { return KeepAliveOk("got " + body); },
      options);
  auto client = NewClient();
  HttpRequest req;
  req.method = "PUT";
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/a");
  req.body = "one";
  auto first = client->Send(req);
  ASSERT_TRUE(first.ok()) << first.status();
  req.body = "two";
  auto second = client->Send(req);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->body, "got two");
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(server.requests(), 2);
}

TEST_P(HttpTransportTest, ReadsChunkedAndUntilCloseResponses) {
  KeepAliveServer chunked([](const std::string&, const std::string&) {
    return std::string(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
        "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
  });
  auto client = NewClient();
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", chunked.port(), "/c");
  for (int i = 0; i < 2; ++i) {  // the second one reuses the connection
    auto resp = client->Send(req);
    ASSERT_TRUE(resp.ok()) << resp.status();
    EXPECT_EQ(resp->body, "hello world");
    EXPECT_EQ(resp->Header("x-a"), "1");
  }
  EXPECT_EQ(chunked.connections(), 1);

  // No Content-Length, no chunking: the body runs until the server closes.
  TinyServer until_close([](const std::string&) {
    return std::string("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it");
  });
  req.url = absl::StrCat("http://127.0.0.1:", until_close.port(), "/u");
  auto resp = client->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->body, "all of it");
}

TEST_P(HttpTransportTest, HeadAndNoContentHaveNoBody) {
  KeepAliveServer server([](const std::string& head, const std::string&) {
    if (absl::StartsWith(head, "HEAD")) {
      return std::string("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    }
    return std::string("HTTP/1.1 204 No Content\r\n\r\n");
  });
  auto client = NewClient();
  HttpRequest req;
  req.method = "HEAD";
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/h");
  auto head = client->Send(req);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"), "1000");
  EXPECT_TRUE(head->body.empty());
  req.method = "DELETE";
  auto deleted = client->Send(req);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->status, 204);
  EXPECT_TRUE(absl::StrContains(server.last_head(), "Content-Length: 0\r\n"));
  EXPECT_EQ(server.connections(), 1);
}

std::string Pattern(size_t size) {
  std::string data(size, '\0');
  uint32_t x = 12345;
  for (size_t i = 0; i < size; ++i) {
    x = x * 1103515245 + 12345;
    data[i] = static_cast<char>(x >> 24);
  }
  return data;
}

TEST_P(HttpTransportTest, LargeBodyArrivesIntact) {
  const std::string big = Pattern(20 << 20);  // above Beast's default 8 MB body limit
  KeepAliveServer server([&](const std::string&, const std::string&) { return KeepAliveOk(big); });
  auto client = NewClient();
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/big");
  auto resp = client->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->body.size(), big.size());
  EXPECT_TRUE(resp->body == big);

  std::string streamed;
  req.on_body_chunk = [&](absl::string_view chunk) {
    streamed.append(chunk.data(), chunk.size());
    return true;
  };
  resp = client->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_TRUE(resp->body.empty());
  EXPECT_TRUE(streamed == big);
}

TEST_P(HttpTransportTest, ChunkedUploadWhenSizeUnknown) {
  KeepAliveServer server(
      [](const std::string&, const std::string& body) { return KeepAliveOk(std::to_string(body.size())); });
  auto client = NewClient();
  const std::string payload = Pattern(300000);
  HttpRequest req;
  req.method = "POST";
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/up");
  size_t offset = 0;
  size_t calls = 0;
  req.body_reader = [&](char* buf, size_t max) {
    // Uneven pieces, to exercise the chunk framing.
    size_t n = std::min({max, payload.size() - offset, size_t{1000} + (calls++ * 7919) % 50000});
    memcpy(buf, payload.data() + offset, n);
    offset += n;
    return n;
  };
  req.body_size = -1;
  auto resp = client->Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->body, std::to_string(payload.size()));
  EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(server.last_head()),
                                "transfer-encoding: chunked"))
      << server.last_head();
  EXPECT_TRUE(server.last_body() == payload);
}

TEST_P(HttpTransportTest, GatheredUploadSendsThePiecesInOrderAndCanBeRepeated) {
  KeepAliveServer server(
      [](const std::string&, const std::string& body) { return KeepAliveOk(core::Sha256Hex(body)); });
  auto client = NewClient();
  // Many pieces (more than one sendmsg takes), empty ones, and a large one.
  std::vector<std::string> parts;
  for (int i = 0; i < 300; ++i) parts.push_back(i % 7 == 0 ? "" : Pattern(1 + i * 37));
  parts.push_back(Pattern(5 << 20));
  std::string whole;
  HttpRequest req;
  req.method = "POST";
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/gathered");
  for (const std::string& p : parts) {
    req.body_pieces.push_back(p);
    whole += p;
  }
  for (int round = 0; round < 2; ++round) {  // the same request again: pieces are replayable
    auto resp = client->Send(req);
    ASSERT_TRUE(resp.ok()) << resp.status();
    EXPECT_EQ(resp->body, core::Sha256Hex(whole));
    EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(server.last_head()),
                                  absl::StrCat("content-length: ", whole.size())))
        << server.last_head();
  }
}

TEST_P(HttpTransportTest, ConcurrentSendsFromEightThreads) {
  KeepAliveServer server([](const std::string& head, const std::string&) {
    // Echo the request target so each thread can check it got its own answer.
    size_t start = head.find(' ') + 1;
    return KeepAliveOk(head.substr(start, head.find(' ', start) - start));
  });
  auto client = NewClient();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        HttpRequest req;
        std::string path = absl::StrCat("/t", t, "/", i);
        req.url = absl::StrCat("http://127.0.0.1:", server.port(), path);
        auto resp = client->Send(req);
        if (!resp.ok() || resp->body != path) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(server.requests(), kThreads * kPerThread);
  EXPECT_LE(server.connections(), 16);
}

TEST_P(HttpTransportTest, ConnectTimeoutCoversTlsHandshake) {
  // Listening but never accepting: the kernel completes the TCP handshake, nobody answers the
  // TLS ClientHello.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  listen(fd, 4);
  auto client = NewClient();
  HttpRequest req;
  req.url = absl::StrCat("https://127.0.0.1:", ntohs(addr.sin_port), "/x");
  req.connect_timeout = std::chrono::milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  auto resp = client->Send(req);
  auto elapsed = std::chrono::steady_clock::now() - start;
  close(fd);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kDeadlineExceeded) << resp.status();
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

const TransportCase kTransports[] = {
    {"Curl", [] { return std::unique_ptr<HttpTransport>(std::make_unique<HttpClient>()); }},
    {"Asio", [] { return std::unique_ptr<HttpTransport>(std::make_unique<AsioHttpClient>()); }},
};

INSTANTIATE_TEST_SUITE_P(Clients, HttpTransportTest, testing::ValuesIn(kTransports),
                         [](const testing::TestParamInfo<TransportCase>& info) {
                           return std::string(info.param.name);
                         });

// ---- AsioHttpClient only ----

TEST(AsioHttpClientTest, BadUrlsAreInvalidArgument) {
  AsioHttpClient client;
  for (const char* url : {"ftp://127.0.0.1/x", "http://", "http://[::1/x", "http://h:99999/",
                          "http://h:8x/", "127.0.0.1:80/x", "http://h/a b", "http://u:p@h/"}) {
    HttpRequest req;
    req.url = url;
    req.bearer_token = "do-not-print-me";
    auto resp = client.Send(req);
    EXPECT_EQ(resp.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_FALSE(absl::StrContains(resp.status().message(), "do-not-print-me"));
  }
  HttpRequest req;
  req.url = "http://127.0.0.1:1/x";
  req.headers.push_back({"X-Evil", "a\r\nInjected: yes"});
  EXPECT_EQ(client.Send(req).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AsioHttpClientTest, ShortBodyReaderFailsWithoutHanging) {
  KeepAliveServer server([](const std::string&, const std::string&) { return KeepAliveOk(""); });
  AsioHttpClient client;
  HttpRequest req;
  req.method = "PUT";
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/up");
  req.body_size = 100;
  // One byte per call is fine; returning 0 before body_size bytes is not.
  int calls = 0;
  req.body_reader = [&calls](char* buf, size_t) -> size_t {
    if (calls++ >= 10) return 0;
    buf[0] = 'x';
    return 1;
  };
  auto resp = client.Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kInternal) << resp.status();
}

// Client-side CPU per request on a pooled loopback connection (printed; loosely bounded so a slow
// CI machine does not flake).
TEST(AsioHttpClientTest, PooledRequestIsCheap) {
  KeepAliveServer server([](const std::string&, const std::string&) { return KeepAliveOk("x"); });
  AsioHttpClient client;
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/p");
  req.bearer_token = "t";
  ASSERT_TRUE(client.Send(req).ok());
  auto cpu_us = [] {
    rusage usage{};
    getrusage(RUSAGE_THREAD, &usage);
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000LL + usage.ru_utime.tv_usec +
           usage.ru_stime.tv_usec;
  };
  constexpr int kRequests = 2000;
  long long before = cpu_us();
  for (int i = 0; i < kRequests; ++i) ASSERT_TRUE(client.Send(req).ok());
  long long per_request = (cpu_us() - before) / kRequests;
  std::printf("AsioHttpClient: %lld us CPU per pooled request\n", per_request);
  EXPECT_LT(per_request, 1000);
  EXPECT_EQ(server.connections(), 1);
}

// ---- TLS ----

struct SelfSigned {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed P-256 certificate for `san` (e.g. "DNS:localhost,IP:127.0.0.1").
SelfSigned MakeSelfSigned(const char* san) {
  SelfSigned out;
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("fastest test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair<int, const char*>{NID_subject_alt_name, san},
                            {NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert, key, EVP_sha256());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  out.cert_pem.assign(data, len);
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  len = BIO_get_mem_data(bio, &data);
  out.key_pem.assign(data, len);
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

// Serves HTTPS on 127.0.0.1 with asio ssl: keep-alive, one blocking thread per connection.
class TlsServer {
 public:
  explicit TlsServer(const SelfSigned& identity) : context_(boost::asio::ssl::context::tls_server) {
    context_.use_certificate_chain(boost::asio::buffer(identity.cert_pem));
    context_.use_private_key(boost::asio::buffer(identity.key_pem),
                             boost::asio::ssl::context::pem);
    boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~TlsServer() {
    stop_ = true;
    // Wake the blocking accept with a connection of our own.
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket waker(ioc);
    boost::system::error_code ec;
    waker.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)}, ec);
    thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& socket : sockets_) ::shutdown(socket->native_handle(), SHUT_RDWR);
    for (auto& thread : threads_) thread.join();
  }
  int port() const { return port_; }
  int connections() const { return connections_; }
  int served() const { return served_; }

 private:
  void AcceptLoop() {
    while (true) {
      auto socket = std::make_unique<boost::asio::ip::tcp::socket>(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec || stop_) return;
      std::lock_guard<std::mutex> lock(mu_);
      threads_.emplace_back([this, s = socket.get()] { Serve(*s); });
      sockets_.push_back(std::move(socket));
    }
  }

  void Serve(boost::asio::ip::tcp::socket& socket) {
    boost::asio::ssl::stream<boost::asio::ip::tcp::socket&> tls(socket, context_);
    boost::system::error_code ec;
    tls.handshake(boost::asio::ssl::stream_base::server, ec);
    if (ec) return;  // e.g. the client rejected our certificate
    ++connections_;
    std::string in;
    char buf[4096];
    while (true) {
      size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        size_t n = tls.read_some(boost::asio::buffer(buf), ec);
        if (ec) return;
        in.append(buf, n);
      }
      // A body (Content-Length only) is answered with its SHA-256; a GET with "secure".
      std::string head = absl::AsciiStrToLower(in.substr(0, end));
      in.erase(0, end + 4);
      size_t length = 0;
      if (size_t at = head.find("content-length: "); at != std::string::npos) {
        length = std::stoul(head.substr(at + 16));
      }
      while (in.size() < length) {
        size_t n = tls.read_some(boost::asio::buffer(buf), ec);
        if (ec) return;
        in.append(buf, n);
      }
      const std::string answer = length > 0 ? core::Sha256Hex(in.substr(0, length)) : "secure";
      in.erase(0, length);
      ++served_;
      std::string response = absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", answer.size(),
                                          "\r\n\r\n", answer);
      boost::asio::write(tls, boost::asio::buffer(response), ec);
      if (ec) return;
    }
  }

  boost::asio::io_context ioc_;
  boost::asio::ssl::context context_;
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> served_{0};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::socket>> sockets_;
  std::vector<std::thread> threads_;
};

std::string WriteTempFile(const std::string& name, const std::string& content) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
  std::ofstream(path) << content;
  return path;
}

TEST(AsioHttpClientTest, HttpsVerifiesAgainstSslCertFile) {
  SelfSigned identity = MakeSelfSigned("DNS:localhost,IP:127.0.0.1");
  std::string ca_file = WriteTempFile("ca.pem", identity.cert_pem);
  TlsServer server(identity);
  unsetenv("SSL_CERT_DIR");

  // (a) Trusted through SSL_CERT_FILE: by IP address and by name (SNI + host name check).
  setenv("SSL_CERT_FILE", ca_file.c_str(), 1);
  {
    AsioHttpClient client;
    HttpRequest req;
    req.bearer_token = "tls-token";
    for (const char* host : {"127.0.0.1", "localhost", "127.0.0.1", "localhost"}) {
      req.url = absl::StrCat("https://", host, ":", server.port(), "/secure");
      auto resp = client.Send(req);
      ASSERT_TRUE(resp.ok()) << host << ": " << resp.status();
      EXPECT_EQ(resp->status, 200);
      EXPECT_EQ(resp->body, "secure");
    }
    EXPECT_EQ(server.connections(), 2);  // one pooled TLS connection per host name
    // A gathered upload over TLS (staged into records, not one record per piece).
    HttpRequest post;
    post.method = "POST";
    post.url = absl::StrCat("https://127.0.0.1:", server.port(), "/upload");
    const std::string a = "first piece,", b(200000, 'b'), c = "";
    post.body_pieces = {a, b, c, a};
    auto resp = client.Send(post);
    ASSERT_TRUE(resp.ok()) << resp.status();
    EXPECT_EQ(resp->body, core::Sha256Hex(a + b + c + a));
  }

  // (b) Not trusted: the system CA bundle does not know our certificate.
  unsetenv("SSL_CERT_FILE");
  {
    AsioHttpClient client;
    HttpRequest req;
    req.url = absl::StrCat("https://127.0.0.1:", server.port(), "/secure");
    req.bearer_token = "tls-token";
    auto resp = client.Send(req);
    ASSERT_FALSE(resp.ok());
    EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable) << resp.status();
    EXPECT_TRUE(absl::StrContains(resp.status().message(), "certificate")) << resp.status();
    EXPECT_FALSE(absl::StrContains(resp.status().message(), "tls-token"));
  }
  EXPECT_EQ(server.served(), 5);
}

TEST(AsioHttpClientTest, HttpsRejectsCertificateForAnotherHost) {
  SelfSigned identity = MakeSelfSigned("DNS:other.example.test");
  std::string ca_file = WriteTempFile("other-ca.pem", identity.cert_pem);
  TlsServer server(identity);
  unsetenv("SSL_CERT_DIR");
  setenv("SSL_CERT_FILE", ca_file.c_str(), 1);
  AsioHttpClient client;
  HttpRequest req;
  req.url = absl::StrCat("https://127.0.0.1:", server.port(), "/secure");
  auto resp = client.Send(req);
  unsetenv("SSL_CERT_FILE");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable) << resp.status();
  EXPECT_EQ(server.served(), 0);
}

}  // namespace
}  // namespace fastest::core
