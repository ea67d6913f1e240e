#include "backends/podman/podman_backend.h"

#include <cstdlib>
#include <memory>

#include "backends/engine_api/engine_backend_suite.h"
#include "core/plugin/backend.h"
#include "gtest/gtest.h"

namespace fastest::backends::podman {
namespace {

using engine_api::EngineBackendSuite;
using engine_api::EngineSuiteParam;

absl::StatusOr<std::unique_ptr<core::SandboxBackend>> Make(const nlohmann::json& config) {
  auto backend = PodmanBackend::Create(config);
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<core::SandboxBackend>(std::move(backend).value());
}

INSTANTIATE_TEST_SUITE_P(
    Podman, EngineBackendSuite,
    testing::Values(
        EngineSuiteParam{"podman_direct", "tools/start_podman.sh", "--podman",
                         [] { return Make({{"schema", 1}}); }},
        // The compat wait path must work too (it is what a plain Docker client would use).
        EngineSuiteParam{"podman_compat_wait", "tools/start_podman.sh", "--podman",
                         [] { return Make({{"schema", 1}, {"wait", "compat"}}); }},
        EngineSuiteParam{"podman_plugin", "tools/start_podman.sh", "--podman",
                         [] {
                           return core::OpenBackend(
                               "./backends/podman/libfastest_backend_podman.so", {{"schema", 1}});
                         }}),
    engine_api::EngineSuiteParamName);

TEST(PodmanBackendConfigTest, DefaultsAndOverrides) {
  unsetenv("CONTAINER_HOST");
  auto options = PodmanBackendOptions({{"schema", 1}});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->name, "podman");
  EXPECT_EQ(options->runtime, "runc");
  EXPECT_TRUE(options->explicit_ulimits);
  EXPECT_EQ(options->engine.wait_method, engine_api::WaitMethod::kLibpod);
  EXPECT_TRUE(options->engine.retry_on_reset);
  EXPECT_EQ(options->default_network_mode, "none");

  setenv("CONTAINER_HOST", "unix:///tmp/p.sock", 1);
  EXPECT_EQ(PodmanBackendOptions({})->engine.endpoint, "unix:///tmp/p.sock");
  EXPECT_EQ(PodmanBackendOptions({{"host", "unix:///tmp/q.sock"}})->engine.endpoint,
            "unix:///tmp/q.sock");
  unsetenv("CONTAINER_HOST");

  options = PodmanBackendOptions({{"nofile", 2048}, {"wait", "compat"}, {"runtime", "crun"}});
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->nofile, 2048);
  EXPECT_EQ(options->runtime, "crun");
  EXPECT_EQ(options->engine.wait_method, engine_api::WaitMethod::kCompat);
  EXPECT_EQ(PodmanBackendOptions({{"nofile", -1}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PodmanBackendOptions({{"wait", "events"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PodmanBackendConfigTest, DiscoversTheRootfulSocketWhenItAnswers) {
  unsetenv("CONTAINER_HOST");
  // The suite runs against the rootful service started by tools/start_podman.sh.
  EXPECT_EQ(DiscoverPodmanHost(), "unix:///run/podman/podman.sock");
}

TEST(PodmanBackendErrorsTest, ServiceDownSaysHowToStartIt) {
  auto backend = PodmanBackend::Create({{"host", "unix:///tmp/fastest-no-such-podman.sock"}});
  ASSERT_TRUE(backend.ok());
  auto created = (*backend)->CreateSandbox([] {
    core::SandboxSpec spec;
    spec.image = engine_api::kTestImage;
    return spec;
  }());
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(created.status().message().find("cannot reach the Podman engine"), std::string::npos)
      << created.status();
  EXPECT_NE(created.status().message().find("tools/start_podman.sh"), std::string::npos);
}

}  // namespace
}  // namespace fastest::backends::podman
