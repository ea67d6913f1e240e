// End-to-end tests of the dispatcher: the real fastest-server binary with the process backend
// plugin (sandboxes are local child processes running a small shell "runner").
#include <dirent.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_harness.h"

namespace fastest::testing {
namespace {

using nlohmann::json;

// A stand-in runner: behaves according to the job's prompt.
const char kRunnerScript[] = R"SH(#!/bin/sh
H="Authorization: Bearer $API_TOKEN"
JOB=$(curl -sf -H "$H" "$API_URL/v1/jobs/$JOB_ID") || { echo "cannot fetch job" >&2; exit 20; }
curl -sf -X POST -H "$H" -d '{"status":"running"}' "$API_URL/v1/jobs/$JOB_ID/status" >/dev/null \
  || { echo "cannot post running" >&2; exit 21; }
echo "provider=$PROVIDER"
echo "projects_seen=$(curl -sf -H "$H" "$API_URL/v1/projects" | grep -o owner_user_id | wc -l)"
case "$JOB" in
  *'"prompt":"sleep'*) sleep 60 ;;
  *'"prompt":"exit3'*) echo "about to fail" >&2; echo "boom line" >&2; exit 3 ;;
  *'"prompt":"complete:'*)
    SID=$(echo "$JOB" | sed 's/.*"prompt":"complete:\([0-9A-Z]*\)".*/\1/')
    curl -sf -X POST -H "$H" -d "{\"status\":\"completed\",\"output_snapshot_id\":\"$SID\"}" \
      "$API_URL/v1/jobs/$JOB_ID/status" >/dev/null || exit 22
    echo "Output snapshot: $SID" ;;
esac
)SH";

int CountEntries(const std::string& dir) {
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
    }
    closedir(d);
  }
  return n;
}

template <typename Pred>
bool Eventually(Pred pred, int timeout_ms = 10000) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

class DispatchE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    state_dir_ = dir_ + "/sandboxes";
    script_ = dir_ + "/runner.sh";
    std::ofstream(script_) << kRunnerScript;
  }
  void StartServer(std::vector<std::string> extra = {}) {
    server_.reset();
    std::vector<std::string> args = {
        "--backend=" + ProcessBackendPath(),
        "--backend_config=" + json{{"schema", 1}, {"state_dir", state_dir_}}.dump(),
        "--runner_command=/bin/sh," + script_,
        "--max_instances=10",
    };
    args.insert(args.end(), extra.begin(), extra.end());
    auto s = ServerProcess::Start(dir_ + "/data", args, {{"PROVIDER", "testprov"}});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    api_ = std::make_unique<Api>(server_.get());
  }
  // A project, a workspace, and a snapshot to complete jobs with.
  void Seed() {
    project_ = api_->Json("POST", "/v1/projects", R"({"name":"p"})")["project"]["id"];
    api_->Json("POST", "/v1/projects", R"({"name":"other"})");
    workspace_ = api_->Json("POST", "/v1/projects/" + project_ + "/workspaces",
                            R"({"name":"w"})")["workspace"]["id"];
    snapshot_ = api_->Json("POST", "/v1/projects/" + project_ + "/snapshots",
                           json{{"manifest_hash", std::string(64, 'c')}}.dump())["snapshot"]["id"];
    ASSERT_EQ(snapshot_.size(), 26u);
  }
  std::string CreateJob(const std::string& prompt) {
    long st;
    json j = api_->Json("POST", "/v1/jobs",
                        json{{"workspace_id", workspace_}, {"prompt", prompt}}.dump(), &st);
    EXPECT_EQ(st, 201) << j;
    return j["job"]["id"];
  }
  json GetJob(const std::string& id) { return api_->Json("GET", "/v1/jobs/" + id)["job"]; }

  std::string dir_, state_dir_, script_;
  std::string project_, workspace_, snapshot_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Api> api_;
};

