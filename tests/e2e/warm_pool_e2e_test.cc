// Warm pool end to end: the real fastest-server with --warm_pool keeps real containers of the
// sandbox image standing by (the real runner in standby, FASTEST_STANDBY=1); jobs take them.
// Compiled once per engine (BUILD: warm_pool_e2e_docker_test, warm_pool_e2e_podman_test). The
// agent is the scripted shell agent (FASTEST_AGENT_COMMAND, `eval "$1"`: the prompt is the
// script), which needs no pre-boot.
//
//   - A job on a warm sandbox produces exactly the output snapshot (manifest hash) the same job
//     produces cold (a second server with --warm_pool=0).
//   - A warm sandbox serves one job: it is gone after it, the pool refills with a new one.
//   - The pool never holds more containers than --max_instances, also with jobs arriving.
//   - Idle sandboxes are recycled after --warm_pool_ttl; after a server SIGKILL the restarted
//     server removes the idle ones and re-adopts the one that had a job, which completes; nothing
//     is left once the servers stop.
//   - A job whose warm sandbox was killed while standing by runs on a cold sandbox instead.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

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

#ifndef FASTEST_E2E_BACKEND
#error "compile with -DFASTEST_E2E_BACKEND=docker|podman (see tests/e2e/BUILD.bazel)"
#endif
#define FASTEST_E2E_STR2(x) #x
#define FASTEST_E2E_STR(x) FASTEST_E2E_STR2(x)

namespace fastest::e2e {
namespace {

using backends::engine_api::ContainerSummary;
using backends::engine_api::EngineClient;

constexpr char kBackendUnderTest[] = FASTEST_E2E_STR(FASTEST_E2E_BACKEND);

// Counts the server's containers every 50 ms in the background; remembers the most seen.
class ContainerWatch {
 public:
  ContainerWatch(BackendKind kind, std::string server_id) {
    auto engine = ConnectEngine(kind);
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (!engine.ok()) return;
    engine_ = std::move(*engine);
    thread_ = std::thread([this, server_id] {
      while (!stop_) {
        auto list = ListLabelled(*engine_, {{"fastest.server_id", server_id}});
        if (list.ok()) {
          int live = 0;
          for (const auto& c : *list) live += c.state == "running" || c.state == "created";
          max_ = std::max(max_.load(), live);
        }
        absl::SleepFor(absl::Milliseconds(50));
      }
    });
  }
  ~ContainerWatch() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int max() const { return max_; }

 private:
  std::unique_ptr<EngineClient> engine_;
  std::atomic<bool> stop_{false};
  std::atomic<int> max_{0};
  std::thread thread_;
};

class WarmPoolE2eTest : public BackendTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(ConnectBackend());
    // A runner without standby would never stand by: say so rather than time out.
    ASSERT_TRUE(stale_runner_.empty()) << stale_runner_
                                 << " (build one: tools/build_sandbox_image.sh --tag ... and "
                                    "--test_env=FASTEST_E2E_IMAGE=...)";
    work_ = MakeTempDir("warm_e2e_");
    token_ = "e2e-" + core::SecureRandomHex(16);
  }

  void TearDown() override {
    for (auto& server : servers_) {
      absl::Status gone = StopServerLeavingNoContainers(*server, *engine_, absl::Seconds(30));
      EXPECT_TRUE(gone.ok()) << "after stop: " << gone.message();
    }
    if (HasFailure()) {
      for (auto& server : servers_) fprintf(stderr, "%s", ServerLogTail(*server, 20000).c_str());
    }
  }

  BackendServer* StartServer(int warm_pool, int max_instances,
                             std::vector<std::string> flags = {}) {
    ServerOptions o;
    o.backend = kind_;
    o.image = image_;
    o.max_instances = max_instances;
    o.extra_flags = std::move(flags);
    o.extra_flags.push_back(absl::StrCat("--warm_pool=", warm_pool));
    const std::string data_dir = absl::StrCat(work_, "/data", servers_.size());
    servers_.push_back(std::make_unique<BackendServer>(data_dir, token_, o));
    BackendServer* s = servers_.back().get();
    absl::Status started = s->Start();
    EXPECT_TRUE(started.ok()) << started.message();
    return started.ok() ? s : nullptr;
  }

