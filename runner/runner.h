// File: runner/runner.h
//
// Runner: the whole job lifecycle inside a sandbox:
//   GET job (pending or running — the server's dispatcher may have claimed it; terminal → refuse)
//   → POST running → [restoring] workspace → base snapshot (none → empty) → manifest → restore
//   → [agent] run the agent (OpenCode or FASTEST_AGENT_COMMAND) with a deadline
//   → [snapshotting] scan, upload missing blobs, manifest, snapshot {parent = base, source agent}
//   → re-GET (never overwrite `cancelled`) → POST completed + output_snapshot_id
//   → print "Output snapshot: <id>".
// Any failure posts `failed` with a useful error and yields a non-zero exit code (exit_codes.h).
// Log lines follow the original runner's (PROTOCOLS §3.4/3.5), prefixed with the phase name.
// Secrets (API token, provider keys) are redacted from every printed line and error.
#ifndef FASTEST_RUNNER_RUNNER_H_
#define FASTEST_RUNNER_RUNNER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/api/api_client.h"
#include "core/http/asio_http_client.h"
#include "core/model/model.h"
#include "core/snapshot/manifest.h"
#include "server/channel/relay_io.h"
#include "runner/agent_launch.h"
#include "runner/exit_codes.h"
#include "runner/opencode_serve.h"
#include "runner/runner_config.h"

namespace fastest::runner {

// Thread-safe line logger that redacts secret values. A line on `out` after a quiet spell is
// written at once; the lines that follow within 50 ms are written together by a background thread,
// so a burst costs one write (and one wake of the engine's log reader) instead of one per line.
// Errors and the destructor flush at once.
class Logger {
 public:
  Logger(FILE* out, FILE* err, std::vector<std::string> secrets);
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;
  void Info(const std::string& line);
  void Error(const std::string& line);
  std::string Redact(std::string text) const;
  // Redacts `secret` from every later line too (a token learnt after start).
  void AddSecret(const std::string& secret);

 private:
  void FlushLoop();

  FILE* out_;
  FILE* err_;
  mutable std::mutex secrets_mu_;
  std::vector<std::string> secrets_;  // guarded by secrets_mu_
  std::mutex mu_;
  std::condition_variable cv_;
  static constexpr std::chrono::milliseconds kFlushInterval{50};
  bool pending_ = false;  // lines written to out_ and not flushed yet
  std::chrono::steady_clock::time_point last_flush_;
  bool stop_ = false;
  std::thread flusher_;
};

// Secret values taken from the config's environment (token, provider keys; values of >= 6 chars).
std::vector<std::string> SecretValues(const RunnerConfig& config);

class Runner {
 public:
  Runner(RunnerConfig config, Logger& log);
  ~Runner();

  // Runs one job; returns an ExitCode. In standby (a warm sandbox) the agent server is booted
  // first and the job comes from the standby assignment.
  int Run();

 private:
  // Posts `failed` (unless the job was cancelled meanwhile) and returns the exit code.
  int Fail(const std::string& message);
  int RunJob(const core::Job& job);
  // Starts the model/egress relays and prepares the agent's launch. For OpenCode (no prompt
  // needed: it arrives over HTTP) this happens before the job is fetched, and its server boots
  // and bootstraps the workspace's instance in the background meanwhile.
  absl::Status PrepareAgent(const std::string& prompt);
  void StartOpenCodeEarly();
  // Standby: boots the agent, then long-polls GET /v1/standby/assignment with the standby
  // credential until a job is assigned (then job_id and the job's token replace it), the sandbox
  // is retired (kExitCompleted, nothing to do) or the API stays unreachable. Returns an ExitCode
  // to stop with, or nullopt to run the assigned job.
  std::optional<int> AwaitAssignment();

  RunnerConfig config_;
  Logger& log_;
  std::unique_ptr<core::HttpTransport> http_;
  std::unique_ptr<core::ApiClient> api_;
  std::string job_id_;
  bool marked_running_ = false;

  std::unique_ptr<server::SocketListener> model_relay_;
  std::unique_ptr<server::SocketListener> egress_relay_;
  std::optional<AgentLaunch> launch_;
  absl::Status early_status_;  // PrepareAgent's error, reported when the job is known
  std::atomic<bool> cancelled_{false};
  std::unique_ptr<OpenCodeServer> opencode_;
  std::thread warm_thread_;
};

}  // namespace fastest::runner

#endif  // FASTEST_RUNNER_RUNNER_H_
