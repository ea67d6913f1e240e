#include "core/net/http_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/http/http_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fastest::net {
namespace {

using core::HttpClient;
using core::HttpRequest;

// An application's error shape, to show the server's own errors go through it.
Response TestErrorShape(int http_status, absl::string_view code, absl::string_view message) {
  return Response::Json(http_status, {{"code", std::string(code)}, {"message", std::string(message)}});
}

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = {}, bool plain_errors = false) {
    server_ = std::make_unique<HttpServer>(options);
    Router& r = server_->router();
    if (!plain_errors) r.SetErrorFormatter(TestErrorShape);
    r.AddSync("GET", "/health", [](const Request&) {
      return Response::Json(200, {{"status", "ok"}});
    });
    r.AddSync("GET", "/v1/jobs/next", [](const Request&) {
      return Response::Json(200, {{"route", "next"}});
    });
    r.AddSync("GET", "/v1/jobs/:jobId", [](const Request& req) {
      return Response::Json(200, {{"id", req.Param("jobId")}, {"q", req.Query("q")}});
    });
    r.AddSync("POST", "/echo", [](const Request& req) {
      return Response::Text(200, req.body);
    });
    r.Add("POST", "/later", [](const Request&, std::shared_ptr<Responder> responder) {
      std::thread([responder] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        responder->Send(Response::Json(200, {{"later", true}}));
      }).detach();
    });
    r.Add("GET", "/forgotten", [](const Request&, std::shared_ptr<Responder>) {});
    r.Add("GET", "/sse", [](const Request&, std::shared_ptr<Responder> responder) {
      responder->StartStream(200, {{"Content-Type", "text/event-stream"}});
      std::thread([responder] {
        for (int i = 0; i < 3; ++i) responder->SendEvent("tick", std::to_string(i));
        responder->End();
      }).detach();
    });
    r.AddSync("GET", "/status/:code", [](const Request& req) {
      return Response::Text(HttpStatusFromStatus(absl::Status(
                                static_cast<absl::StatusCode>(std::stoi(req.Param("code"))), "boom")),
                            "boom");
    });
    ASSERT_TRUE(server_->Start().ok());
    base_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }

  core::HttpResponse Do(const std::string& method, const std::string& path,
                        std::string body = "") {
    HttpRequest req;
    req.method = method;
    req.url = base_ + path;
    req.body = std::move(body);
    auto resp = client_.Send(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? *resp : core::HttpResponse{};
  }

  HttpClient client_;
  std::unique_ptr<HttpServer> server_;
  std::string base_;
};

// The body buffer is reused across requests of a connection without being cleared: a request
// without a body, or with a shorter one, must not see the previous request's bytes.
TEST_F(HttpServerTest, ReusedBodyBufferNeverLeaksPreviousBody) {
  StartServer();
  server_->router().AddSync("GET", "/body-size", [](const Request& req) {
    return Response::Text(200, std::to_string(req.body.size()));
  });
  const std::string big(3 << 20, 'b');
  EXPECT_EQ(Do("POST", "/echo", big).body, big);
  EXPECT_EQ(Do("GET", "/body-size").body, "0");
  EXPECT_EQ(Do("POST", "/echo", "short").body, "short");
  EXPECT_EQ(Do("POST", "/echo", "").body, "");
  EXPECT_EQ(Do("POST", "/echo", big + "tail").body, big + "tail");
  EXPECT_EQ(Do("GET", "/body-size").body, "0");
}

TEST(RouterTest, ListNamesEveryRouteInOrder) {
  Router r;
  auto ok = [](const Request&) { return Response::Text(200, "ok"); };
  r.AddSync("GET", "/", ok);
  r.AddSync("POST", "/v1/jobs/:jobId/status", ok);
  r.AddSync("GET", "/static/*", ok);
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(r.List(), (Pairs{{"GET", "/"}, {"POST", "/v1/jobs/:jobId/status"},
                             {"GET", "/static/*"}}));
}

