// In-process warm-pool tests: the dispatcher with a pool over the fake backend, whose warm
// sandboxes run a scripted standby runner that polls the dispatcher directly.
#include "server/dispatch/warm_pool.h"

#include <atomic>
#include <future>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/dispatch/dispatch_fakes.h"
#include "server/dispatch/dispatcher.h"

namespace fastest::server {
namespace {

using core::JobStatus;
using namespace ::fastest::server::dispatch_fakes;  // NOLINT: the fakes

// What the scripted runners saw.
struct Observed {
  std::mutex mu;
  std::map<std::string, std::string> job_sandbox;  // job -> sandbox that ran it
  std::set<std::string> retired;                   // sandboxes told to go
  int second_fetch_refused = 0;                    // a spent credential polled again: unknown
  int second_fetch_answered = 0;
};

StandbyAnswer Poll(std::atomic<Dispatcher*>* d, const std::string& credential,
                   absl::Duration wait) {
  auto answer = std::make_shared<std::promise<StandbyAnswer>>();
  std::future<StandbyAnswer> got = answer->get_future();
  (*d).load()->AwaitStandbyAssignment(credential, wait,
                                      [answer](StandbyAnswer a) { answer->set_value(a); });
  return got.get();
}

// A runner: cold (JOB_ID) like CompletingRunner; warm (FASTEST_STANDBY) polls until it gets a
// job, runs it, then tries its spent credential once more. `boot` delays its first poll.
SandboxScript Runner(std::atomic<Dispatcher*>* d, FakeJobSource* source, Observed* seen,
                     absl::Duration boot = absl::ZeroDuration(),
                     absl::Duration work = absl::Milliseconds(20)) {
  return [=](SandboxControl& ctl) -> int {
    std::string job = ctl.job_id();
    if (job.empty()) {
      if (ctl.env().count("FASTEST_STANDBY") == 0) return 2;
      const std::string credential = ctl.env().at("API_TOKEN");
      if (!ctl.Sleep(boot)) return 137;
      while (job.empty()) {
        StandbyAnswer a = Poll(d, credential, absl::Milliseconds(100));
        if (a.kind == StandbyAnswer::Kind::kRetired) {
          std::lock_guard<std::mutex> lock(seen->mu);
          seen->retired.insert(ctl.id());
          return 0;
        }
        if (a.kind == StandbyAnswer::Kind::kUnknown) return 3;
        if (a.kind == StandbyAnswer::Kind::kAssigned) {
          EXPECT_EQ(a.api_token, absl::StrCat("tok-", a.job_id, "-secretvalue"));
          job = a.job_id;
        }
        if (!ctl.Sleep(absl::Milliseconds(1))) return 137;
      }
      StandbyAnswer again = Poll(d, credential, absl::Milliseconds(10));
      std::lock_guard<std::mutex> lock(seen->mu);
      if (again.kind == StandbyAnswer::Kind::kUnknown) {
        ++seen->second_fetch_refused;
      } else {
        ++seen->second_fetch_answered;
      }
    }
    {
      std::lock_guard<std::mutex> lock(seen->mu);
      seen->job_sandbox[job] = ctl.id();
    }
    source->SetStatus(job, JobStatus::kRunning);
    ctl.Print(1, ctl.job_id().empty() ? "warm runner\n" : "cold runner\n");
    if (!ctl.Sleep(work)) return 137;
    source->SetStatus(job, JobStatus::kCompleted, "snap-" + job);
    return 0;
  };
}

DispatcherOptions PoolOptions(int pool, int max_instances) {
  DispatcherOptions o = Options();
  o.max_instances = max_instances;
  o.warm_pool = pool;
  WarmPoolOptions timing;
  timing.tick = absl::Milliseconds(20);
  timing.create_backoff = absl::Milliseconds(100);
  o.warm_pool_options = timing;
  return o;
}

bool WaitFor(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + limit;
  while (!done()) {
    if (absl::Now() > end) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

std::string MetricsText(const Metrics& m) { return m.Render({}); }

TEST(WarmPoolTest, AJobTakesAReadySandboxOnceAndThePoolRefills) {
  FakeJobSource source;
  source.AddJob("j1");
  source.AddJob("j2");
  Observed seen;
  std::atomic<Dispatcher*> dp{nullptr};
  FakeBackend backend(Runner(&dp, &source, &seen));
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, PoolOptions(1, 2));
  dp = &d;
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return d.warm_ready() == 1; }));
  // The warm sandbox is a standby runner: no job, no job label, a standby credential.
  core::SandboxSpec warm = backend.spec_of("sb-1");
  EXPECT_EQ(warm.env.count("JOB_ID"), 0u);
  EXPECT_EQ(warm.env.at("FASTEST_STANDBY"), "1");
  EXPECT_EQ(warm.labels.count("fastest.job_id"), 0u);
  EXPECT_EQ(warm.labels.at("fastest.server_id"), "server-1");
  EXPECT_TRUE(absl::StartsWith(warm.labels.at(kWarmLabel), "fastest-warm-"));
  EXPECT_TRUE(absl::StartsWith(warm.env.at("API_TOKEN"), "fst_standby_"));
  EXPECT_EQ(warm.env.at("API_TOKEN").size(), std::string("fst_standby_").size() + 48);

