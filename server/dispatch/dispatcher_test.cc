// In-process dispatcher tests: a fake backend (sandboxes are scripted threads) and a fake job
// source (jobs in memory), so every outcome path runs without an engine or a server binary.
#include "server/dispatch/dispatcher.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/dispatch/job_log_hub.h"
#include "server/dispatch/job_source.h"
#include "server/dispatch/dispatch_fakes.h"

namespace fastest::server {
namespace {

using core::JobStatus;
using namespace ::fastest::server::dispatch_fakes;  // NOLINT: the fakes

// ---------------------------------------------------------------- tests

TEST(DispatcherTest, ClaimsRunsAndCompletes) {
  FakeJobSource source;
  source.AddJob("j1");
  FakeBackend backend([&](SandboxControl& ctl) { return CompletingRunner(&source, ctl); });
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, Options());
  ASSERT_TRUE(d.Start().ok());
  Results results;
  auto claimed = d.RunNext(std::nullopt, results.Callback());
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->value_or(""), "j1");
  auto r = results.Wait("j1");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->success) << r->error.value_or("");
  EXPECT_EQ(r->status, "completed");
  EXPECT_EQ(r->output_snapshot_id.value_or(""), "snap-j1");
  EXPECT_EQ(r->exit_code.value_or(-1), 0);
  EXPECT_NE(r->stdout_text.find("restoring workspace"), std::string::npos);
  EXPECT_NE(r->stderr_text.find("agent: thinking"), std::string::npos);
  EXPECT_EQ(backend.removed(), 1);
  EXPECT_EQ(source.ended(), 1);
  // The sandbox got the job's own token and labels, never anything else.
  core::SandboxSpec spec = backend.spec_of("sb-1");
  EXPECT_EQ(spec.env.at("API_TOKEN"), "tok-j1-secretvalue");
  EXPECT_EQ(spec.env.at("JOB_ID"), "j1");
  EXPECT_EQ(spec.labels.at("fastest.job_id"), "j1");
  EXPECT_EQ(spec.labels.at("fastest.server_id"), "server-1");

  // Nothing left to claim; a claimed job cannot be claimed again.
  auto none = d.RunNext(std::nullopt, results.Callback());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_TRUE(absl::IsFailedPrecondition(d.RunJob("j1", results.Callback())));
  EXPECT_TRUE(absl::IsNotFound(d.RunJob("nope", results.Callback())));
}

TEST(DispatcherTest, TimeoutKillsTheSandboxAndFailsTheJob) {
  FakeJobSource source;
  source.AddJob("j1");
  FakeBackend backend(RunsUntilKilled(&source));
  Metrics metrics;
  DispatcherOptions o = Options();
  o.job_timeout = absl::Milliseconds(300);
  Dispatcher d(&source, "server-1", &backend, &metrics, o);
  ASSERT_TRUE(d.Start().ok());
  Results results;
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(d.RunJob("j1", results.Callback()).ok());
  auto r = results.Wait("j1");
  ASSERT_TRUE(r.has_value());
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  EXPECT_FALSE(r->success);
  EXPECT_EQ(r->status, "failed");
  EXPECT_EQ(r->error.value_or(""), "Job timed out after 300ms");
  EXPECT_EQ(source.Error("j1").value_or(""), "Job timed out after 300ms");
  EXPECT_EQ(r->exit_code.value_or(-1), 137);
  EXPECT_EQ(backend.removed(), 1);
}

TEST(DispatcherTest, CancelKillsTheSandboxAndTheJobStaysCancelled) {
  FakeJobSource source;
  source.AddJob("j1");
  absl::Notification started;
  FakeBackend backend(RunsUntilKilled(&source, &started));
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, Options());
  ASSERT_TRUE(d.Start().ok());
  Results results;
  ASSERT_TRUE(d.RunJob("j1", results.Callback()).ok());
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(5)));
  source.SetStatus("j1", JobStatus::kCancelled);  // what the API does first
  d.NotifyJobCancelled("j1");
  auto r = results.Wait("j1");
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->success);
  EXPECT_EQ(r->status, "cancelled");
  EXPECT_EQ(r->error.value_or(""), "Job cancelled");
  EXPECT_EQ(backend.removed(), 1);
}

