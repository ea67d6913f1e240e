// End-to-end tests of the dispatcher: the real fastest-server binary with the process backend
// plugin (sandboxes are local child processes running a small shell "runner").
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/http/http_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_harness.h"

namespace fastest::testing {
namespace {

using nlohmann::json;


// A stand-in runner: behaves according to the job's prompt.
const char kRunnerScriptTemplate[] = R"SH(#!/bin/sh
H="Authorization: Bearer $API_TOKEN"
JOB=$(curl -sf -H "$H" "$API_URL/v1/jobs/$JOB_ID") || { echo "cannot fetch job" >&2; exit 20; }
curl -sf -X POST -H "$H" -d '{"status":"running"}' "$API_URL/v1/jobs/$JOB_ID/status" >/dev/null \
  || { echo "cannot post running" >&2; exit 21; }
@MAKE_OUTPUT@
echo "provider=$PROVIDER"
echo "projects_status=$(curl -s -o /dev/null -w '%{http_code}' -H "$H" "$API_URL/v1/projects")"
echo "agent=[$FASTEST_AGENT_COMMAND] agent_timeout=[$FASTEST_AGENT_TIMEOUT]"
case "$JOB" in
  *'"prompt":"sleep'*) sleep 60 ;;
  *'"prompt":"nap:'*)
    N=$(echo "$JOB" | sed 's/.*"prompt":"nap:\([0-9]*\):\([0-9A-Z]*\)".*/\1/')
    SID=$(echo "$JOB" | sed 's/.*"prompt":"nap:\([0-9]*\):\([0-9A-Z]*\)".*/\2/')
    echo "before the nap"
    sleep "$N"
    echo "after the nap" >&2
    make_output
    curl -sf -X POST -H "$H" -d "{\"status\":\"completed\",\"output_snapshot_id\":\"$SID\"}" \
      "$API_URL/v1/jobs/$JOB_ID/status" >/dev/null || exit 22
    echo "Output snapshot: $SID" ;;
  *'"prompt":"die-on-signal-file'*)
    while [ ! -e "$(dirname "$0")/die-now" ]; do sleep 0.05; done
    echo "told to die" >&2; exit 9 ;;
  *'"prompt":"exit3'*) echo "about to fail" >&2; echo "boom line" >&2; exit 3 ;;
  *'"prompt":"lines:'*)
    SID=$(echo "$JOB" | sed 's/.*"prompt":"lines:\([0-9A-Z]*\)".*/\1/')
    for i in 1 2 3 4 5 6 7 8 9 10; do echo "line $i"; sleep 0.1; done
    echo "warning on stderr" >&2
    echo "token=$API_TOKEN"
    make_output
    curl -sf -X POST -H "$H" -d "{\"status\":\"completed\",\"output_snapshot_id\":\"$SID\"}" \
      "$API_URL/v1/jobs/$JOB_ID/status" >/dev/null || exit 22
    echo "Output snapshot: $SID" ;;
  *'"prompt":"complete:'*)
    SID=$(echo "$JOB" | sed 's/.*"prompt":"complete:\([0-9A-Z]*\)".*/\1/')
    make_output
    curl -sf -X POST -H "$H" -d "{\"status\":\"completed\",\"output_snapshot_id\":\"$SID\"}" \
      "$API_URL/v1/jobs/$JOB_ID/status" >/dev/null || exit 22
    echo "Output snapshot: $SID" ;;
esac
)SH";

class DispatchE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    state_dir_ = dir_ + "/sandboxes";
    script_ = dir_ + "/runner.sh";
    std::ofstream(script_) << WithMakeOutput(kRunnerScriptTemplate);
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
    auto s = LaunchServer(dir_ + "/data", args,
                                  {{"PROVIDER", "testprov"},
                                   {"FASTEST_AGENT_COMMAND", "eval \"$1\""},
                                   {"FASTEST_AGENT_TIMEOUT", "90s"}});
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
                           json{{"manifest_hash", kEmptyManifestHash}}.dump())["snapshot"]["id"];
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
  // A server-wide agent command and its deadline reach the runner (sandbox env pass-through).
  EXPECT_TRUE(absl::StrContains(r["stdout"].get<std::string>(),
                                "agent=[eval \"$1\"] agent_timeout=[90s]"))
      << r;
  // The per-job token cannot even list projects.
  EXPECT_TRUE(absl::StrContains(r["stdout"].get<std::string>(), "projects_status=403")) << r;
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

