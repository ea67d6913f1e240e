// File: tests/testing/child_process.h
//
// ChildProcess: one binary started by a test harness (or a benchmark) as a child process with an
// EXACT environment (nothing inherited), its output in a log file (or two), stdin on /dev/null.
// It can wait for the port the child writes to a --port_file, and stops it SIGTERM -> grace ->
// SIGKILL, always reaping it. A still-running child is killed and reaped by the destructor.
//
// Everything the child needs (argv, envp, open file descriptors) is prepared before fork(), so
// the child only makes async-signal-safe calls until execve (safe in a multi-threaded test).
//
// Example:
//   SpawnOptions o;
//   o.binary = "/path/fastest-server";
//   o.args = {"--port=0", "--port_file=" + port_file};
//   o.env = {{"PATH", "/usr/bin:/bin"}, {"FASTEST_API_TOKEN", token}};
//   o.log_path = dir + "/server.log";
//   FASTEST_ASSIGN_OR_RETURN(ChildProcess server, ChildProcess::Spawn(o));
//   FASTEST_ASSIGN_OR_RETURN(int port, server.WaitForPortFile(port_file, absl::Seconds(20)));
//   ...
//   int status = server.Stop(absl::Seconds(10));  // a wait status: WIFEXITED(status) ...
#ifndef FASTEST_TESTS_TESTING_CHILD_PROCESS_H_
#define FASTEST_TESTS_TESTING_CHILD_PROCESS_H_

#include <signal.h>
#include <sys/types.h>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace fastest::testing {

// SpawnOptions: what to run and where its output goes.
struct SpawnOptions {
  std::string binary;  // a path; not searched in PATH
  std::vector<std::string> args;  // argv[1..]; argv[0] is `binary`
  std::map<std::string, std::string> env;  // the child's whole environment

  // Output: either one combined log (stdout and stderr) ...
  std::string log_path;
  // ... or separate files (used when log_path is empty; an empty one goes to /dev/null).
  std::string stdout_path;
  std::string stderr_path;
  // Append to existing logs (e.g. one log across restarts) instead of truncating them.
  bool append = false;

  // PR_SET_PDEATHSIG(SIGKILL): a crashed test leaves no server behind. The kernel ties this to
  // the spawning THREAD: only for children spawned by a thread that outlives them (a harness that
  // restarts a server from a short-lived std::thread must leave it off).
  bool die_with_parent = false;
  // setpgid(0, 0): the child leads its own process group (a terminal's ^C does not reach it).
  bool new_process_group = false;

  // Used in error messages; default: the binary's basename.
  std::string name;
};

// CurrentEnvironment: this process's environment as a map (to pass on, with overrides, to a
// child that should inherit it).
std::map<std::string, std::string> CurrentEnvironment();

// ReadFileTail: the last `max_bytes` of a file ("" if it cannot be read). 0 = the whole file.
std::string ReadFileTail(const std::string& path, size_t max_bytes = 16 * 1024);

// ExitCode: a wait status as a shell would show it: the exit code, or 128 + the signal; -1 when
// `wait_status` is -1 (unknown).
int ExitCode(int wait_status);
// DescribeWaitStatus: "exit code 3", "killed by signal 9", "unknown status".
std::string DescribeWaitStatus(int wait_status);

class ChildProcess {
 public:
  // An empty handle: no process (running() is false).
  ChildProcess() = default;
  // Kills (SIGKILL) and reaps a child that is still running.
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  // Kills and reaps this handle's running child first.
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Spawn: starts the child. Fails when a log cannot be opened, fork fails, or execve fails
  // (reported from the child through a close-on-exec pipe, with errno's text).
  static absl::StatusOr<ChildProcess> Spawn(const SpawnOptions& options);
  // Shorthand: one combined log, truncated.
  static absl::StatusOr<ChildProcess> Spawn(const std::string& binary,
                                            const std::vector<std::string>& args,
                                            const std::map<std::string, std::string>& env,
                                            const std::string& log_path);

  // pid: the child's pid; -1 once reaped (or for an empty handle).
  pid_t pid() const { return pid_; }
  // running: spawned and not yet reaped (it may have exited; Exited() finds out).
  bool running() const { return pid_ > 0; }
  // wait_status: the reaped child's wait status, if it was reaped (-1 if it was unknowable).
  const std::optional<int>& wait_status() const { return wait_status_; }

  // Exited: non-blocking; true (and reaped) when the child has exited, or there is no child.
  bool Exited();
  // Wait: blocks until the child exits (up to `timeout`; absl::InfiniteDuration() for no limit)
  // and returns its wait status; DeadlineExceeded (the child still running) on timeout.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // WaitForPortFile: polls `path` for an integer port (1..65535; the child writes it whole and
  // renames it into place) and returns it. Fails, with the log tail, when the child exits first
  // or `timeout` passes (the child is left running then).
  absl::StatusOr<int> WaitForPortFile(const std::string& path, absl::Duration timeout);

  // Signal: sends `sig` to the child; false when there is no running child or kill() fails.
  bool Signal(int sig);
  // Stop: sends `sig` (SIGTERM), waits up to `grace`, then SIGKILL; reaps and returns the wait
  // status. If already reaped: the stored status, or -1 (never started / unknown).
  int Stop(absl::Duration grace, int sig = SIGTERM);
  // Kill: SIGKILL and reap; returns the wait status (as Stop).
  int Kill();

  // The log file(s) and their tail (the combined log, else stderr then stdout).
  const std::string& log_path() const { return log_path_; }
  const std::string& stdout_path() const { return stdout_path_; }
  const std::string& stderr_path() const { return stderr_path_; }
  std::string LogTail(size_t max_bytes = 16 * 1024) const;
  const std::string& name() const { return name_; }

 private:
  // Records a reaped status and forgets the pid.
  void Reaped(int status);
  // Blocking waitpid (EINTR-safe).
  int WaitBlocking();

  pid_t pid_ = -1;
  std::optional<int> wait_status_;
  std::string name_;
  std::string log_path_;
  std::string stdout_path_;
  std::string stderr_path_;
};

}  // namespace fastest::testing

#endif  // FASTEST_TESTS_TESTING_CHILD_PROCESS_H_
