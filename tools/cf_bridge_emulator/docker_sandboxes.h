// File: tools/cf_bridge_emulator/docker_sandboxes.h
//
// DockerSandboxes: the emulator's stand-in for Cloudflare's container pool. Each bridge sandbox id
// gets one local Docker container (started on first use, like the bridge's pool resolution), with
// a long-lived `sleep` as its command under docker-init, NetworkMode host (so a runner inside
// reaches an API on 127.0.0.1) and the labels fastest.emulator=1,
// fastest.emulator.sandbox=<id>, fastest.emulator.instance=<this process>.
//
// Exec is Docker exec: POST /containers/{id}/exec, then /exec/{id}/start with the attach stream
// (multiplexed frames, demultiplexed with engine_api's LogDemuxer), then /exec/{id}/json for the
// exit code. A timeout kills the exec'd process and its descendants from the host (the emulator
// runs as root next to dockerd). Container lifecycle goes through engine_api's EngineClient.
//
// Thread-safe.
#ifndef FASTEST_TOOLS_CF_BRIDGE_EMULATOR_DOCKER_SANDBOXES_H_
#define FASTEST_TOOLS_CF_BRIDGE_EMULATOR_DOCKER_SANDBOXES_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/engine_api/engine_client.h"
#include "core/http/http_client.h"

namespace fastest::tools::cf_bridge_emulator {

struct DockerSandboxesOptions {
  std::string endpoint = "unix:///var/run/docker.sock";
  std::string image = "fastest/sandbox:0.1.0";
  int max_instances = 0;  // 0 = unlimited
};

// A sandbox's container.
struct Container {
  std::string id;
  std::string shell;  // "bash" if the image has /bin/bash, else "sh"
};

struct ExecSpec {
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "K=V"
  std::string working_dir;
  absl::Duration timeout = absl::ZeroDuration();  // zero = none
};

struct ExecOutcome {
  int exit_code = -1;
  bool timed_out = false;
  bool aborted = false;  // the sink asked to stop (client gone)
};

class DockerSandboxes {
 public:
  static absl::StatusOr<std::unique_ptr<DockerSandboxes>> Create(DockerSandboxesOptions options);
  ~DockerSandboxes();

  // Ping: the engine answers.
  absl::Status Ping();
  // Ensure: the container of `sandbox_id`, created and started on first use. ResourceExhausted
  // "instance limit reached (n/m)" at the limit; Unavailable/Internal "pool error" otherwise.
  absl::StatusOr<Container> Ensure(const std::string& sandbox_id);
  // Find: the container if one is assigned (no allocation).
  bool Has(const std::string& sandbox_id);
  // Exec: runs `spec` in the container, output to `sink(stream, bytes)` (false = stop).
  absl::StatusOr<ExecOutcome> Exec(const Container& container, const ExecSpec& spec,
                                   const std::function<bool(int, absl::string_view)>& sink);
  // PutFile: writes `bytes` to the absolute `path` (parent directories created).
  absl::Status PutFile(const Container& container, const std::string& path, const std::string& bytes);
  // Destroy: removes the sandbox's container if any.
  absl::Status Destroy(const std::string& sandbox_id);
  // DestroyAll: removes every container this process created.
  void DestroyAll();
  // Assigned: number of sandboxes with a container.
  int Assigned();
  const DockerSandboxesOptions& options() const { return options_; }
  std::vector<std::string> SandboxIds();

 private:
  DockerSandboxes(DockerSandboxesOptions options, std::unique_ptr<backends::engine_api::EngineClient> engine,
                  core::Endpoint endpoint);
  absl::StatusOr<core::HttpResponse> Call(const std::string& method, const std::string& path,
                                          const std::string& body, std::chrono::milliseconds timeout,
                                          std::function<bool(absl::string_view)> on_chunk = {});

  DockerSandboxesOptions options_;
  std::unique_ptr<backends::engine_api::EngineClient> engine_;
  core::Endpoint endpoint_;
  core::HttpClient http_;
  std::string instance_;  // label value unique to this process
  absl::Mutex create_mu_;  // serializes container creation (one container per id)
  absl::Mutex mu_;
  std::map<std::string, Container> containers_ ABSL_GUARDED_BY(mu_);
};

// BuildTar: a one-file tar archive (ustar, GNU long-name entry when needed).
std::string BuildTar(absl::string_view name, absl::string_view bytes, unsigned mode);

// KillProcessTree: SIGKILLs `pid` and every descendant (host /proc). Returns the number killed.
int KillProcessTree(int pid);

}  // namespace fastest::tools::cf_bridge_emulator

#endif  // FASTEST_TOOLS_CF_BRIDGE_EMULATOR_DOCKER_SANDBOXES_H_
