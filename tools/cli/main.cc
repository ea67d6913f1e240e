// fastest: the user-facing CLI. `fastest help` prints kUsage below, the user's documentation.
//
// Without --server the CLI talks to the local server recorded in the data directory
// (--data_dir, $FASTEST_DATA_DIR, default ~/.fastest). With --server URL it uses that server and
// the token from --token / $FASTEST_API_TOKEN / $API_TOKEN.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/api/api_client.h"
#include "core/http/http_client.h"
#include "nlohmann/json.hpp"
#include "tools/cli/commands.h"
#include "tools/cli/local_server.h"

ABSL_FLAG(std::string, dir, "",
          "run: the directory to work on (its files are the job's workspace); apply: where to "
          "write (default: the directory of the run)");
ABSL_FLAG(std::string, prompt, "", "run: what the agent should do");
ABSL_FLAG(bool, diff, false, "run/apply: also show the accepted changes as a unified diff");
ABSL_FLAG(bool, yes, false, "run/apply: write the accepted changes without asking");
ABSL_FLAG(std::string, branch, "",
          "run/apply: commit the accepted changes on this new git branch (based on HEAD) instead "
          "of writing the directory; no hook runs, working tree/index/HEAD stay as they are");
ABSL_FLAG(std::string, patch, "",
          "run/apply: write the accepted changes to this git-style patch file instead");
ABSL_FLAG(bool, include_git, false,
          "run: upload .git/ too, for agents that need the history (the agent can then read it, "
          "remote URLs and credentials in .git/config included); never written back");
ABSL_FLAG(std::string, backend, "docker", "backend of the local server (docker, podman, ...)");
ABSL_FLAG(std::string, server, "", "URL of a running fastest server (default: the local one)");
ABSL_FLAG(std::string, token, "", "API token for --server (default $FASTEST_API_TOKEN / $API_TOKEN)");
ABSL_FLAG(std::string, data_dir, "", "CLI + local server state (default $FASTEST_DATA_DIR or ~/.fastest)");
ABSL_FLAG(std::string, image, "fastest/sandbox:0.1.0", "sandbox image for the local server");
ABSL_FLAG(std::string, instance_type, "standard-3",
          "sandbox resources for the local server (lite|basic|standard-1..4)");
ABSL_FLAG(std::string, server_bin, "", "fastest-server binary (default: beside the CLI, bazel-bin, PATH)");
ABSL_FLAG(absl::Duration, timeout, absl::Hours(1), "run: how long to wait for the job");
ABSL_FLAG(bool, verbose, false, "run: show the runner's raw log lines");
ABSL_FLAG(bool, follow, true, "logs: follow until the job ends");
ABSL_FLAG(bool, raw, false, "logs: print the runner's log verbatim");
ABSL_FLAG(int, limit, 20, "jobs: how many");
ABSL_FLAG(std::string, status, "", "jobs: only jobs with this status");

