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
#include "tools/cli/review.h"

namespace fastest::cli {

// Where the API is and how to authenticate (also used for raw calls such as the log stream).
// The CLI only ever talks to the fastest server: live output comes from its
// GET /v1/jobs/:id/logs (?offset=, ?follow=1), whatever backend runs the sandboxes.
struct Target {
  std::string url;
  std::string token;
};

struct RunOptions {
  std::string dir;
  std::string prompt;
  WriteBackOptions write_back;            // review, then write / --branch / --patch (review.h)
  bool include_git = false;               // upload .git/ too (never written back)
  bool verbose = false;                   // raw runner log lines
  absl::Duration timeout = absl::Hours(1);  // how long the CLI waits for the job
  std::string data_dir;                   // project ids (projects.json) and jobs/ live here
};

struct ApplyOptions {
  std::string job_id;
  std::string dir;  // default: the directory `fastest run` recorded for the job
  WriteBackOptions write_back;
  std::string data_dir;
};

int RunJobCommand(core::HttpClient& http, core::ApiClient& api, const Target& target,
                  const RunOptions& options);
// `fastest apply JOB`: the review and write-back of `run`, for a completed job, later. The host's
// ignore rules are read from the directory now; the base is the manifest `run` recorded for the
// job in data_dir/jobs/ (else the job's workspace base snapshot on the server).
int ApplyCommand(core::ApiClient& api, const ApplyOptions& options);
int JobsCommand(core::ApiClient& api, int limit, const std::string& status);
// Prints the job's log; with `follow`, live until the job ends (exit 0 if it completed).
int LogsCommand(core::HttpClient& http, core::ApiClient& api, const Target& target,
                const std::string& job_id, bool follow, bool raw);
int CancelCommand(core::ApiClient& api, const std::string& job_id);

// `fastest status`'s warm-pool line from the server's /metrics text, e.g.
//   "warm pool: 2 ready, 1 booting; 14 takes, 3 misses; boot 2.41 s on average (17)"
// or "" when the server keeps no warm pool (--warm_pool=0, or a backend with its own pool).
std::string WarmPoolLine(const std::string& metrics_text);
// GET /metrics with the target's token, then WarmPoolLine; "" when /metrics is not readable
// (e.g. a token that is not the admin's).
std::string FetchWarmPoolLine(core::HttpClient& http, const Target& target);

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_COMMANDS_H_