TEST_F(HttpServerTest, RoutesParamsAndLiteralPrecedence) {
  StartServer();
  auto r = Do("GET", "/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body)["status"], "ok");
  EXPECT_EQ(nlohmann::json::parse(Do("GET", "/v1/jobs/next").body)["route"], "next");
  auto j = nlohmann::json::parse(Do("GET", "/v1/jobs/AB12?q=a%20b+c").body);
  EXPECT_EQ(j["id"], "AB12");
  EXPECT_EQ(j["q"], "a b c");
  r = Do("GET", "/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"code":"NOT_FOUND","message":"Route not found"})");
  EXPECT_EQ(r.Header("access-control-allow-origin"), "");  // CORS is off by default
  EXPECT_EQ(Do("OPTIONS", "/health").status, 404);  // no CORS preflight either
}

TEST_F(HttpServerTest, DeferredStreamingAndForgottenResponses) {
  StartServer();
  auto r = Do("POST", "/later");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"later":true})");
  r = Do("GET", "/forgotten");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, R"({"code":"INTERNAL_ERROR","message":"handler did not respond"})");
  r = Do("GET", "/sse");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  EXPECT_EQ(r.body, "event: tick\ndata: 0\n\nevent: tick\ndata: 1\n\nevent: tick\ndata: 2\n\n");
  // Keep-alive connection still usable after a stream.
  EXPECT_EQ(Do("GET", "/health").status, 200);
}

TEST_F(HttpServerTest, BodyLimitGives413) {
  HttpServerOptions options;
  options.max_body_bytes = 1000;
  StartServer(options);
  EXPECT_EQ(Do("POST", "/echo", std::string(1000, 'a')).body, std::string(1000, 'a'));
  auto r = Do("POST", "/echo", std::string(5000, 'a'));
  EXPECT_EQ(r.status, 413);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["code"], "PAYLOAD_TOO_LARGE");
  // Large body with Expect: 100-continue (curl adds it above 1 MiB).
  r = Do("POST", "/echo", std::string(2 << 20, 'b'));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(Do("GET", "/health").status, 200);
}

TEST_F(HttpServerTest, StatusMapping) {
  StartServer();
  EXPECT_EQ(Do("GET", "/status/5").status, 404);
  EXPECT_EQ(Do("GET", "/status/3").status, 400);
  EXPECT_EQ(Do("GET", "/status/9").status, 409);
  EXPECT_EQ(Do("GET", "/status/16").status, 401);
  EXPECT_EQ(Do("GET", "/status/13").status, 500);
}

// Without a formatter the server's errors are plain text; unmatched routes can be answered by
// the application.
TEST_F(HttpServerTest, PlainTextErrorsByDefaultAndReplaceableNotFound) {
  HttpServerOptions options;
  options.max_body_bytes = 10;
  StartServer(options, /*plain_errors=*/true);
  auto r = Do("GET", "/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "Route not found\n");
  EXPECT_EQ(r.Header("content-type"), "text/plain; charset=utf-8");
  r = Do("POST", "/echo", std::string(100, 'a'));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.body, "Request body exceeds the limit of 10 bytes\n");
}

