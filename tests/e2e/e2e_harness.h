// File: tests/e2e/e2e_harness.h
//
// Helpers for the end-to-end suite (tests/e2e) and the dispatch benchmark
// (//tools/bench:dispatch_bench): start the REAL fastest-server binary (and, for cloudflare, the
// REAL bridge emulator) as child processes on loopback, seed project/snapshot/workspace/jobs
// through ApiClient, call the worker endpoints, and look at the engine (Docker or Podman socket)
// to see which sandbox containers exist.
//
// Nothing here mocks anything: real sockets, real SQLite, real containers.
#ifndef FASTEST_TESTS_E2E_E2E_HARNESS_H_
#define FASTEST_TESTS_E2E_E2E_HARNESS_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/engine_api/engine_client.h"
#include "core/api/api_client.h"
#include "core/http/http_client.h"
#include "core/model/model.h"
#include "core/snapshot/manifest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"
#include "tests/testing/emulator_process.h"
#include "tests/testing/server_process.h"
#include "tests/testing/runfiles.h"

namespace fastest::e2e {

// ---------------------------------------------------------------- files and processes

// RunfilePath, MakeTempDir: tests/testing/runfiles.h.
using testing::MakeTempDir;
using testing::RunfilePath;

// Writes `content` to root/rel (parents created) and sets `mode` exactly (umask-independent).
void WriteFile(const std::string& root, const std::string& rel, const std::string& content,
               unsigned mode = 0644);
std::string ReadFile(const std::string& path);
// Child processes: fastest::testing::ChildProcess (tests/testing/child_process.h).

// ---------------------------------------------------------------- backends

// The three backends the suite runs under.
enum class BackendKind { kDocker, kPodman, kCloudflare };
absl::StatusOr<BackendKind> ParseBackendKind(const std::string& name);
std::string BackendName(BackendKind kind);

// The image tools/build_sandbox_image.sh builds by default; $FASTEST_E2E_IMAGE overrides.
std::string SandboxImage();

// The engine that runs the containers: docker for docker and cloudflare (the emulator runs its
// sandboxes on local Docker), podman for podman.
struct EngineTarget {
  std::string engine_name;  // "Docker" / "Podman"
  std::string endpoint;     // unix:///...
  std::string start_hint;   // what to run when it is down
};
EngineTarget EngineFor(BackendKind kind);

// Engine client for `kind`'s engine; Podman uses the libpod wait. Fails with a clear message
// (naming the start script) when the engine does not answer.
absl::StatusOr<std::unique_ptr<backends::engine_api::EngineClient>> ConnectEngine(BackendKind kind);

// OK when `image` exists in the engine; else FailedPrecondition naming tools/build_sandbox_image.sh.
absl::Status CheckImagePresent(BackendKind kind, const std::string& image);

// Runs `sha256sum /usr/local/bin/fastest-runner` in the image and compares it with `runner_path`.
// Returns "" when they match, else a human-readable warning.
std::string CheckRunnerFreshness(backends::engine_api::EngineClient& engine,
                                 const std::string& image, const std::string& runner_path);

// The engine of `kind`, with the sandbox image (SandboxImage()) present: ConnectEngine +
// CheckImagePresent. `stale_runner` is CheckRunnerFreshness against this tree's runner ("" when
// the image's runner is this tree's); the caller decides whether that is fatal.
struct SandboxEngine {
  std::unique_ptr<backends::engine_api::EngineClient> engine;
  std::string image;
  std::string stale_runner;
};
absl::StatusOr<SandboxEngine> ConnectSandboxEngine(BackendKind kind);

// ---------------------------------------------------------------- the change fixture

// The tree the change tests seed: README.md, src/main.sh (0755), src/lib.txt, docs/old.txt,
// tools/run.sh (0644), data/keep.bin (binary, 0600).
void WriteChangeFixtureTree(const std::string& root);
// The scripted agent's changes to it: add (two, one nested), edit, delete, chmod. Explicit modes
// on new files, so the result does not depend on a umask.
extern const char kChangeAgentScript[];

// ---------------------------------------------------------------- the bridge emulator

// tests/testing/emulator_process.h.
using testing::EmulatorOptions;
using testing::EmulatorProcess;

// ---------------------------------------------------------------- the server

struct ServerOptions {
  BackendKind backend = BackendKind::kDocker;
  nlohmann::json backend_config = nlohmann::json::object();
  std::string image;  // default SandboxImage()
  std::string job_timeout = "2m";
  int max_instances = 4;
  int port = 0;  // 0 = any (read back through --port_file)
  // The scripted agent: the runner runs `sh -c "$FASTEST_AGENT_COMMAND" fastest-agent <prompt>`.
  // The default evaluates the job's prompt as a shell script, so each job carries its own agent.
  std::string agent_command = "eval \"$1\"";
  std::map<std::string, std::string> extra_env;
  std::vector<std::string> extra_flags;
};

// BackendServer: the fastest-server binary running a sandbox backend: the generic process
// harness (tests/testing/server_process.h) given `options`' backend plugin, image, agent command
// and $FASTEST_API_TOKEN, plus crash/restart control and the server id from its log.
class BackendServer {
 public:
  BackendServer(std::string data_dir, std::string token, ServerOptions options);