TEST_F(DispatchE2eTest, RunJobCompletesThroughTheRealApi) {
  StartServer();
  Seed();
  const std::string job = CreateJob("complete:" + snapshot_);
  long st;
  json r = api_->Json("POST", "/run-job", json{{"job_id", job}}.dump(), &st);
  ASSERT_EQ(st, 200) << r << server_->Log();
  EXPECT_EQ(r["success"], true) << r;
  EXPECT_EQ(r["job_id"], job);
  EXPECT_EQ(r["output_snapshot_id"], snapshot_);
  EXPECT_TRUE(r["duration_ms"].is_number_integer());
  EXPECT_TRUE(absl::StrContains(r["stdout"].get<std::string>(), "provider=testprov")) << r;
  // The per-job token sees only the job's project.
  EXPECT_TRUE(absl::StrContains(r["stdout"].get<std::string>(), "projects_seen=1")) << r;
  json j = GetJob(job);
  EXPECT_EQ(j["status"], "completed");
  EXPECT_EQ(j["output_snapshot_id"], snapshot_);
  EXPECT_EQ(CountEntries(state_dir_), 0);  // sandbox removed
  // Not pending any more.
  EXPECT_EQ(api_->Call("POST", "/run-job", json{{"job_id", job}}.dump()).status, 409);
  EXPECT_EQ(api_->Json("POST", "/run-next")["message"], "No pending jobs");
  // The secret never reaches the log.
  EXPECT_FALSE(absl::StrContains(server_->Log(), kTestToken));
  EXPECT_FALSE(absl::StrContains(server_->Log(), "fst_"));
  std::string metrics = api_->Call("GET", "/metrics").body;
  EXPECT_TRUE(absl::StrContains(metrics, "fastest_dispatch_latency_seconds_count 1")) << metrics;
  EXPECT_TRUE(absl::StrContains(metrics, "fastest_sandboxes_running 0")) << metrics;
  EXPECT_TRUE(absl::StrContains(metrics, "fastest_jobs{status=\"completed\"} 1")) << metrics;
}

TEST_F(DispatchE2eTest, SandboxExitWithoutReportFailsWithCodeAndLogTail) {
  StartServer();
  Seed();
  const std::string job = CreateJob("exit3");
  json r = api_->Json("POST", "/run-job", json{{"job_id", job}}.dump());
  EXPECT_EQ(r["success"], false);
  const std::string error = r["error"];
  EXPECT_TRUE(absl::StartsWith(error, "Sandbox exited with code 3")) << error;
  EXPECT_TRUE(absl::StrContains(error, "boom line")) << error;
  EXPECT_TRUE(absl::StrContains(r["stderr"].get<std::string>(), "boom line"));
  json j = GetJob(job);
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["error"], error);
  EXPECT_EQ(CountEntries(state_dir_), 0);
}

TEST_F(DispatchE2eTest, CancelKillsTheSandbox) {
  StartServer();
  Seed();
  const std::string job = CreateJob("sleep");
  long st;
  json r = api_->Json("POST", "/run-job", json{{"job_id", job}, {"wait", false}}.dump(), &st);
  ASSERT_EQ(st, 202) << r;
  ASSERT_TRUE(Eventually([&] { return GetJob(job)["status"] == "running"; }))
      << server_->Log();
  EXPECT_EQ(CountEntries(state_dir_), 1);
  r = api_->Json("POST", "/v1/jobs/" + job + "/cancel", "", &st);
  EXPECT_EQ(st, 200);
  EXPECT_TRUE(Eventually([&] { return CountEntries(state_dir_) == 0; }, 5000));
  EXPECT_EQ(GetJob(job)["status"], "cancelled");
}

TEST_F(DispatchE2eTest, TimeoutFailsTheJob) {
  StartServer({"--job_timeout=1s"});
  Seed();
  const std::string job = CreateJob("sleep");
  auto t0 = std::chrono::steady_clock::now();
  json r = api_->Json("POST", "/run-job", json{{"job_id", job}}.dump());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(r["success"], false);
  EXPECT_EQ(r["error"], "Job timed out after 1s") << r;
  json j = GetJob(job);
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["error"], "Job timed out after 1s");
  EXPECT_EQ(CountEntries(state_dir_), 0);
}