TEST(DispatcherTest, SandboxExitWithoutStatusFailsWithTheLastLines) {
  FakeJobSource source;
  source.AddJob("j1");
  FakeBackend backend([&](SandboxControl& ctl) {
    source.SetStatus(ctl.job_id(), JobStatus::kRunning);
    ctl.Print(1, "step one\n");
    ctl.Print(2, "fatal: tok-j1-secretvalue rejected\n");
    return 3;
  });
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, Options());
  ASSERT_TRUE(d.Start().ok());
  std::optional<RunResult> r = RunAndWait(d, "j1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, "failed");
  const std::string error = source.Error("j1").value_or("");
  EXPECT_EQ(error.rfind("Sandbox exited with code 3: step one\nfatal: ", 0), 0u) << error;
  // The job's token never reaches the stored error.
  EXPECT_EQ(error.find("tok-j1-secretvalue"), std::string::npos) << error;
  EXPECT_EQ(r->exit_code.value_or(-1), 3);
}

// No per-job token, no sandbox: the sandbox never gets the server's own token instead.
TEST(DispatcherTest, AJobWhoseTokenCannotBeMintedFailsWithoutASandbox) {
  FakeJobSource source;
  source.AddJob("j1");
  source.mint_error = absl::UnavailableError("database is locked");
  FakeBackend backend([&](SandboxControl& ctl) { return CompletingRunner(&source, ctl); });
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, Options());
  ASSERT_TRUE(d.Start().ok());
  std::optional<RunResult> r = RunAndWait(d, "j1");
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->success);
  EXPECT_EQ(source.Status("j1"), JobStatus::kFailed);
  EXPECT_EQ(source.Error("j1").value_or(""),
            "Cannot mint a per-job API token: database is locked");
  EXPECT_EQ(backend.created(), 0);
}

TEST(DispatcherTest, BackendWaitFailingFailsTheJob) {
  FakeJobSource source;
  source.AddJob("j1");
  FakeBackend backend([&](SandboxControl& ctl) {
    ctl.Sleep(absl::Seconds(30));
    return 0;
  });
  backend.wait_fails = true;
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, Options());
  ASSERT_TRUE(d.Start().ok());
  std::optional<RunResult> r = RunAndWait(d, "j1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, "failed");
  EXPECT_EQ(source.Error("j1").value_or("").rfind(
                "Lost contact with the sandbox: engine unreachable", 0),
            0u)
      << source.Error("j1").value_or("");
  EXPECT_EQ(backend.removed(), 1);
}

// Runs `jobs` jobs whose sandboxes each take a while; returns the most that ran at once.
int MaxConcurrent(int max_instances, nlohmann::json describe, int jobs) {
  FakeJobSource source;
  for (int i = 0; i < jobs; ++i) source.AddJob(absl::StrCat("j", i));
  FakeBackend backend([&](SandboxControl& ctl) {
    source.SetStatus(ctl.job_id(), JobStatus::kRunning);
    ctl.Sleep(absl::Milliseconds(150));
    source.SetStatus(ctl.job_id(), JobStatus::kCompleted);
    return 0;
  });
  backend.describe = std::move(describe);
  Metrics metrics;
  DispatcherOptions o = Options();
  o.max_instances = max_instances;
  Dispatcher d(&source, "server-1", &backend, &metrics, o);
  EXPECT_TRUE(d.Start().ok());
  Results results;
  for (int i = 0; i < jobs; ++i) {
    EXPECT_TRUE(d.RunJob(absl::StrCat("j", i), results.Callback()).ok());
  }
  for (int i = 0; i < jobs; ++i) {
    auto r = results.Wait(absl::StrCat("j", i));
    EXPECT_TRUE(r.has_value() && r->success) << i;
  }
  return backend.max_running();
}

TEST(DispatcherTest, MaxInstancesBoundsConcurrentSandboxes) {
  EXPECT_EQ(MaxConcurrent(2, {{"name", "fake"}, {"log_streaming", true}}, 5), 2);
}

