#include "tests/testing/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace fastest::testing {
namespace {

constexpr absl::Duration kPoll = absl::Milliseconds(10);

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Opens a log for the child's output (close-on-exec in the parent; dup2 clears it in the child).
absl::StatusOr<int> OpenLog(const std::string& path, bool append) {
  if (path.empty()) {
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return absl::InternalError(absl::StrCat("open /dev/null: ", strerror(errno)));
    return fd;
  }
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (append ? 0 : O_TRUNC),
                0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", strerror(errno)));
  return fd;
}

// Closes the fds it holds when the parent returns (the child never runs destructors).
struct FdSet {
  std::vector<int> fds;
  ~FdSet() {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
};

// Writes all of `buf` (async-signal-safe).
void WriteAll(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    len -= static_cast<size_t>(n);
  }
}

// What failed in the child, sent back with errno.
enum ChildStep : int {
  kSetpgid = 1,
  kPdeathsig,
  kDupStdin,
  kDupStdout,
  kDupStderr,
  kExecve,
};

const char* StepName(int step) {
  switch (step) {
    case kSetpgid: return "setpgid";
    case kPdeathsig: return "prctl(PR_SET_PDEATHSIG)";
    case kDupStdin: return "dup2(stdin)";
    case kDupStdout: return "dup2(stdout)";
    case kDupStderr: return "dup2(stderr)";
    case kExecve: return "execve";
  }
  return "child setup";
}

// dup2 that also works when fd == target (dup2 would then keep FD_CLOEXEC).
bool DupTo(int fd, int target) {
  if (fd == target) return fcntl(fd, F_SETFD, 0) == 0;
  return dup2(fd, target) >= 0;
}

// The child, between fork() and execve(): async-signal-safe calls only; never returns.
[[noreturn]] void RunChild(const SpawnOptions& o, pid_t parent, int stdin_fd, int out_fd,
                           int err_fd, int report_fd, char* const* argv, char* const* envp,
                           const sigset_t* empty_mask) {
  auto fail = [report_fd](int step) {
    int payload[2] = {step, errno};
    WriteAll(report_fd, payload, sizeof(payload));
    _exit(127);
  };
  if (o.new_process_group && setpgid(0, 0) != 0) fail(kSetpgid);
  if (o.die_with_parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(kPdeathsig);
    // The parent may have died before prctl took effect.
    if (getppid() != parent) _exit(127);
  }
  // Signal handling a test runner changed must not leak into the child (SIG_IGN survives exec).
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGTERM, &dfl, nullptr);
  sigaction(SIGINT, &dfl, nullptr);
  sigaction(SIGPIPE, &dfl, nullptr);
  sigprocmask(SIG_SETMASK, empty_mask, nullptr);
  if (!DupTo(stdin_fd, 0)) fail(kDupStdin);
  if (!DupTo(out_fd, 1)) fail(kDupStdout);
  if (!DupTo(err_fd, 2)) fail(kDupStderr);
  execve(argv[0], argv, envp);
  fail(kExecve);
  _exit(127);  // not reached
}

std::optional<int> ReadPort(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  int port = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(ss.str()), &port)) return std::nullopt;
  if (port <= 0 || port > 65535) return std::nullopt;
  return port;
}

}  // namespace

std::map<std::string, std::string> CurrentEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr) continue;
    env.emplace(std::string(*e, eq - *e), std::string(eq + 1));
  }
  return env;
}