// A blocking handler on the worker pool does not hold the only io thread: /health answers while
// it sleeps, and its request (body included) is intact when it answers.
TEST_F(HttpServerTest, WorkerPoolHandlersDoNotBlockTheIoThread) {
  HttpServerOptions options;
  options.threads = 1;
  options.worker_threads = 2;
  server_ = std::make_unique<HttpServer>(options);
  std::atomic<bool> on_io_thread{true};
  std::thread::id io_thread;
  server_->router().AddSync("GET", "/health", [&io_thread](const Request&) {
    io_thread = std::this_thread::get_id();
    return Response::Text(200, "ok");
  });
  server_->router().AddSync(
      "POST", "/slow/:id",
      [&](const Request& req) {
        on_io_thread = std::this_thread::get_id() == io_thread;
        std::this_thread::sleep_for(std::chrono::milliseconds(800));
        return Response::Text(200, req.Param("id") + ":" + req.body);
      },
      Execution::kWorkerPool);
  ASSERT_TRUE(server_->Start().ok());
  base_ = "http://127.0.0.1:" + std::to_string(server_->port());
  ASSERT_EQ(Do("GET", "/health").status, 200);

  std::thread slow([&] { EXPECT_EQ(Do("POST", "/slow/7", "payload").body, "7:payload"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto start = std::chrono::steady_clock::now();
  HttpClient other;
  HttpRequest health;
  health.url = base_ + "/health";
  auto r = other.Send(health);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(elapsed, std::chrono::milliseconds(500));
  slow.join();
  EXPECT_FALSE(on_io_thread.load());
}

TEST(RouterTest, NotFoundHandlerSeesTheRequest) {
  Router router;
  EXPECT_EQ(router.NotFound(Request{}).status, 404);
  router.SetNotFound([](const Request& req) { return Response::Text(200, "fallback " + req.path); });
  Request req;
  req.path = "/anything";
  Response r = router.NotFound(req);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "fallback /anything");
}

// Raw socket helper: connect to the server.
int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return -1;
  return fd;
}

TEST_F(HttpServerTest, SlowClientIsDropped) {
  HttpServerOptions options;
  options.read_timeout = absl::Milliseconds(300);
  StartServer(options);
  int fd = Connect(server_->port());
  ASSERT_GE(fd, 0);
  // Half a request line, then silence.
  ASSERT_EQ(write(fd, "GET /hea", 8), 8);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(server_->open_connections(), 1);
  char buf[64];
  ssize_t n = read(fd, buf, sizeof(buf));  // blocks until the server closes
  EXPECT_LE(n, 0);
  close(fd);
  for (int i = 0; i < 50 && server_->open_connections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(server_->open_connections(), 0);
}

// The head's deadline counts from when the connection began waiting: a client that trickles
// one byte at a time is still dropped. A handler that works longer than read_timeout is not.
TEST_F(HttpServerTest, HeadDeadlineDropsTricklersButNotBusyHandlers) {
  HttpServerOptions options;
  options.read_timeout = absl::Milliseconds(300);
  server_ = std::make_unique<HttpServer>(options);
  server_->router().AddSync(
      "GET", "/slow",
      [](const Request&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(800));
        return Response::Text(200, "slow done");
      },
      Execution::kWorkerPool);
  ASSERT_TRUE(server_->Start().ok());
  {
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    const std::string head = "GET /slow HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaa\r\n\r\n";
    const auto start = std::chrono::steady_clock::now();
    bool closed_early = false;
    for (char c : head) {
      if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) {  // no SIGPIPE once the server has closed
        closed_early = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(40));
    }
    // 60 bytes at 40 ms each take ~2.4 s, far past the 300 ms deadline (+ a sweep period).
    char buf[64];
    const ssize_t n = closed_early ? 0 : read(fd, buf, sizeof(buf));
    EXPECT_LE(n, 0) << std::string(buf, n > 0 ? n : 0);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
    close(fd);
  }
  {
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    const std::string req = "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    std::string got;
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) got.append(buf, n);
    close(fd);
    EXPECT_NE(got.find("200 OK"), std::string::npos) << got;
    EXPECT_NE(got.find("slow done"), std::string::npos) << got;
  }
}