TEST(DispatcherTest, BackendMaxParallelSandboxesLowersTheBound) {
  EXPECT_EQ(MaxConcurrent(3,
                          {{"name", "fake"},
                           {"log_streaming", true},
                           {"max_parallel_sandboxes", 1}},
                          3),
            1);
  // A backend cap above --max_instances changes nothing.
  EXPECT_EQ(MaxConcurrent(2,
                          {{"name", "fake"},
                           {"log_streaming", true},
                           {"max_parallel_sandboxes", 8}},
                          4),
            2);
}

TEST(DispatcherTest, StopFailsRunningJobsAndReleasesQueuedOnes) {
  FakeJobSource source;
  source.AddJob("j1");
  source.AddJob("j2");
  absl::Notification started;
  FakeBackend backend(RunsUntilKilled(&source, &started));
  Metrics metrics;
  DispatcherOptions o = Options();
  o.max_instances = 1;
  Dispatcher d(&source, "server-1", &backend, &metrics, o);
  ASSERT_TRUE(d.Start().ok());
  Results results;
  ASSERT_TRUE(d.RunJob("j1", results.Callback()).ok());
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(5)));
  ASSERT_TRUE(d.RunJob("j2", results.Callback()).ok());
  d.Stop();
  EXPECT_EQ(source.Status("j1"), JobStatus::kFailed);
  EXPECT_EQ(source.Error("j1").value_or(""), "server stopped while the job was running");
  EXPECT_EQ(source.Status("j2"), JobStatus::kPending);
  EXPECT_FALSE(source.Claimed("j2"));
  EXPECT_EQ(results.Wait("j2")->status, "pending");
}

// ---------------------------------------------------------------- re-adoption after a restart

// A sandbox the previous server run started for `job_id`.
std::string LeftRunning(FakeBackend* backend, const std::string& job_id) {
  core::SandboxSpec spec;
  spec.name = "fastest-job-" + job_id;
  spec.env = {{"JOB_ID", job_id}};
  spec.labels = {{"fastest.server_id", "server-1"}, {"fastest.job_id", job_id}};
  return backend->CreateSandbox(spec)->id;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::trunc);
  out << data;
}