TEST_F(DispatchE2eTest, ConcurrentRunNextClaimsEachJobExactlyOnce) {
  StartServer({"--runner_command=true"});
  Seed();
  std::set<std::string> created;
  for (int i = 0; i < 50; ++i) created.insert(CreateJob("noop"));
  std::mutex mu;
  std::multiset<std::string> claimed;
  std::atomic<int> empty{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 200; ++i) {
    threads.emplace_back([&] {
      Api api(server_.get());
      auto resp = api.Call("POST", "/run-next");
      json r = json::parse(resp.body, nullptr, false);
      if (resp.status == 200 && r.is_object() && r.contains("job_id")) {
        std::lock_guard<std::mutex> lock(mu);
        claimed.insert(r["job_id"].get<std::string>());
      } else if (resp.status == 200 && r.is_object() && r["message"] == "No pending jobs") {
        ++empty;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(claimed.size(), 50u);
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()), created);
  EXPECT_EQ(empty.load(), 150);
  // Each job ran once and, its sandbox exiting without a report, failed.
  json jobs = api_->Json("GET", "/v1/jobs?status=failed&limit=100")["jobs"];
  EXPECT_EQ(jobs.size(), 50u);
  EXPECT_TRUE(absl::StartsWith(jobs[0]["error"].get<std::string>(), "Sandbox exited with code 0"));
  EXPECT_EQ(CountEntries(state_dir_), 0);
}

TEST_F(DispatchE2eTest, AutoDispatchRunsNewJobs) {
  StartServer({"--auto_dispatch"});
  Seed();
  const std::string job = CreateJob("complete:" + snapshot_);
  EXPECT_TRUE(Eventually([&] { return GetJob(job)["status"] == "completed"; }))
      << server_->Log();
  EXPECT_TRUE(Eventually([&] { return CountEntries(state_dir_) == 0; }, 5000));
}

TEST_F(DispatchE2eTest, RestartFailsInterruptedJobsAndRemovesOrphans) {
  StartServer();
  Seed();
  const std::string job = CreateJob("sleep");
  const std::string queued = CreateJob("later");
  ASSERT_EQ(api_->Call("POST", "/run-job", json{{"job_id", job}, {"wait", false}}.dump()).status,
            202);
  ASSERT_TRUE(Eventually([&] { return GetJob(job)["status"] == "running"; }));
  ASSERT_EQ(CountEntries(state_dir_), 1);
  server_->Stop(SIGKILL);  // a crash: the sandbox survives
  EXPECT_EQ(CountEntries(state_dir_), 1);
  StartServer();
  json j = GetJob(job);
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["error"], "server restarted while the job was running");
  EXPECT_EQ(CountEntries(state_dir_), 0);  // the orphan was removed
  EXPECT_EQ(GetJob(queued)["status"], "pending");
  EXPECT_EQ(api_->Json("GET", "/v1/jobs/next")["job"]["id"], queued);
}

TEST_F(DispatchE2eTest, GracefulStopFailsRunningJobs) {
  StartServer();
  Seed();
  const std::string job = CreateJob("sleep");
  ASSERT_EQ(api_->Call("POST", "/run-job", json{{"job_id", job}, {"wait", false}}.dump()).status,
            202);
  ASSERT_TRUE(Eventually([&] { return GetJob(job)["status"] == "running"; }));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(server_->Stop(SIGTERM), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(CountEntries(state_dir_), 0);
  StartServer();
  json j = GetJob(job);
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["error"], "server stopped while the job was running");
}

TEST_F(DispatchE2eTest, RemoteModeRunsJobsOfAnExternalApi) {
  // "Remote" API: another fastest-server serving only the embedded API.
  auto remote = ServerProcess::Start(dir_ + "/remote", {"--backend=none"});
  ASSERT_TRUE(remote.ok()) << remote.status();
  api_ = std::make_unique<Api>(remote->get());
  Seed();
  const std::string job1 = CreateJob("complete:" + snapshot_);
  const std::vector<std::string> args = {
      "--backend=" + ProcessBackendPath(),
      "--backend_config=" + json{{"schema", 1}, {"state_dir", state_dir_}}.dump(),
      "--runner_command=/bin/sh," + script_, "--api_url=" + (*remote)->url("")};
  {
    auto worker = ServerProcess::Start(dir_ + "/worker", args);
    ASSERT_TRUE(worker.ok()) << worker.status();
    Api worker_api(worker->get());
    json r = worker_api.Json("POST", "/run-job", json{{"job_id", job1}}.dump());
    EXPECT_EQ(r["success"], true) << r << (*worker)->Log();
    EXPECT_EQ(r["output_snapshot_id"], snapshot_);
    EXPECT_EQ(GetJob(job1)["status"], "completed");
    EXPECT_EQ(worker_api.Json("POST", "/run-next")["message"], "No pending jobs");
  }
  // Auto-dispatch polls the remote API (it cannot be notified).
  std::vector<std::string> auto_args = args;
  auto_args.push_back("--auto_dispatch");
  auto worker = ServerProcess::Start(dir_ + "/worker", auto_args);
  ASSERT_TRUE(worker.ok()) << worker.status();
  const std::string job2 = CreateJob("exit3");
  EXPECT_TRUE(Eventually([&] { return GetJob(job2)["status"] == "failed"; }, 8000))
      << (*worker)->Log();
  EXPECT_TRUE(absl::StartsWith(GetJob(job2)["error"].get<std::string>(),
                               "Sandbox exited with code 3"));
  EXPECT_TRUE(Eventually([&] { return CountEntries(state_dir_) == 0; }, 5000));
}

}  // namespace
}  // namespace fastest::testing
