#include "backends/engine_api/engine_backend_suite.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fastest::backends::engine_api {
namespace {

using core::LogOptions;
using core::SandboxInfo;
using core::SandboxSpec;
using core::WaitResult;

constexpr char kRunLabel[] = "fastest.test_run";

struct Logs {
  std::string out, err;
};

Logs ReadAll(core::SandboxBackend& backend, const std::string& id, LogOptions options = {}) {
  Logs logs;
  absl::Status status =
      backend.ReadLogs(id, options, [&](int stream, absl::string_view data) {
        (stream == core::kStderrStream ? logs.err : logs.out).append(data.data(), data.size());
        return true;
      });
  EXPECT_TRUE(status.ok()) << status;
  return logs;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

void PrintTo(const EngineSuiteParam& param, std::ostream* os) { *os << param.name; }

std::string EngineSuiteParamName(const testing::TestParamInfo<EngineSuiteParam>& info) {
  return info.param.name;
}

void EngineBackendSuite::SetUp() {
  const EngineSuiteParam& param = GetParam();
  // One backend per parameter for the whole binary, like the server holds one: the first
  // Describe pays for /version (~400 ms on Podman) once.
  static auto* backends = new std::map<std::string, std::shared_ptr<core::SandboxBackend>>();
  std::shared_ptr<core::SandboxBackend>& shared = (*backends)[param.name];
  if (shared == nullptr) {
    absl::StatusOr<std::unique_ptr<core::SandboxBackend>> made = param.make();
    ASSERT_TRUE(made.ok()) << made.status();
    shared = std::move(made).value();
  }
  backend_ = shared;
  absl::StatusOr<nlohmann::json> described = backend_->Describe();
  ASSERT_TRUE(described.ok()) << described.status();
  ASSERT_EQ((*described)["health"], "ok")
      << "the engine does not answer (" << (*described)["health"].dump()
      << "): run " << param.start_script << " first";
  run_label_ = absl::StrCat(
      getpid(), "-", absl::ToUnixMicros(absl::Now()), "-",
      testing::UnitTest::GetInstance()->current_test_info()->name());
  std::replace(run_label_.begin(), run_label_.end(), '/', '_');
}

void EngineBackendSuite::TearDown() {
  if (backend_ == nullptr) return;
  auto left = backend_->List({{kRunLabel, run_label_}});
  ASSERT_TRUE(left.ok()) << left.status();
  for (const SandboxInfo& info : *left) (void)backend_->Remove(info.id);
  left = backend_->List({{kRunLabel, run_label_}});
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_TRUE(left->empty()) << left->size() << " containers left behind";
}

SandboxSpec EngineBackendSuite::Spec(const std::string& script) const {
  SandboxSpec spec;
  spec.image = kTestImage;
  spec.command = {"sh", "-c", script};
  spec.labels = {{kRunLabel, run_label_}, {"fastest.job_id", "job-test"}};
  spec.working_dir = "/workspace";
  spec.pids_limit = 256;
  spec.memory_bytes = 256 << 20;
  spec.nano_cpus = 1000000000;
  return spec;
}

#define ASSERT_CREATED(var, spec_expr)                                                         \
  absl::StatusOr<SandboxInfo> var##_or = backend_->CreateSandbox(spec_expr);                   \
  ASSERT_TRUE(var##_or.ok()) << var##_or.status() << "\n(test image missing? run "             \
                             << "tools/build_sandbox_image.sh --tag " << kTestImage            \
                             << " --no-runner --no-opencode " << GetParam().import_flag << ")"; \
  const SandboxInfo& var = *var##_or

TEST_P(EngineBackendSuite, RunsWithEnvLabelsAndReportsExitCodeAndLogs) {
  SandboxSpec spec = Spec("echo out-$GREETING; echo err-line >&2; sleep 0.2; pwd; exit 3");
  spec.env = {{"GREETING", "hello"}};
  ASSERT_CREATED(box, spec);
  EXPECT_FALSE(box.id.empty());
  EXPECT_EQ(box.state, "running");

  absl::StatusOr<WaitResult> done = backend_->Wait(box.id, absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->exited);
  EXPECT_EQ(done->exit_code, 3);

  Logs logs = ReadAll(*backend_, box.id);
  EXPECT_EQ(logs.out, "out-hello\n/workspace\n");
  EXPECT_EQ(logs.err, "err-line\n");
  LogOptions only_err;
  only_err.include_stdout = false;
  EXPECT_EQ(ReadAll(*backend_, box.id, only_err).out, "");
  LogOptions tail;
  tail.tail = 1;
  EXPECT_EQ(ReadAll(*backend_, box.id, tail).out, "/workspace\n");

  auto listed = backend_->List({{kRunLabel, run_label_}});
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].state, "exited");
  EXPECT_EQ((*listed)[0].exit_code, 3);
  EXPECT_EQ((*listed)[0].labels.at("fastest.job_id"), "job-test");

  ASSERT_TRUE(backend_->Remove(box.id).ok());
}

TEST_P(EngineBackendSuite, WaitDeadlineThenKill) {
  ASSERT_CREATED(box, Spec("sleep 60"));
  absl::Time start = absl::Now();
  absl::StatusOr<WaitResult> waited = backend_->Wait(box.id, absl::Milliseconds(300));
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_FALSE(waited->exited);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  waited = backend_->Wait(box.id, absl::ZeroDuration());
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_FALSE(waited->exited);

  ASSERT_TRUE(backend_->Kill(box.id, 9).ok());
  waited = backend_->Wait(box.id, absl::Seconds(20));
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_TRUE(waited->exited);
  EXPECT_EQ(waited->exit_code, 137);
  // Killing what already exited is not an error.
  absl::Status again = backend_->Kill(box.id, 15);
  EXPECT_TRUE(again.ok()) << again;
  ASSERT_TRUE(backend_->Remove(box.id).ok());
}

TEST_P(EngineBackendSuite, ListByLabelAndRemoveLeavesNothing) {
  SandboxSpec a = Spec("sleep 30");
  a.labels["fastest.group"] = "a";
  SandboxSpec b = Spec("true");
  b.labels["fastest.group"] = "b";
  ASSERT_CREATED(box_a, a);
  ASSERT_CREATED(box_b, b);

  auto both = backend_->List({{kRunLabel, run_label_}});
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->size(), 2u);
  auto only_a = backend_->List({{kRunLabel, run_label_}, {"fastest.group", "a"}});
  ASSERT_TRUE(only_a.ok()) << only_a.status();
  ASSERT_EQ(only_a->size(), 1u);
  EXPECT_EQ((*only_a)[0].id, box_a.id);
  EXPECT_EQ((*only_a)[0].state, "running");

