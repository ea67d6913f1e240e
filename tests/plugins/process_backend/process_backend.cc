#include "tests/plugins/process_backend/process_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/crypto/secure_random.h"
#include "core/status/status_macros.h"

namespace fastest::backends::process {
namespace {

namespace fs = std::filesystem;
using core::SandboxInfo;
using core::SandboxSpec;
using core::WaitResult;

constexpr char kDefaultPath[] = "/usr/local/bin:/usr/bin:/bin";
constexpr size_t kRecordHeader = 5;  // stream byte + uint32 little-endian length
constexpr size_t kChunk = 64 * 1024;
constexpr absl::Duration kPollInterval = absl::Milliseconds(10);

absl::Status ErrnoStatus(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat("process: ", what, ": ", std::strerror(err)));
}

std::string RandomId() {
  return "proc-" + core::SecureRandomHex(8);
}

bool IsDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream buf;
  buf << in.rdbuf();
  *out = buf.str();
  return true;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return ErrnoStatus(absl::StrCat("open ", tmp), errno);
    out << data;
    if (!out.flush()) return ErrnoStatus(absl::StrCat("write ", tmp), errno);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("rename ", tmp), errno);
  }
  return absl::OkStatus();
}

// ---- the child side: only async-signal-safe calls below (the host may be multi-threaded) ------

// Everything the supervisor and the command need, prepared before fork().
struct LaunchPlan {
  const char* exe;
  char* const* argv;
  char* const* envp;
  const char* cwd;
  const char* exit_tmp_path;
  const char* exit_path;
  int log_fd;
  int report_fd;  // write end: the supervisor sends {command pid, own pid}
  int64_t timeout_ms;
  char* buffer;  // kRecordHeader + kChunk bytes
};

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    size -= static_cast<size_t>(n);
  }
}

size_t FormatInt(int64_t value, char* out) {  // out >= 21 bytes
  char tmp[24];
  size_t n = 0;
  bool negative = value < 0;
  uint64_t v = negative ? static_cast<uint64_t>(-(value + 1)) + 1 : static_cast<uint64_t>(value);
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  size_t len = 0;
  if (negative) out[len++] = '-';
  while (n > 0) out[len++] = tmp[--n];
  return len;
}

int64_t MonotonicMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void ResetSignals() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &sa, nullptr);  // KILL/STOP just fail
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

void CloseFdsFrom(int first) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, first, ~0U, 0) == 0) return;
#endif
  for (int fd = first; fd < 65536; ++fd) close(fd);
}

// Closes every fd >= 3 except `keep_a` and `keep_b` (the host's sockets and files must not stay
// open in a process that outlives the host).
void CloseFdsExcept(int keep_a, int keep_b) {
  if (keep_a > keep_b) std::swap(keep_a, keep_b);
  int next = 3;
  for (int keep : {keep_a, keep_b}) {
    for (int fd = next; fd < keep; ++fd) close(fd);
    next = keep + 1 > next ? keep + 1 : next;
  }
  CloseFdsFrom(next);
}

[[noreturn]] void RunCommand(const LaunchPlan& plan, int out_w, int err_w) {
  setpgid(0, 0);
  ResetSignals();
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, 0);
  dup2(out_w, 1);
  dup2(err_w, 2);
  CloseFdsFrom(3);
  if (chdir(plan.cwd) != 0) {
    static const char kMsg[] = "process backend: chdir to the working directory failed\n";
    WriteAll(2, kMsg, sizeof(kMsg) - 1);
    _exit(127);
  }
  execve(plan.exe, plan.argv, plan.envp);
  char msg[128];
  static const char kPrefix[] = "process backend: exec failed, errno ";
  std::memcpy(msg, kPrefix, sizeof(kPrefix) - 1);
  size_t len = sizeof(kPrefix) - 1;
  len += FormatInt(errno, msg + len);
  msg[len++] = '\n';
  WriteAll(2, msg, len);
  _exit(127);
}

