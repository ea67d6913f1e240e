// CloudflareBackend, loaded as libfastest_backend_cloudflare.so through OpenBackend, against the
// cf-bridge-emulator (local Docker). Covers create with env + labels, wait, logs, kill, job
// timeout, remove, orphan listing after a "restart", and bridge faults mid-job.
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/cloudflare/bridge_client.h"
#include "core/http/http_client.h"
#include "core/plugin/backend.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/emulator_process.h"

namespace fastest::tests::cloudflare {
namespace {

using ::fastest::testing::EmulatorProcess;
constexpr const char* kTestApiKey = ::fastest::testing::kEmulatorTestApiKey;

constexpr char kPlugin[] = "./backends/cloudflare/libfastest_backend_cloudflare.so";

class CloudflareBackendE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = EmulatorProcess::Start();
    if (!started.ok()) {
      start_error_ = new std::string(started.status().ToString());
      return;
    }
    emulator_ = started->release();
  }
  static void TearDownTestSuite() {
    delete emulator_;
    emulator_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(emulator_, nullptr) << (start_error_ ? *start_error_ : "emulator not started");
    const char* tmp = std::getenv("TEST_TMPDIR");
    state_file_ = absl::StrCat(tmp ? tmp : "/tmp", "/cf-state-",
                               ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".json");
    std::remove(state_file_.c_str());
    backend_ = Open();
    ASSERT_NE(backend_, nullptr);
    Faults(nlohmann::json::object());
  }

  nlohmann::json Config() const {
    return {{"schema", 1},           {"bridge_url", emulator_->url()},
            {"api_key", kTestApiKey}, {"instance_type", "standard-1"},
            {"max_instances", 4},    {"request_timeout_ms", 10000},
            {"max_attempts", 3},     {"backoff_initial_ms", 20},
            {"backoff_cap_ms", 100}, {"poll_interval_ms", 200},
            {"state_file", state_file_}};
  }

  std::unique_ptr<core::SandboxBackend> Open() {
    auto backend = core::OpenBackend(kPlugin, Config());
    EXPECT_TRUE(backend.ok()) << backend.status();
    return backend.ok() ? std::move(*backend) : nullptr;
  }

  void Faults(const nlohmann::json& body) {
    core::HttpClient http;
    core::HttpRequest request;
    request.url = emulator_->url() + "/_emulator/faults";
    request.method = "DELETE";
    ASSERT_TRUE(http.Send(request).ok());
    if (body.empty()) return;
    request.method = "POST";
    request.body = body.dump();
    auto r = http.Send(request);
    ASSERT_TRUE(r.ok() && r->status == 200);
  }

  core::SandboxSpec Spec(const std::string& script) {
    core::SandboxSpec spec;
    spec.name = "fastest-job-test";
    spec.image = "fastest/sandbox:0.1.0";
    spec.command = {"sh", "-c", script};
    spec.env = {{"API_TOKEN", "tok-s3cr3t'quoted"}, {"JOB_ID", "job-42"}};
    spec.labels = {{"fastest.job_id", "job-42"}, {"fastest.server_id", server_id_}};
    spec.working_dir = "/workspace";
    return spec;
  }

