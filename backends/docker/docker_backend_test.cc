#include "backends/docker/docker_backend.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "backends/engine_api/engine_backend_suite.h"
#include "core/plugin/backend.h"
#include "gtest/gtest.h"

namespace fastest::backends::docker {
namespace {

using engine_api::EngineBackendSuite;
using engine_api::EngineSuiteParam;

absl::StatusOr<std::unique_ptr<core::SandboxBackend>> MakeDirect() {
  auto backend = DockerBackend::Create({{"schema", 1}});
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<core::SandboxBackend>(std::move(backend).value());
}

absl::StatusOr<std::unique_ptr<core::SandboxBackend>> MakePlugin() {
  return core::OpenBackend("./backends/docker/libfastest_backend_docker.so", {{"schema", 1}});
}

INSTANTIATE_TEST_SUITE_P(
    Docker, EngineBackendSuite,
    testing::Values(EngineSuiteParam{"docker_direct", "tools/start_dockerd.sh", "", MakeDirect},
                    EngineSuiteParam{"docker_plugin", "tools/start_dockerd.sh", "", MakePlugin}),
    engine_api::EngineSuiteParamName);

TEST(DockerBackendConfigTest, DefaultsAndOverrides) {
  unsetenv("DOCKER_HOST");
  auto options = DockerBackendOptions({{"schema", 1}});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->engine.endpoint, "unix:///var/run/docker.sock");
  EXPECT_EQ(options->default_network_mode, "none");
  EXPECT_EQ(options->name, "docker");

  setenv("DOCKER_HOST", "tcp://127.0.0.1:2375", 1);
  EXPECT_EQ(DockerBackendOptions({})->engine.endpoint, "tcp://127.0.0.1:2375");
  EXPECT_EQ(DockerBackendOptions({{"host", "unix:///tmp/d.sock"}})->engine.endpoint,
            "unix:///tmp/d.sock");
  unsetenv("DOCKER_HOST");

  options = DockerBackendOptions({{"network_mode", "none"}, {"runtime", "runc"}});
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->default_network_mode, "none");
  EXPECT_EQ(options->runtime, "runc");
  EXPECT_EQ(DockerBackendOptions({{"host", 5}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DockerBackend::Create({{"network_mode", "weird"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DockerBackend::Create({{"host", "ftp://x"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DockerBackendErrorsTest, DaemonDownSaysHowToStartIt) {
  auto backend = DockerBackend::Create({{"host", "unix:///tmp/fastest-no-such-docker.sock"}});
  ASSERT_TRUE(backend.ok());
  auto listed = (*backend)->List({});
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(listed.status().message().find("cannot reach the Docker engine at "
                                           "/tmp/fastest-no-such-docker.sock"),
            std::string::npos)
      << listed.status();
  EXPECT_NE(listed.status().message().find("tools/start_dockerd.sh"), std::string::npos);
  auto described = (*backend)->Describe();
  ASSERT_TRUE(described.ok());
  EXPECT_NE((*described)["health"].get<std::string>().find("tools/start_dockerd.sh"),
            std::string::npos);
}

TEST(DockerBackendErrorsTest, StaleSocketIsConnectionRefused) {
  // A socket file nobody listens on (what a crashed dockerd leaves behind).
  std::string path = "/tmp/fastest-stale-" + std::to_string(getpid()) + ".sock";
  unlink(path.c_str());
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  auto backend = DockerBackend::Create({{"host", "unix://" + path}});
  ASSERT_TRUE(backend.ok());
  auto listed = (*backend)->List({});
  close(fd);
  unlink(path.c_str());
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.status().code(), absl::StatusCode::kUnavailable) << listed.status();
  EXPECT_NE(listed.status().message().find("connection refused"), std::string::npos)
      << listed.status();
  EXPECT_NE(listed.status().message().find("tools/start_dockerd.sh"), std::string::npos);
}

}  // namespace
}  // namespace fastest::backends::docker