void AppendRecord(const LaunchPlan& plan, char stream, size_t size) {
  char* rec = plan.buffer;
  rec[0] = stream;
  rec[1] = static_cast<char>(size & 0xff);
  rec[2] = static_cast<char>((size >> 8) & 0xff);
  rec[3] = static_cast<char>((size >> 16) & 0xff);
  rec[4] = static_cast<char>((size >> 24) & 0xff);
  // One write per record (O_APPEND) so a concurrent reader sees whole records or a clean prefix.
  WriteAll(plan.log_fd, rec, kRecordHeader + size);
}

[[noreturn]] void Supervise(const LaunchPlan& plan) {
  ResetSignals();
  int null_fd = open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
  }
  CloseFdsExcept(plan.log_fd, plan.report_fd);
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) _exit(1);
  pid_t child = fork();
  if (child < 0) _exit(1);
  if (child == 0) RunCommand(plan, out_pipe[1], err_pipe[1]);
  setpgid(child, child);  // both sides call it, so the group exists before anyone signals it
  int32_t pids[2] = {static_cast<int32_t>(child), static_cast<int32_t>(getpid())};
  WriteAll(plan.report_fd, reinterpret_cast<const char*>(pids), sizeof(pids));
  close(plan.report_fd);
  close(out_pipe[1]);
  close(err_pipe[1]);

  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  const char streams[2] = {1, 2};
  int open_fds = 2;
  bool reaped = false;
  int exit_code = 0;
  const int64_t start = MonotonicMs();
  int64_t drain_deadline = 0;
  while (!reaped || open_fds > 0) {
    if (open_fds > 0) {
      int ready = poll(fds, 2, 20);
      if (ready > 0) {
        for (int i = 0; i < 2; ++i) {
          if (fds[i].fd < 0 || fds[i].revents == 0) continue;
          ssize_t n = read(fds[i].fd, plan.buffer + kRecordHeader, kChunk);
          if (n > 0) {
            AppendRecord(plan, streams[i], static_cast<size_t>(n));
          } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            close(fds[i].fd);
            fds[i].fd = -1;
            --open_fds;
          }
        }
      }
    } else {
      struct timespec nap = {0, 20 * 1000 * 1000};
      nanosleep(&nap, nullptr);
    }
    if (!reaped) {
      int status = 0;
      pid_t r = waitpid(child, &status, WNOHANG);
      if (r == child) {
        reaped = true;
        exit_code = WIFEXITED(status) ? WEXITSTATUS(status)
                                      : (WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255);
        // Like a container: the sandbox ends with its main process.
        kill(-child, SIGKILL);
        drain_deadline = MonotonicMs() + 2000;
      } else if (r < 0 && errno == ECHILD) {
        reaped = true;
        exit_code = 255;
        drain_deadline = MonotonicMs() + 2000;
      } else if (plan.timeout_ms > 0 && MonotonicMs() - start >= plan.timeout_ms) {
        kill(-child, SIGKILL);
      }
    } else if (MonotonicMs() > drain_deadline) {
      break;  // an escaped grandchild still holds a pipe open: stop collecting
    }
  }
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd >= 0) close(fds[i].fd);
  }
  close(plan.log_fd);
  int fd = open(plan.exit_tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    char text[24];
    size_t len = FormatInt(exit_code, text);
    WriteAll(fd, text, len);
    close(fd);
    rename(plan.exit_tmp_path, plan.exit_path);
  }
  _exit(0);
}

// Moves `fd` above 0..2, which the supervisor points at /dev/null (a host with a closed stdin
// could otherwise hand out fd 0 here).
int AboveStdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return moved;
}

// ---- log reading ---------------------------------------------------------------------------

// Reads whole records appended to a log file since the last call.
class LogReader {
 public:
  explicit LogReader(std::string path) : path_(std::move(path)) {}

