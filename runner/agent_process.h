// File: runner/agent_process.h
//
// RunAgentProcess: starts the agent with Boost.Process in its own process group (cwd = workspace,
// stdin = /dev/null), streams stdout/stderr line by line to a callback, and enforces a deadline by
// sending SIGTERM, then (after a grace period) SIGKILL, to the whole group. When the agent exits,
// leftover processes of its group are killed too so nothing outlives the job.
#ifndef FASTEST_RUNNER_AGENT_PROCESS_H_
#define FASTEST_RUNNER_AGENT_PROCESS_H_

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runner/agent_launch.h"

namespace fastest::runner {

struct AgentResult {
  int exit_code = -1;    // process exit code; -1 when killed by a signal
  int term_signal = 0;   // signal that ended it, if any
  bool timed_out = false;
  bool stopped = false;  // killed because options.stop was set (job cancelled)
  std::string tail;      // last lines of combined output (for error messages)
  absl::Duration duration;
};

// is_stderr: which stream the line came from. Called from reader threads, serialized.
using AgentLineSink = std::function<void(bool is_stderr, const std::string& line)>;

struct AgentProcessOptions {
  absl::Duration timeout = absl::Minutes(30);
  absl::Duration kill_grace = absl::Seconds(3);
  int tail_lines = 20;
  // Set by another thread to kill the agent early (e.g. the job was cancelled).
  const std::atomic<bool>* stop = nullptr;
};

// Errors only when the process cannot be started (e.g. binary not found); a failing agent is an OK
// status with a non-zero exit_code / timed_out.
absl::StatusOr<AgentResult> RunAgentProcess(const AgentLaunch& launch, const std::string& cwd,
                                            const AgentProcessOptions& options,
                                            const AgentLineSink& sink);

}  // namespace fastest::runner

#endif  // FASTEST_RUNNER_AGENT_PROCESS_H_
