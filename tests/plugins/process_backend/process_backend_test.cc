// The process backend, loaded as a real plugin .so through the real loader.
#include <stdlib.h>

#include <string>

#include "absl/time/clock.h"
#include "core/plugin/backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

using ::testing::HasSubstr;

std::string PluginPath() {
  return std::string(getenv("TEST_SRCDIR")) + "/" + getenv("TEST_WORKSPACE") +
         "/tests/plugins/process_backend/libfastest_backend_process.so";
}

class ProcessBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_dir_ = std::string(getenv("TEST_TMPDIR")) + "/state-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name();
    absl::StatusOr<std::unique_ptr<SandboxBackend>> backend =
        OpenBackend(PluginPath(), {{"schema", 1}, {"state_dir", state_dir_}});
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
  }

  SandboxInfo Start(std::vector<std::string> command,
                    std::map<std::string, std::string> labels = {}) {
    SandboxSpec spec;
    spec.image = "local";
    spec.command = std::move(command);
    spec.labels = std::move(labels);
    absl::StatusOr<SandboxInfo> info = backend_->CreateSandbox(spec);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : SandboxInfo{};
  }

  // All output of `id` as "1:<stdout bytes>" and "2:<stderr bytes>" concatenations.
  std::pair<std::string, std::string> Logs(const std::string& id, LogOptions options = {}) {
    std::string out, err;
    absl::Status status = backend_->ReadLogs(id, options, [&](int stream, absl::string_view d) {
      (stream == 1 ? out : err).append(d.data(), d.size());
      return true;
    });
    EXPECT_TRUE(status.ok()) << status;
    return {out, err};
  }

  std::string state_dir_;
  std::unique_ptr<SandboxBackend> backend_;
};

TEST_F(ProcessBackendTest, ExitCodeAndBothStreams) {
  SandboxInfo info = Start({"sh", "-c", "echo out; echo err >&2; exit 7"});
  ASSERT_FALSE(info.id.empty());
  absl::StatusOr<WaitResult> done = backend_->Wait(info.id, absl::Seconds(10));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->exited);
  EXPECT_EQ(done->exit_code, 7);
  auto [out, err] = Logs(info.id);
  EXPECT_EQ(out, "out\n");
  EXPECT_EQ(err, "err\n");

  LogOptions only_stdout;
  only_stdout.include_stderr = false;
  EXPECT_EQ(Logs(info.id, only_stdout).second, "");
  EXPECT_EQ(Logs(info.id, only_stdout).first, "out\n");

  absl::StatusOr<std::vector<SandboxInfo>> list = backend_->List({});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].state, "exited");
  EXPECT_EQ((*list)[0].exit_code, 7);
}

TEST_F(ProcessBackendTest, KillEndsASleepQuicklyAndShortWaitsTimeOut) {
  SandboxInfo info = Start({"sleep", "30"});
  EXPECT_EQ(info.state, "running");

  absl::StatusOr<WaitResult> now = backend_->Wait(info.id, absl::ZeroDuration());
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_FALSE(now->exited);

  absl::Time start = absl::Now();
  absl::StatusOr<WaitResult> brief = backend_->Wait(info.id, absl::Milliseconds(150));
  ASSERT_TRUE(brief.ok()) << brief.status();
  EXPECT_FALSE(brief->exited);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(140));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));

  start = absl::Now();
  ASSERT_TRUE(backend_->Kill(info.id, 9).ok());
  absl::StatusOr<WaitResult> done = backend_->Wait(info.id, absl::Seconds(10));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->exited);
  EXPECT_EQ(done->exit_code, 128 + 9);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_TRUE(backend_->Kill(info.id, 9).ok()) << "killing an exited sandbox is not an error";
}