  std::string Logs(const std::string& id, bool follow = false) {
    std::string out;
    core::LogOptions options;
    options.follow = follow;
    absl::Status s = backend_->ReadLogs(id, options, [&](int stream, absl::string_view data) {
      EXPECT_EQ(stream, core::kStdoutStream);
      out.append(data.data(), data.size());
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  backends::cloudflare::BridgeClient Bridge() {
    backends::cloudflare::BridgeClientOptions options;
    options.base_url = emulator_->url();
    options.api_key = kTestApiKey;
    return backends::cloudflare::BridgeClient(options);
  }

  static EmulatorProcess* emulator_;
  static std::string* start_error_;
  std::string state_file_;
  std::string server_id_ = "srv-1";
  std::unique_ptr<core::SandboxBackend> backend_;
};

EmulatorProcess* CloudflareBackendE2eTest::emulator_ = nullptr;
std::string* CloudflareBackendE2eTest::start_error_ = nullptr;

TEST_F(CloudflareBackendE2eTest, DescribeReportsInstanceTypeAndHealth) {
  auto caps = backend_->Describe();
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_EQ((*caps)["name"], "cloudflare");
  EXPECT_EQ((*caps)["health"], "ok");
  EXPECT_EQ((*caps)["instance_type"], "standard-1");
  EXPECT_EQ((*caps)["resources"]["memory_mib"], 4096);
  EXPECT_EQ((*caps)["max_parallel_sandboxes"], 4);
  EXPECT_EQ((*caps)["log_streaming"], true);
}

TEST_F(CloudflareBackendE2eTest, RunsAJobWithEnvAndLabelsThenRemoves) {
  auto info = backend_->CreateSandbox(
      Spec("echo \"token=$API_TOKEN job=$JOB_ID\"; echo to-stderr >&2; pwd; exit 7"));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, "running");
  auto done = backend_->Wait(info->id, absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->exited);
  EXPECT_EQ(done->exit_code, 7);
  EXPECT_EQ(Logs(info->id), "token=tok-s3cr3t'quoted job=job-42\nto-stderr\n/workspace\n");

  // The secret env file is gone (sourced then deleted) and nothing was staged in /workspace.
  auto bridge = Bridge();
  backends::cloudflare::ExecRequest exec;
  exec.argv = {"sh", "-c", "ls -a /tmp/fastest; ls -a /workspace; cat /tmp/fastest/labels.json"};
  auto listing = bridge.Exec(info->id, exec, true);
  ASSERT_TRUE(listing.ok()) << listing.status();
  EXPECT_FALSE(absl::StrContains(listing->stdout_data, "env")) << listing->stdout_data;
  EXPECT_FALSE(absl::StrContains(listing->stdout_data, ".fastest")) << listing->stdout_data;
  EXPECT_TRUE(absl::StrContains(listing->stdout_data, "\"fastest.job_id\":\"job-42\""));

  auto listed = backend_->List({{"fastest.server_id", server_id_}});
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, info->id);
  EXPECT_EQ((*listed)[0].state, "exited");
  EXPECT_EQ((*listed)[0].exit_code, 7);
  EXPECT_EQ((*listed)[0].labels.at("fastest.job_id"), "job-42");

  ASSERT_TRUE(backend_->Remove(info->id).ok());
  auto after = backend_->List({});
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
  EXPECT_TRUE(absl::IsNotFound(backend_->Remove(info->id)));
  EXPECT_TRUE(absl::IsNotFound(backend_->Wait(info->id, absl::ZeroDuration()).status()));
}

TEST_F(CloudflareBackendE2eTest, OrphansAreFoundAfterARestart) {
  auto info = backend_->CreateSandbox(Spec("sleep 30"));
  ASSERT_TRUE(info.ok()) << info.status();
  backend_.reset();  // "server restart": a new instance reads the state file
  backend_ = Open();
  auto listed = backend_->List({{"fastest.server_id", server_id_}});
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, info->id);
  EXPECT_EQ((*listed)[0].state, "running");
  EXPECT_TRUE(backend_->List({{"fastest.server_id", "other"}})->empty());
  ASSERT_TRUE(backend_->Remove(info->id).ok());
}

TEST_F(CloudflareBackendE2eTest, WaitDeadlineThenKill) {
  auto info = backend_->CreateSandbox(Spec("echo begin; sleep 60"));
  ASSERT_TRUE(info.ok()) << info.status();
  auto early = backend_->Wait(info->id, absl::Milliseconds(300));
  ASSERT_TRUE(early.ok()) << early.status();
  EXPECT_FALSE(early->exited);
  ASSERT_TRUE(backend_->Kill(info->id, 15).ok());
  auto done = backend_->Wait(info->id, absl::Seconds(20));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->exited);
  EXPECT_EQ(done->exit_code, 143);
  EXPECT_EQ(Logs(info->id), "begin\n");
  EXPECT_TRUE(backend_->Kill(info->id, 9).ok());  // already exited: not an error
  ASSERT_TRUE(backend_->Remove(info->id).ok());
}

