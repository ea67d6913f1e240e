// The warm pool with the real agent: the sandbox image's OpenCode binary, booted in a warm
// sandbox ahead of the job (`opencode serve` + the workspace's instance), against the offline
// model stub through the server's model gateway. The same scenario then runs cold on a server
// without a pool: both output snapshots must be the same manifest. Prints both durations.
// Compiled once per engine (BUILD: warm_pool_agent_e2e_{docker,podman}_test).
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/api/api_client.h"
#include "core/crypto/secure_random.h"
#include "core/http/http_client.h"
#include "gtest/gtest.h"
#include "tests/e2e/backend_test_base.h"
#include "tests/e2e/e2e_harness.h"
#include "tests/testing/child_process.h"

#ifndef FASTEST_E2E_BACKEND
#error "compile with -DFASTEST_E2E_BACKEND=docker|podman (see tests/e2e/BUILD.bazel)"
#endif
#define FASTEST_E2E_STR2(x) #x
#define FASTEST_E2E_STR(x) FASTEST_E2E_STR2(x)

namespace fastest::e2e {
namespace {

constexpr char kBackendUnderTest[] = FASTEST_E2E_STR(FASTEST_E2E_BACKEND);
constexpr char kModelKey[] = "stub-key-only-the-server-has";

struct Outcome {
  core::Job job;
  std::string manifest_hash;
  std::string log;
  absl::Duration took;  // POST /run-job -> completed
};

class WarmAgentE2eTest : public BackendTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(ConnectBackend());
    ASSERT_TRUE(stale_runner_.empty()) << stale_runner_;
    work_ = MakeTempDir("warm_agent_");
    token_ = "e2e-" + core::SecureRandomHex(16);
  }

  void TearDown() override {
    for (auto& server : servers_) {
      absl::Status gone = StopServerLeavingNoContainers(*server, *engine_, absl::Seconds(30));
      EXPECT_TRUE(gone.ok()) << gone.message();
      if (HasFailure()) fprintf(stderr, "%s", ServerLogTail(*server, 12000).c_str());
    }
  }

  // A model stub for the basic scenario (its turns are counted per stub: one per server).
  int StartStub(const std::string& name) {
    testing::SpawnOptions o;
    o.binary = RunfilePath("tools/model_stub/fastest-model-stub");
    const std::string port_file = absl::StrCat(work_, "/", name, ".port");
    o.args = {absl::StrCat("--scenario=", RunfilePath("examples/scenarios/basic.json")),
              "--port=0", absl::StrCat("--port_file=", port_file),
              "--require_key_env=FASTEST_STUB_KEY"};
    o.env = {{"PATH", "/usr/bin:/bin"}, {"FASTEST_STUB_KEY", kModelKey}};
    o.log_path = absl::StrCat(work_, "/", name, ".log");
    o.die_with_parent = true;
    auto stub = testing::ChildProcess::Spawn(o);
    EXPECT_TRUE(stub.ok()) << stub.status();
    if (!stub.ok()) return 0;
    auto port = stub->WaitForPortFile(port_file, absl::Seconds(10));
    EXPECT_TRUE(port.ok()) << port.status();
    stubs_.push_back(std::move(*stub));
    return port.ok() ? *port : 0;
  }

  BackendServer* StartServer(int warm_pool, int stub_port) {
    ServerOptions o;
    o.backend = kind_;
    o.image = image_;
    o.max_instances = 2;
    o.job_timeout = "4m";
    o.agent_command = "";  // the real OpenCode
    o.extra_flags = {absl::StrCat("--warm_pool=", warm_pool), "--instance_type=standard-3"};
    o.extra_env = {{"FASTEST_MODEL_BASE_URL", absl::StrCat("http://127.0.0.1:", stub_port, "/v1")},
                   {"FASTEST_MODEL_API_KEY", kModelKey}};
    servers_.push_back(std::make_unique<BackendServer>(
        absl::StrCat(work_, "/data", servers_.size()), token_, o));
    BackendServer* s = servers_.back().get();
    absl::Status started = s->Start();
    EXPECT_TRUE(started.ok()) << started.message();
    return started.ok() ? s : nullptr;
  }

  double Metric(const BackendServer& server, const std::string& sample) {
    return MetricSample(http_, server.url(), token_, sample);
  }