TEST_F(ProcessBackendTest, ListByLabelAcrossInstancesThenRemove) {
  SandboxInfo mine = Start({"sleep", "30"}, {{"fastest.server_id", "s1"}, {"job", "a"}});
  SandboxInfo other = Start({"true"}, {{"fastest.server_id", "s2"}});

  absl::StatusOr<std::vector<SandboxInfo>> found = backend_->List({{"fastest.server_id", "s1"}});
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].id, mine.id);
  EXPECT_EQ((*found)[0].labels.at("job"), "a");
  EXPECT_EQ((*found)[0].state, "running");

  // A second instance (e.g. a restarted server) sees the same sandboxes through the state files.
  absl::StatusOr<std::unique_ptr<SandboxBackend>> second =
      OpenBackend(PluginPath(), {{"schema", 1}, {"state_dir", state_dir_}});
  ASSERT_TRUE(second.ok());
  absl::StatusOr<std::vector<SandboxInfo>> seen = (*second)->List({{"fastest.server_id", "s1"}});
  ASSERT_TRUE(seen.ok());
  ASSERT_EQ(seen->size(), 1u);
  EXPECT_EQ((*seen)[0].id, mine.id);

  absl::Time start = absl::Now();
  ASSERT_TRUE((*second)->Remove(mine.id).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  found = backend_->List({{"fastest.server_id", "s1"}});
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());
  EXPECT_EQ(backend_->Remove(mine.id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(backend_->Wait(mine.id, absl::ZeroDuration()).status().code(),
            absl::StatusCode::kNotFound);

  ASSERT_TRUE(backend_->Remove(other.id).ok());
  absl::StatusOr<std::vector<SandboxInfo>> all = backend_->List({});
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_F(ProcessBackendTest, EnvIsOnlyTheSpecPlusPathAndWorkingDirIsUsed) {
  setenv("FASTEST_HOST_ONLY_VAR", "leaked", 1);
  std::string dir = std::string(getenv("TEST_TMPDIR"));
  SandboxSpec spec;
  spec.command = {"sh", "-c", "echo \"$FOO|$FASTEST_HOST_ONLY_VAR|$(pwd)\"; test -n \"$PATH\""};
  spec.env = {{"FOO", "bar"}};
  spec.working_dir = dir;
  absl::StatusOr<SandboxInfo> info = backend_->CreateSandbox(spec);
  ASSERT_TRUE(info.ok()) << info.status();
  absl::StatusOr<WaitResult> done = backend_->Wait(info->id, absl::Seconds(10));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->exit_code, 0);
  char real[4096];
  ASSERT_NE(realpath(dir.c_str(), real), nullptr);
  EXPECT_EQ(Logs(info->id).first, "bar||" + std::string(real) + "\n");
}

TEST_F(ProcessBackendTest, FollowStreamsUntilExit) {
  SandboxInfo info = Start({"sh", "-c", "echo first; sleep 0.3; echo second"});
  LogOptions follow;
  follow.follow = true;
  std::string seen;
  ASSERT_TRUE(backend_
                  ->ReadLogs(info.id, follow,
                             [&](int, absl::string_view d) {
                               seen.append(d.data(), d.size());
                               return true;
                             })
                  .ok());
  EXPECT_EQ(seen, "first\nsecond\n");
  // Stop early: the sink returning false ends ReadLogs with OK.
  int calls = 0;
  ASSERT_TRUE(backend_
                  ->ReadLogs(info.id, LogOptions{},
                             [&](int, absl::string_view) {
                               ++calls;
                               return false;
                             })
                  .ok());
  EXPECT_EQ(calls, 1);
  LogOptions tail;
  tail.tail = 1;
  EXPECT_EQ(Logs(info.id, tail).first, "second\n");
}

TEST_F(ProcessBackendTest, TimeoutKillsTheSandbox) {
  SandboxSpec spec;
  spec.command = {"sleep", "30"};
  spec.timeout_ms = 200;
  absl::StatusOr<SandboxInfo> info = backend_->CreateSandbox(spec);
  ASSERT_TRUE(info.ok());
  absl::StatusOr<WaitResult> done = backend_->Wait(info->id, absl::Seconds(10));
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->exited);
  EXPECT_EQ(done->exit_code, 137);
}

TEST_F(ProcessBackendTest, ErrorsAreSpecific) {
  SandboxSpec spec;
  spec.command = {"no-such-command-fastest"};
  absl::StatusOr<SandboxInfo> missing = backend_->CreateSandbox(spec);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("not found in the sandbox PATH"));
  spec.command = {};
  EXPECT_EQ(backend_->CreateSandbox(spec).status().code(), absl::StatusCode::kInvalidArgument);

  spec.command = {"true"};
  spec.name = "unique-name";
  ASSERT_TRUE(backend_->CreateSandbox(spec).ok());
  EXPECT_EQ(backend_->CreateSandbox(spec).status().code(), absl::StatusCode::kAlreadyExists);

  EXPECT_EQ(backend_->Kill("proc-nope", 9).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(backend_->Kill("../etc", 9).code(), absl::StatusCode::kNotFound);

  absl::StatusOr<nlohmann::json> caps = backend_->Describe();
  ASSERT_TRUE(caps.ok());
  EXPECT_EQ((*caps)["name"], "process");
  EXPECT_EQ((*caps)["log_streaming"], true);
  EXPECT_EQ((*caps)["health"], "ok");
}

}  // namespace
}  // namespace fastest::core
