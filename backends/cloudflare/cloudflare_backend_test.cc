#include "backends/cloudflare/cloudflare_backend.h"

#include "backends/cloudflare/bridge_client.h"
#include "gtest/gtest.h"

namespace fastest::backends::cloudflare {
namespace {

TEST(CloudflareConfigTest, DefaultsAndValidation) {
  auto config = ParseCloudflareConfig({{"bridge_url", "http://127.0.0.1:9/"}, {"api_key", "k"},
                                       {"state_file", "/tmp/x.json"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->instance_type.name, "standard-1");
  EXPECT_EQ(config->instance_type.memory_mib, 4096);
  EXPECT_EQ(config->bridge.api_key, "k");
  EXPECT_EQ(config->bridge.max_attempts, 5);

  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseCloudflareConfig({{"bridge_url", "http://x"}, {"instance_type", "huge"}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseCloudflareConfig({{"bridge_url", "ftp://x"}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseCloudflareConfig({{"bridge_url", "http://x"}, {"max_attempts", "3"}}).status()));
}

TEST(CloudflareConfigTest, InstanceTypesMatchTheLimitsTable) {
  EXPECT_EQ(LookupInstanceType("lite")->memory_mib, 256);
  EXPECT_EQ(LookupInstanceType("basic")->memory_mib, 1024);
  EXPECT_EQ(LookupInstanceType("standard-2")->vcpu, 1);
  EXPECT_EQ(LookupInstanceType("standard-3")->disk_mb, 16000);
  EXPECT_EQ(LookupInstanceType("standard-4")->memory_mib, 12288);
  auto bad = LookupInstanceType("standard-9");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("standard-4"), absl::string_view::npos);
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

}  // namespace
}  // namespace fastest::backends::cloudflare
