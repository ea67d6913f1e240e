// File: runner/runner_config.h
//
// RunnerConfig: everything fastest-runner reads from its environment, parsed once at start.
//
// Environment:
//   JOB_ID                   job to run; unset → take the oldest pending job (GET /v1/jobs/next)
//   API_URL                  API base, default http://localhost:8788 (trailing '/' dropped);
//                            unix:///run/fastest/api.sock = HTTP over that socket (the sandbox's
//                            API channel, see server/channel)
//   API_TOKEN                bearer token (never logged, never passed to the agent)
//   API_TOKEN_FILE           file holding the token, read when API_TOKEN is unset (the sealed
//                            sandboxes' way: the token is never in any process environment)
//   WORK_DIR / FASTEST_WORKSPACE_DIR   workspace root, default /workspace (FASTEST_WORKSPACE_DIR wins)
//   FASTEST_AGENT_HOME       agent state root (XDG_* dirs + opencode.json), default
//                            /tmp/fastest-agent-home; must be outside the workspace
//   FASTEST_AGENT_COMMAND    shell command run with `sh -c` instead of OpenCode; the prompt is in
//                            $FASTEST_PROMPT and $1
//   FASTEST_AGENT_TIMEOUT    agent deadline ("30m", "90s", or plain seconds), default 30m
//   FASTEST_OPENCODE_BIN     OpenCode binary, default `opencode` on PATH
//   PROVIDER, MODEL          model selection overrides
//   ANTHROPIC_API_KEY, OPENAI_API_KEY, GOOGLE_GENERATIVE_AI_API_KEY   provider keys
//   FASTEST_MODEL_BASE_URL   an OpenAI-compatible endpoint (e.g. the offline model stub)
//   FASTEST_MODEL_API_KEY    its key (optional)
//   FASTEST_DOWNLOAD_PARALLELISM / FASTEST_UPLOAD_PARALLELISM   default 8
//   FASTEST_API_RETRY_SECONDS  give up on a transiently failing API call after this long (120)
//   FASTEST_AGENT_USER       user (from /etc/passwd) the agent runs as when the runner is root;
//                            the sandbox image sets "agent". Unknown user: configuration error.
//   FASTEST_STANDBY          "1": a warm sandbox. The runner boots the agent server, then waits
//                            for its job (GET /v1/standby/assignment); API_TOKEN / API_TOKEN_FILE
//                            then hold the standby credential, which can fetch only that
//                            assignment, and the job's own token arrives with it. JOB_ID must
//                            be unset.
#ifndef FASTEST_RUNNER_RUNNER_CONFIG_H_
#define FASTEST_RUNNER_RUNNER_CONFIG_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/api/api_client.h"

namespace fastest::runner {

using Environment = std::map<std::string, std::string>;

struct RunnerConfig {
  std::string job_id;
  std::string api_url = "http://localhost:8788";
  std::string api_token;
  std::string api_socket;  // non-empty: every API request goes over this unix socket
  std::string work_dir = "/workspace";
  std::string agent_home = "/tmp/fastest-agent-home";
  std::string agent_command;
  absl::Duration agent_timeout = absl::Minutes(30);
  std::string opencode_bin = "opencode";
  int download_parallelism = 8;
  int upload_parallelism = 8;
  core::RetryPolicy retry;
  // The agent's uid/gid (FASTEST_AGENT_USER while the runner is root); -1 = the runner's own.
  int agent_uid = -1;
  int agent_gid = -1;
  // A warm sandbox: the job (and its token) come from the standby assignment.
  bool standby = false;
  // The runner's whole environment; the agent's is derived from it (minus credentials).
  Environment env;
};

// Reads the variables above. Errors: missing API_TOKEN, unparsable numbers/durations, a relative
// work dir, or an agent home inside the work dir.
absl::StatusOr<RunnerConfig> RunnerConfigFromEnv(const Environment& env);

// The current process environment as a map.
Environment CurrentEnvironment();

// Parses "30m", "1h30m", "90s", "250ms" or plain seconds ("90").
absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text);

}  // namespace fastest::runner

#endif  // FASTEST_RUNNER_RUNNER_CONFIG_H_
