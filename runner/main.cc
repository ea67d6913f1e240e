// fastest-runner: runs one job inside a sandbox. See runner/runner.h and runner/runner_config.h.
#include <signal.h>
#include <sys/prctl.h>

#include <cstdio>
#include <cstring>

#include "runner/agent_launch.h"
#include "runner/exit_codes.h"
#include "runner/runner.h"
#include "runner/runner_config.h"

extern char** environ;

namespace {

// The agent runs as the same user, so it could read this process's initial environment through
// /proc/<pid>/environ. That file shows the original environment block, which unsetenv() leaves
// intact, so overwrite the credentials' values in place once the configuration holds a copy.
void ScrubCredentialsFromProcessEnvironment() {
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    char* eq = std::strchr(*entry, '=');
    if (eq == nullptr) continue;
    if (fastest::runner::IsRunnerCredential(std::string(*entry, eq - *entry))) {
      std::memset(eq + 1, 'x', std::strlen(eq + 1));
    }
  }
}

}  // namespace

int main() {
  // Before anything secret is in memory: the agent must not ptrace this process or read its
  // /proc/<pid>/mem, environ or fds (non-dumpable makes them root-owned and ptrace-denied).
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  signal(SIGPIPE, SIG_IGN);
  using namespace fastest::runner;
  absl::StatusOr<RunnerConfig> config = RunnerConfigFromEnv(CurrentEnvironment());
  if (!config.ok()) {
    fprintf(stderr, "Error: %s\n", std::string(config.status().message()).c_str());
    return kExitConfigError;
  }
  ScrubCredentialsFromProcessEnvironment();
  Logger log(stdout, stderr, SecretValues(*config));
  Runner runner(*config, log);
  return runner.Run();
}