TEST(DispatcherRecoverTest, ReadoptsLiveSandboxesAndResumesTheirLogs) {
  const std::string log_dir = std::string(getenv("TEST_TMPDIR")) + "/readopt-logs";
  JobLogHub hub(log_dir);
  ASSERT_TRUE(hub.Init().ok());
  FakeJobSource source;
  source.AddJob("j1", JobStatus::kRunning);
  source.SetClaim("j1", "sb-1");
  source.SetStartedAt("j1", absl::Now());
  absl::Notification adopted;
  FakeBackend backend([&](SandboxControl& ctl) {
    ctl.Print(1, "before restart\n");
    ctl.Print(2, "warn: fst_0123456789abcdef0123456789abcdef0123456789abcdef\n");
    if (!adopted.WaitForNotificationWithTimeout(absl::Seconds(5))) return 9;
    ctl.Sleep(absl::Milliseconds(200));
    ctl.Print(1, "after restart\n");
    source.SetStatus(ctl.job_id(), JobStatus::kCompleted, "snap-9");
    return 0;
  });
  LeftRunning(&backend, "j1");
  // What the previous run captured before it died: the first stdout line.
  absl::SleepFor(absl::Milliseconds(50));
  WriteFile(log_dir + "/j1.log", "before restart\n");
  WriteFile(log_dir + "/j1.log.pos", "15 0\n");

  Metrics metrics;
  DispatcherOptions o = Options();
  o.log_hub = &hub;
  Dispatcher d(&source, "server-1", &backend, &metrics, o);
  ASSERT_TRUE(d.Recover().ok());
  EXPECT_EQ(d.running(), 1);  // the adopted sandbox holds a slot
  ASSERT_TRUE(d.Start().ok());
  adopted.Notify();
  for (int i = 0; i < 100 && source.Status("j1") != JobStatus::kCompleted; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  for (int i = 0; i < 100 && (d.running() != 0 || hub.IsWriting("j1")); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(source.Status("j1"), JobStatus::kCompleted);
  EXPECT_EQ(backend.created(), 1);  // no second sandbox
  EXPECT_EQ(backend.removed(), 1);
  EXPECT_EQ(source.ended(), 1);
  // Each line once; the token-shaped string the runner printed is redacted.
  EXPECT_EQ(ReadFile(log_dir + "/j1.log"),
            "before restart\nwarn: [redacted]\nafter restart\n");
}

TEST(DispatcherRecoverTest, DeadGoneUnknownAndNeverStarted) {
  FakeJobSource source;
  // j1: running, its sandbox died during the outage (exit 137) -> failed with that reason.
  source.AddJob("j1", JobStatus::kRunning);
  source.SetClaim("j1", "sb-1");
  // j2: running, its sandbox is gone -> failed.
  source.AddJob("j2", JobStatus::kRunning);
  source.SetClaim("j2", "sb-gone");
  // j3: claimed, never started a sandbox -> back in the queue.
  source.AddJob("j3", JobStatus::kPending);
  source.SetClaim("j3", std::nullopt);
  // j4: already completed; its sandbox is left over -> removed.
  source.AddJob("j4", JobStatus::kCompleted);
  FakeBackend backend([&](SandboxControl& ctl) {
    ctl.Print(2, "killed by the engine\n");
    return ctl.job_id() == "j1" ? 137 : 0;
  });
  LeftRunning(&backend, "j1");
  LeftRunning(&backend, "j4");
  absl::SleepFor(absl::Milliseconds(100));  // both exited

  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, Options());
  ASSERT_TRUE(d.Start().ok());
  for (int i = 0; i < 100 && (d.running() != 0 || source.Status("j1") == JobStatus::kRunning);
       ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(source.Status("j1"), JobStatus::kFailed);
  EXPECT_EQ(source.Error("j1").value_or(""),
            "Sandbox exited with code 137: killed by the engine");
  EXPECT_EQ(source.Status("j2"), JobStatus::kFailed);
  EXPECT_NE(source.Error("j2").value_or("").find("sandbox was gone"), std::string::npos);
  EXPECT_EQ(source.Status("j3"), JobStatus::kPending);
  EXPECT_FALSE(source.Claimed("j3"));
  EXPECT_EQ(source.Status("j4"), JobStatus::kCompleted);
  EXPECT_EQ(backend.removed(), 2);
  auto left = backend.List({});
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

TEST(DispatcherRecoverTest, DeadlineCountsFromTheJobsRealStart) {
  FakeJobSource source;
  source.AddJob("j1", JobStatus::kRunning);
  source.SetClaim("j1", "sb-1");
  source.SetStartedAt("j1", absl::Now() - absl::Milliseconds(9700));
  FakeBackend backend([&](SandboxControl& ctl) {
    ctl.Sleep(absl::Seconds(30));
    return 0;
  });
  LeftRunning(&backend, "j1");
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, Options());  // 10 s timeout
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(d.Start().ok());
  for (int i = 0; i < 100 && source.Status("j1") == JobStatus::kRunning; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_LT(absl::Now() - t0, absl::Seconds(3));
  EXPECT_EQ(source.Error("j1").value_or(""), "Job timed out after 10s");
}

TEST(DispatcherRecoverTest, CancelReachesAnAdoptedSandbox) {
  FakeJobSource source;
  source.AddJob("j1", JobStatus::kRunning);
  source.SetClaim("j1", "sb-1");
  FakeBackend backend([&](SandboxControl& ctl) {
    ctl.Sleep(absl::Seconds(30));
    return 0;
  });
  LeftRunning(&backend, "j1");
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, Options());
  ASSERT_TRUE(d.Recover().ok());
  // Cancelled between recovery and start (HTTP already serves): still honoured.
  source.SetStatus("j1", JobStatus::kCancelled);
  d.NotifyJobCancelled("j1");
  ASSERT_TRUE(d.Start().ok());
  for (int i = 0; i < 100 && d.running() != 0; ++i) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(d.running(), 0);
  EXPECT_EQ(source.Status("j1"), JobStatus::kCancelled);
  EXPECT_EQ(backend.removed(), 1);
}

}  // namespace
}  // namespace fastest::server
