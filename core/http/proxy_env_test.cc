// The proxy decision of the two HTTP clients, pinned (see core/http/README.md):
//   - HttpClient (libcurl) honours http_proxy / HTTPS_PROXY / NO_PROXY like every curl program:
//     the CLI and the server may sit behind a corporate proxy.
//   - AsioHttpClient (the runner's) ignores every proxy variable: inside a sandbox the environment
//     is partly the user's and the agent's, and the runner's bearer token must only ever go to the
//     API address the server gave it (a loopback/host address or, sealed, a unix socket).
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/api/testing/loopback_http_server.h"
#include "core/http/asio_http_client.h"
#include "core/http/http_client.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

using testing::LoopbackHttpServer;
using testing::TestRequest;
using testing::TestResponse;

const char* const kProxyVariables[] = {"http_proxy", "HTTP_PROXY",  "https_proxy", "HTTPS_PROXY",
                                       "all_proxy",  "ALL_PROXY",   "no_proxy",    "NO_PROXY"};

// Sets proxy variables for one test and restores a clean environment afterwards.
class ProxyEnvTest : public ::testing::Test {
 protected:
  void SetUp() override { Clear(); }
  void TearDown() override { Clear(); }
  static void Clear() {
    for (const char* name : kProxyVariables) unsetenv(name);
  }

  static TestResponse Answer(const std::string& who) {
    TestResponse r;
    r.body = absl::StrCat("{\"from\":\"", who, "\"}");
    return r;
  }

  LoopbackHttpServer target_{[](const TestRequest&) { return Answer("target"); }};
  LoopbackHttpServer proxy_{[](const TestRequest&) { return Answer("proxy"); }};
};

HttpRequest Get(const std::string& url) {
  HttpRequest request;
  request.url = url;
  request.bearer_token = "secret-runner-token";
  request.timeout = std::chrono::milliseconds(5000);
  return request;
}

TEST_F(ProxyEnvTest, AsioClientIgnoresEveryProxyVariable) {
  for (const char* name : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                           "ALL_PROXY"}) {
    setenv(name, proxy_.base_url().c_str(), 1);
  }
  AsioHttpClient http;
  absl::StatusOr<HttpResponse> response = http.Send(Get(target_.base_url() + "/v1/jobs/next"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "{\"from\":\"target\"}");
  EXPECT_EQ(proxy_.requests().size(), 0u) << "the runner's client must never use a proxy";
  ASSERT_EQ(target_.requests().size(), 1u);
  EXPECT_EQ(target_.requests()[0].target, "/v1/jobs/next");
}

TEST_F(ProxyEnvTest, CurlClientHonoursHttpProxy) {
  setenv("http_proxy", proxy_.base_url().c_str(), 1);
  HttpClient http;
  absl::StatusOr<HttpResponse> response = http.Send(Get(target_.base_url() + "/v1/health"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "{\"from\":\"proxy\"}");
  EXPECT_EQ(target_.requests().size(), 0u);
  ASSERT_EQ(proxy_.requests().size(), 1u);
  // A forward proxy gets the absolute URL.
  EXPECT_EQ(proxy_.requests()[0].target, target_.base_url() + "/v1/health");
}

TEST_F(ProxyEnvTest, CurlClientBypassesTheProxyForNoProxyHosts) {
  setenv("http_proxy", proxy_.base_url().c_str(), 1);
  setenv("NO_PROXY", "127.0.0.1", 1);
  HttpClient http;
  absl::StatusOr<HttpResponse> response = http.Send(Get(target_.base_url() + "/v1/health"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "{\"from\":\"target\"}");
  EXPECT_EQ(proxy_.requests().size(), 0u);
}

}  // namespace
}  // namespace fastest::core
