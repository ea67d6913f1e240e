// File: runner/agent_launch.h
//
// PrepareAgentLaunch: decides what process the runner starts as the agent and with which
// environment. Two forms:
//   - FASTEST_AGENT_COMMAND set: `sh -c "$FASTEST_AGENT_COMMAND" fastest-agent "<prompt>"`, the
//     prompt also in FASTEST_PROMPT (scripted test agents, other CLIs).
//   - otherwise OpenCode: `opencode serve --hostname 127.0.0.1 --port 0` (serve = true: the runner
//     sends the prompt over its HTTP API), or with FASTEST_OPENCODE_MODE=run the one-shot
//     `opencode run --format json --model <provider>/<model> <prompt>`; either with a
//     generated opencode.json (permissions allowed, provider set up) in the agent home, which is
//     outside the workspace, and XDG_{CONFIG,DATA,CACHE,STATE}_HOME + HOME under it.
//     OPENCODE_DISABLE_PROJECT_CONFIG=1 (an opencode.json in the workspace cannot override it)
//     and OPENCODE_DISABLE_MODELS_FETCH=1 (no models.dev fetch) are always set.
// Model selection: PROVIDER/MODEL override; FASTEST_MODEL_BASE_URL → an OpenAI-compatible provider
// (npm @ai-sdk/openai-compatible); else ANTHROPIC_API_KEY → anthropic, OPENAI_API_KEY → openai,
// GOOGLE_GENERATIVE_AI_API_KEY → google.
// The agent's environment never contains API_TOKEN (or other runner credentials).
#ifndef FASTEST_RUNNER_AGENT_LAUNCH_H_
#define FASTEST_RUNNER_AGENT_LAUNCH_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runner/runner_config.h"

namespace fastest::runner {

struct AgentLaunch {
  std::vector<std::string> argv;  // argv[0] is resolved through PATH if it has no '/'
  Environment env;
  std::string description;  // for the log, e.g. "opencode (anthropic/claude-sonnet-4-20250514)"
  std::string config_path;  // generated opencode.json, empty for a custom command
  // Start the agent as this uid/gid (no supplementary groups, no capabilities); -1 = as the
  // runner.
  int uid = -1;
  int gid = -1;
  // OpenCode as `opencode serve` driven over HTTP (runner/opencode_serve.h) instead of argv's
  // one-shot run: argv starts the server, the prompt goes to this provider/model.
  bool serve = false;
  std::string provider_id;
  std::string model_id;
};

// Hands `root` and everything below it (symlinks themselves, not their targets) to uid:gid.
absl::Status ChownTree(const std::string& root, int uid, int gid);

// Environment that saves OpenCode per-start and per-step work the sandbox does not need (set
// for every OpenCode launch; the generated config also has "snapshot": false).
const std::vector<std::pair<std::string, std::string>>& OpenCodeSpeedSettings();

// Variables removed from the agent's environment.
bool IsRunnerCredential(const std::string& name);

// Creates the agent home dirs (and opencode.json) and returns the launch description.
absl::StatusOr<AgentLaunch> PrepareAgentLaunch(const RunnerConfig& config,
                                               const std::string& prompt);

}  // namespace fastest::runner

#endif  // FASTEST_RUNNER_AGENT_LAUNCH_H_