  Results results;
  ASSERT_TRUE(d.RunJob("j1", results.Callback()).ok());
  auto r1 = results.Wait("j1");
  ASSERT_TRUE(r1.has_value());
  EXPECT_TRUE(r1->success) << r1->error.value_or("");
  EXPECT_EQ(r1->output_snapshot_id.value_or(""), "snap-j1");
  EXPECT_NE(r1->stdout_text.find("warm runner"), std::string::npos) << r1->stdout_text;
  EXPECT_EQ(seen.job_sandbox["j1"], "sb-1");
  // Refilled with a new sandbox; the one that served j1 is gone and never polls again.
  ASSERT_TRUE(WaitFor([&] { return d.warm_ready() == 1 && backend.created() == 2; }));
  EXPECT_EQ(backend.live(), 1);

  ASSERT_TRUE(d.RunJob("j2", results.Callback()).ok());
  auto r2 = results.Wait("j2");
  ASSERT_TRUE(r2.has_value());
  EXPECT_TRUE(r2->success) << r2->error.value_or("");
  EXPECT_EQ(seen.job_sandbox["j2"], "sb-2");  // each sandbox served exactly one job
  {
    std::lock_guard<std::mutex> lock(seen.mu);
    EXPECT_EQ(seen.second_fetch_refused, 2);
    EXPECT_EQ(seen.second_fetch_answered, 0);
  }
  ASSERT_TRUE(WaitFor([&] { return d.warm_ready() == 1 && backend.created() == 3; }));
  const std::string text = MetricsText(metrics);
  EXPECT_NE(text.find("fastest_warm_pool_takes_total 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fastest_warm_pool_misses_total 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fastest_warm_pool_boot_seconds_count 3\n"), std::string::npos) << text;
  d.Stop();
  ASSERT_TRUE(WaitFor([&] { return backend.running() == 0; }));
  EXPECT_EQ(backend.live(), 0) << "drain left a sandbox";
  EXPECT_EQ(backend.created(), 3);
}

