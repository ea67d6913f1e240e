// File: backends/engine_api/engine_backend.h
//
// EngineBackend: fastest::core::SandboxBackend on an EngineClient. The Docker and Podman backends
// are this class with different EngineBackendOptions (socket, runtime, ulimits, wait method), so
// the mapping from sandbox specs to containers exists once.
//
//   CreateSandbox = create + start (a container whose start fails is removed again)
//   Wait          = EngineClient::WaitContainer (deadline -> OK, exited=false)
//   ReadLogs      = demultiplexed logs; Kill; Remove (force, volumes); List by label
//
// Thread-safe (EngineClient is).
#ifndef FASTEST_BACKENDS_ENGINE_API_ENGINE_BACKEND_H_
#define FASTEST_BACKENDS_ENGINE_API_ENGINE_BACKEND_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backends/engine_api/engine_client.h"
#include "core/plugin/sandbox_backend.h"
#include "nlohmann/json.hpp"

namespace fastest::backends::engine_api {

struct EngineBackendOptions {
  std::string name = "docker";  // SandboxBackend::name()
  EngineOptions engine;
  // Network mode when the spec names none. "none": the sandbox has only its own loopback; the
  // runner reaches fastest-server through the channel sockets mounted at /run/fastest. "host"
  // (the sandbox sees and can sniff the host's network, loopback included) is an explicit,
  // unsafe choice; it saves the ~90 ms a network namespace costs on this kernel.
  std::string default_network_mode = "none";
  std::string runtime;  // HostConfig.Runtime ("" = engine default)
  // Podman: send explicit nofile/nproc ulimits (its defaults fail to apply on this machine).
  bool explicit_ulimits = false;
  int64_t nofile = 4096;
  // Pass disk_bytes as StorageOpt size (only overlay2 on xfs with pquota supports it).
  bool disk_quota = false;
};

// Maps an engine state to the ABI's created|running|exited|unknown.
std::string SandboxState(absl::string_view engine_state);

// The nofile/nproc ulimits for a container with `pids_limit` (0 = unset). RLIMIT_NPROC counts every
// process of the uid on the host (container root is host root without a user namespace), so it
// must stay well above the host's own process count; PidsLimit (a cgroup) is the real cap.
std::vector<Ulimit> UlimitsFor(int64_t pids_limit, int64_t nofile);

// Capabilities the runner keeps (everything else is dropped). The agent gets none: the runner
// starts it under another uid, which clears them, and no-new-privileges stops setuid binaries.
//   CHOWN         hand the restored workspace and the agent's home to the agent's uid
//   DAC_OVERRIDE  snapshot files the agent made unreadable (mode 000) and clean up after it
//   FOWNER        restore file modes and times on files the agent's uid owns
//   SETUID/SETGID switch to the agent's uid and groups before starting it
//   KILL          kill every process the agent left behind (another uid) when it ends
inline constexpr const char* kRunnerCapabilities[] = {"CHOWN", "DAC_OVERRIDE", "FOWNER",
                                                      "SETUID", "SETGID", "KILL"};

// Where the workspace is (a tmpfs sized by the spec's disk_bytes).
inline constexpr char kWorkspaceDir[] = "/workspace";

// ContainerSpecFor: the engine-level spec for a sandbox spec under `options`. Every container is
// sealed: CapDrop ALL plus kRunnerCapabilities, no-new-privileges, a read-only root file system
// with size-limited tmpfs mounts at /workspace (disk_bytes; tmpfs pages count toward the memory
// limit too) and /tmp (memory_bytes), MemorySwap == Memory (no swap), PidsLimit, and the spec's
// channel_dir bind-mounted read-only at /run/fastest. InvalidArgument for an unknown network mode
// or a missing image.
absl::StatusOr<ContainerSpec> ContainerSpecFor(const core::SandboxSpec& spec,
                                               const EngineBackendOptions& options);

class EngineBackend : public core::SandboxBackend {
 public:
  static absl::StatusOr<std::unique_ptr<EngineBackend>> Create(EngineBackendOptions options);

  // ValidateOptions: InvalidArgument for an unsupported default network mode.
  static absl::Status ValidateOptions(const EngineBackendOptions& options);

  absl::StatusOr<nlohmann::json> Describe() override;
  absl::StatusOr<core::SandboxInfo> CreateSandbox(const core::SandboxSpec& spec) override;
  absl::StatusOr<core::WaitResult> Wait(const std::string& id, absl::Duration timeout) override;
  absl::Status ReadLogs(const std::string& id, const core::LogOptions& options,
                        std::function<bool(int stream, absl::string_view data)> sink) override;
  absl::Status Kill(const std::string& id, int signal) override;
  absl::Status Remove(const std::string& id) override;
  absl::StatusOr<std::vector<core::SandboxInfo>> List(
      const std::map<std::string, std::string>& labels) override;
  const std::string& name() const override { return options_.name; }

  EngineClient& engine() { return *engine_; }
  const EngineBackendOptions& options() const { return options_; }

 protected:
  EngineBackend(EngineBackendOptions options, std::unique_ptr<EngineClient> engine);

 private:
  EngineBackendOptions options_;
  std::unique_ptr<EngineClient> engine_;
};

}  // namespace fastest::backends::engine_api

#endif  // FASTEST_BACKENDS_ENGINE_API_ENGINE_BACKEND_H_
