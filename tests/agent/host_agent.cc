#include "tests/agent/host_agent.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runner/runner_config.h"

namespace fastest::tests {

absl::StatusOr<std::string> FindOpenCodeBinary() {
  const char* env = getenv("FASTEST_OPENCODE_BIN");
  std::string path;
  if (env != nullptr && *env != '\0') {
    path = env;
  } else {
    const char* home = getenv("HOME");
    path = absl::StrCat(home != nullptr ? home : "/root",
                        "/.cache/fastest/opencode/node_modules/opencode-linux-x64/bin/opencode");
  }
  if (access(path.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no OpenCode binary at ", path,
        ": run `bash tools/build_sandbox_image.sh` once (it installs opencode-ai from npm into "
        "~/.cache/fastest/opencode) or set FASTEST_OPENCODE_BIN"));
  }
  return path;
}

HostAgentRig::HostAgentRig(tools::model_stub::Scenario scenario) {
  absl::StatusOr<std::string> bin = FindOpenCodeBinary();
  if (!bin.ok()) {
    status_ = bin.status();
    return;
  }
  opencode_bin_ = *bin;
  const char* tmp = getenv("TEST_TMPDIR");
  std::string tmpl = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/host_agent_XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    status_ = absl::InternalError("mkdtemp failed");
    return;
  }
  root_ = buf.data();
  stub_ = std::make_unique<tools::model_stub::ModelStub>(std::move(scenario),
                                                         /*log_to_stderr=*/false);
  net::HttpServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.threads = 2;
  http_ = std::make_unique<net::HttpServer>(options);
  stub_->Register(http_->router());
  status_ = http_->Start();
}

HostAgentRig::~HostAgentRig() {
  stub_.reset();
  if (http_) http_->Stop();
  http_.reset();
  if (!root_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
}

absl::StatusOr<std::string> HostAgentRig::NewWorkspace(const std::string& source_dir) {
  std::string dir = absl::StrCat(root_, "/ws", ++counter_);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", ec.message()));
  if (!source_dir.empty()) {
    // Runfiles are symlinks: copy their targets.
    std::filesystem::copy(source_dir, dir,
                          std::filesystem::copy_options::recursive |
                              std::filesystem::copy_options::overwrite_existing,
                          ec);
    if (ec) return absl::InternalError(absl::StrCat("copy ", source_dir, ": ", ec.message()));
  }
  return dir;
}

absl::StatusOr<std::unique_ptr<runner::OpenCodeServer>> HostAgentRig::StartServer(
    const std::string& workspace, std::vector<std::string>* log) {
  if (!status_.ok()) return status_;
  runner::Environment env = {
      {"API_TOKEN", "host-agent-unused"},
      {"PATH", "/usr/local/bin:/usr/bin:/bin"},
      {"WORK_DIR", workspace},
      {"FASTEST_AGENT_HOME", workspace + ".home"},
      {"FASTEST_OPENCODE_BIN", opencode_bin_},
      {"FASTEST_MODEL_BASE_URL", absl::StrCat("http://127.0.0.1:", http_->port(), "/v1")},
      {"MODEL", "stub-model"},
  };
  absl::StatusOr<runner::RunnerConfig> config = runner::RunnerConfigFromEnv(env);
  if (!config.ok()) return config.status();
  absl::StatusOr<runner::AgentLaunch> launch = runner::PrepareAgentLaunch(*config, "");
  if (!launch.ok()) return launch.status();
  if (!launch->serve) return absl::InternalError("expected the serve launch");
  provider_ = launch->provider_id;
  model_ = launch->model_id;
  runner::AgentProcessOptions options;
  options.timeout = absl::Minutes(3);
  auto mu = std::make_shared<std::mutex>();
  runner::AgentLineSink sink;
  if (log != nullptr) {
    sink = [log, mu](bool, const std::string& line) {
      std::lock_guard<std::mutex> lock(*mu);
      log->push_back(line);
    };
  }
  return std::make_unique<runner::OpenCodeServer>(*launch, workspace, options, sink);
}

runner::AgentResult HostAgentRig::Prompt(runner::OpenCodeServer& server,
                                         const std::string& workspace,
                                         const std::string& prompt) {
  return server.RunPrompt(workspace, provider_, model_, prompt);
}

}  // namespace fastest::tests
