// File: tests/agent/host_agent.h
//
// The real OpenCode agent on the host, driven the way the runner drives it in a sandbox
// (PrepareAgentLaunch + OpenCodeServer), against an in-process model stub — for the warm-up test
// and the agent-only benchmark. No container, no API server.
//
//   HostAgentRig rig(scenario);                 // stub on 127.0.0.1:<port>
//   std::string ws = rig.NewWorkspace("examples/hello");
//   auto server = rig.StartServer(ws);          // opencode serve, not yet listening
//   server->WaitListening(); server->Warm(ws);  // optional
//   AgentResult r = rig.Prompt(*server, ws, "do it");
//
// The OpenCode binary: $FASTEST_OPENCODE_BIN, else the npm cache tools/build_sandbox_image.sh
// fills (~/.cache/fastest/opencode/node_modules/opencode-linux-x64/bin/opencode).
#ifndef FASTEST_TESTS_AGENT_HOST_AGENT_H_
#define FASTEST_TESTS_AGENT_HOST_AGENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/net/http_server.h"
#include "runner/agent_launch.h"
#include "runner/agent_process.h"
#include "runner/opencode_serve.h"
#include "tools/model_stub/model_stub.h"
#include "tools/model_stub/scenario.h"

namespace fastest::tests {

// The OpenCode binary to use, or an error saying how to get one.
absl::StatusOr<std::string> FindOpenCodeBinary();

class HostAgentRig {
 public:
  // Starts the stub (quiet) with `scenario`; check status() before use.
  explicit HostAgentRig(tools::model_stub::Scenario scenario);
  ~HostAgentRig();

  absl::Status status() const { return status_; }
  tools::model_stub::ModelStub& stub() { return *stub_; }
  const std::string& opencode_bin() const { return opencode_bin_; }

  // A fresh copy of `source_dir` (or an empty dir when empty) under a new temp dir.
  absl::StatusOr<std::string> NewWorkspace(const std::string& source_dir);
  // PrepareAgentLaunch for `workspace` (agent home beside it) and an OpenCodeServer started with
  // it; `log` (may be null) collects the server's output and the live log.
  absl::StatusOr<std::unique_ptr<runner::OpenCodeServer>> StartServer(
      const std::string& workspace, std::vector<std::string>* log = nullptr);
  // RunPrompt with the launch's provider/model.
  runner::AgentResult Prompt(runner::OpenCodeServer& server, const std::string& workspace,
                             const std::string& prompt);

 private:
  absl::Status status_;
  std::string opencode_bin_;
  std::string root_;
  int counter_ = 0;
  std::string provider_, model_;
  std::unique_ptr<tools::model_stub::ModelStub> stub_;
  std::unique_ptr<net::HttpServer> http_;
};

}  // namespace fastest::tests

#endif  // FASTEST_TESTS_AGENT_HOST_AGENT_H_