  // Starts the binary and waits until /health answers (20 s). Keeps the port across restarts.
  absl::Status Start();
  // SIGKILL: a crash (the dispatcher gets no chance to clean up).
  void Crash() { process_.Kill(); }
  // SIGTERM and reap.
  void Stop() { process_.Stop(); }
  bool running() const { return process_.running(); }
  pid_t pid() const { return process_.pid(); }

  int port() const { return process_.port(); }
  std::string url() const { return process_.url(); }
  // From the "listening" log line ("" if not seen).
  const std::string& server_id() const { return server_id_; }
  const std::string& data_dir() const { return process_.data_dir(); }
  const ServerOptions& options() const { return options_; }
  std::string Log() const { return process_.Log(); }

 private:
  std::string token_;
  ServerOptions options_;
  testing::ServerProcess process_;
  std::string server_id_;
};

// The server's argv/env for `options` (shared with the benchmark's printout).
std::string PluginPath(BackendKind kind);

// ---------------------------------------------------------------- API helpers

struct Fixture {
  std::string project_id;
  std::string snapshot_id;
  std::string workspace_id;
  core::Manifest manifest;
};

// Uploads `dir` (blobs, manifest) and creates project + snapshot + workspace on it.
absl::StatusOr<Fixture> SeedWorkspace(core::ApiClient& api, const std::string& dir,
                                      const std::string& name);

// Downloads and parses the manifest of `snapshot_id`.
absl::StatusOr<core::Manifest> FetchSnapshotManifest(core::ApiClient& api,
                                                     const std::string& snapshot_id);

// POST /run-job {"job_id", "wait"}: with wait the RunResult JSON (200), else the 202 body.
// Any non-2xx answer is an error status carrying the body.
absl::StatusOr<nlohmann::json> RunJob(const std::string& base_url, const std::string& token,
                                      const std::string& job_id, bool wait,
                                      absl::Duration timeout = absl::Minutes(3));

// Polls GET /v1/jobs/:id every 50 ms until `pred` holds or `timeout` passes (then
// DeadlineExceeded with the last status seen).
absl::StatusOr<core::Job> WaitForJob(core::ApiClient& api, const std::string& job_id,
                                     const std::function<bool(const core::Job&)>& pred,
                                     absl::Duration timeout);
absl::StatusOr<core::Job> WaitForTerminal(core::ApiClient& api, const std::string& job_id,
                                          absl::Duration timeout);

// The value of the `/metrics` sample line `sample value` of the server at `base_url`, or -1.
double MetricSample(core::HttpClient& http, const std::string& base_url, const std::string& token,
                    const std::string& sample);

// ---------------------------------------------------------------- sandbox observation

// Containers carrying every label in `labels`.
absl::StatusOr<std::vector<backends::engine_api::ContainerSummary>> ListLabelled(
    backends::engine_api::EngineClient& engine, const std::map<std::string, std::string>& labels);

// Polls until no container carries `labels` (OK) or `timeout` passes (FailedPrecondition listing
// the survivors).
absl::Status WaitNoContainers(backends::engine_api::EngineClient& engine,
                              const std::map<std::string, std::string>& labels,
                              absl::Duration timeout);

// Stops `server` (SIGTERM) and waits until none of its containers (fastest.server_id) is left.
absl::Status StopServerLeavingNoContainers(BackendServer& server,
                                           backends::engine_api::EngineClient& engine,
                                           absl::Duration timeout);
// The last `max_bytes` of the server's log, headed with its data dir: for a failed test.
std::string ServerLogTail(const BackendServer& server, size_t max_bytes);

// Polls until at least one container carries `labels`; returns the first.
absl::StatusOr<backends::engine_api::ContainerSummary> WaitForContainer(
    backends::engine_api::EngineClient& engine, const std::map<std::string, std::string>& labels,
    absl::Duration timeout, absl::Duration poll = absl::Milliseconds(20));

}  // namespace fastest::e2e

#endif  // FASTEST_TESTS_E2E_E2E_HARNESS_H_
