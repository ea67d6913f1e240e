// The dispatcher against a faulty backend (libfastest_backend_faulty_process.so: the process
// backend with injected faults), through the real fastest-server binary:
//   - a log follow that never ends (after the sandbox exited, or at all) must not hold the job:
//     it reaches its final state within a bound, its log is complete (read once instead, nothing
//     twice), the slot is freed for the next job, the job timeout is still enforced, and the
//     server still stops promptly;
//   - a backend whose Wait keeps failing fails the job with that error ("Lost contact ...").
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/http/http_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_harness.h"

namespace fastest::testing {
namespace {

using nlohmann::json;

using Clock = std::chrono::steady_clock;

// A stand-in runner: reports running, prints, then completes, fails or sleeps by prompt.
const char kRunnerScriptTemplate[] = R"SH(#!/bin/sh
H="Authorization: Bearer $API_TOKEN"
JOB=$(curl -sf -H "$H" "$API_URL/v1/jobs/$JOB_ID") || { echo "cannot fetch job" >&2; exit 20; }
curl -sf -X POST -H "$H" -d '{"status":"running"}' "$API_URL/v1/jobs/$JOB_ID/status" >/dev/null \
  || { echo "cannot post running" >&2; exit 21; }
@MAKE_OUTPUT@
for i in 1 2 3 4 5; do echo "line $i"; done
echo "on stderr" >&2
case "$JOB" in
  *'"prompt":"sleep'*) echo sleeping; sleep 60 ;;
  *'"prompt":"complete:'*)
    SID=$(echo "$JOB" | sed 's/.*"prompt":"complete:\([0-9A-Z]*\)".*/\1/')
    make_output
    curl -sf -X POST -H "$H" -d "{\"status\":\"completed\",\"output_snapshot_id\":\"$SID\"}" \
      "$API_URL/v1/jobs/$JOB_ID/status" >/dev/null || exit 22
    echo "Output snapshot: $SID" ;;
esac
)SH";

int Occurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

class DispatchFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    state_dir_ = dir_ + "/sandboxes";
    script_ = dir_ + "/runner.sh";
    std::ofstream(script_) << WithMakeOutput(kRunnerScriptTemplate);
  }

  void StartServer(const json& faults, std::vector<std::string> extra = {}) {
    json config = {{"schema", 1}, {"state_dir", state_dir_}};
    for (const auto& [k, v] : faults.items()) config[k] = v;
    std::vector<std::string> args = {
        "--backend=" + Runfile("tests/server/libfastest_backend_faulty_process.so"),
        "--backend_config=" + config.dump(),
        "--runner_command=/bin/sh," + script_,
        "--max_instances=1",  // a job that never ended would keep the only slot
    };
    args.insert(args.end(), extra.begin(), extra.end());
    auto s = LaunchServer(dir_ + "/data", args);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    api_ = std::make_unique<Api>(server_.get());
    project_ = api_->Json("POST", "/v1/projects", R"({"name":"p"})")["project"]["id"];
    workspace_ = api_->Json("POST", "/v1/projects/" + project_ + "/workspaces",
                            R"({"name":"w"})")["workspace"]["id"];
    snapshot_ = api_->Json("POST", "/v1/projects/" + project_ + "/snapshots",
                           json{{"manifest_hash", kEmptyManifestHash}}.dump())["snapshot"]["id"];
    ASSERT_EQ(snapshot_.size(), 26u) << server_->Log();
  }

  std::string CreateJob(const std::string& prompt) {
    long st;
    json j = api_->Json("POST", "/v1/jobs",
                        json{{"workspace_id", workspace_}, {"prompt", prompt}}.dump(), &st);
    EXPECT_EQ(st, 201) << j;
    return j["job"]["id"];
  }

  // POST /run-job and wait for the RunResult (the HTTP client gives up after 60 s).
  json RunJob(const std::string& job, long* status) {
    core::HttpResponse r = api_->Call("POST", "/run-job", json{{"job_id", job}}.dump(), nullptr,
                                      std::chrono::seconds(60));
    *status = r.status;
    json j = json::parse(r.body, nullptr, false);
    return j.is_discarded() ? json(r.body) : j;
  }

  json GetJob(const std::string& id) { return api_->Json("GET", "/v1/jobs/" + id)["job"]; }
  std::string JobLog(const std::string& id) {
    return api_->Call("GET", "/v1/jobs/" + id + "/logs").body;
  }

  // GET .../logs?follow=1 on a thread: the dispatcher follows a job's output only while
  // someone reads it. Subscribed before the job starts, so the follow starts with the sandbox.
  std::thread StartFollower(const std::string& job, std::string* body) {
    std::thread t([this, job, body] {
      core::HttpClient http;
      core::HttpRequest req;
      req.url = server_->url(absl::StrCat("/v1/jobs/", job, "/logs?follow=1"));
      req.bearer_token = kTestToken;
      req.timeout = std::chrono::seconds(60);
      req.on_body_chunk = [body](absl::string_view c) {
        body->append(c.data(), c.size());
        return true;
      };
      (void)http.Send(req);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return t;
  }

  // Runs a completing job (followed) and checks it ends promptly with a complete log.
  void ExpectCompletesPromptly(const std::string& what) {
    const std::string job = CreateJob("complete:" + snapshot_);
    std::string followed;
    std::thread follower = StartFollower(job, &followed);
    const auto t0 = Clock::now();
    long st = 0;
    json r = RunJob(job, &st);
    const double took = SecondsSince(t0);
    follower.join();
    ASSERT_EQ(st, 200) << what << ": " << r << "\n" << server_->Log();
    EXPECT_EQ(r["success"], true) << what << ": " << r;
    // 5 s grace for the follow after the exit + 1 s after the removal + the job itself.
    EXPECT_LT(took, 15.0) << what << ": the hung log follow held the job";
    EXPECT_EQ(GetJob(job)["status"], "completed");
    EXPECT_EQ(CountEntries(state_dir_), 0) << "sandbox not removed";
    // Complete (the one-shot read filled in what the follow missed) and nothing twice.
    const std::string log = JobLog(job);
    for (int i = 1; i <= 5; ++i) {
      EXPECT_EQ(Occurrences(log, absl::StrCat("line ", i, "\n")), 1) << what << ":\n" << log;
    }
    EXPECT_EQ(Occurrences(log, "on stderr\n"), 1) << log;
    EXPECT_EQ(Occurrences(log, "Output snapshot: " + snapshot_), 1) << log;
    EXPECT_EQ(followed, log);
  }

  // SIGTERM: the server must stop by itself (the harness SIGKILLs after 10 s).
  void ExpectStopsPromptly() {
    const auto t0 = Clock::now();
    int status = server_->Stop(SIGTERM);
    EXPECT_LT(SecondsSince(t0), 9.0) << "the server did not stop by itself";
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  }

  std::string dir_, state_dir_, script_;
  std::string project_, workspace_, snapshot_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Api> api_;
};

TEST_F(DispatchFaultsTest, FollowThatNeverEndsAfterTheExitDoesNotHoldTheJob) {
  StartServer({{"hang_follow", "after_exit"}});
  ExpectCompletesPromptly("first job");
  // The only slot was freed: the next job runs too.
  ExpectCompletesPromptly("second job");
  EXPECT_TRUE(absl::StrContains(server_->Log(), "log follow did not end with the sandbox"))
      << server_->Log();
  ExpectStopsPromptly();
}

TEST_F(DispatchFaultsTest, FollowThatNeverDeliversFallsBackToAOneShotRead) {
  StartServer({{"hang_follow", "always"}});
  ExpectCompletesPromptly("job");
  ExpectStopsPromptly();
}

TEST_F(DispatchFaultsTest, JobTimeoutIsEnforcedWhileTheFollowHangs) {
  StartServer({{"hang_follow", "always"}}, {"--job_timeout=3s"});
  const std::string job = CreateJob("sleep");
  std::string followed;
  std::thread follower = StartFollower(job, &followed);
  const auto t0 = Clock::now();
  long st = 0;
  json r = RunJob(job, &st);
  const double took = SecondsSince(t0);
  follower.join();
  ASSERT_EQ(st, 200) << r << "\n" << server_->Log();
  EXPECT_EQ(r["success"], false);
  EXPECT_TRUE(absl::StrContains(r.value("error", ""), "timed out after 3s")) << r;
  EXPECT_GE(took, 2.5);
  EXPECT_LT(took, 20.0) << "the timeout was not enforced promptly";
  json j = GetJob(job);
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(CountEntries(state_dir_), 0) << "sandbox not removed";
  EXPECT_EQ(Occurrences(JobLog(job), "sleeping\n"), 1) << JobLog(job);
  ExpectStopsPromptly();
}

TEST_F(DispatchFaultsTest, WaitErrorsFailTheJobWithTheBackendsError) {
  StartServer({{"wait_error", "engine connection lost (test)"}});
  const std::string job = CreateJob("sleep");
  const auto t0 = Clock::now();
  long st = 0;
  json r = RunJob(job, &st);
  ASSERT_EQ(st, 200) << r << "\n" << server_->Log();
  EXPECT_LT(SecondsSince(t0), 20.0);
  EXPECT_EQ(r["success"], false);
  json j = GetJob(job);
  EXPECT_EQ(j["status"], "failed");
  const std::string error = j.value("error", "");
  EXPECT_TRUE(absl::StartsWith(error, "Lost contact with the sandbox: ")) << error;
  EXPECT_TRUE(absl::StrContains(error, "engine connection lost (test)")) << error;
  EXPECT_TRUE(absl::StrContains(error, "sleeping")) << "no log tail: " << error;
  EXPECT_EQ(r.value("error", ""), error);
  EXPECT_EQ(CountEntries(state_dir_), 0) << "sandbox not removed";
  ExpectStopsPromptly();
}

}  // namespace
}  // namespace fastest::testing