namespace {

using fastest::cli::LocalServer;
using fastest::cli::LocalServerOptions;
using fastest::cli::ServerTarget;
using fastest::cli::Target;

constexpr char kUsage[] =
    "run coding-agent jobs in sandboxes.\n"
    "\n"
    "  fastest run --dir PATH --prompt TEXT [--yes] [--diff] [--branch NAME] [--patch FILE]\n"
    "              [--include_git] [--server URL --token T]\n"
    "      Uploads PATH (without what .fstignore ignores, and without .git/ unless --include_git:\n"
    "      the agent could read it, .git/config included), runs the job in a\n"
    "      sandbox with live progress, then reviews the result: A/M/D/m lines for the changes,\n"
    "      `! ... refused: <why>` for what will never be written, counts (--diff adds the diff).\n"
    "      On a terminal it asks before writing; --yes writes without asking; otherwise nothing\n"
    "      is written and it prints the `fastest apply` command to use later.\n"
    "  fastest apply JOB [--dir PATH] [--yes] [--diff] [--branch NAME] [--patch FILE]\n"
    "      The same review and write-back for a completed job, later. The ignore rules are\n"
    "      read from PATH again; the base is what `fastest run` uploaded for the job.\n"
    "  fastest jobs [--limit N] [--status S]      recent jobs\n"
    "  fastest logs JOB [--nofollow] [--raw]      a job's log, live until it ends\n"
    "  fastest cancel JOB                         cancel a pending/running job\n"
    "  fastest status                             local server, backend, job counts\n"
    "  fastest server start|stop                  manage the local server explicitly\n"
    "  fastest help                               this text (--help: every flag)\n"
    "\n"
    "Write-back never touches:\n"
    "  - .git (at any depth, also .GIT, git~1): hooks and config would run code on your machine;\n"
    "  - .fstignore: the job's edits of your ignore rules are shown as refused, never applied;\n"
    "  - paths your .fstignore (and the defaults) ignore, as read on this machine, and files the\n"
    "    job's own .fstignore merely hides (they are not deleted);\n"
    "  - paths through a symlink, or onto anything but a regular file.\n"
    "  Files are written atomically (temporary file + rename); setuid/setgid/sticky bits are\n"
    "  stripped. Files you changed since the upload are kept and reported as conflicts.\n"
    "  Exit code 1 when anything was refused, conflicted or failed.\n"
    "\n"
    "--branch NAME (in a git repository): commits the accepted changes on a new branch NAME\n"
    "  whose parent is HEAD, with git plumbing and a temporary index: the working tree, the\n"
    "  index, HEAD and every existing branch stay as they are (an existing NAME is an error),\n"
    "  and no git hook runs. --patch FILE writes them as a patch (git -C PATH apply FILE),\n"
    "  binary files as git binary patches. Neither writes PATH, neither asks.\n";

std::string Env(const char* n) {
  const char* v = getenv(n);
  return v ? v : "";
}

LocalServerOptions ServerOptions() {
  LocalServerOptions o;
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  if (o.data_dir.empty()) o.data_dir = fastest::cli::DefaultDataDir();
  o.backend = absl::GetFlag(FLAGS_backend);
  o.image = absl::GetFlag(FLAGS_image);
  o.server_bin = absl::GetFlag(FLAGS_server_bin);
  o.instance_type = absl::GetFlag(FLAGS_instance_type);
  return o;
}

// --server, or the local server (started when `start` is true).
absl::StatusOr<Target> ResolveTarget(fastest::core::HttpClient& http, bool start) {
  std::string url = absl::GetFlag(FLAGS_server);
  if (!url.empty()) {
    std::string token = absl::GetFlag(FLAGS_token);
    if (token.empty()) token = Env("FASTEST_API_TOKEN");
    if (token.empty()) token = Env("API_TOKEN");
    if (token.empty()) {
      return absl::InvalidArgumentError("--server needs a token: --token or $FASTEST_API_TOKEN");
    }
    while (!url.empty() && url.back() == '/') url.pop_back();
    fastest::core::ApiClient api(http, url, token, fastest::core::RetryPolicy::NoRetry());
    if (absl::Status s = api.Health(); !s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("the fastest server at ", url, " is not reachable: ", s.message()));
    }
    return Target{url, token};
  }
  LocalServer server(http, ServerOptions());
  absl::StatusOr<ServerTarget> t = start ? server.Ensure() : server.Find();
  if (!t.ok()) {
    if (!start && absl::IsNotFound(t.status())) {
      return absl::NotFoundError(absl::StrCat(
          t.status().message(), " (start one with `fastest server start` or `fastest run`)"));
    }
    return t.status();
  }
  return Target{t->url, t->token};
}

