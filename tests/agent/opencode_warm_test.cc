// The warm-up of the real OpenCode binary (OpenCodeServer::Warm) against the in-process model
// stub, on the host: Warm spends no request of the real model, leaves the workspace untouched,
// and the job's prompt then runs normally in a fresh session of the warmed instance. Speed is the
// benchmark's business (tools/bench:agent_bench --agent_only); nothing here is timed.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/snapshot/directory_scan.h"
#include "core/snapshot/manifest.h"
#include "gtest/gtest.h"
#include "tests/agent/host_agent.h"
#include "tools/model_stub/scenario.h"

namespace fastest::tests {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

tools::model_stub::Scenario Basic() {
  absl::StatusOr<tools::model_stub::Scenario> s =
      tools::model_stub::LoadScenarioFile("examples/scenarios/basic.json");
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : tools::model_stub::Scenario();
}

TEST(OpenCodeWarmTest, WarmCallsNoModelAndThePromptStillWorks) {
  HostAgentRig rig(Basic());
  ASSERT_TRUE(rig.status().ok()) << rig.status();
  absl::StatusOr<std::string> ws = rig.NewWorkspace("examples/hello");
  ASSERT_TRUE(ws.ok()) << ws.status();
  absl::StatusOr<core::Manifest> before = core::BuildManifestFromDirectory(*ws);
  ASSERT_TRUE(before.ok()) << before.status();

  std::vector<std::string> log;
  auto server = rig.StartServer(*ws, &log);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->WaitListening().ok());
  absl::Status warm = (*server)->Warm(*ws);
  ASSERT_TRUE(warm.ok()) << warm << "\n" << absl::StrJoin(log, "\n");

  // The warm-up ran its scripted tool turn (write, read, edit, bash) and final text against the
  // runner's own loopback model, never the real one.
  EXPECT_GE((*server)->WarmupRequests(), 2);
  EXPECT_TRUE(rig.stub().Requests().empty()) << rig.stub().State().dump();
  // ...and touched nothing in the workspace.
  absl::StatusOr<core::Manifest> after_warm = core::BuildManifestFromDirectory(*ws);
  ASSERT_TRUE(after_warm.ok());
  EXPECT_EQ(core::ManifestHash(*after_warm), core::ManifestHash(*before));

  const absl::Time prompt_at = absl::Now();
  runner::AgentResult result =
      rig.Prompt(**server, *ws, "Add a farewell script, document it and record a greeting");
  ASSERT_EQ(result.exit_code, 0) << result.tail << "\n" << absl::StrJoin(log, "\n");

  // The prompt's own session did the whole scenario against the stub.
  std::vector<tools::model_stub::ModelStub::RequestRecord> requests = rig.stub().Requests();
  int agent = 0;
  for (const auto& r : requests) agent += r.agent ? 1 : 0;
  EXPECT_EQ(agent, 4) << rig.stub().State().dump();
  // The session has its own title: no title-generation request reached the model.
  EXPECT_EQ(requests.size(), 4u) << rig.stub().State().dump();
  EXPECT_EQ(ReadFile(*ws + "/greeting.txt"), "Hello, fastest!\n");
  EXPECT_TRUE(absl::StrContains(ReadFile(*ws + "/README.md"), "says goodbye (src/farewell.sh)"));
  struct stat st;
  ASSERT_EQ(stat((*ws + "/src/farewell.sh").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  // The live log followed the prompt's session (not the warm-up's).
  std::string joined = absl::StrJoin(log, "\n");
  EXPECT_TRUE(absl::StrContains(joined, "tool write: ")) << joined;
  EXPECT_TRUE(absl::StrContains(joined, "text: Done: added src/farewell.sh")) << joined;
  EXPECT_FALSE(absl::StrContains(joined, ".fastest-warmup")) << joined;
  if (!requests.empty()) {
    std::printf("prompt -> first model request: %.0f ms (informational)\n",
                absl::ToDoubleMilliseconds(requests.front().received - prompt_at));
  }
}

// The light warm-up of a cold runner: the instance only, no warm-up session, no model request.
TEST(OpenCodeWarmTest, BootInstanceOnlyCreatesASession) {
  HostAgentRig rig(Basic());
  ASSERT_TRUE(rig.status().ok()) << rig.status();
  absl::StatusOr<std::string> ws = rig.NewWorkspace("examples/hello");
  ASSERT_TRUE(ws.ok()) << ws.status();
  auto server = rig.StartServer(*ws);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->BootInstance(*ws).ok());
  EXPECT_EQ((*server)->WarmupRequests(), 0);
  EXPECT_TRUE(rig.stub().Requests().empty());
  runner::AgentResult result =
      rig.Prompt(**server, *ws, "Add a farewell script, document it and record a greeting");
  ASSERT_EQ(result.exit_code, 0) << result.tail;
  EXPECT_EQ(ReadFile(*ws + "/greeting.txt"), "Hello, fastest!\n");
}

}  // namespace
}  // namespace fastest::tests