TEST(WarmPoolTest, TheReplacementStartsRefillDelayAfterATake) {
  FakeJobSource source;
  source.AddJob("j1");
  Observed seen;
  std::atomic<Dispatcher*> dp{nullptr};
  FakeBackend backend(Runner(&dp, &source, &seen, absl::ZeroDuration(), absl::Seconds(2)));
  Metrics metrics;
  DispatcherOptions o = PoolOptions(1, 2);
  o.warm_pool_refill_delay = absl::Milliseconds(600);
  Dispatcher d(&source, "server-1", &backend, &metrics, o);
  dp = &d;
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return d.warm_ready() == 1; }));
  Results results;
  const absl::Time taken = absl::Now();
  ASSERT_TRUE(d.RunJob("j1", results.Callback()).ok());
  // The job runs for 2 s; its replacement waits for the delay, not for the job.
  ASSERT_TRUE(WaitFor([&] { return backend.created() == 2; }));
  const absl::Duration waited = absl::Now() - taken;
  EXPECT_GE(waited, absl::Milliseconds(600));
  EXPECT_LT(waited, absl::Milliseconds(1900));
  auto r1 = results.Wait("j1");
  ASSERT_TRUE(r1.has_value());
  EXPECT_TRUE(r1->success) << r1->error.value_or("");
  EXPECT_EQ(seen.job_sandbox["j1"], "sb-1");
  d.Stop();
  ASSERT_TRUE(WaitFor([&] { return backend.running() == 0; }));
  EXPECT_EQ(backend.live(), 0);
}

TEST(WarmPoolTest, AJobBeforeTheSandboxIsReadyGoesColdAndEvictsForRoom) {
  FakeJobSource source;
  source.AddJob("j1");
  Observed seen;
  std::atomic<Dispatcher*> dp{nullptr};
  // Warm runners take 2 s to stand by: the job must not wait for one.
  FakeBackend backend(Runner(&dp, &source, &seen, absl::Seconds(2)));
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, PoolOptions(1, 1));
  dp = &d;
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return backend.created() == 1; }));
  Results results;
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(d.RunJob("j1", results.Callback()).ok());
  auto r = results.Wait("j1");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->success) << r->error.value_or("");
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1.5));
  EXPECT_NE(r->stdout_text.find("cold runner"), std::string::npos);
  // max_instances 1: the booting warm sandbox was removed before the cold one started.
  EXPECT_EQ(backend.max_live(), 1);
  const std::string text = MetricsText(metrics);
  EXPECT_NE(text.find("fastest_warm_pool_misses_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fastest_warm_pool_retired_total{reason=\"evicted\"} 1\n"),
            std::string::npos)
      << text;
  d.Stop();
  ASSERT_TRUE(WaitFor([&] { return backend.running() == 0; }));
  EXPECT_EQ(backend.live(), 0);
}

// The sandbox stood by, then died before its hand-over reached it (the pool still counts it
// ready: it was silent for less than poll_grace). The job is not failed: it runs cold.
TEST(WarmPoolTest, AJobWhoseWarmSandboxDiedBeforeStartingItRunsCold) {
  FakeJobSource source;
  source.AddJob("j1");
  Observed seen;
  std::atomic<Dispatcher*> dp{nullptr};
  SandboxScript runner = Runner(&dp, &source, &seen);
  FakeBackend backend([&](SandboxControl& ctl) -> int {
    if (ctl.id() != "sb-1") return runner(ctl);
    Poll(&dp, ctl.env().at("API_TOKEN"), absl::Milliseconds(10));  // stands by once
    ctl.Print(1, "standing by, then gone\n");
    return 1;
  });
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, PoolOptions(1, 2));
  dp = &d;
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return d.warm_ready() == 1 && backend.running() == 0; }));
  Results results;
  ASSERT_TRUE(d.RunJob("j1", results.Callback()).ok());
  auto r = results.Wait("j1");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->success) << r->error.value_or("");
  EXPECT_EQ(source.Status("j1"), JobStatus::kCompleted);
  EXPECT_NE(r->stdout_text.find("cold runner"), std::string::npos) << r->stdout_text;
  {
    std::lock_guard<std::mutex> lock(seen.mu);
    EXPECT_NE(seen.job_sandbox["j1"], "sb-1");
    EXPECT_FALSE(seen.job_sandbox["j1"].empty());
  }
  const std::string text = MetricsText(metrics);
  EXPECT_NE(text.find("fastest_warm_pool_takes_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fastest_warm_pool_retired_total{reason=\"lost\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("fastest_jobs_dispatched_total 1\n"), std::string::npos)
      << "one job, counted once:\n" << text;
  EXPECT_LE(backend.max_live(), 2);
  d.Stop();
  ASSERT_TRUE(WaitFor([&] { return backend.running() == 0; }));
  EXPECT_EQ(backend.live(), 0);
}

TEST(WarmPoolTest, NeverMoreSandboxesThanMaxInstancesAndJobsComeFirst) {
  FakeJobSource source;
  for (int i = 0; i < 12; ++i) source.AddJob(absl::StrCat("j", i));
  Observed seen;
  std::atomic<Dispatcher*> dp{nullptr};
  FakeBackend backend(Runner(&dp, &source, &seen, absl::Milliseconds(30),
                             absl::Milliseconds(50)));
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, PoolOptions(3, 3));
  dp = &d;
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return d.warm_ready() == 3; }));
  Results results;
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(d.RunJob(absl::StrCat("j", i), results.Callback()).ok());
    if (i % 4 == 3) absl::SleepFor(absl::Milliseconds(40));
  }
  for (int i = 0; i < 12; ++i) {
    auto r = results.Wait(absl::StrCat("j", i));
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->success) << r->error.value_or("");
  }
  EXPECT_LE(backend.max_live(), 3);
  // Every job had its own sandbox.
  std::set<std::string> sandboxes;
  for (auto& [job, sb] : seen.job_sandbox) sandboxes.insert(sb);
  EXPECT_EQ(sandboxes.size(), 12u);
  ASSERT_TRUE(WaitFor([&] { return d.warm_ready() == 3; }));
  d.Stop();
  ASSERT_TRUE(WaitFor([&] { return backend.running() == 0; }));
  EXPECT_EQ(backend.live(), 0);
  EXPECT_LE(backend.max_live(), 3);
}