// A keep-alive connection reuses its request's strings: a later request must not see the
// earlier one's headers, query or path; percent-encoded paths are decoded; a "*" route matches
// any number of further segments (also none).
TEST_F(HttpServerTest, KeepAliveRequestsDoNotInheritEarlierHeaders) {
  server_ = std::make_unique<HttpServer>(HttpServerOptions{});
  server_->router().AddSync("GET", "/files/*", [](const Request& req) {
    return Response::Text(200, "path=" + req.path + " rest=" + req.Param("*") +
                                   " a=" + req.Header("x-a") + " b=" + req.Header("x-b") +
                                   " q=" + req.Query("q") + " n=" +
                                   std::to_string(req.headers.size()));
  });
  ASSERT_TRUE(server_->Start().ok());
  int fd = Connect(server_->port());
  ASSERT_GE(fd, 0);
  auto exchange = [fd](const std::string& request) {
    EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    std::string got;
    char buf[1024];
    // One answer: read until its body (the last field, " n=<count>") has arrived.
    while (got.find(" n=") == std::string::npos || got.back() < '0' || got.back() > '9') {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      got.append(buf, n);
    }
    return got.substr(got.find("\r\n\r\n") + 4);
  };
  EXPECT_EQ(exchange("GET /files/a/b%20c?q=1 HTTP/1.1\r\nHost: x\r\nX-A: first-a\r\n"
                     "X-B: first-b\r\n\r\n"),
            "path=/files/a/b c rest=a/b c a=first-a b=first-b q=1 n=3");
  EXPECT_EQ(exchange("GET /files HTTP/1.1\r\nHost: x\r\n\r\n"),
            "path=/files rest= a= b= q= n=1");
  EXPECT_EQ(exchange("GET /files/z HTTP/1.1\r\nX-B: second\r\nHost: y\r\n\r\n"),
            "path=/files/z rest=z a= b=second q= n=2");
  close(fd);
}