// A free loopback port: a restarted server must come back where the sandboxes' runners look.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

int Occurrences(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Jobs napping `naps` seconds run while the server is SIGKILLed and restarted on the same port
// (plus one whose sandbox dies during the outage). The napping jobs complete with their output
// snapshot and each log line once; the dead one fails with its exit code; nothing is left.
class RestartE2eTest : public DispatchE2eTest {
 protected:
  void Trial(const std::vector<int>& naps, int port) {
    const std::string fixed_port = "--port=" + std::to_string(port);
    std::vector<std::string> jobs;
    for (int n : naps) jobs.push_back(CreateJob(absl::StrCat("nap:", n, ":", snapshot_)));
    // Its sandbox ends during the outage, when the test creates the signal file.
    const std::string doomed = CreateJob("die-on-signal-file");
    unlink((dir_ + "/die-now").c_str());
    std::vector<std::string> all = jobs;
    all.push_back(doomed);
    for (const std::string& id : all) {
      ASSERT_EQ(
          api_->Call("POST", "/run-job", json{{"job_id", id}, {"wait", false}}.dump()).status,
          202);
    }
    ASSERT_TRUE(Eventually([&] {
      for (const std::string& id : all) {
        if (GetJob(id)["status"] != "running") return false;
      }
      return true;
    }));
    // One log is read before the crash, so its capture must resume where the file ends.
    ASSERT_TRUE(Eventually([&] {
      return api_->Call("GET", "/v1/jobs/" + jobs[0] + "/logs").body.find("before the nap") !=
             std::string::npos;
    }));
    server_->Stop(SIGKILL);
    const auto down = std::chrono::steady_clock::now();
    std::ofstream(dir_ + "/die-now") << "now";
    absl::SleepFor(absl::Milliseconds(300));
    StartServer({fixed_port});
    ASSERT_EQ(server_->port(), port);
    EXPECT_LT(std::chrono::steady_clock::now() - down, std::chrono::seconds(1));
    ASSERT_TRUE(Eventually(
        [&] {
          for (const std::string& id : all) {
            std::string st = GetJob(id)["status"];
            if (st == "running" || st == "pending") return false;
          }
          return true;
        },
        40000))
        << [&] {
             std::string out;
             for (const std::string& id : all) absl::StrAppend(&out, GetJob(id).dump(), "\n");
             return out + server_->Log();
           }();
    for (const std::string& id : jobs) {
      json j = GetJob(id);
      EXPECT_EQ(j["status"], "completed") << j;
      EXPECT_EQ(j.value("output_snapshot_id", ""), snapshot_) << j;
      // follow=1 ends once the log is complete (the runner reports before its last line).
      std::string log = api_->Call("GET", "/v1/jobs/" + id + "/logs?follow=1").body;
      EXPECT_EQ(Occurrences(log, "before the nap"), 1) << log;
      EXPECT_EQ(Occurrences(log, "after the nap"), 1) << log;
      EXPECT_EQ(Occurrences(log, "Output snapshot: " + snapshot_), 1) << log;
    }
    json d = GetJob(doomed);
    EXPECT_EQ(d["status"], "failed") << d;
    EXPECT_EQ(d.value("error", "").rfind("Sandbox exited with code 9: ", 0), 0u) << d;
    EXPECT_NE(d.value("error", "").find("told to die"), std::string::npos) << d;
    EXPECT_TRUE(Eventually([&] { return CountEntries(state_dir_) == 0; })) << "leftovers";
    for (const char* st : {"pending", "running"}) {
      EXPECT_EQ(api_->Json("GET", std::string("/v1/jobs?status=") + st)["jobs"].size(), 0u) << st;
    }
  }
};

TEST_F(RestartE2eTest, SigkillRestartReadoptsRunningJobs) {
  const int port = FreePort();
  ASSERT_NE(port, 0);
  StartServer({"--port=" + std::to_string(port)});
  Seed();
  Trial({5, 8, 12}, port);
}

TEST_F(RestartE2eTest, RepeatedSigkillRestarts) {
  const int port = FreePort();
  ASSERT_NE(port, 0);
  StartServer({"--port=" + std::to_string(port)});
  Seed();
  for (int rep = 0; rep < 18; ++rep) {
    SCOPED_TRACE(absl::StrCat("repetition ", rep));
    Trial({2, 3, 4}, port);
    if (HasFatalFailure()) return;
  }
}

TEST_F(DispatchE2eTest, SigstopOfTheServerMidJobEndsEveryJobCorrectly) {
  StartServer();
  Seed();
  std::vector<std::string> jobs;
  for (int n : {3, 5}) jobs.push_back(CreateJob(absl::StrCat("nap:", n, ":", snapshot_)));
  for (const std::string& id : jobs) {
    ASSERT_EQ(
        api_->Call("POST", "/run-job", json{{"job_id", id}, {"wait", false}}.dump()).status, 202);
  }
  ASSERT_TRUE(Eventually([&] {
    for (const std::string& id : jobs) {
      if (GetJob(id)["status"] != "running") return false;
    }
    return true;
  }));
  ASSERT_EQ(kill(server_->pid(), SIGSTOP), 0);
  absl::SleepFor(absl::Seconds(10));
  ASSERT_EQ(kill(server_->pid(), SIGCONT), 0);
  ASSERT_TRUE(Eventually(
      [&] {
        for (const std::string& id : jobs) {
          if (GetJob(id)["status"] != "completed") return false;
        }
        return true;
      },
      30000));
  for (const std::string& id : jobs) {
    std::string log = api_->Call("GET", "/v1/jobs/" + id + "/logs?follow=1").body;
    EXPECT_EQ(Occurrences(log, "before the nap"), 1) << log;
    EXPECT_EQ(Occurrences(log, "after the nap"), 1) << log;
    EXPECT_EQ(GetJob(id).value("output_snapshot_id", ""), snapshot_);
  }
  EXPECT_TRUE(Eventually([&] { return CountEntries(state_dir_) == 0; }));
}

TEST_F(DispatchE2eTest, CancelAfterRestartKillsTheAdoptedSandbox) {
  StartServer();
  Seed();
  const std::string queued = CreateJob("later");
  const std::string job = CreateJob("sleep");
  ASSERT_EQ(api_->Call("POST", "/run-job", json{{"job_id", job}, {"wait", false}}.dump()).status,
            202);
  ASSERT_TRUE(Eventually([&] { return GetJob(job)["status"] == "running"; }));
  server_->Stop(SIGKILL);
  StartServer();  // another port: the runner of `job` cannot reach this server
  ASSERT_EQ(api_->Call("POST", "/v1/jobs/" + job + "/cancel").status, 200);
  EXPECT_TRUE(Eventually([&] { return CountEntries(state_dir_) == 0; }));
  EXPECT_EQ(GetJob(job)["status"], "cancelled");
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
  auto remote = LaunchServer(dir_ + "/remote", {"--backend=none"});
  ASSERT_TRUE(remote.ok()) << remote.status();
  api_ = std::make_unique<Api>(remote->get());
  Seed();
  const std::string job1 = CreateJob("complete:" + snapshot_);
  const std::vector<std::string> args = {
      "--backend=" + ProcessBackendPath(),
      "--backend_config=" + json{{"schema", 1}, {"state_dir", state_dir_}}.dump(),
      "--runner_command=/bin/sh," + script_, "--api_url=" + (*remote)->url(""),
      "--share_remote_token_with_sandboxes"};
  {
    auto worker = LaunchServer(dir_ + "/worker", args);
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
  auto worker = LaunchServer(dir_ + "/worker", auto_args);
  ASSERT_TRUE(worker.ok()) << worker.status();
  const std::string job2 = CreateJob("exit3");
  EXPECT_TRUE(Eventually([&] { return GetJob(job2)["status"] == "failed"; }, 8000))
      << (*worker)->Log();
  EXPECT_TRUE(absl::StartsWith(GetJob(job2)["error"].get<std::string>(),
                               "Sandbox exited with code 3"));
  EXPECT_TRUE(Eventually([&] { return CountEntries(state_dir_) == 0; }, 5000));
}

// ------------------------------------------------------------------ GET /v1/jobs/:jobId/logs

struct FollowResult {
  long status = 0;
  std::string body;
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> chunks;
  std::chrono::steady_clock::time_point ended;
  bool ok = false;
};

// GET .../logs?follow=1 until the server ends the stream.
FollowResult Follow(const ServerProcess& server, const std::string& job, const std::string& token,
                    int64_t offset = 0) {
  FollowResult out;
  core::HttpClient http;
  core::HttpRequest req;
  req.url = server.url(absl::StrCat("/v1/jobs/", job, "/logs?follow=1&offset=", offset));
  req.bearer_token = token;
  req.timeout = std::chrono::seconds(30);
  req.on_body_chunk = [&](absl::string_view chunk) {
    out.chunks.emplace_back(std::chrono::steady_clock::now(), std::string(chunk));
    out.body.append(chunk.data(), chunk.size());
    return true;
  };
  auto r = http.Send(req);
  out.ended = std::chrono::steady_clock::now();
  out.ok = r.ok();
  if (r.ok()) out.status = r->status;
  return out;
}

TEST_F(DispatchE2eTest, JobLogsFollowStreamsLiveOutputAndEndsWithTheJob) {
  StartServer();
  Seed();
  const std::string job = CreateJob("lines:" + snapshot_);
  // Pending, no log yet: an empty 200, not 404.
  core::HttpResponse r = api_->Call("GET", "/v1/jobs/" + job + "/logs");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.Header("x-log-offset-next"), "0");
  EXPECT_EQ(r.Header("x-job-status"), "pending");

  // Two followers, one started before the job is dispatched.
  FollowResult early, late;
  std::thread t1([&] { early = Follow(*server_, job, kTestToken); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(api_->Call("POST", "/run-job", json{{"job_id", job}, {"wait", false}}.dump()).status,
            202);
  ASSERT_TRUE(Eventually([&] { return GetJob(job)["status"] == "running"; })) << server_->Log();
  std::thread t2([&] { late = Follow(*server_, job, kTestToken); });
  t1.join();
  t2.join();
  // The stream ended by itself, and only once the job was over.
  EXPECT_EQ(GetJob(job)["status"], "completed");
  for (const FollowResult* f : {&early, &late}) {
    ASSERT_TRUE(f->ok);
    EXPECT_EQ(f->status, 200) << f->body;
    std::string expected;
    for (int i = 1; i <= 10; ++i) absl::StrAppend(&expected, "line ", i, "\n");
    EXPECT_TRUE(absl::StartsWith(f->body, "provider=testprov\n")) << f->body;
    EXPECT_TRUE(absl::StrContains(f->body, expected)) << f->body;
    EXPECT_TRUE(absl::StrContains(f->body, "warning on stderr\n")) << f->body;
    EXPECT_TRUE(absl::StrContains(f->body, "Output snapshot: " + snapshot_)) << f->body;
    // The job's token never reaches the log.
    EXPECT_TRUE(absl::StrContains(f->body, "token=[redacted]\n")) << f->body;
    EXPECT_FALSE(absl::StrContains(f->body, "token=fst_")) << f->body;
  }
  EXPECT_EQ(early.body, late.body);
  // Live: the early follower got the lines in several pieces spread over the ~1 s run.
  ASSERT_GE(early.chunks.size(), 3u);
  EXPECT_GE(early.chunks.back().first - early.chunks.front().first,
            std::chrono::milliseconds(500));
  EXPECT_TRUE(absl::StartsWith(early.chunks.front().second, "provider=testprov\n"))
      << early.chunks.front().second;

  // ?offset=: the same bytes, from anywhere.
  const std::string full = early.body;
  r = api_->Call("GET", "/v1/jobs/" + job + "/logs");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, full);
  EXPECT_EQ(r.Header("x-log-offset-next"), std::to_string(full.size()));
  EXPECT_EQ(r.Header("x-job-status"), "completed");
  EXPECT_TRUE(absl::StartsWith(r.Header("content-type"), "text/plain")) << r.Header("content-type");
  r = api_->Call("GET", "/v1/jobs/" + job + "/logs?offset=7");
  EXPECT_EQ(r.body, full.substr(7));
  EXPECT_EQ(r.Header("x-log-offset-next"), std::to_string(full.size()));
  r = api_->Call("GET", absl::StrCat("/v1/jobs/", job, "/logs?offset=", full.size() + 5));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.Header("x-log-offset-next"), std::to_string(full.size() + 5));
  EXPECT_EQ(api_->Call("GET", "/v1/jobs/" + job + "/logs?offset=-1").status, 400);
  EXPECT_EQ(api_->Call("GET", "/v1/jobs/" + job + "/logs?offset=abc").status, 400);
  // Following a finished job: the rest of the log, then the end at once.
  FollowResult done = Follow(*server_, job, kTestToken, 7);
  EXPECT_EQ(done.status, 200);
  EXPECT_EQ(done.body, full.substr(7));
  // The log stays after the sandbox is gone (removal follows the job's end, so allow a moment).
  EXPECT_TRUE(Eventually([&] { return CountEntries(state_dir_) == 0; }, 5000));
  std::ifstream file(dir_ + "/data/logs/" + job + ".log");
  std::stringstream ss;
  ss << file.rdbuf();
  EXPECT_EQ(ss.str(), full);
}

// The sandbox's output is captured live only once someone reads the log. A reader that arrives
// mid-run still gets the whole log: a plain read returns what was printed so far, and a follower
// gets everything from the first byte, in order, each line once.
TEST_F(DispatchE2eTest, ReaderJoiningMidRunGetsTheCompleteLogOnce) {
  StartServer();
  Seed();
  const std::string job = CreateJob("lines:" + snapshot_);
  ASSERT_EQ(api_->Call("POST", "/run-job", json{{"job_id", job}, {"wait", false}}.dump()).status,
            202);
  // Nobody reads yet; wait until the sandbox has printed a few lines (~0.1 s apart).
  ASSERT_TRUE(Eventually([&] { return GetJob(job)["status"] == "running"; })) << server_->Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  // A plain read mid-run: the output so far, starting at the first line.
  core::HttpResponse r = api_->Call("GET", "/v1/jobs/" + job + "/logs");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(absl::StartsWith(r.body, "provider=testprov\n")) << r.body;
  EXPECT_TRUE(absl::StrContains(r.body, "\nline 1\n")) << r.body;
  EXPECT_EQ(r.Header("x-job-status"), "running");
  FollowResult mid = Follow(*server_, job, kTestToken);
  ASSERT_TRUE(mid.ok);
  EXPECT_EQ(mid.status, 200);
  EXPECT_EQ(GetJob(job)["status"], "completed");
  std::string expected;
  for (int i = 1; i <= 10; ++i) absl::StrAppend(&expected, "line ", i, "\n");
  EXPECT_TRUE(absl::StartsWith(mid.body, "provider=testprov\n")) << mid.body;
  EXPECT_TRUE(absl::StrContains(mid.body, expected)) << mid.body;
  for (int i = 1; i <= 10; ++i) {
    const std::string line = absl::StrCat("line ", i, "\n");
    const size_t first = mid.body.find(line);
    EXPECT_NE(first, std::string::npos) << line;
    EXPECT_EQ(mid.body.find(line, first + 1), std::string::npos) << "twice: " << line << mid.body;
  }
  EXPECT_TRUE(absl::StrContains(mid.body, "warning on stderr\n")) << mid.body;
  EXPECT_TRUE(absl::EndsWith(mid.body, "Output snapshot: " + snapshot_ + "\n")) << mid.body;
  // The stored log is exactly what the follower saw.
  EXPECT_EQ(api_->Call("GET", "/v1/jobs/" + job + "/logs").body, mid.body);
  // The plain read mid-run was a prefix of it.
  EXPECT_TRUE(absl::StartsWith(mid.body, r.body)) << r.body;
}

// Nobody reads the log while the job runs: it is captured once after the sandbox exited, whole.
TEST_F(DispatchE2eTest, UnreadLogIsCapturedWholeAfterTheExit) {
  StartServer();
  Seed();
  const std::string job = CreateJob("lines:" + snapshot_);
  core::HttpResponse run = api_->Call("POST", "/run-job", json{{"job_id", job}}.dump(), nullptr,
                                      std::chrono::seconds(30));
  ASSERT_EQ(run.status, 200) << run.body;
  json result = json::parse(run.body, nullptr, false);
  ASSERT_FALSE(result.is_discarded());
  EXPECT_EQ(result["success"], true) << result;
  EXPECT_TRUE(absl::StrContains(result.value("stdout", ""), "line 10\n")) << result;
  std::string expected;
  for (int i = 1; i <= 10; ++i) absl::StrAppend(&expected, "line ", i, "\n");
  const std::string log = api_->Call("GET", "/v1/jobs/" + job + "/logs").body;
  EXPECT_TRUE(absl::StartsWith(log, "provider=testprov\n")) << log;
  EXPECT_TRUE(absl::StrContains(log, expected)) << log;
  EXPECT_TRUE(absl::EndsWith(log, "Output snapshot: " + snapshot_ + "\n")) << log;
}

TEST_F(DispatchE2eTest, JobLogsAuthAndOwnership) {
  StartServer();
  Seed();
  const std::string job = CreateJob("exit3");
  json r = api_->Json("POST", "/run-job", json{{"job_id", job}}.dump());
  EXPECT_EQ(r["success"], false);
  core::HttpResponse mine = api_->Call("GET", "/v1/jobs/" + job + "/logs");
  EXPECT_EQ(mine.status, 200);
  EXPECT_TRUE(absl::StrContains(mine.body, "boom line\n")) << mine.body;
  // The failure message's tail comes from the captured output.
  EXPECT_TRUE(absl::StrContains(r["error"].get<std::string>(), "boom line")) << r;

  // Unknown job -> 404 with the error JSON.
  core::HttpResponse missing = api_->Call("GET", "/v1/jobs/NOSUCHJOB/logs");
  EXPECT_EQ(missing.status, 404);
  json err = json::parse(missing.body, nullptr, false);
  EXPECT_EQ(err["error"]["code"], "NOT_FOUND") << missing.body;
  EXPECT_EQ(api_->Call("GET", "/v1/jobs/NOSUCHJOB/logs?follow=1").status, 404);
  // No or a wrong token -> 401.
  const std::string bad = "wrong-token";
  EXPECT_EQ(api_->Call("GET", "/v1/jobs/" + job + "/logs", "", &bad).status, 401);
  // Another user's token -> 403, for the offset and the follow form.
  auto other = RunServerCommand({"token", "create", "--email=other@example.test",
                                 "--data_dir=" + dir_ + "/data", "--backend=none"});
  ASSERT_TRUE(other.ok()) << other.status();
  std::string other_token = *other;
  while (!other_token.empty() && other_token.back() == '\n') other_token.pop_back();
  core::HttpResponse theirs = api_->Call("GET", "/v1/jobs/" + job + "/logs", "", &other_token);
  EXPECT_EQ(theirs.status, 403);
  EXPECT_FALSE(absl::StrContains(theirs.body, "boom")) << theirs.body;
  EXPECT_EQ(json::parse(theirs.body, nullptr, false)["error"]["code"], "FORBIDDEN");
  FollowResult f = Follow(*server_, job, other_token);
  EXPECT_EQ(f.status, 403);
  EXPECT_FALSE(absl::StrContains(f.body, "boom"));
}

TEST_F(DispatchE2eTest, JobLogsFollowOfACancelledPendingJobEnds) {
  StartServer();
  Seed();
  const std::string job = CreateJob("never runs");
  FollowResult f;
  std::thread t([&] { f = Follow(*server_, job, kTestToken); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(api_->Call("POST", "/v1/jobs/" + job + "/cancel").status, 200);
  auto cancelled_at = std::chrono::steady_clock::now();
  t.join();
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.body, "");
  // No log writer ever: the periodic recheck ends it.
  EXPECT_LT(f.ended - cancelled_at, std::chrono::seconds(4));
}

// The CLI's `fastest logs JOB` follows through the server's endpoint (it never talks to an engine).
TEST_F(DispatchE2eTest, CliLogsFollowsThroughTheServer) {
  StartServer();
  Seed();
  const std::string job = CreateJob("lines:" + snapshot_);
  const std::string cmd = absl::StrCat(
      "FASTEST_API_TOKEN=", kTestToken, " DOCKER_HOST=unix:///nonexistent.sock ",
      Runfile("tools/cli/fastest"), " logs ", job, " --raw --server=", server_->url(""),
      " --data_dir=", dir_, "/cli 2>&1; echo \"exit=$?\"");
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(api_->Call("POST", "/run-job", json{{"job_id", job}, {"wait", false}}.dump()).status,
            202);
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> lines;
  char buf[4096];
  while (fgets(buf, sizeof(buf), p) != nullptr) {
    lines.emplace_back(std::chrono::steady_clock::now(), buf);
  }
  pclose(p);
  std::string all;
  for (const auto& l : lines) all += l.second;
  EXPECT_TRUE(absl::StrContains(all, "line 1\nline 2\nline 3\n")) << all;
  EXPECT_TRUE(absl::StrContains(all, "line 10\n")) << all;
  EXPECT_TRUE(absl::StrContains(all, "==> job " + job + " completed")) << all;
  EXPECT_TRUE(absl::EndsWith(all, "exit=0\n")) << all;
  // Printed as they happened, not all at the end.
  auto at = [&](const std::string& text) {
    for (const auto& l : lines) {
      if (l.second == text) return l.first;
    }
    return std::chrono::steady_clock::time_point();
  };
  EXPECT_GE(at("line 10\n") - at("line 1\n"), std::chrono::milliseconds(500)) << all;

  // Unknown job / server gone: clear errors, exit 1.
  std::string out;
  p = popen(absl::StrCat("FASTEST_API_TOKEN=", kTestToken, " ", Runfile("tools/cli/fastest"),
                         " logs NOSUCHJOB --server=", server_->url(""), " 2>&1; echo \"exit=$?\"")
                .c_str(),
            "r");
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  pclose(p);
  EXPECT_TRUE(absl::StrContains(out, "fastest logs:")) << out;
  EXPECT_TRUE(absl::EndsWith(out, "exit=1\n")) << out;
  const std::string url = server_->url("");
  server_->Stop(SIGTERM);
  out.clear();
  p = popen(absl::StrCat("FASTEST_API_TOKEN=", kTestToken, " ", Runfile("tools/cli/fastest"),
                         " logs ", job, " --server=", url, " 2>&1; echo \"exit=$?\"")
                .c_str(),
            "r");
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  pclose(p);
  EXPECT_TRUE(absl::StrContains(out, "is not reachable")) << out;
  EXPECT_TRUE(absl::EndsWith(out, "exit=1\n")) << out;
}

}  // namespace
}  // namespace fastest::testing