TEST(WarmPoolTest, IdleSandboxesAreRecycledAfterTheTtlAndDrainedAtStop) {
  FakeJobSource source;
  Observed seen;
  std::atomic<Dispatcher*> dp{nullptr};
  FakeBackend backend(Runner(&dp, &source, &seen));
  Metrics metrics;
  DispatcherOptions o = PoolOptions(2, 4);
  o.warm_pool_ttl = absl::Milliseconds(300);
  Dispatcher d(&source, "server-1", &backend, &metrics, o);
  dp = &d;
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return backend.created() >= 6; }));
  EXPECT_LE(backend.max_live(), 2);
  d.Stop();
  ASSERT_TRUE(WaitFor([&] { return backend.running() == 0; }));
  EXPECT_EQ(backend.live(), 0);
  const std::string text = MetricsText(metrics);
  EXPECT_EQ(text.find("fastest_warm_pool_retired_total{reason=\"ttl\"} 0\n"), std::string::npos)
      << text;
  // Retired runners were told to go (410), not left polling.
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(seen.mu);
    return static_cast<int>(seen.retired.size()) >= backend.created() - 1;
  }));
}

TEST(WarmPoolTest, UnknownCredentialAndNoPool) {
  FakeJobSource source;
  FakeBackend backend([](SandboxControl&) { return 0; });
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, Options());
  ASSERT_TRUE(d.Start().ok());
  std::atomic<Dispatcher*> dp{&d};
  EXPECT_EQ(Poll(&dp, "fst_standby_nope", absl::Milliseconds(10)).kind,
            StandbyAnswer::Kind::kUnknown);
  EXPECT_EQ(backend.created(), 0);  // pool 0: nothing made ahead of jobs
  EXPECT_EQ(MetricsText(metrics).find("fastest_warm_pool"), std::string::npos);
}

TEST(WarmPoolTest, ABackendWithItsOwnPoolGetsNone) {
  FakeJobSource source;
  FakeBackend backend([](SandboxControl&) { return 0; });
  backend.describe["warm_pool"] = true;
  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, PoolOptions(2, 4));
  ASSERT_TRUE(d.Start().ok());
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(backend.created(), 0);
}