TEST_F(CloudflareBackendE2eTest, JobTimeoutIsEnforced) {
  core::SandboxSpec spec = Spec("sleep 60");
  spec.timeout_ms = 800;
  auto info = backend_->CreateSandbox(spec);
  ASSERT_TRUE(info.ok()) << info.status();
  absl::Time start = absl::Now();
  auto done = backend_->Wait(info->id, absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->exited);
  EXPECT_EQ(done->exit_code, 124);
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
  ASSERT_TRUE(backend_->Remove(info->id).ok());
}

TEST_F(CloudflareBackendE2eTest, FollowLogsUntilExit) {
  auto info = backend_->CreateSandbox(Spec("for i in 1 2 3; do echo line$i; sleep 0.4; done"));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(Logs(info->id, /*follow=*/true), "line1\nline2\nline3\n");
  ASSERT_TRUE(backend_->Remove(info->id).ok());
}

TEST_F(CloudflareBackendE2eTest, RetriesTransientBridgeErrorsMidJob) {
  auto info = backend_->CreateSandbox(Spec("sleep 1; echo survived"));
  ASSERT_TRUE(info.ok()) << info.status();
  // A 429, then a broken exec stream (EOF without exit), then success: one call, 3 attempts.
  Faults({{"fail_next", {{{"status", 429}, {"count", 1}, {"path", "/exec"}, {"code", "rate_limited"}}}},
          {"cut_exec_count", 1}});
  auto done = backend_->Wait(info->id, absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->exited);
  EXPECT_EQ(done->exit_code, 0);
  EXPECT_EQ(Logs(info->id), "survived\n");
  // Two 502s in a row on the next call are absorbed as well.
  Faults({{"fail_next", {{{"status", 502}, {"count", 2}, {"code", "pool_error"}}}}});
  auto again = backend_->Wait(info->id, absl::Seconds(5));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->exit_code, 0);
  ASSERT_TRUE(backend_->Remove(info->id).ok());
}

TEST_F(CloudflareBackendE2eTest, PersistentBridgeFailureIsAClearError) {
  auto info = backend_->CreateSandbox(Spec("sleep 30"));
  ASSERT_TRUE(info.ok()) << info.status();
  Faults({{"fail_next", {{{"status", 500}, {"count", 10}, {"path", "/exec"}, {"code", "exec_error"},
                          {"error", "bridge exploded"}}}}});
  auto done = backend_->Wait(info->id, absl::Seconds(10));
  ASSERT_FALSE(done.ok());
  EXPECT_TRUE(absl::IsUnavailable(done.status())) << done.status();
  EXPECT_TRUE(absl::StrContains(done.status().message(), "HTTP 500")) << done.status();
  EXPECT_TRUE(absl::StrContains(done.status().message(), "bridge exploded")) << done.status();
  EXPECT_FALSE(absl::StrContains(done.status().message(), kTestApiKey));
  Faults(nlohmann::json::object());
  ASSERT_TRUE(backend_->Remove(info->id).ok());  // always removable
}

TEST_F(CloudflareBackendE2eTest, CapacityExceededIsResourceExhaustedAndLeavesNothing) {
  Faults({{"fail_next",
           {{{"status", 503}, {"count", 1}, {"path", "/file/"}, {"code", "capacity_exceeded"},
             {"error", "capacity exceeded: instance limit reached (4/4)"}}}}});
  auto info = backend_->CreateSandbox(Spec("true"));
  ASSERT_FALSE(info.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(info.status())) << info.status();
  EXPECT_TRUE(absl::StrContains(info.status().message(), "instance limit reached (4/4)"));
  auto listed = backend_->List({});
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
}

TEST_F(CloudflareBackendE2eTest, BadKeyIsFailedPrecondition) {
  nlohmann::json config = Config();
  config["api_key"] = "wrong";
  auto backend = core::OpenBackend(kPlugin, config);
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto info = (*backend)->CreateSandbox(Spec("true"));
  ASSERT_FALSE(info.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(info.status())) << info.status();
  EXPECT_FALSE(absl::StrContains(info.status().message(), "wrong"));
}

}  // namespace
}  // namespace fastest::tests::cloudflare
