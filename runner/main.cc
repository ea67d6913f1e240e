// fastest-runner: runs one job inside a sandbox. See runner/runner.h and runner/runner_config.h.
#include <signal.h>

#include <cstdio>

#include "runner/exit_codes.h"
#include "runner/runner.h"
#include "runner/runner_config.h"

int main() {
  signal(SIGPIPE, SIG_IGN);
  using namespace fastest::runner;
  absl::StatusOr<RunnerConfig> config = RunnerConfigFromEnv(CurrentEnvironment());
  if (!config.ok()) {
    fprintf(stderr, "Error: %s\n", std::string(config.status().message()).c_str());
    return kExitConfigError;
  }
  Logger log(stdout, stderr, SecretValues(*config));
  Runner runner(*config, log);
  return runner.Run();
}