  // Appends complete (stream, data) records that are new since the last call.
  void ReadNew(std::vector<std::pair<int, std::string>>* out) {
    std::ifstream in(path_, std::ios::binary);
    if (!in) return;
    in.seekg(static_cast<std::streamoff>(offset_));
    std::ostringstream buf;
    buf << in.rdbuf();
    pending_ += buf.str();
    offset_ += buf.str().size();
    size_t pos = 0;
    while (pending_.size() - pos >= kRecordHeader) {
      const auto* h = reinterpret_cast<const unsigned char*>(pending_.data() + pos);
      size_t len = static_cast<size_t>(h[1]) | (static_cast<size_t>(h[2]) << 8) |
                   (static_cast<size_t>(h[3]) << 16) | (static_cast<size_t>(h[4]) << 24);
      if (pending_.size() - pos - kRecordHeader < len) break;  // record still being written
      out->emplace_back(h[0], pending_.substr(pos + kRecordHeader, len));
      pos += kRecordHeader + len;
    }
    pending_.erase(0, pos);
  }

 private:
  std::string path_;
  size_t offset_ = 0;
  std::string pending_;
};

// Splits records into lines (a trailing partial line stays one piece) for "tail".
std::deque<std::pair<int, std::string>> LastLines(
    const std::vector<std::pair<int, std::string>>& records, size_t n) {
  std::deque<std::pair<int, std::string>> lines;
  for (const auto& [stream, data] : records) {
    size_t start = 0;
    while (start < data.size()) {
      size_t nl = data.find('\n', start);
      size_t end = nl == std::string::npos ? data.size() : nl + 1;
      lines.emplace_back(stream, data.substr(start, end - start));
      if (lines.size() > n) lines.pop_front();
      start = end;
    }
  }
  return lines;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProcessBackend>> ProcessBackend::Create(
    const nlohmann::json& config) {
  if (!config.is_object()) return absl::InvalidArgumentError("process: config must be an object");
  std::string dir;
  auto it = config.find("state_dir");
  if (it != config.end() && !it->is_null()) {
    if (!it->is_string()) return absl::InvalidArgumentError("process: state_dir must be a string");
    dir = it->get<std::string>();
  } else if (const char* env = std::getenv("FASTEST_PROCESS_BACKEND_DIR"); env && *env) {
    dir = env;
  } else if (const char* tmp = std::getenv("TEST_TMPDIR"); tmp && *tmp) {
    dir = absl::StrCat(tmp, "/fastest-process-backend");
  } else {
    dir = absl::StrCat("/tmp/fastest-process-backend-", getuid());
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !IsDir(dir)) {
    return absl::InternalError(absl::StrCat("process: cannot create state_dir ", dir, ": ",
                                            ec ? ec.message() : "not a directory"));
  }
  return std::unique_ptr<ProcessBackend>(new ProcessBackend(dir));
}

std::string ProcessBackend::SandboxDir(const std::string& id) const {
  return absl::StrCat(state_dir_, "/", id);
}

absl::StatusOr<ProcessBackend::Record> ProcessBackend::LoadRecord(const std::string& id) {
  // Ids are directory names: refuse anything that could walk out of state_dir.
  if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..") {
    return absl::NotFoundError(absl::StrCat("process: no sandbox \"", id, "\""));
  }
  std::string text;
  if (!ReadFile(SandboxDir(id) + "/state.json", &text)) {
    absl::MutexLock lock(&mu_);
    records_.erase(id);
    return absl::NotFoundError(absl::StrCat("process: no sandbox ", id));
  }
  {
    absl::MutexLock lock(&mu_);
    auto cached = records_.find(id);
    if (cached != records_.end() && cached->second.pid != 0) return cached->second;
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InternalError(absl::StrCat("process: corrupt state for sandbox ", id));
  }
  Record record;
  record.id = id;
  record.name = j.value("name", "");
  record.image = j.value("image", "");
  record.pid = j.value("pid", 0);
  record.supervisor_pid = j.value("supervisor_pid", 0);
  auto labels = j.find("labels");
  if (labels != j.end() && labels->is_object()) {
    for (auto l = labels->begin(); l != labels->end(); ++l) {
      if (l.value().is_string()) record.labels[l.key()] = l.value().get<std::string>();
    }
  }
  absl::MutexLock lock(&mu_);
  records_[id] = record;
  return record;
}