std::string ReadFileTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size < 0) return "";
  std::streamoff start = 0;
  if (max_bytes > 0 && static_cast<size_t>(size) > max_bytes) {
    start = size - static_cast<std::streamoff>(max_bytes);
  }
  in.seekg(start, std::ios::beg);
  std::string out(static_cast<size_t>(size - start), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

int ExitCode(int wait_status) {
  if (wait_status == -1) return -1;
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

std::string DescribeWaitStatus(int wait_status) {
  if (wait_status == -1) return "unknown status";
  if (WIFEXITED(wait_status)) return absl::StrCat("exit code ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  return absl::StrCat("wait status ", wait_status);
}

absl::StatusOr<ChildProcess> ChildProcess::Spawn(const std::string& binary,
                                                 const std::vector<std::string>& args,
                                                 const std::map<std::string, std::string>& env,
                                                 const std::string& log_path) {
  SpawnOptions o;
  o.binary = binary;
  o.args = args;
  o.env = env;
  o.log_path = log_path;
  return Spawn(o);
}

absl::StatusOr<ChildProcess> ChildProcess::Spawn(const SpawnOptions& o) {
  ChildProcess child;
  child.name_ = o.name.empty() ? Basename(o.binary) : o.name;
  if (o.binary.empty()) return absl::InvalidArgumentError("ChildProcess::Spawn: no binary");

  // argv / envp: built here, only read by the child.
  std::vector<std::string> argv_strings = {o.binary};
  argv_strings.insert(argv_strings.end(), o.args.begin(), o.args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : o.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  FdSet fds;
  int stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (stdin_fd < 0) return absl::InternalError(absl::StrCat("open /dev/null: ", strerror(errno)));
  fds.fds.push_back(stdin_fd);
  int out_fd = -1;
  int err_fd = -1;
  if (!o.log_path.empty()) {
    absl::StatusOr<int> fd = OpenLog(o.log_path, o.append);
    if (!fd.ok()) return fd.status();
    fds.fds.push_back(*fd);
    out_fd = err_fd = *fd;
    child.log_path_ = o.log_path;
  } else {
    absl::StatusOr<int> out = OpenLog(o.stdout_path, o.append);
    if (!out.ok()) return out.status();
    fds.fds.push_back(*out);
    absl::StatusOr<int> err = OpenLog(o.stderr_path, o.append);
    if (!err.ok()) return err.status();
    fds.fds.push_back(*err);
    out_fd = *out;
    err_fd = *err;
    child.stdout_path_ = o.stdout_path;
    child.stderr_path_ = o.stderr_path;
  }
  // execve failures come back through this pipe; a successful exec closes it (O_CLOEXEC).
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", strerror(errno)));
  }
  fds.fds.push_back(report[0]);
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    close(report[1]);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    RunChild(o, parent, stdin_fd, out_fd, err_fd, report[1], argv.data(), envp.data(),
             &empty_mask);
  }
  close(report[1]);
  child.pid_ = pid;

  int payload[2] = {0, 0};
  size_t got = 0;
  while (got < sizeof(payload)) {
    ssize_t n = read(report[0], reinterpret_cast<char*>(payload) + got, sizeof(payload) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got == 0) return child;  // exec succeeded
  child.WaitBlocking();
  return absl::InternalError(absl::StrCat("cannot start ", child.name_, ": ",
                                          StepName(payload[0]), " ", o.binary, ": ",
                                          strerror(payload[1])));
}

ChildProcess::~ChildProcess() {
  if (running()) Kill();
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      wait_status_(std::move(other.wait_status_)),
      name_(std::move(other.name_)),
      log_path_(std::move(other.log_path_)),
      stdout_path_(std::move(other.stdout_path_)),
      stderr_path_(std::move(other.stderr_path_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (running()) Kill();
    pid_ = std::exchange(other.pid_, -1);
    wait_status_ = std::move(other.wait_status_);
    name_ = std::move(other.name_);
    log_path_ = std::move(other.log_path_);
    stdout_path_ = std::move(other.stdout_path_);
    stderr_path_ = std::move(other.stderr_path_);
  }
  return *this;
}

void ChildProcess::Reaped(int status) {
  wait_status_ = status;
  pid_ = -1;
}

int ChildProcess::WaitBlocking() {
  if (pid_ <= 0) return wait_status_.value_or(-1);
  int status = -1;
  while (true) {
    pid_t r = waitpid(pid_, &status, 0);
    if (r == pid_) break;
    if (r < 0 && errno == EINTR) continue;
    status = -1;  // ECHILD: reaped elsewhere, status unknowable
    break;
  }
  Reaped(status);
  return status;
}

bool ChildProcess::Exited() {
  if (pid_ <= 0) return true;
  int status = -1;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    Reaped(status);
    return true;
  }
  if (r < 0 && errno == ECHILD) {
    Reaped(-1);
    return true;
  }
  return false;
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return WaitBlocking();
  const absl::Time deadline = absl::Now() + timeout;
  while (!Exited()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          name_, " still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(kPoll);
  }
  return wait_status_.value_or(-1);
}

absl::StatusOr<int> ChildProcess::WaitForPortFile(const std::string& path,
                                                  absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (std::optional<int> port = ReadPort(path)) return *port;
    if (Exited()) {
      return absl::FailedPreconditionError(absl::StrCat(
          name_, " exited (", DescribeWaitStatus(wait_status_.value_or(-1)),
          ") before writing its port file ", path, "; log:\n", LogTail()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          name_, " did not write its port file ", path, " within ",
          absl::FormatDuration(timeout), "; log:\n", LogTail()));
    }
    absl::SleepFor(kPoll);
  }
}

bool ChildProcess::Signal(int sig) { return pid_ > 0 && kill(pid_, sig) == 0; }

int ChildProcess::Stop(absl::Duration grace, int sig) {
  if (pid_ <= 0) return wait_status_.value_or(-1);
  Signal(sig);
  if (sig != SIGKILL) {
    absl::StatusOr<int> status = Wait(grace);
    if (status.ok()) return *status;
  }
  return Kill();
}

int ChildProcess::Kill() {
  if (pid_ <= 0) return wait_status_.value_or(-1);
  Signal(SIGKILL);
  return WaitBlocking();
}

std::string ChildProcess::LogTail(size_t max_bytes) const {
  if (!log_path_.empty()) return ReadFileTail(log_path_, max_bytes);
  std::string out;
  if (!stderr_path_.empty()) out = ReadFileTail(stderr_path_, max_bytes);
  if (!stdout_path_.empty()) {
    if (!out.empty() && out.back() != '\n') out += "\n";
    out += ReadFileTail(stdout_path_, max_bytes);
  }
  return out;
}

}  // namespace fastest::testing