// A server that died left an idle warm sandbox and one it had given j1: the idle one is removed,
// the other re-adopted through j1's recorded sandbox id and supervised to the end.
TEST(WarmPoolTest, RecoverRemovesIdleWarmSandboxesAndReadoptsAnAssignedOne) {
  FakeJobSource source;
  source.AddJob("j1", JobStatus::kRunning);
  source.SetStartedAt("j1", absl::Now());
  absl::Notification adopted;
  FakeBackend backend([&](SandboxControl& ctl) {
    if (ctl.env().count("ASSIGNED") == 0) return ctl.Sleep(absl::Seconds(30)) ? 0 : 137;
    if (!adopted.WaitForNotificationWithTimeout(absl::Seconds(5))) return 9;
    source.SetStatus("j1", JobStatus::kCompleted, "snap-j1");
    return 0;
  });
  core::SandboxSpec idle;
  idle.name = "fastest-warm-idle";
  idle.env = {{"FASTEST_STANDBY", "1"}};
  idle.labels = {{"fastest.server_id", "server-1"}, {kWarmLabel, idle.name}};
  ASSERT_TRUE(backend.CreateSandbox(idle).ok());
  core::SandboxSpec busy = idle;
  busy.name = "fastest-warm-busy";
  busy.env["ASSIGNED"] = "1";
  busy.labels[kWarmLabel] = busy.name;
  auto busy_info = backend.CreateSandbox(busy);
  ASSERT_TRUE(busy_info.ok());
  source.SetClaim("j1", busy_info->id);

  Metrics metrics;
  Dispatcher d(&source, "server-1", &backend, &metrics, Options());
  ASSERT_TRUE(d.Recover().ok());
  EXPECT_EQ(d.running(), 1);
  EXPECT_EQ(backend.live(), 1) << "the idle warm sandbox was not removed";
  ASSERT_TRUE(d.Start().ok());
  adopted.Notify();
  ASSERT_TRUE(WaitFor([&] { return source.Status("j1") == JobStatus::kCompleted; }));
  ASSERT_TRUE(WaitFor([&] { return d.running() == 0; }));
  EXPECT_EQ(backend.live(), 0);
  EXPECT_EQ(backend.created(), 2);
}

// The server died after handing j1 to a warm sandbox whose runner had not started it yet: the
// restarted server cannot answer that runner (the standby credential lived in memory), so the
// sandbox is removed and j1 queued again; a cold sandbox then runs it.
TEST(WarmPoolTest, RecoverRequeuesAJobItsWarmSandboxNeverStarted) {
  FakeJobSource source;
  source.AddJob("j1");  // pending
  FakeBackend backend([&](SandboxControl& ctl) -> int {
    if (ctl.env().count("FASTEST_STANDBY")) return ctl.Sleep(absl::Seconds(30)) ? 0 : 137;
    return CompletingRunner(&source, ctl);
  });
  core::SandboxSpec warm;
  warm.name = "fastest-warm-handed";
  warm.env = {{"FASTEST_STANDBY", "1"}};
  warm.labels = {{"fastest.server_id", "server-1"}, {kWarmLabel, warm.name}};
  auto info = backend.CreateSandbox(warm);
  ASSERT_TRUE(info.ok());
  source.SetClaim("j1", info->id);

  Metrics metrics;
  DispatcherOptions o = Options();
  o.auto_dispatch = true;
  Dispatcher d(&source, "server-1", &backend, &metrics, o);
  ASSERT_TRUE(d.Recover().ok());
  EXPECT_EQ(d.running(), 0) << "the warm sandbox was adopted";
  EXPECT_EQ(backend.live(), 0) << "the warm sandbox was not removed";
  EXPECT_FALSE(source.Claimed("j1"));
  EXPECT_EQ(source.Status("j1"), JobStatus::kPending);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return source.Status("j1") == JobStatus::kCompleted; }));
  EXPECT_EQ(backend.created(), 2);  // the warm one, then the cold one that ran j1
  d.Stop();
}

}  // namespace
}  // namespace fastest::server
