// File: tools/cli/commands.h
//
// The `fastest` CLI's subcommands. Each returns the process exit code (0 ok, 1 job failed or
// error, 2 usage) and prints progress to stderr, results to stdout.
#ifndef FASTEST_TOOLS_CLI_COMMANDS_H_
#define FASTEST_TOOLS_CLI_COMMANDS_H_

#include <string>

#include "absl/time/time.h"
#include "core/api/api_client.h"
#include "core/http/http_client.h"

namespace fastest::cli {

// Where the API is and how to authenticate (also used for raw calls such as the log stream).
struct Target {
  std::string url;
  std::string token;
};

struct RunOptions {
  std::string dir;
  std::string prompt;
  bool diff = false;                      // print the changes instead of writing them
  bool verbose = false;                   // raw runner log lines
  absl::Duration timeout = absl::Hours(1);  // how long the CLI waits for the job
  std::string data_dir;                   // project ids are remembered here (projects.json)
  // When the server has no job-log endpoint: follow the sandbox's output straight from Docker
  // (local server with the Docker backend only).
  bool docker_logs_fallback = false;
  std::string docker_host;                // "" = $DOCKER_HOST or the default socket
};

int RunJobCommand(core::HttpClient& http, core::ApiClient& api, const Target& target,
                  const RunOptions& options);
int JobsCommand(core::ApiClient& api, int limit, const std::string& status);
int LogsCommand(core::HttpClient& http, core::ApiClient& api, const Target& target,
                const std::string& job_id, bool follow, bool raw, bool docker_fallback = false);
int CancelCommand(core::ApiClient& api, const std::string& job_id);

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_COMMANDS_H_