absl::Status ProcessBackend::SaveRecord(const Record& record) {
  nlohmann::json j = {{"schema", 1},
                      {"id", record.id},
                      {"name", record.name},
                      {"image", record.image},
                      {"labels", record.labels},
                      {"pid", record.pid},
                      {"supervisor_pid", record.supervisor_pid},
                      {"created_at", absl::FormatTime(absl::Now(), absl::UTCTimeZone())}};
  FASTEST_RETURN_IF_ERROR(
      WriteFileAtomically(SandboxDir(record.id) + "/state.json", core::DumpJson(j)));
  absl::MutexLock lock(&mu_);
  records_[record.id] = record;
  return absl::OkStatus();
}

std::optional<int> ProcessBackend::ExitCode(const Record& record, bool* lost) const {
  if (lost != nullptr) *lost = false;
  std::string text;
  std::string path = SandboxDir(record.id) + "/exit_code";
  if (ReadFile(path, &text)) {
    int code = 0;
    if (absl::SimpleAtoi(text, &code)) return code;
    return 255;
  }
  // The supervisor writes exit_code before it exits; gone without one means it was killed.
  if (record.supervisor_pid > 0 && kill(record.supervisor_pid, 0) != 0 && errno == ESRCH &&
      !ReadFile(path, &text)) {
    if (lost != nullptr) *lost = true;
  }
  return std::nullopt;
}

SandboxInfo ProcessBackend::Info(const Record& record) const {
  SandboxInfo info;
  info.id = record.id;
  info.name = record.name;
  info.labels = record.labels;
  bool lost = false;
  info.exit_code = ExitCode(record, &lost);
  info.state = info.exit_code.has_value() ? "exited" : (lost ? "unknown" : "running");
  return info;
}

absl::StatusOr<nlohmann::json> ProcessBackend::Describe() {
  return nlohmann::json{{"schema", 1},
                        {"name", name_},
                        {"log_streaming", true},
                        {"warm_pool", false},
                        {"network_modes", {"host"}},
                        {"default_network_mode", "host"},
                        {"max_parallel_sandboxes", 0},
                        {"isolation", "none (local processes)"},
                        {"state_dir", state_dir_},
                        {"health", IsDir(state_dir_) ? "ok" : "state_dir missing"}};
}

