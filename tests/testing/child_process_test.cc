#include "tests/testing/child_process.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace fastest::testing {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name, "_", getpid());
}

std::string ReadAll(const std::string& path) { return ReadFileTail(path, 0); }

// Runs `script` with /bin/sh -c, combined log at `log`.
absl::StatusOr<ChildProcess> Sh(const std::string& script, const std::string& log,
                                std::map<std::string, std::string> env = {}) {
  return ChildProcess::Spawn("/bin/sh", {"-c", script}, env, log);
}

// Polls until `path` contains `text` (up to 5 s).
bool WaitForText(const std::string& path, const std::string& text) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    if (absl::StrContains(ReadAll(path), text)) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

TEST(ChildProcessTest, EnvironmentIsExactlyTheGivenOne) {
  ASSERT_EQ(setenv("FASTEST_CHILD_TEST_MARKER", "leak", 1), 0);
  const std::string log = TempPath("env.log");
  absl::StatusOr<ChildProcess> child =
      Sh("echo \"FOO=$FOO\"; echo \"MARKER=${FASTEST_CHILD_TEST_MARKER-unset}\"; "
         "echo \"HOME=${HOME-unset}\"; echo ---; exec /usr/bin/env",
         log, {{"FOO", "bar baz"}});
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<int> status = child->Wait(absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(ExitCode(*status), 0);
  const std::string out = ReadAll(log);
  EXPECT_TRUE(absl::StrContains(out, "FOO=bar baz\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "MARKER=unset\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "HOME=unset\n")) << out;
  // What the child's own environ holds (sh adds only PWD; it does not export its default PATH).
  const std::string environ_text = out.substr(out.find("---\n") + 4);
  EXPECT_TRUE(absl::StrContains(environ_text, "FOO=bar baz\n")) << environ_text;
  EXPECT_FALSE(absl::StrContains(environ_text, "FASTEST_CHILD_TEST_MARKER")) << environ_text;
  EXPECT_FALSE(absl::StrContains(environ_text, "PATH=")) << environ_text;
  EXPECT_FALSE(absl::StrContains(environ_text, "TEST_TMPDIR=")) << environ_text;
  unsetenv("FASTEST_CHILD_TEST_MARKER");
}

TEST(ChildProcessTest, CurrentEnvironmentSeesOurVariables) {
  ASSERT_EQ(setenv("FASTEST_CHILD_TEST_VISIBLE", "a=b", 1), 0);
  auto env = CurrentEnvironment();
  EXPECT_EQ(env["FASTEST_CHILD_TEST_VISIBLE"], "a=b");
  unsetenv("FASTEST_CHILD_TEST_VISIBLE");
}

TEST(ChildProcessTest, CombinedLogCapturesStdoutAndStderrAndStdinIsEmpty) {
  const std::string log = TempPath("combined.log");
  {
    std::ofstream(log) << "stale content\n";
  }
  absl::StatusOr<ChildProcess> child =
      Sh("echo to-stdout; echo to-stderr >&2; read x && echo got-input; exit 0", log);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(child->Wait(absl::Seconds(10)).ok());
  const std::string out = ReadAll(log);
  EXPECT_TRUE(absl::StrContains(out, "to-stdout\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "to-stderr\n")) << out;
  EXPECT_FALSE(absl::StrContains(out, "got-input")) << out;
  EXPECT_FALSE(absl::StrContains(out, "stale content")) << "the log is truncated by default";
  EXPECT_EQ(child->log_path(), log);
  EXPECT_EQ(child->LogTail(), out);
}

TEST(ChildProcessTest, SeparateLogsAndAppend) {
  const std::string out_path = TempPath("sep.out");
  const std::string err_path = TempPath("sep.err");
  {
    std::ofstream(out_path) << "earlier-out\n";
  }
  SpawnOptions o;
  o.binary = "/bin/sh";
  o.args = {"-c", "echo only-out; echo only-err >&2"};
  o.stdout_path = out_path;
  o.stderr_path = err_path;
  o.append = true;
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(child->Wait(absl::Seconds(10)).ok());
  EXPECT_EQ(ReadAll(out_path), "earlier-out\nonly-out\n");
  EXPECT_EQ(ReadAll(err_path), "only-err\n");
  EXPECT_EQ(child->name(), "sh");
  EXPECT_TRUE(absl::StrContains(child->LogTail(), "only-err")) << child->LogTail();
}

TEST(ChildProcessTest, ReadsThePortFile) {
  const std::string log = TempPath("port.log");
  const std::string port_file = TempPath("port.file");
  unlink(port_file.c_str());
  absl::StatusOr<ChildProcess> child = Sh(
      absl::StrCat("sleep 0.2; echo 4242 > '", port_file, ".tmp'; mv '", port_file, ".tmp' '",
                   port_file, "'; while true; do sleep 0.05; done"),
      log);
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<int> port = child->WaitForPortFile(port_file, absl::Seconds(10));
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(*port, 4242);
  EXPECT_FALSE(child->Exited());
  int status = child->Stop(absl::Seconds(5));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << DescribeWaitStatus(status);
  EXPECT_FALSE(child->running());
  EXPECT_EQ(child->pid(), -1);
}

TEST(ChildProcessTest, PortFileWaitFailsWithTheLogWhenTheChildExits) {
  const std::string log = TempPath("early_exit.log");
  const std::string port_file = TempPath("early_exit.port");
  unlink(port_file.c_str());
  absl::StatusOr<ChildProcess> child = Sh("echo 'bad flag --nope' >&2; exit 3", log);
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<int> port = child->WaitForPortFile(port_file, absl::Seconds(10));
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(port.status().message(), "bad flag --nope")) << port.status();
  EXPECT_TRUE(absl::StrContains(port.status().message(), "exit code 3")) << port.status();
  EXPECT_TRUE(child->Exited());
  ASSERT_TRUE(child->wait_status().has_value());
  EXPECT_EQ(ExitCode(*child->wait_status()), 3);
  EXPECT_EQ(child->Stop(absl::Seconds(1)), *child->wait_status());
}

TEST(ChildProcessTest, PortFileWaitTimesOutAndLeavesTheChildRunning) {
  const std::string log = TempPath("timeout.log");
  absl::StatusOr<ChildProcess> child =
      Sh("echo still-starting; while true; do sleep 0.05; done", log);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(WaitForText(log, "still-starting"));
  absl::StatusOr<int> port = child->WaitForPortFile(TempPath("never.port"), absl::Milliseconds(200));
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(port.status().message(), "still-starting")) << port.status();
  EXPECT_FALSE(child->Exited());
  absl::StatusOr<int> wait = child->Wait(absl::Milliseconds(50));
  EXPECT_EQ(wait.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(child->Signal(SIGTERM));
  absl::StatusOr<int> status = child->Wait(absl::Seconds(5));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(ExitCode(*status), 128 + SIGTERM);
}

TEST(ChildProcessTest, StopEscalatesToSigkillWhenSigtermIsIgnored) {
  const std::string log = TempPath("stubborn.log");
  absl::StatusOr<ChildProcess> child =
      Sh("trap '' TERM; echo ready; while true; do sleep 0.05; done", log);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(WaitForText(log, "ready")) << ReadAll(log);
  const absl::Time start = absl::Now();
  int status = child->Stop(absl::Milliseconds(300));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(WIFSIGNALED(status)) << DescribeWaitStatus(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_EQ(DescribeWaitStatus(status), "killed by signal 9");
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_FALSE(child->running());
}

TEST(ChildProcessTest, ExecFailureIsReportedBySpawn) {
  absl::StatusOr<ChildProcess> child =
      ChildProcess::Spawn("/nonexistent/fastest-binary", {}, {}, TempPath("exec_fail.log"));
  ASSERT_FALSE(child.ok());
  EXPECT_TRUE(absl::StrContains(child.status().message(), "execve")) << child.status();
  EXPECT_TRUE(absl::StrContains(child.status().message(), "No such file")) << child.status();
}

TEST(ChildProcessTest, UnwritableLogIsReportedBySpawn) {
  absl::StatusOr<ChildProcess> child =
      ChildProcess::Spawn("/bin/sh", {"-c", "true"}, {}, "/nonexistent-dir/x.log");
  ASSERT_FALSE(child.ok());
  EXPECT_TRUE(absl::StrContains(child.status().message(), "/nonexistent-dir/x.log"))
      << child.status();
}

TEST(ChildProcessTest, DestructorKillsAndReapsARunningChild) {
  pid_t pid = -1;
  {
    absl::StatusOr<ChildProcess> child =
        Sh("while true; do sleep 0.05; done", TempPath("dtor.log"));
    ASSERT_TRUE(child.ok()) << child.status();
    pid = child->pid();
    ASSERT_GT(pid, 0);
    ASSERT_EQ(kill(pid, 0), 0);
  }
  // Reaped: the pid no longer exists (not even as a zombie).
  errno = 0;
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(ChildProcessTest, DieWithParentKillsTheChildWhenTheSpawningThreadEnds) {
  absl::StatusOr<ChildProcess> child = absl::InternalError("not spawned");
  std::thread spawner([&] {
    SpawnOptions o;
    o.binary = "/bin/sh";
    o.args = {"-c", "while true; do sleep 0.05; done"};
    o.log_path = TempPath("pdeathsig.log");
    o.die_with_parent = true;
    child = ChildProcess::Spawn(o);
  });
  spawner.join();
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<int> status = child->Wait(absl::Seconds(5));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(DescribeWaitStatus(*status), "killed by signal 9");
}

TEST(ChildProcessTest, MoveTransfersOwnership) {
  absl::StatusOr<ChildProcess> child = Sh("while true; do sleep 0.05; done", TempPath("move.log"));
  ASSERT_TRUE(child.ok()) << child.status();
  const pid_t pid = child->pid();
  ChildProcess owner;
  EXPECT_FALSE(owner.running());
  EXPECT_TRUE(owner.Exited());
  owner = std::move(*child);
  EXPECT_FALSE(child->running());
  EXPECT_EQ(owner.pid(), pid);
  int status = owner.Kill();
  EXPECT_EQ(ExitCode(status), 128 + SIGKILL);
  EXPECT_EQ(owner.Kill(), status);  // idempotent
}

TEST(ChildProcessTest, ReadFileTailAndExitCodes) {
  const std::string path = TempPath("tail.txt");
  {
    std::ofstream(path) << "0123456789";
  }
  EXPECT_EQ(ReadFileTail(path, 4), "6789");
  EXPECT_EQ(ReadFileTail(path, 100), "0123456789");
  EXPECT_EQ(ReadFileTail(path, 0), "0123456789");
  EXPECT_EQ(ReadFileTail(TempPath("missing.txt")), "");
  EXPECT_EQ(ExitCode(-1), -1);
  EXPECT_EQ(DescribeWaitStatus(-1), "unknown status");
}

}  // namespace
}  // namespace fastest::testing
