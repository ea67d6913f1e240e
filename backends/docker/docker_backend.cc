#include "backends/docker/docker_backend.h"

#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/json/config_fields.h"
#include "core/status/status_macros.h"

namespace fastest::backends::docker {
namespace {

constexpr char kWhat[] = "docker config";

absl::StatusOr<std::string> OptionalString(const nlohmann::json& config, const char* key) {
  return core::OptionalString(config, key, "", kWhat);
}

}  // namespace

absl::StatusOr<engine_api::EngineBackendOptions> DockerBackendOptions(const nlohmann::json& config) {
  FASTEST_ASSIGN_OR_RETURN(nlohmann::json cfg, core::ConfigObject(config, kWhat));
  engine_api::EngineBackendOptions options;
  options.name = "docker";
  FASTEST_ASSIGN_OR_RETURN(std::string host, OptionalString(cfg, "host"));
  if (host.empty()) {
    const char* env = std::getenv("DOCKER_HOST");
    host = env != nullptr && env[0] != '\0' ? env : kDefaultDockerHost;
  }
  options.engine.endpoint = host;
  options.engine.engine_name = "Docker";
  options.engine.start_hint = "start dockerd (tools/start_dockerd.sh)";
  options.engine.wait_method = engine_api::WaitMethod::kCompat;
  FASTEST_ASSIGN_OR_RETURN(std::string network_mode, OptionalString(cfg, "network_mode"));
  if (!network_mode.empty()) options.default_network_mode = network_mode;
  FASTEST_ASSIGN_OR_RETURN(options.runtime, OptionalString(cfg, "runtime"));
  FASTEST_ASSIGN_OR_RETURN(options.disk_quota,
                           core::OptionalBool(cfg, "disk_quota", options.disk_quota, kWhat));
  return options;
}

absl::StatusOr<std::unique_ptr<DockerBackend>> DockerBackend::Create(const nlohmann::json& config) {
  FASTEST_ASSIGN_OR_RETURN(engine_api::EngineBackendOptions options, DockerBackendOptions(config));
  FASTEST_RETURN_IF_ERROR(engine_api::EngineBackend::ValidateOptions(options));
  FASTEST_ASSIGN_OR_RETURN(std::unique_ptr<engine_api::EngineClient> engine,
                           engine_api::EngineClient::Create(options.engine));
  return std::unique_ptr<DockerBackend>(new DockerBackend(std::move(options), std::move(engine)));
}

}  // namespace fastest::backends::docker