  // Remove kills a running sandbox and leaves nothing behind.
  ASSERT_TRUE(backend_->Remove(box_a.id).ok());
  ASSERT_TRUE(backend_->Remove(box_b.id).ok());
  auto none = backend_->List({{kRunLabel, run_label_}});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(backend_->Remove(box_a.id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(backend_->Wait(box_a.id, absl::Seconds(1)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_P(EngineBackendSuite, FollowLogsStreamUntilExit) {
  ASSERT_CREATED(box, Spec("echo first; sleep 0.5; echo second >&2; sleep 0.2; echo third"));
  std::vector<std::pair<int, std::string>> pieces;
  absl::Time start = absl::Now();
  absl::Time first_at;
  LogOptions follow;
  follow.follow = true;
  absl::Status status = backend_->ReadLogs(box.id, follow, [&](int stream, absl::string_view d) {
    if (pieces.empty()) first_at = absl::Now();
    pieces.emplace_back(stream, std::string(d));
    return true;
  });
  ASSERT_TRUE(status.ok()) << status;
  std::string out, err;
  for (auto& [stream, data] : pieces) (stream == 2 ? err : out) += data;
  EXPECT_EQ(out, "first\nthird\n");
  EXPECT_EQ(err, "second\n");
  // Streaming: the first line arrived before the container finished sleeping.
  EXPECT_LT(first_at - start, absl::Milliseconds(450));

  // A sink that stops early ends ReadLogs with OK.
  int calls = 0;
  status = backend_->ReadLogs(box.id, {}, [&](int, absl::string_view) { return ++calls > 5; });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(backend_->Remove(box.id).ok());
}

TEST_P(EngineBackendSuite, MissingImageIsFailedPrecondition) {
  SandboxSpec spec = Spec("true");
  spec.image = "fastest/sandbox:0.0.0-missing";
  absl::StatusOr<SandboxInfo> made = backend_->CreateSandbox(spec);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.status().code(), absl::StatusCode::kFailedPrecondition) << made.status();
  EXPECT_NE(made.status().message().find("fastest/sandbox:0.0.0-missing is missing"),
            std::string::npos)
      << made.status();
  EXPECT_NE(made.status().message().find("tools/build_sandbox_image.sh"), std::string::npos);
}

TEST_P(EngineBackendSuite, NameConflictIsAlreadyExists) {
  SandboxSpec spec = Spec("sleep 30");
  spec.name = absl::StrCat("fastest-test-", getpid(), "-", absl::ToUnixMicros(absl::Now()));
  ASSERT_CREATED(box, spec);
  absl::StatusOr<SandboxInfo> twice = backend_->CreateSandbox(spec);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kAlreadyExists) << twice.status();
  auto listed = backend_->List({{kRunLabel, run_label_}});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].name, spec.name);
  ASSERT_TRUE(backend_->Remove(box.id).ok());
}

TEST_P(EngineBackendSuite, BadInputIsInvalidArgument) {
  SandboxSpec spec = Spec("true");
  spec.network_mode = "container:other";
  EXPECT_EQ(backend_->CreateSandbox(spec).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->Kill("../../images", 9).code(), absl::StatusCode::kInvalidArgument);
}

// Not a benchmark gate: prints the raw lifecycle cost through this backend for the report.
TEST_P(EngineBackendSuite, MeasuresLifecycle) {
  constexpr int kRuns = 10;
  std::vector<double> create_start_ms, lifecycle_ms;
  for (int i = 0; i < kRuns; ++i) {
    absl::Time t0 = absl::Now();
    ASSERT_CREATED(box, Spec("true"));
    absl::Time t1 = absl::Now();
    absl::StatusOr<WaitResult> done = backend_->Wait(box.id, absl::Seconds(30));
    ASSERT_TRUE(done.ok()) << done.status();
    ASSERT_EQ(done->exit_code, 0);
    ASSERT_TRUE(backend_->Remove(box.id).ok());
    absl::Time t2 = absl::Now();
    create_start_ms.push_back(absl::ToDoubleMilliseconds(t1 - t0));
    lifecycle_ms.push_back(absl::ToDoubleMilliseconds(t2 - t0));
  }
  std::printf("[%s] create+start p50 %.0f ms p90 %.0f ms; create->wait->remove p50 %.0f ms p90 %.0f ms (%d runs)\n",
              GetParam().name.c_str(), Percentile(create_start_ms, 0.5),
              Percentile(create_start_ms, 0.9), Percentile(lifecycle_ms, 0.5),
              Percentile(lifecycle_ms, 0.9), kRuns);
  RecordProperty("create_start_p50_ms", static_cast<int>(Percentile(create_start_ms, 0.5)));
  RecordProperty("lifecycle_p50_ms", static_cast<int>(Percentile(lifecycle_ms, 0.5)));
}

// Thread safety under load, and the raw throughput figure for the report (8 workers).
TEST_P(EngineBackendSuite, ConcurrentLifecycles) {
  constexpr int kWorkers = 8;
  constexpr int kPerWorker = 4;
  std::atomic<int> ok{0};
  std::vector<std::string> errors(kWorkers);
  absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kPerWorker; ++i) {
        SandboxSpec spec = Spec(absl::StrCat("echo w", w, "-", i));
        absl::StatusOr<SandboxInfo> box = backend_->CreateSandbox(spec);
        if (!box.ok()) { errors[w] = box.status().ToString(); return; }
        absl::StatusOr<WaitResult> done = backend_->Wait(box->id, absl::Seconds(30));
        if (!done.ok() || !done->exited || done->exit_code != 0) {
          errors[w] = done.ok() ? "did not exit 0" : done.status().ToString();
          return;
        }
        absl::Status removed = backend_->Remove(box->id);
        if (!removed.ok()) { errors[w] = removed.ToString(); return; }
        ++ok;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (const std::string& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(ok.load(), kWorkers * kPerWorker);
  std::printf("[%s] %d create->start->wait->remove at concurrency %d: %.1f containers/s\n",
              GetParam().name.c_str(), ok.load(), kWorkers, ok.load() / seconds);
}

}  // namespace fastest::backends::engine_api