  Fixture Seed(core::ApiClient& api) {
    const std::string dir = absl::StrCat(work_, "/fixture", fixtures_++);
    WriteChangeFixtureTree(dir);
    absl::StatusOr<Fixture> f = SeedWorkspace(api, dir, "warm");
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? *f : Fixture{};
  }

  // Warm containers of `server` (idle or serving a job), by id.
  std::map<std::string, ContainerSummary> WarmContainers(const BackendServer& server) {
    std::map<std::string, ContainerSummary> out;
    auto list = ListLabelled(*engine_, {{"fastest.server_id", server.server_id()}});
    EXPECT_TRUE(list.ok()) << list.status();
    if (!list.ok()) return out;
    for (const auto& c : *list) {
      if (c.labels.count("fastest.warm")) out[c.id] = c;
    }
    return out;
  }

  // The value of a /metrics sample line (`name value`), or -1.
  double Metric(const BackendServer& server, const std::string& sample) {
    return MetricSample(http_, server.url(), token_, sample);
  }

  bool WaitReady(const BackendServer& server, int n, absl::Duration limit) {
    const absl::Time end = absl::Now() + limit;
    while (absl::Now() < end) {
      if (Metric(server, "fastest_warm_pool_sandboxes{state=\"ready\"}") == n) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  std::string Logs(const BackendServer& server, const std::string& job) {
    core::HttpRequest req;
    req.url = server.url() + "/v1/jobs/" + job + "/logs?follow=1";
    req.bearer_token = token_;
    auto r = http_.Send(req);
    return r.ok() ? r->body : "";
  }

  // Runs kChangeAgentScript on a fresh seed of `server`; returns the output manifest's hash.
  std::string RunChangeJob(BackendServer& server, std::string* job_id) {
    auto api = std::make_unique<core::ApiClient>(http_, server.url(), token_);
    Fixture f = Seed(*api);
    absl::StatusOr<core::Job> job = api->CreateJob(f.workspace_id, kChangeAgentScript);
    EXPECT_TRUE(job.ok()) << job.status();
    if (!job.ok()) return "";
    *job_id = job->id;
    absl::StatusOr<nlohmann::json> result = RunJob(server.url(), token_, job->id, /*wait=*/true);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return "";
    EXPECT_TRUE(result->value("success", false)) << result->dump(2);
    absl::StatusOr<core::Job> done = api->GetJob(job->id);
    EXPECT_TRUE(done.ok() && done->output_snapshot_id.has_value());
    if (!done.ok() || !done->output_snapshot_id) return "";
    EXPECT_NE(*done->output_snapshot_id, f.snapshot_id);
    absl::StatusOr<core::Snapshot> snap = api->GetSnapshot(*done->output_snapshot_id);
    EXPECT_TRUE(snap.ok()) << snap.status();
    return snap.ok() ? snap->manifest_hash : "";
  }

  std::string work_, token_;
  core::HttpClient http_;
  std::vector<std::unique_ptr<BackendServer>> servers_;
  int fixtures_ = 0;
};

TEST_P(WarmPoolE2eTest, WarmJobMatchesColdJobAndEachSandboxServesOneJob) {
  BackendServer* warm = StartServer(/*warm_pool=*/1, /*max_instances=*/2);
  ASSERT_NE(warm, nullptr);
  ContainerWatch watch(kind_, warm->server_id());
  ASSERT_TRUE(WaitReady(*warm, 1, absl::Seconds(60))) << "no warm sandbox stood by";
  std::map<std::string, ContainerSummary> before = WarmContainers(*warm);
  ASSERT_EQ(before.size(), 1u);
  const std::string first_warm = before.begin()->first;
  // Standing by: no job label yet.
  EXPECT_EQ(before.begin()->second.labels.count("fastest.job_id"), 0u);

  std::string warm_job;
  const std::string warm_hash = RunChangeJob(*warm, &warm_job);
  ASSERT_FALSE(warm_hash.empty());
  const std::string warm_log = Logs(*warm, warm_job);
  EXPECT_NE(warm_log.find("[standby] Assigned job " + warm_job), std::string::npos) << warm_log;
  EXPECT_EQ(Metric(*warm, "fastest_warm_pool_takes_total"), 1);
  EXPECT_EQ(Metric(*warm, "fastest_warm_pool_misses_total"), 0);

  // The sandbox that served it is gone; a new one stands by in its place.
  ASSERT_TRUE(WaitReady(*warm, 1, absl::Seconds(60)));
  std::map<std::string, ContainerSummary> after = WarmContainers(*warm);
  EXPECT_EQ(after.count(first_warm), 0u) << "the warm sandbox outlived its job";
  EXPECT_EQ(after.size(), 1u);

  // A second job takes the new one, not the first.
  std::string second_job;
  EXPECT_EQ(RunChangeJob(*warm, &second_job), warm_hash);
  EXPECT_NE(Logs(*warm, second_job).find("[standby] Assigned job " + second_job),
            std::string::npos);
  EXPECT_EQ(Metric(*warm, "fastest_warm_pool_takes_total"), 2);
  EXPECT_GE(Metric(*warm, "fastest_warm_pool_boot_seconds_count"), 2);

  // The same job cold (pool 0: today's path) writes the same snapshot.
  BackendServer* cold = StartServer(/*warm_pool=*/0, /*max_instances=*/2);
  ASSERT_NE(cold, nullptr);
  EXPECT_TRUE(WarmContainers(*cold).empty());
  std::string cold_job;
  EXPECT_EQ(RunChangeJob(*cold, &cold_job), warm_hash);
  EXPECT_EQ(Logs(*cold, cold_job).find("[standby]"), std::string::npos);
  EXPECT_EQ(Metric(*cold, "fastest_warm_pool_takes_total"), -1) << "pool 0 reports no pool";
  EXPECT_LE(watch.max(), 2) << "more containers than --max_instances";
}

// A warm sandbox killed while it stands by (OOM, an operator, an engine hiccup) still looks ready
// to the pool; the job handed to it must not fail for that: it runs on a cold sandbox.
TEST_P(WarmPoolE2eTest, AJobWhoseWarmSandboxWasKilledRunsCold) {
  BackendServer* server = StartServer(/*warm_pool=*/1, /*max_instances=*/2);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(WaitReady(*server, 1, absl::Seconds(60))) << "no warm sandbox stood by";
  std::map<std::string, ContainerSummary> warm = WarmContainers(*server);
  ASSERT_EQ(warm.size(), 1u);
  const std::string killed = warm.begin()->first;
  ASSERT_TRUE(engine_->KillContainer(killed, SIGKILL).ok());

  std::string job;
  const std::string hash = RunChangeJob(*server, &job);
  EXPECT_FALSE(hash.empty());
  const std::string log = Logs(*server, job);
  EXPECT_NE(log.find("The warm sandbox ended before its runner started the job"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("[standby] Assigned job"), std::string::npos) << log;
  EXPECT_EQ(Metric(*server, "fastest_warm_pool_retired_total{reason=\"lost\"}"), 1);
  EXPECT_EQ(WarmContainers(*server).count(killed), 0u) << "the killed sandbox was not removed";
  // The pool refills as usual.
  EXPECT_TRUE(WaitReady(*server, 1, absl::Seconds(60)));
}

TEST_P(WarmPoolE2eTest, JobsArrivingTogetherNeverExceedMaxInstances) {
  BackendServer* server = StartServer(/*warm_pool=*/2, /*max_instances=*/2);
  ASSERT_NE(server, nullptr);
  ContainerWatch watch(kind_, server->server_id());
  ASSERT_TRUE(WaitReady(*server, 2, absl::Seconds(60)));
  auto api = std::make_unique<core::ApiClient>(http_, server->url(), token_);
  Fixture f = Seed(*api);
  std::vector<std::string> jobs;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<core::Job> job = api->CreateJob(
        f.workspace_id, absl::StrCat("echo ", i, " > out.txt; chmod 644 out.txt; sleep 1"));
    ASSERT_TRUE(job.ok()) << job.status();
    jobs.push_back(job->id);
    ASSERT_TRUE(RunJob(server->url(), token_, job->id, /*wait=*/false).ok());
  }
  for (const std::string& job : jobs) {
    absl::StatusOr<core::Job> done = WaitForTerminal(*api, job, absl::Seconds(120));
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(done->status, core::JobStatus::kCompleted) << done->error.value_or("");
  }
  EXPECT_GE(Metric(*server, "fastest_warm_pool_takes_total"), 2);
  EXPECT_EQ(Metric(*server, "fastest_warm_pool_takes_total") +
                Metric(*server, "fastest_warm_pool_misses_total"),
            4);
  ASSERT_TRUE(WaitReady(*server, 2, absl::Seconds(60)));
  EXPECT_LE(watch.max(), 2) << "more containers than --max_instances";
}

TEST_P(WarmPoolE2eTest, TtlRecyclesAndAServerSigkillLeavesNoLeftovers) {
  BackendServer* server =
      StartServer(/*warm_pool=*/2, /*max_instances=*/3, {"--warm_pool_ttl=5s"});
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(WaitReady(*server, 2, absl::Seconds(60)));
  std::map<std::string, ContainerSummary> first = WarmContainers(*server);
  ASSERT_EQ(first.size(), 2u);
  // Recycled: both replaced by new containers, the old ones removed.
  const absl::Time end = absl::Now() + absl::Seconds(60);
  bool recycled = false;
  while (!recycled && absl::Now() < end) {
    std::map<std::string, ContainerSummary> now = WarmContainers(*server);
    recycled = now.size() == 2 && now.count(first.begin()->first) == 0 &&
               now.count(first.rbegin()->first) == 0;
    EXPECT_LE(now.size(), 3u);
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE(recycled) << "idle warm sandboxes were not replaced after --warm_pool_ttl";
  EXPECT_GE(Metric(*server, "fastest_warm_pool_retired_total{reason=\"ttl\"}"), 2);

  // A job on a warm sandbox, then the server dies (SIGKILL) while it runs.
  ASSERT_TRUE(WaitReady(*server, 2, absl::Seconds(60)));
  auto api = std::make_unique<core::ApiClient>(http_, server->url(), token_);
  Fixture f = Seed(*api);
  absl::StatusOr<core::Job> job = api->CreateJob(
      f.workspace_id, "echo before-crash; sleep 6; echo survived > survived.txt; "
                      "chmod 644 survived.txt; echo after-crash");
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(RunJob(server->url(), token_, job->id, /*wait=*/false).ok());
  absl::StatusOr<core::Job> running = WaitForJob(
      *api, job->id, [](const core::Job& j) { return j.status != core::JobStatus::kPending; },
      absl::Seconds(30));
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(running->status, core::JobStatus::kRunning) << running->error.value_or("");
  absl::SleepFor(absl::Seconds(1));  // the refill starts a replacement
  server->Crash();
  std::map<std::string, ContainerSummary> at_crash = WarmContainers(*server);
  EXPECT_GE(at_crash.size(), 2u) << "expected the job's sandbox and idle ones";

  // Restarted without a pool: idle warm sandboxes go, the job's is re-adopted and finishes.
  ServerOptions o = server->options();
  o.extra_flags = {"--warm_pool=0"};
  servers_.push_back(std::make_unique<BackendServer>(server->data_dir(), token_, o));
  BackendServer* restarted = servers_.back().get();
  ASSERT_TRUE(restarted->Start().ok());
  ASSERT_EQ(restarted->server_id(), server->server_id());
  std::map<std::string, ContainerSummary> after_restart = WarmContainers(*restarted);
  EXPECT_EQ(after_restart.size(), 1u) << "idle warm sandboxes survived the restart";
  auto api2 = std::make_unique<core::ApiClient>(http_, restarted->url(), token_);
  absl::StatusOr<core::Job> done = WaitForTerminal(*api2, job->id, absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->status, core::JobStatus::kCompleted) << done->error.value_or("");
  const std::string log = Logs(*restarted, job->id);
  EXPECT_NE(log.find("[agent] before-crash"), std::string::npos) << log;
  EXPECT_NE(log.find("[agent] after-crash"), std::string::npos) << log;
  absl::Status gone =
      WaitNoContainers(*engine_, {{"fastest.server_id", restarted->server_id()}},
                       absl::Seconds(30));
  EXPECT_TRUE(gone.ok()) << gone.message();
}

INSTANTIATE_TEST_SUITE_P(Backend, WarmPoolE2eTest,
                         ::testing::Values(std::string(kBackendUnderTest)),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace fastest::e2e