absl::StatusOr<SandboxInfo> ProcessBackend::CreateSandbox(const SandboxSpec& spec) {
  if (spec.command.empty() || spec.command[0].empty()) {
    return absl::InvalidArgumentError("process: command is empty");
  }
  if (!spec.name.empty()) {
    FASTEST_ASSIGN_OR_RETURN(std::vector<SandboxInfo> all, List({}));
    for (const SandboxInfo& other : all) {
      if (other.name == spec.name) {
        return absl::AlreadyExistsError(
            absl::StrCat("process: sandbox name ", spec.name, " is used by ", other.id));
      }
    }
  }

  // Environment: the spec's, plus PATH and HOME when it lacks them.
  std::map<std::string, std::string> env = spec.env;
  if (env.find("PATH") == env.end()) {
    const char* host_path = std::getenv("PATH");
    env["PATH"] = host_path != nullptr && *host_path ? host_path : kDefaultPath;
  }
  std::string exe = spec.command[0];
  if (exe.find('/') == std::string::npos) {
    std::string found;
    for (absl::string_view dir : absl::StrSplit(env["PATH"], ':', absl::SkipEmpty())) {
      std::string candidate = absl::StrCat(dir, "/", exe);
      if (IsExecutableFile(candidate)) {
        found = candidate;
        break;
      }
    }
    if (found.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "process: command \"", exe, "\" not found in the sandbox PATH (", env["PATH"], ")"));
    }
    exe = found;
  }

  Record record;
  record.id = RandomId();
  record.name = spec.name;
  record.image = spec.image;
  record.labels = spec.labels;
  const std::string dir = SandboxDir(record.id);
  const std::string work = dir + "/work";
  std::error_code ec;
  fs::create_directories(work, ec);
  if (ec) return absl::InternalError(absl::StrCat("process: create ", work, ": ", ec.message()));
  if (env.find("HOME") == env.end()) env["HOME"] = work;
  FASTEST_RETURN_IF_ERROR(SaveRecord(record));  // labels visible to List from now on
  const std::string cwd =
      !spec.working_dir.empty() && IsDir(spec.working_dir) ? spec.working_dir : work;

  // Everything the children need, as C data, before fork().
  std::vector<std::string> env_strings;
  for (const auto& [key, value] : env) env_strings.push_back(absl::StrCat(key, "=", value));
  std::vector<char*> argv, envp;
  for (const std::string& arg : spec.command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string exit_tmp = dir + "/exit_code.tmp";
  const std::string exit_path = dir + "/exit_code";
  const std::string log_path = dir + "/log";
  std::vector<char> buffer(kRecordHeader + kChunk);

  int log_fd = AboveStdio(open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (log_fd < 0) return ErrnoStatus(absl::StrCat("open ", log_path), errno);
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    int err = errno;
    close(log_fd);
    return ErrnoStatus("pipe", err);
  }
  report[1] = AboveStdio(report[1]);
  LaunchPlan plan{exe.c_str(),       argv.data(), envp.data(), cwd.c_str(),     exit_tmp.c_str(),
                  exit_path.c_str(), log_fd,      report[1],   spec.timeout_ms, buffer.data()};

  pid_t middle = fork();
  if (middle < 0) {
    int err = errno;
    close(log_fd);
    close(report[0]);
    close(report[1]);
    return ErrnoStatus("fork", err);
  }
  if (middle == 0) {
    // Double fork: the supervisor is re-parented away from the host, so the host never reaps it
    // and the sandbox outlives the host process (like a container outlives its client).
    close(report[0]);
    setsid();
    pid_t supervisor = fork();
    if (supervisor == 0) Supervise(plan);
    _exit(supervisor < 0 ? 1 : 0);
  }
  close(log_fd);
  close(report[1]);
  int status = 0;
  while (waitpid(middle, &status, 0) < 0 && errno == EINTR) {
  }
  int32_t pids[2] = {0, 0};
  size_t got = 0;
  while (got < sizeof(pids)) {
    ssize_t n = read(report[0], reinterpret_cast<char*>(pids) + got, sizeof(pids) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(report[0]);
  if (got != sizeof(pids)) {
    fs::remove_all(dir, ec);
    absl::MutexLock lock(&mu_);
    records_.erase(record.id);
    return absl::InternalError("process: the sandbox supervisor failed to start");
  }
  record.pid = pids[0];
  record.supervisor_pid = pids[1];
  FASTEST_RETURN_IF_ERROR(SaveRecord(record));
  return Info(record);
}

absl::StatusOr<WaitResult> ProcessBackend::Wait(const std::string& id, absl::Duration timeout) {
  FASTEST_ASSIGN_OR_RETURN(Record record, LoadRecord(id));
  absl::Time deadline =
      timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  while (true) {
    bool lost = false;
    std::optional<int> code = ExitCode(record, &lost);
    if (code.has_value()) return WaitResult{true, code};
    if (lost) return WaitResult{true, std::nullopt};
    if (!IsDir(SandboxDir(id)))
      return absl::NotFoundError(absl::StrCat("process: sandbox ", id, " was removed"));
    if (absl::Now() >= deadline) return WaitResult{};
    absl::SleepFor(std::min(kPollInterval, deadline - absl::Now()));
  }
}

absl::Status ProcessBackend::ReadLogs(const std::string& id, const core::LogOptions& options,
                                      std::function<bool(int, absl::string_view)> sink) {
  FASTEST_ASSIGN_OR_RETURN(Record record, LoadRecord(id));
  LogReader reader(SandboxDir(id) + "/log");
  auto wanted = [&options](int stream) {
    return (stream == core::kStdoutStream && options.include_stdout) ||
           (stream == core::kStderrStream && options.include_stderr);
  };
  bool first = true;
  while (true) {
    bool lost = false;
    // Checked BEFORE reading: exit_code is written after the last record, so one more read
    // after seeing it delivers everything.
    bool exited = ExitCode(record, &lost).has_value() || lost || !IsDir(SandboxDir(id));
    std::vector<std::pair<int, std::string>> records;
    reader.ReadNew(&records);
    std::vector<std::pair<int, std::string>> selected;
    for (auto& r : records) {
      if (wanted(r.first)) selected.push_back(std::move(r));
    }
    if (first && options.tail > 0) {
      auto lines = LastLines(selected, static_cast<size_t>(options.tail));
      selected.assign(lines.begin(), lines.end());
    }
    first = false;
    for (const auto& [stream, data] : selected) {
      if (!sink(stream, data)) return absl::OkStatus();
    }
    if (!options.follow || exited) return absl::OkStatus();
    absl::SleepFor(kPollInterval);
  }
}

absl::Status ProcessBackend::Kill(const std::string& id, int signal) {
  FASTEST_ASSIGN_OR_RETURN(Record record, LoadRecord(id));
  if (ExitCode(record, nullptr).has_value() || record.pid <= 0) return absl::OkStatus();
  if (kill(-record.pid, signal) != 0) {
    if (errno == ESRCH) return absl::OkStatus();  // already gone
    if (errno == EINVAL) {
      return absl::InvalidArgumentError(absl::StrCat("process: invalid signal ", signal));
    }
    if (errno == EPERM) {
      return absl::PermissionDeniedError(absl::StrCat("process: may not signal sandbox ", id));
    }
    return ErrnoStatus(absl::StrCat("kill sandbox ", id), errno);
  }
  return absl::OkStatus();
}

absl::Status ProcessBackend::Remove(const std::string& id) {
  FASTEST_ASSIGN_OR_RETURN(Record record, LoadRecord(id));
  if (!ExitCode(record, nullptr).has_value() && record.pid > 0) {
    kill(-record.pid, SIGKILL);
    // Let the supervisor finish writing before its directory disappears.
    absl::StatusOr<WaitResult> done = Wait(id, absl::Seconds(5));
    (void)done;
  }
  std::error_code ec;
  fs::remove_all(SandboxDir(id), ec);
  {
    absl::MutexLock lock(&mu_);
    records_.erase(id);
  }
  if (ec) {
    return absl::InternalError(absl::StrCat("process: remove sandbox ", id, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SandboxInfo>> ProcessBackend::List(
    const std::map<std::string, std::string>& labels) {
  std::vector<SandboxInfo> out;
  std::error_code ec;
  for (fs::directory_iterator it(state_dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string id = it->path().filename().string();
    absl::StatusOr<Record> record = LoadRecord(id);
    if (!record.ok()) continue;  // not a sandbox, or removed meanwhile
    if (!core::LabelsMatch(record->labels, labels)) continue;
    out.push_back(Info(*record));
  }
  if (ec)
    return absl::InternalError(absl::StrCat("process: list ", state_dir_, ": ", ec.message()));
  std::sort(out.begin(), out.end(),
            [](const SandboxInfo& a, const SandboxInfo& b) { return a.id < b.id; });
  return out;
}

}  // namespace fastest::backends::process
