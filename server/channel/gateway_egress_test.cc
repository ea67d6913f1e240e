// Unit tests of the model gateway's and the egress proxy's pure parts: the request head the
// provider gets, the sandbox environment rewrite, the allow-list.
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/channel/egress_proxy.h"
#include "server/channel/model_gateway.h"

namespace fastest::server {
namespace {

TEST(GatewayRequestHead, ReplacesCredentialsAndHostAndStaysBelowTheBasePath) {
  auto head = GatewayRequestHead(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:4000\r\nAuthorization: Bearer "
      "placeholder\r\nx-api-key: placeholder\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
      "/v1", "api.example.com", "Authorization: Bearer sk-real");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(*head,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer "
            "sk-real\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");

  for (const char* target : {"/v2/files", "/v1/../admin", "/v1/%2E%2E/admin", "/v1x/chat", "http://evil/v1/chat",
                             "*"}) {
    EXPECT_FALSE(GatewayRequestHead(absl::StrCat("GET ", target, " HTTP/1.1\r\n\r\n"), "/v1", "h",
                                    "")
                     .ok())
        << target;
  }
  EXPECT_TRUE(GatewayRequestHead("GET /v1 HTTP/1.1\r\n\r\n", "/v1", "h", "").ok());
  EXPECT_FALSE(GatewayRequestHead("GET /v1/x HTTP/1.1\r\n folded\r\n\r\n", "/v1", "h", "").ok());
}

TEST(ModelGatewayFromEnvironment, TheSandboxGetsOnlyAPlaceholder) {
  std::map<std::string, std::string> env = {{"ANTHROPIC_API_KEY", "sk-ant-real"},
                                            {"OPENAI_API_KEY", "sk-oa-real"},
                                            {"MODEL", "claude"}};
  auto options = ModelGatewayFromEnvironment(&env);
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_TRUE(options->has_value());
  EXPECT_EQ((*options)->provider, "anthropic");
  EXPECT_EQ((*options)->base_url, "https://api.anthropic.com/v1");
  EXPECT_EQ((*options)->api_key, "sk-ant-real");
  EXPECT_EQ(env, (std::map<std::string, std::string>{
                     {"ANTHROPIC_API_KEY", kModelKeyPlaceholder},
                     {"FASTEST_MODEL_GATEWAY", "/v1"},
                     {"MODEL", "claude"}}));

  env = {{"FASTEST_MODEL_BASE_URL", "http://127.0.0.1:9999/v1/"},
         {"FASTEST_MODEL_API_KEY", "k"},
         {"OPENAI_API_KEY", "sk-oa-real"}};
  options = ModelGatewayFromEnvironment(&env);
  ASSERT_TRUE(options.ok() && options->has_value());
  EXPECT_EQ((*options)->provider, "openai-compatible");
  EXPECT_EQ(env.count("OPENAI_API_KEY"), 0u);
  EXPECT_EQ(env["FASTEST_MODEL_API_KEY"], kModelKeyPlaceholder);
  EXPECT_EQ(env["FASTEST_MODEL_GATEWAY"], "/v1");

  env = {{"FASTEST_MODEL_BASE_URL", "ftp://x"}};
  EXPECT_FALSE(ModelGatewayFromEnvironment(&env).ok());
  env = {{"MODEL", "x"}};
  options = ModelGatewayFromEnvironment(&env);
  ASSERT_TRUE(options.ok());
  EXPECT_FALSE(options->has_value());
}

TEST(EgressAllowList, ParsesAndMatches) {
  auto rules = ParseEgressAllowList("registry.npmjs.org:443, GitHub.com ,[::1]:8080");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 3u);
  EXPECT_TRUE(EgressAllowed(*rules, "registry.npmjs.org", 443));
  EXPECT_FALSE(EgressAllowed(*rules, "registry.npmjs.org", 80));
  EXPECT_TRUE(EgressAllowed(*rules, "github.com", 22));  // no port: any
  EXPECT_TRUE(EgressAllowed(*rules, "::1", 8080));
  EXPECT_FALSE(EgressAllowed(*rules, "evil.github.com", 443));
  EXPECT_FALSE(ParseEgressAllowList("host:0").ok());
  EXPECT_FALSE(ParseEgressAllowList(":443").ok());
  EXPECT_FALSE(ParseEgressAllowList("host:http").ok());
  EXPECT_TRUE(ParseEgressAllowList("")->empty());
}

}  // namespace
}  // namespace fastest::server

namespace fastest::server {
namespace {

// The gateway against a real upstream on 127.0.0.1 that streams its answer in two parts with a
// pause between: the first part must reach the sandbox before the second is even sent, and the
// upstream must see the real key, never the sandbox's placeholder.
TEST(ModelGateway, StreamsTheAnswerAsItArrivesAndAddsTheKey) {
  std::mutex mu;
  std::condition_variable cv;
  bool first_seen = false;
  std::string upstream_head;
  int port = 0;
  auto upstream = SocketListener::StartLoopback(
      0,
      [&](int fd) {
        std::string head, rest;
        ASSERT_TRUE(channel_io::ReadHead(fd, 65536, 5000, &head, &rest).ok());
        {
          std::lock_guard<std::mutex> lock(mu);
          upstream_head = head;
        }
        channel_io::WriteAll(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                                 "data: one\n\n");
        std::unique_lock<std::mutex> lock(mu);
        // The second event only once the sandbox side has the first.
        bool ok = cv.wait_for(lock, std::chrono::seconds(5), [&] { return first_seen; });
        lock.unlock();
        channel_io::WriteAll(fd, ok ? "data: two\n\n" : "data: late\n\n");
      },
      &port);
  ASSERT_TRUE(upstream.ok()) << upstream.status();
  auto gateway = ModelGateway::Create({.provider = "openai-compatible",
                                       .base_url = absl::StrCat("http://127.0.0.1:", port, "/v1"),
                                       .api_key = "sk-real"});
  ASSERT_TRUE(gateway.ok()) << gateway.status();

  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  std::vector<std::string> notes;
  std::thread serve([&] {
    (*gateway)->Serve(pair[1], "J1", [&](absl::string_view line) { notes.emplace_back(line); });
    close(pair[1]);
  });
  std::string body = "{\"stream\":true}";
  ASSERT_TRUE(channel_io::WriteAll(
      pair[0], absl::StrCat("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Authorization: Bearer fastest-model-gateway\r\nContent-Length: ",
                            body.size(), "\r\n\r\n", body)));
  std::string got;
  char buf[4096];
  while (got.find("data: one") == std::string::npos) {
    ssize_t n = read(pair[0], buf, sizeof(buf));
    ASSERT_GT(n, 0) << "the first event did not arrive on its own: " << got;
    got.append(buf, n);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    first_seen = true;
  }
  cv.notify_all();
  ssize_t n;
  while ((n = read(pair[0], buf, sizeof(buf))) > 0) got.append(buf, n);
  close(pair[0]);
  serve.join();
  EXPECT_TRUE(absl::EndsWith(got, "data: one\n\ndata: two\n\n")) << got;
  EXPECT_NE(upstream_head.find("Authorization: Bearer sk-real\r\n"), std::string::npos)
      << upstream_head;
  EXPECT_EQ(upstream_head.find("fastest-model-gateway"), std::string::npos) << upstream_head;
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(notes[0], "[gateway] POST /v1/chat/completions -> 200, ")) << notes[0];
  EXPECT_EQ(notes[0].find("sk-real"), std::string::npos);
}

}  // namespace
}  // namespace fastest::server
