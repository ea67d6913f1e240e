#include "backends/cloudflare/cloudflare_backend.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/cloudflare/bridge_client.h"
#include "gtest/gtest.h"

namespace fastest::backends::cloudflare {
namespace {

TEST(CloudflareConfigTest, DefaultsAndValidation) {
  auto config = ParseCloudflareConfig({{"bridge_url", "http://127.0.0.1:9/"}, {"api_key", "k"},
                                       {"state_file", "/tmp/x.json"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->instance_type.name, "standard-1");
  EXPECT_EQ(config->instance_type.memory_mib(), 4096);
  EXPECT_EQ(config->bridge.api_key, "k");
  EXPECT_EQ(config->bridge.max_attempts, 5);

  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseCloudflareConfig({{"bridge_url", "http://x"}, {"instance_type", "huge"}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseCloudflareConfig({{"bridge_url", "ftp://x"}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseCloudflareConfig({{"bridge_url", "http://x"}, {"max_attempts", "3"}}).status()));
}

TEST(CloudflareConfigTest, StallTimeout) {
  auto config = ParseCloudflareConfig({{"bridge_url", "http://127.0.0.1:9"}, {"state_file", "/tmp/x"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->stall_timeout, absl::Seconds(60));
  config = ParseCloudflareConfig(
      {{"bridge_url", "http://127.0.0.1:9"}, {"state_file", "/tmp/x"}, {"stall_timeout_ms", 1500}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->stall_timeout, absl::Milliseconds(1500));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseCloudflareConfig({{"bridge_url", "http://x"}, {"stall_timeout_ms", 0}}).status()));
}

TEST(CloudflareConfigTest, EnvFileQuotesValuesAndRejectsBadNames) {
  auto text = EnvFileContents({{"API_TOKEN", "s3cr'et"}, {"B", "two\nlines"}});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "export API_TOKEN='s3cr'\\''et'\nexport B='two\nlines'\n");
  EXPECT_TRUE(absl::IsInvalidArgument(EnvFileContents({{"1X", "v"}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(EnvFileContents({{"A;rm", "v"}}).status()));
}

TEST(BridgeClientTest, MapsBridgeErrors) {
  auto s = BridgeClient::StatusFromBridgeResponse(
      503, "{\"error\":\"instance limit reached (2/2)\",\"code\":\"capacity_exceeded\"}", "exec");
  EXPECT_TRUE(absl::IsResourceExhausted(s));
  EXPECT_NE(s.message().find("instance limit reached (2/2)"), absl::string_view::npos);
  EXPECT_TRUE(absl::IsFailedPrecondition(BridgeClient::StatusFromBridgeResponse(
      401, "{\"error\":\"Unauthorized\",\"code\":\"unauthorized\"}", "exec")));
  EXPECT_TRUE(absl::IsUnavailable(BridgeClient::StatusFromBridgeResponse(502, "x", "exec")));
  EXPECT_TRUE(absl::IsUnavailable(BridgeClient::StatusFromBridgeResponse(429, "", "exec")));
  EXPECT_TRUE(absl::IsNotFound(BridgeClient::StatusFromBridgeResponse(404, "{}", "read")));
  EXPECT_TRUE(absl::IsPermissionDenied(BridgeClient::StatusFromBridgeResponse(403, "{}", "read")));
  EXPECT_TRUE(absl::IsInvalidArgument(BridgeClient::StatusFromBridgeResponse(413, "{}", "write")));
}

// A "bridge" on 127.0.0.1 that accepts connections (the kernel backlog does) but never answers.
class SilentBridge {
 public:
  SilentBridge() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 64);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentBridge() { close(fd_); }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(BridgeClientTest, ExecDeadlineBoundsRetriesAgainstASilentBridge) {
  SilentBridge silent;
  BridgeClientOptions options;
  options.base_url = silent.url();
  options.request_timeout = absl::Seconds(10);
  options.max_attempts = 5;
  options.backoff_initial = absl::Milliseconds(50);
  BridgeClient bridge(options);
  ExecRequest exec;
  exec.argv = {"true"};
  const absl::Time start = absl::Now();
  exec.deadline = start + absl::Milliseconds(700);
  auto result = bridge.Exec("abc234", exec, /*idempotent=*/true);
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(result.status())) << result.status();
  EXPECT_LT(took, absl::Milliseconds(1500)) << "the deadline did not bound the call";
  EXPECT_EQ(bridge.last_answer(), absl::InfinitePast());
}

// Wait against a bridge that never answers: each Wait stays near its timeout, and once the
// bridge has been silent for stall_timeout_ms Wait says so.
TEST(CloudflareBackendTest, WaitOnAStalledBridgeIsBoundedThenUnavailable) {
  SilentBridge silent;
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string state_file = absl::StrCat(tmp ? tmp : "/tmp", "/cf-stall-state.json");
  const std::string id = "stalledsandbox2";
  {
    std::ofstream out(state_file);
    out << nlohmann::json{{"schema", 1},
                          {"sandboxes", {{{"id", id}, {"name", "n"}, {"labels", nlohmann::json::object()}}}}}
               .dump();
  }
  auto backend = CloudflareBackend::Create({{"bridge_url", silent.url()},
                                            {"api_key", "k"},
                                            {"state_file", state_file},
                                            {"request_timeout_ms", 10000},
                                            {"max_attempts", 3},
                                            {"poll_interval_ms", 100},
                                            {"stall_timeout_ms", 2500}});
  ASSERT_TRUE(backend.ok()) << backend.status();
  const absl::Time start = absl::Now();
  auto first = (*backend)->Wait(id, absl::Milliseconds(300));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->exited);
  // One probe of at least 1 s, never request_timeout (10 s) x 3 attempts.
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(2000));

  absl::Status last;
  while (absl::Now() - start < absl::Seconds(10)) {
    auto waited = (*backend)->Wait(id, absl::Milliseconds(500));
    if (!waited.ok()) {
      last = waited.status();
      break;
    }
    EXPECT_FALSE(waited->exited);
  }
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(last.ok()) << "Wait never gave up on the silent bridge";
  EXPECT_TRUE(absl::IsUnavailable(last)) << last;
  EXPECT_TRUE(absl::StrContains(last.message(), "bridge not answering for ")) << last;
  EXPECT_GE(took, absl::Milliseconds(2500));
  EXPECT_LT(took, absl::Seconds(5));
  std::remove(state_file.c_str());
}

}  // namespace
}  // namespace fastest::backends::cloudflare
