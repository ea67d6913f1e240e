// File: backends/docker/docker_backend.h
//
// DockerBackend: the "docker" sandbox backend, fastest::core::SandboxBackend on the Docker Engine
// API (backends/engine_api). Exported as libfastest_backend_docker.so by docker_plugin.cc.
//
// Config (JSON object, every field optional):
//   {"schema":1,
//    "host": "unix:///var/run/docker.sock" | "tcp://127.0.0.1:2375",   else $DOCKER_HOST, else
//                                                                      unix:///var/run/docker.sock
//    "network_mode": "host" | "none" | "bridge",   default "host": the runner talks to the fastest
//                    server on 127.0.0.1 and no network namespace is created (cheaper start);
//                    "none" cuts the sandbox off completely; "bridge" needs dockerd's bridge.
//    "runtime": "runc",          HostConfig.Runtime; default: dockerd's default runtime
//    "disk_quota": false}        pass disk_bytes as StorageOpt size (overlay2 on xfs+pquota only)
//
// Example:
//   FASTEST_ASSIGN_OR_RETURN(auto backend, DockerBackend::Create({{"schema", 1}}));
//   FASTEST_ASSIGN_OR_RETURN(SandboxInfo box, backend->CreateSandbox(spec));
#ifndef FASTEST_BACKENDS_DOCKER_DOCKER_BACKEND_H_
#define FASTEST_BACKENDS_DOCKER_DOCKER_BACKEND_H_

#include <memory>

#include "absl/status/statusor.h"
#include "backends/engine_api/engine_backend.h"
#include "nlohmann/json.hpp"

namespace fastest::backends::docker {

inline constexpr char kDefaultDockerHost[] = "unix:///var/run/docker.sock";

// DockerBackendOptions: the EngineBackendOptions a config selects (InvalidArgument for bad
// fields). Exposed for tests.
absl::StatusOr<engine_api::EngineBackendOptions> DockerBackendOptions(const nlohmann::json& config);

class DockerBackend : public engine_api::EngineBackend {
 public:
  static absl::StatusOr<std::unique_ptr<DockerBackend>> Create(const nlohmann::json& config);

 private:
  using engine_api::EngineBackend::EngineBackend;
};

}  // namespace fastest::backends::docker

#endif  // FASTEST_BACKENDS_DOCKER_DOCKER_BACKEND_H_
