// The plugin entry of libfastest_backend_docker.so (see core/sdk/backend_sdk.h).
#include <memory>

#include "backends/docker/docker_backend.h"
#include "core/sdk/backend_sdk.h"

namespace {

absl::StatusOr<std::unique_ptr<fastest::core::SandboxBackend>> MakeDocker(
    const nlohmann::json& config) {
  auto backend = fastest::backends::docker::DockerBackend::Create(config);
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<fastest::core::SandboxBackend>(std::move(backend).value());
}

}  // namespace

FASTEST_DEFINE_BACKEND("docker", "0.1.0",
                       FASTEST_CAP_LOG_STREAMING | FASTEST_CAP_RESOURCE_LIMITS |
                           FASTEST_CAP_NETWORK_MODES,
                       MakeDocker)