// Bodies are read straight into their buffer: requests pipelined in one write, a body arriving
// in pieces, a chunked body and a body that stops halfway all come out right.
TEST_F(HttpServerTest, BodiesArriveWholeHoweverTheBytesAreSplit) {
  HttpServerOptions options;
  options.read_timeout = absl::Milliseconds(500);
  StartServer(options);
  auto read_all = [](int fd) {
    std::string got;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) got.append(buf, n);
    return got;
  };
  {
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    const std::string two =
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond"
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
        "\r\n3\r\nchu\r\n4\r\nnked\r\n0\r\n\r\n";
    ASSERT_EQ(write(fd, two.data(), two.size()), static_cast<ssize_t>(two.size()));
    const std::string got = read_all(fd);
    close(fd);
    const size_t a = got.find("first"), b = got.find("second"), c = got.find("chunked");
    ASSERT_NE(a, std::string::npos) << got;
    ASSERT_NE(b, std::string::npos) << got;
    ASSERT_NE(c, std::string::npos) << got;
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
  }
  {
    // Head and the start of the body together, the rest in later writes.
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    const std::string body(200000, 'z');
    const std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                             "Content-Length: 200000\r\n\r\n";
    const std::string first = head + body.substr(0, 1000);
    ASSERT_EQ(write(fd, first.data(), first.size()), static_cast<ssize_t>(first.size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (size_t at = 1000; at < body.size(); at += 65536) {
      const std::string piece = body.substr(at, 65536);
      ASSERT_EQ(write(fd, piece.data(), piece.size()), static_cast<ssize_t>(piece.size()));
    }
    const std::string got = read_all(fd);
    close(fd);
    EXPECT_NE(got.find("200 OK"), std::string::npos) << got.substr(0, 200);
    EXPECT_NE(got.find("Content-Length: 200000"), std::string::npos) << got.substr(0, 200);
    EXPECT_EQ(got.substr(got.size() - body.size()), body);
  }
  {
    // A body that stops halfway: dropped at the read deadline, nothing dispatched.
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    const std::string partial =
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part";
    ASSERT_EQ(write(fd, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
    EXPECT_EQ(read_all(fd), "");  // closed without an answer
    close(fd);
  }
}

TEST_F(HttpServerTest, MalformedRequestGives400) {
  StartServer();
  int fd = Connect(server_->port());
  ASSERT_GE(fd, 0);
  const char kBad[] = "GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n";
  ASSERT_GT(write(fd, kBad, sizeof(kBad) - 1), 0);
  std::string got;
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) got.append(buf, n);
  close(fd);
  EXPECT_NE(got.find("400 Bad Request"), std::string::npos) << got;
}

TEST_F(HttpServerTest, StopIsGracefulAndIdempotent) {
  StartServer();
  EXPECT_EQ(Do("GET", "/health").status, 200);  // leaves an idle keep-alive connection
  auto t0 = absl::Now();
  server_->Stop();
  server_->Stop();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(2));
  HttpRequest req;
  req.url = base_ + "/health";
  HttpClient fresh;
  EXPECT_FALSE(fresh.Send(req).ok());
}

TEST_F(HttpServerTest, CorsOnlyForTheConfiguredOrigin) {
  HttpServerOptions options;
  options.cors_origin = "https://app.example";
  StartServer(options);
  auto r = Do("GET", "/health");
  EXPECT_EQ(r.Header("access-control-allow-origin"), "https://app.example");
  EXPECT_EQ(r.Header("vary"), "Origin");
  EXPECT_EQ(Do("OPTIONS", "/health").status, 204);
}

// Reads what the server sends until it closes or `stop` appears.
std::string ReadUntil(int fd, const std::string& stop) {
  std::string got;
  char buf[4096];
  ssize_t n;
  while (got.find(stop) == std::string::npos && (n = read(fd, buf, sizeof(buf))) > 0) {
    got.append(buf, n);
  }
  return got;
}

// A request with a body is judged on its head: refused -> 401 at once, with no `100 Continue`
// and without waiting for (or reading) the announced body; admitted -> 100 Continue, then the
// body is read.
TEST_F(HttpServerTest, BodyAdmittedOnlyAfterTheHeadIsApproved) {
  HttpServerOptions options;
  options.read_timeout = absl::Seconds(5);
  std::atomic<int> asked{0};
  options.admit_body = [&asked](const Request& req) {
    ++asked;
    return req.Header("authorization") == "Bearer good" && req.path == "/echo";
  };
  StartServer(options);
  {
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    const std::string head =
        "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        "Content-Length: 104857600\r\n\r\n";
    ASSERT_EQ(write(fd, head.data(), head.size()), static_cast<ssize_t>(head.size()));
    std::string got = ReadUntil(fd, "}}");
    EXPECT_EQ(got.rfind("HTTP/1.1 401", 0), 0u) << got;
    EXPECT_EQ(got.find("100 Continue"), std::string::npos) << got;
    EXPECT_NE(got.find("UNAUTHORIZED"), std::string::npos) << got;
    close(fd);
  }
  {
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    const std::string head =
        "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\n"
        "Expect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
    ASSERT_EQ(write(fd, head.data(), head.size()), static_cast<ssize_t>(head.size()));
    std::string cont = ReadUntil(fd, "\r\n\r\n");
    EXPECT_EQ(cont.rfind("HTTP/1.1 100 Continue", 0), 0u) << cont;
    ASSERT_EQ(write(fd, "hello", 5), 5);
    std::string got = ReadUntil(fd, "hello");
    EXPECT_NE(got.find("200 OK"), std::string::npos) << got;
    close(fd);
  }
  // Requests without a body are not asked about (their handlers authenticate).
  const int before = asked.load();
  EXPECT_EQ(Do("GET", "/health").status, 200);
  EXPECT_EQ(asked.load(), before);
}

// A big body arriving in pieces still comes out whole (the buffer grows as bytes arrive).
TEST_F(HttpServerTest, LargeBodyGrowsAsItArrives) {
  StartServer();
  std::string big(5 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + (i >> 12));
  auto r = Do("POST", "/echo", big);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == big);
}

// Past the per-IP cap, the connection that has waited longest for a request makes room: idle
// connections cannot lock out a new client.
TEST_F(HttpServerTest, IdleConnectionsMakeRoomAtTheCap) {
  HttpServerOptions options;
  options.max_connections_per_ip = 4;
  options.read_timeout = absl::Seconds(30);
  StartServer(options);
  std::vector<int> fds;
  for (int i = 0; i < 10; ++i) {
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_LE(server_->open_connections(), 4);
  EXPECT_EQ(Do("GET", "/health").status, 200);
  // The oldest idle ones were closed by the server (read sees EOF), the newest stay open.
  char c;
  EXPECT_EQ(read(fds.front(), &c, 1), 0);
  for (int fd : fds) close(fd);
}

}  // namespace
}  // namespace fastest::net