  Outcome RunBasic(BackendServer& server) {
    Outcome out;
    auto api = std::make_unique<core::ApiClient>(http_, server.url(), token_);
    const std::string dir = absl::StrCat(work_, "/hello", copies_++);
    const std::string cmd =
        absl::StrCat("mkdir -p '", dir, "' && cp -rL --preserve=mode '",
                     RunfilePath("examples/hello"), "/.' '", dir, "/'");
    EXPECT_EQ(system(cmd.c_str()), 0) << cmd;
    absl::StatusOr<Fixture> f = SeedWorkspace(*api, dir, "hello");
    EXPECT_TRUE(f.ok()) << f.status();
    if (!f.ok()) return out;
    absl::StatusOr<core::Job> job = api->CreateJob(
        f->workspace_id, "Add a farewell script, document it and record a greeting");
    EXPECT_TRUE(job.ok()) << job.status();
    if (!job.ok()) return out;
    const absl::Time t0 = absl::Now();
    EXPECT_TRUE(RunJob(server.url(), token_, job->id, /*wait=*/false).ok());
    absl::StatusOr<core::Job> done = WaitForTerminal(*api, job->id, absl::Minutes(4));
    out.took = absl::Now() - t0;
    EXPECT_TRUE(done.ok()) << done.status();
    if (!done.ok()) return out;
    out.job = *done;
    core::HttpRequest logs;
    logs.url = server.url() + "/v1/jobs/" + job->id + "/logs?follow=1";
    logs.bearer_token = token_;
    auto l = http_.Send(logs);
    out.log = l.ok() ? l->body : "";
    if (done->output_snapshot_id) {
      auto snap = api->GetSnapshot(*done->output_snapshot_id);
      EXPECT_TRUE(snap.ok()) << snap.status();
      if (snap.ok()) out.manifest_hash = snap->manifest_hash;
    }
    return out;
  }

  std::string work_, token_;
  core::HttpClient http_;
  std::vector<testing::ChildProcess> stubs_;
  std::vector<std::unique_ptr<BackendServer>> servers_;
  int copies_ = 0;
};

TEST_P(WarmAgentE2eTest, OpenCodeBootedAheadDoesTheJobLikeACold) {
  const int warm_stub = StartStub("stub-warm");
  ASSERT_GT(warm_stub, 0);
  BackendServer* warm = StartServer(/*warm_pool=*/1, warm_stub);
  ASSERT_NE(warm, nullptr);
  // Ready = OpenCode listens and its instance for /workspace is bootstrapped.
  const absl::Time boot_start = absl::Now();
  while (Metric(*warm, "fastest_warm_pool_sandboxes{state=\"ready\"}") != 1 &&
         absl::Now() - boot_start < absl::Seconds(120)) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(Metric(*warm, "fastest_warm_pool_sandboxes{state=\"ready\"}"), 1)
      << "no warm sandbox stood by";
  const double boot_s = Metric(*warm, "fastest_warm_pool_boot_seconds_sum");
  Outcome w = RunBasic(*warm);
  ASSERT_EQ(w.job.status, core::JobStatus::kCompleted) << w.job.error.value_or("") << "\n" << w.log;
  EXPECT_NE(w.log.find("[standby] Agent server booted in"), std::string::npos) << w.log;
  EXPECT_NE(w.log.find("[standby] Assigned job " + w.job.id), std::string::npos) << w.log;
  EXPECT_NE(w.log.find("[agent] tool write: "), std::string::npos) << w.log;
  EXPECT_NE(w.log.find("[gateway] POST /v1/chat/completions -> 200"), std::string::npos) << w.log;
  EXPECT_EQ(w.log.find(kModelKey), std::string::npos);
  EXPECT_EQ(Metric(*warm, "fastest_warm_pool_takes_total"), 1);

  const int cold_stub = StartStub("stub-cold");
  ASSERT_GT(cold_stub, 0);
  BackendServer* cold = StartServer(/*warm_pool=*/0, cold_stub);
  ASSERT_NE(cold, nullptr);
  Outcome c = RunBasic(*cold);
  ASSERT_EQ(c.job.status, core::JobStatus::kCompleted) << c.job.error.value_or("") << "\n" << c.log;
  EXPECT_EQ(c.log.find("[standby]"), std::string::npos);
  EXPECT_EQ(w.manifest_hash, c.manifest_hash) << "warm and cold outputs differ";
  fprintf(stderr,
          "warm pool with OpenCode (%s): boot to standing by %.2f s; run-job -> completed: warm "
          "%.2f s, cold %.2f s\n",
          kBackendUnderTest, boot_s, absl::ToDoubleSeconds(w.took), absl::ToDoubleSeconds(c.took));
  RecordProperty("warm_seconds", absl::StrCat(absl::ToDoubleSeconds(w.took)));
  RecordProperty("cold_seconds", absl::StrCat(absl::ToDoubleSeconds(c.took)));
}

INSTANTIATE_TEST_SUITE_P(Backend, WarmAgentE2eTest,
                         ::testing::Values(std::string(kBackendUnderTest)),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace fastest::e2e
