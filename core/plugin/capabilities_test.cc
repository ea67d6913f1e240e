#include "core/plugin/capabilities.h"

#include "core/abi/backend_abi.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

using nlohmann::json;

TEST(CapabilitiesTest, ParsesEveryField) {
  json doc = {{"schema", 1},
              {"name", "docker"},
              {"version", "27.0"},
              {"log_streaming", true},
              {"warm_pool", false},
              {"resource_limits", true},
              {"network_modes", {"host", "none", "bridge"}},
              {"default_network_mode", "host"},
              {"max_parallel_sandboxes", 4},
              {"health", "ok"}};
  const uint32_t bits =
      FASTEST_CAP_LOG_STREAMING | FASTEST_CAP_RESOURCE_LIMITS | FASTEST_CAP_NETWORK_MODES;
  absl::StatusOr<BackendCapabilities> caps = ParseBackendCapabilities(doc, bits);
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_EQ(caps->name, "docker");
  EXPECT_EQ(caps->version, "27.0");
  EXPECT_TRUE(caps->log_streaming);
  EXPECT_FALSE(caps->warm_pool);
  EXPECT_TRUE(caps->resource_limits);
  EXPECT_EQ(caps->network_modes, (std::vector<std::string>{"host", "none", "bridge"}));
  EXPECT_EQ(caps->default_network_mode, "host");
  EXPECT_EQ(caps->max_parallel_sandboxes, 4);
  EXPECT_TRUE(caps->healthy());
  EXPECT_EQ(caps->bits(), bits);
}

TEST(CapabilitiesTest, MissingFlagsComeFromTheBits) {
  absl::StatusOr<BackendCapabilities> caps =
      ParseBackendCapabilities(json{{"health", "engine down"}}, FASTEST_CAP_WARM_POOL);
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_TRUE(caps->warm_pool);
  EXPECT_FALSE(caps->log_streaming);
  EXPECT_FALSE(caps->healthy());
  EXPECT_EQ(caps->max_parallel_sandboxes, 0);
  // Without bits, a missing flag is false.
  EXPECT_FALSE(ParseBackendCapabilities(json::object())->log_streaming);
}

TEST(CapabilitiesTest, DisagreementWithTheBitsIsRefused) {
  auto status = [](json doc, uint32_t bits) { return ParseBackendCapabilities(doc, bits).status(); };
  EXPECT_EQ(status({{"log_streaming", true}}, 0).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status({{"log_streaming", false}}, FASTEST_CAP_LOG_STREAMING).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status({{"warm_pool", true}}, 0).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status({{"resource_limits", false}}, FASTEST_CAP_RESOURCE_LIMITS).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status({{"network_modes", {"a", "b"}}}, 0).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status({{"network_modes", {"a"}}}, FASTEST_CAP_NETWORK_MODES).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(status({{"network_modes", {"a"}}}, 0).ok());
}

TEST(CapabilitiesTest, MalformedFieldsAreInvalidArgument) {
  auto code = [](json doc) { return ParseBackendCapabilities(doc).status().code(); };
  EXPECT_EQ(code(json::array()), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"log_streaming", "yes"}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"network_modes", "host"}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"network_modes", {1}}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"max_parallel_sandboxes", -1}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"network_modes", {"host"}}, {"default_network_mode", "bridge"}}),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fastest::core
