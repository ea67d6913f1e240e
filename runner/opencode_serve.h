// File: runner/opencode_serve.h
//
// Runs OpenCode as `opencode serve` on the sandbox's loopback and drives it over its HTTP API
// instead of a one-shot `opencode run`: the server can be booted ahead of the job (a warm
// sandbox), and one process does the whole job.
//
//   OpenCodeServer server(launch, cwd, options, sink);   // starts the process (own group, agent uid)
//   server.WaitListening()                                // parses "listening on http://127.0.0.1:P"
//   server.Warm(dir)                                      // optional: boots the directory's
//                                                         // instance and runs a scripted
//                                                         // warm-up session (no real model call)
//   server.RunPrompt(dir, prompt) -> AgentResult          // session, prompt, live log, then stops
//
// Warm-up: everything OpenCode loads lazily on first use (the per-directory instance, the prompt
// pipeline and agent, the provider SDK and LLM runtime, the write/read/edit/bash tools: measured
// ~1.5 s before the first model request and ~0.8 s on the first write, ~0.6 s on the first bash)
// would otherwise be paid by the job's prompt. Warm therefore runs a throwaway session against a
// scripted model the server itself answers on the loopback (provider `fastest-warmup`, see
// PrepareAgentLaunch), whose tool calls only touch a scratch file in the agent's HOME, so no token
// of the real provider is spent and the workspace is untouched. The job's prompt then runs in a
// fresh session of the already initialised instance. The warm-up model stops listening when Warm
// ends (or at the prompt): in a warm sandbox, before the job's token or workspace exist.
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
  // Boots OpenCode's per-directory instance for `dir` and runs the scripted warm-up session
  // (above) in it; the real model is never called. Error when the server is not up or the
  // warm-up session failed (the server may still serve the prompt).
  absl::Status Warm(const std::string& dir);
  // Only boots the directory's instance (one POST /session, no warm-up session): for a cold
  // runner whose prompt waits for the warm-up, where the scripted session would cost more than it
  // saves (measured in containers: job ~4.1 s with this vs ~4.8 s with Warm, p50).
  absl::Status BootInstance(const std::string& dir);
  // Model requests the warm-up model answered so far (tests).
  int WarmupRequests() const;
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
  class WarmupModel;
  std::unique_ptr<WarmupModel> warmup_model_;  // up from construction to the end of Warm
  std::atomic<int> warmup_requests_{0};
  void StopWarmupModel();
};

// Provider and model id of the scripted warm-up model in the generated OpenCode config; its
// baseURL comes from the environment variable kWarmupUrlEnv, set by OpenCodeServer.
inline constexpr char kWarmupProvider[] = "fastest-warmup";
inline constexpr char kWarmupModel[] = "warmup";
inline constexpr char kWarmupUrlEnv[] = "FASTEST_WARMUP_MODEL_URL";

}  // namespace fastest::runner

#endif  // FASTEST_RUNNER_OPENCODE_SERVE_H_
