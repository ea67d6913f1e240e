// File: runner/opencode_serve.h
//
// Runs OpenCode as `opencode serve` on the sandbox's loopback and drives it over its HTTP API
// instead of a one-shot `opencode run`: the server can be booted ahead of the job (a warm
// sandbox), and one process does the whole job.
//
//   OpenCodeServer server(launch, cwd, options, sink);   // starts the process (own group, agent uid)
//   server.WaitListening()                                // parses "listening on http://127.0.0.1:P"
//   server.Warm(dir)                                      // optional: bootstraps the directory's
//                                                         // instance (no model call)
//   server.RunPrompt(dir, prompt) -> AgentResult          // session, prompt, live log, then stops
//
// The live log comes from GET /event (server-sent events of the directory): finished text parts,
// tool calls with their status and title, session errors. A prompt ends when POST
// /session/{id}/message answers; the assistant message's `error` fails the job with its message.
// Timeout and cancellation kill the server's whole process group (RunAgentProcess's deadline and
// stop flag), which also ends the pending request.
#ifndef FASTEST_RUNNER_OPENCODE_SERVE_H_
#define FASTEST_RUNNER_OPENCODE_SERVE_H_

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "runner/agent_launch.h"
#include "runner/agent_process.h"

namespace fastest::runner {

// The port in OpenCode's "opencode server listening on http://127.0.0.1:<port>" line, or 0.
int ParseListeningPort(const std::string& line);

// One log line for an OpenCode bus event of `session_id`, or "" when the event is not worth a line
// (deltas, status pings, other sessions).
std::string DescribeEvent(const nlohmann::json& event, const std::string& session_id);

class OpenCodeServer {
 public:
  // Starts `launch` (argv: opencode serve --hostname 127.0.0.1 --port 0) in `cwd`. options.stop
  // (a cancelled job) stops the server at any time; options.timeout is the prompt's deadline,
  // counted from RunPrompt, so a server booted ahead of its job (a warm sandbox) loses no time.
  // `sink` gets the server's own output and the live log.
  OpenCodeServer(AgentLaunch launch, std::string cwd, AgentProcessOptions options,
                 AgentLineSink sink);
  ~OpenCodeServer();  // stops the server
  OpenCodeServer(const OpenCodeServer&) = delete;
  OpenCodeServer& operator=(const OpenCodeServer&) = delete;

  // Waits until the server listens; error when it exited (or was stopped) first.
  absl::Status WaitListening();
  // Boots OpenCode's per-directory instance for `dir` (the first request for a directory costs
  // seconds) without calling the model.
  absl::Status Warm(const std::string& dir);
  // Runs the prompt in a new session of `dir`, then stops the server. exit_code 0 = the agent
  // finished without error; otherwise `tail` has the error. timed_out: options.timeout passed.
  AgentResult RunPrompt(const std::string& dir, const std::string& provider_id,
                        const std::string& model_id, const std::string& prompt);
  // Kills the server (if still running) and waits for it; pending requests then fail.
  void Stop();

 private:

  AgentLaunch launch_;
  AgentProcessOptions options_;
  AgentLineSink sink_;
  std::atomic<bool> stop_server_{false};
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int port_ = 0;
  bool exited_ = false;
  absl::Time prompt_deadline_ = absl::InfiniteFuture();  // guarded by mu_
  bool prompt_timed_out_ = false;                        // guarded by mu_
  std::optional<absl::StatusOr<AgentResult>> process_result_;
  std::thread process_;
  std::thread stop_forwarder_;
};

}  // namespace fastest::runner

#endif  // FASTEST_RUNNER_OPENCODE_SERVE_H_
