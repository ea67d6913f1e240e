// File: backends/podman/podman_backend.h
//
// PodmanBackend: the "podman" sandbox backend. `podman system service` serves a Docker-compatible
// API and the libpod API on one socket, so this is the SAME EngineBackend as docker
// (backends/engine_api) with Podman's differences as options:
//   - socket discovery: config "host" -> $CONTAINER_HOST -> rootful /run/podman/podman.sock ->
//     rootless $XDG_RUNTIME_DIR/podman/podman.sock (the first that exists; else the one matching
//     our euid);
//   - runtime "runc" (crun, when installed, fails on this machine's hybrid cgroups);
//   - explicit nofile/nproc ulimits on every container: Podman otherwise raises both to the host
//     maximum, which fails here ("error setting rlimit type 7: operation not permitted");
//   - wait via libpod (/libpod/containers/{id}/wait with a 10 ms poll) instead of the compat wait,
//     which polls every 250 ms;
//   - one retry when the service drops an idle keep-alive connection; connection refused (service
//     not running / exited after idle) is a clear Unavailable naming tools/start_podman.sh.
// Exported as libfastest_backend_podman.so by podman_plugin.cc.
//
// Config (JSON object, every field optional):
//   {"schema":1, "host":"unix:///run/podman/podman.sock", "network_mode":"host"|"none"|"bridge",
//    "runtime":"runc", "nofile":4096, "wait":"libpod"|"compat"}
#ifndef FASTEST_BACKENDS_PODMAN_PODMAN_BACKEND_H_
#define FASTEST_BACKENDS_PODMAN_PODMAN_BACKEND_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backends/engine_api/engine_backend.h"
#include "nlohmann/json.hpp"

namespace fastest::backends::podman {

inline constexpr char kRootfulPodmanSocket[] = "/run/podman/podman.sock";

// DiscoverPodmanHost: the endpoint to use when the config names none (see the file comment).
std::string DiscoverPodmanHost();

// PodmanBackendOptions: the EngineBackendOptions a config selects. Exposed for tests.
absl::StatusOr<engine_api::EngineBackendOptions> PodmanBackendOptions(const nlohmann::json& config);

class PodmanBackend : public engine_api::EngineBackend {
 public:
  static absl::StatusOr<std::unique_ptr<PodmanBackend>> Create(const nlohmann::json& config);

 private:
  using engine_api::EngineBackend::EngineBackend;
};

}  // namespace fastest::backends::podman

#endif  // FASTEST_BACKENDS_PODMAN_PODMAN_BACKEND_H_