int StatusCommand(fastest::core::HttpClient& http) {
  LocalServerOptions o = ServerOptions();
  printf("data dir:  %s\n", o.data_dir.c_str());
  // The server owns the backend (Docker, Podman, ...): the CLI never talks to the engine.
  printf("backend:   %s, image %s\n", o.backend.c_str(), o.image.c_str());
  absl::StatusOr<Target> t = ResolveTarget(http, /*start=*/false);
  if (!t.ok()) {
    printf("server:    %s\n", std::string(t.status().message()).c_str());
    return 0;
  }
  printf("server:    %s (%s)\n", t->url.c_str(),
         absl::GetFlag(FLAGS_server).empty() ? "local" : "remote");
  fastest::core::ApiClient api(http, t->url, t->token);
  fastest::core::JobFilter f;
  f.limit = 100;
  absl::StatusOr<std::vector<fastest::core::Job>> jobs = api.ListJobs(f);
  if (jobs.ok()) {
    std::map<std::string, int> counts;
    for (const auto& j : *jobs) ++counts[std::string(fastest::core::JobStatusName(j.status))];
    std::vector<std::string> parts;
    for (const auto& [k, v] : counts) parts.push_back(absl::StrCat(k, " ", v));
    printf("jobs:      %s (last %zu)\n", parts.empty() ? "none" : absl::StrJoin(parts, ", ").c_str(),
           jobs->size());
  }
  if (std::string warm = fastest::cli::FetchWarmPoolLine(http, *t); !warm.empty()) {
    printf("%s\n", warm.c_str());
  }
  return 0;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  // --help lists the flags of this CLI (absl's default filter matches none of our files).
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view path) {
    return absl::StrContains(path, "tools/cli/");
  };
  absl::SetFlagsUsageConfig(usage_config);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) {
    fprintf(stderr, "fastest: %s", kUsage);
    return 2;
  }
  std::string cmd = positional[1];
  std::vector<std::string> args(positional.begin() + 2, positional.end());
  fastest::core::HttpClient http;

  if (cmd == "help") {
    printf("fastest: %s", kUsage);
    return 0;
  }
  if (cmd == "status") return StatusCommand(http);
  if (cmd == "server") {
    if (args.size() != 1 || (args[0] != "start" && args[0] != "stop")) {
      fprintf(stderr, "usage: fastest server start|stop\n");
      return 2;
    }
    LocalServer server(http, ServerOptions());
    if (args[0] == "stop") {
      absl::Status s = server.Stop();
      if (!s.ok()) {
        fprintf(stderr, "fastest server stop: %s\n", std::string(s.message()).c_str());
        return 1;
      }
      printf("local server stopped\n");
      return 0;
    }
    absl::StatusOr<ServerTarget> t = server.Ensure();
    if (!t.ok()) {
      fprintf(stderr, "fastest server start: %s\n", std::string(t.status().message()).c_str());
      return 1;
    }
    printf("%s\n", t->url.c_str());
    return 0;
  }
  if (cmd != "run" && cmd != "apply" && cmd != "jobs" && cmd != "logs" && cmd != "cancel") {
    fprintf(stderr, "fastest: unknown command %s\nfastest: %s", cmd.c_str(), kUsage);
    return 2;
  }
  if ((cmd == "logs" || cmd == "cancel" || cmd == "apply") && args.size() != 1) {
    fprintf(stderr, "usage: fastest %s JOB%s\n", cmd.c_str(),
            cmd == "apply" ? " [--dir PATH] [--yes] [--diff] [--branch NAME] [--patch FILE]" : "");
    return 2;
  }
  if (cmd == "run" && (absl::GetFlag(FLAGS_dir).empty() || absl::GetFlag(FLAGS_prompt).empty())) {
    fprintf(stderr, "usage: fastest run --dir PATH --prompt TEXT [--yes] [--diff] [--branch NAME] "
                    "[--patch FILE] [--include_git]\n");
    return 2;
  }
  absl::StatusOr<Target> target = ResolveTarget(http, /*start=*/cmd == "run" || cmd == "apply");
  if (!target.ok()) {
    fprintf(stderr, "fastest %s: %s\n", cmd.c_str(), std::string(target.status().message()).c_str());
    return 1;
  }
  fastest::core::ApiClient api(http, target->url, target->token);
  if (cmd == "jobs") return fastest::cli::JobsCommand(api, absl::GetFlag(FLAGS_limit),
                                                      absl::GetFlag(FLAGS_status));
  if (cmd == "logs") {
    return fastest::cli::LogsCommand(http, api, *target, args[0], absl::GetFlag(FLAGS_follow),
                                     absl::GetFlag(FLAGS_raw));
  }
  if (cmd == "cancel") return fastest::cli::CancelCommand(api, args[0]);
  fastest::cli::WriteBackOptions write_back;
  write_back.yes = absl::GetFlag(FLAGS_yes);
  write_back.diff = absl::GetFlag(FLAGS_diff);
  write_back.branch = absl::GetFlag(FLAGS_branch);
  write_back.patch = absl::GetFlag(FLAGS_patch);
  if (!absl::GetFlag(FLAGS_server).empty()) {
    write_back.apply_hint_flags =
        absl::StrCat(" --server ", fastest::cli::ShellQuote(absl::GetFlag(FLAGS_server)));
  }
  if (cmd == "apply") {
    fastest::cli::ApplyOptions apply;
    apply.job_id = args[0];
    apply.dir = absl::GetFlag(FLAGS_dir);
    apply.write_back = write_back;
    apply.data_dir = ServerOptions().data_dir;
    return fastest::cli::ApplyCommand(api, apply);
  }
  fastest::cli::RunOptions run;
  run.dir = absl::GetFlag(FLAGS_dir);
  run.prompt = absl::GetFlag(FLAGS_prompt);
  run.write_back = write_back;
  run.include_git = absl::GetFlag(FLAGS_include_git);
  run.verbose = absl::GetFlag(FLAGS_verbose);
  run.timeout = absl::GetFlag(FLAGS_timeout);
  run.data_dir = ServerOptions().data_dir;
  return fastest::cli::RunJobCommand(http, api, *target, run);
}

}  // namespace

int main(int argc, char** argv) {
  int rc = Main(argc, argv);
  // A log-follow thread may still sit in a request: leave without running static destructors.
  fflush(stdout);
  fflush(stderr);
  _exit(rc);
}
