#include "runner/agent_process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <deque>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include <boost/filesystem.hpp>
#include <boost/process.hpp>
#include <boost/process/extend.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fastest::runner {
namespace {

namespace bp = boost::process;

// Collects the last N lines of output and forwards each line to the sink.
class LineCollector {
 public:
  LineCollector(const AgentLineSink& sink, int keep) : sink_(sink), keep_(keep) {}
  void Add(bool is_stderr, std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::lock_guard<std::mutex> lock(mu_);
    if (sink_) sink_(is_stderr, line);
    tail_.push_back(line.size() > 500 ? line.substr(0, 500) + "..." : line);
    while (static_cast<int>(tail_.size()) > keep_) tail_.pop_front();
  }
  std::string Tail() {
    std::lock_guard<std::mutex> lock(mu_);
    return absl::StrJoin(tail_, "\n");
  }

 private:
  const AgentLineSink& sink_;
  int keep_;
  std::mutex mu_;
  std::deque<std::string> tail_;
};

void ReadLines(bp::ipstream& in, bool is_stderr, LineCollector& out) {
  std::string line;
  while (std::getline(in, line)) out.Add(is_stderr, line);
}

// Sends SIGKILL to every process of `uid` (in this pid namespace) from a child that became that
// uid: kill(-1) then reaches exactly those processes, whatever group or session they are in.
void KillAllProcessesOf(int uid) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(0, nullptr) == 0 && setuid(static_cast<uid_t>(uid)) == 0 && getuid() != 0) {
      kill(-1, SIGKILL);
    }
    _exit(0);
  }
  if (pid > 0) waitpid(pid, nullptr, 0);
}

}  // namespace

absl::StatusOr<AgentResult> RunAgentProcess(const AgentLaunch& launch, const std::string& cwd,
                                            const AgentProcessOptions& options,
                                            const AgentLineSink& sink) {
  if (launch.argv.empty()) return absl::InvalidArgumentError("empty agent command");
  boost::filesystem::path exe(launch.argv[0]);
  if (launch.argv[0].find('/') == std::string::npos) {
    std::vector<boost::filesystem::path> dirs;
    auto it = launch.env.find("PATH");
    std::string path = it != launch.env.end() ? it->second : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= path.size()) {
      size_t end = path.find(':', start);
      if (end == std::string::npos) end = path.size();
      if (end > start) dirs.emplace_back(path.substr(start, end - start));
      start = end + 1;
    }
    exe = bp::search_path(launch.argv[0], dirs);
    if (exe.empty()) {
      return absl::NotFoundError(absl::StrCat("agent binary not found on PATH: ", launch.argv[0]));
    }
  }
  std::vector<std::string> args(launch.argv.begin() + 1, launch.argv.end());
  bp::environment env;
  for (const auto& [k, v] : launch.env) env[k] = v;

  LineCollector collector(sink, options.tail_lines);
  bp::ipstream out_stream;
  bp::ipstream err_stream;
  std::error_code ec;
  const absl::Time start = absl::Now();
  std::unique_ptr<bp::child> child_ptr;
  try {
    child_ptr = std::make_unique<bp::child>(
        exe, bp::args(args), bp::env(env), bp::start_dir(cwd), bp::std_in < bp::null,
        bp::std_out > out_stream, bp::std_err > err_stream, ec,
        bp::extend::on_exec_setup = [uid = launch.uid, gid = launch.gid](auto&) {
          // Own process group so the deadline can kill everything the agent spawned.
          setpgid(0, 0);
          if (uid >= 0) {
            // Another uid than the runner's: no capabilities left, no access to the runner's
            // memory or channel directory. Any failure here must not run the agent as root.
            if (setgroups(0, nullptr) != 0 || setgid(static_cast<gid_t>(gid)) != 0 ||
                setuid(static_cast<uid_t>(uid)) != 0 || getuid() == 0) {
              static const char kMessage[] = "fastest-runner: cannot switch to the agent user\n";
              (void)!write(2, kMessage, sizeof(kMessage) - 1);
              _exit(126);
            }
            // Under memory pressure the agent goes first, not the runner.
            int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
            if (fd >= 0) {
              (void)!write(fd, "1000", 4);
              close(fd);
            }
          }
        });
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start agent ", exe.string(), ": ", e.what()));
  }
  bp::child& child = *child_ptr;
  if (ec || !child.valid()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start agent ", exe.string(), ": ", ec.message()));
  }
  const pid_t pgid = child.id();
  std::thread out_reader([&] { ReadLines(out_stream, false, collector); });
  std::thread err_reader([&] { ReadLines(err_stream, true, collector); });

  AgentResult result;
  const absl::Time deadline = start + options.timeout;
  bool term_sent = false;
  absl::Time kill_at = absl::InfiniteFuture();
  std::error_code wait_ec;
  // A pidfd becomes readable when the agent exits: a short agent ends the wait at once instead of
  // at the next 20 ms tick (which remains the pace of deadline and stop checks).
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pgid, 0));
  while (child.running(wait_ec)) {
    absl::Time now = absl::Now();
    bool stop_requested = options.stop != nullptr && options.stop->load();
    if (!term_sent && (now >= deadline || stop_requested)) {
      if (stop_requested) {
        result.stopped = true;
      } else {
        result.timed_out = true;
      }
      term_sent = true;
      kill(-pgid, SIGTERM);
      kill_at = now + options.kill_grace;
    } else if (term_sent && now >= kill_at) {
      kill(-pgid, SIGKILL);
      kill_at = absl::InfiniteFuture();
    }
    if (pidfd >= 0) {
      struct pollfd exited = {pidfd, POLLIN, 0};
      poll(&exited, 1, 20);
    } else {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  if (pidfd >= 0) close(pidfd);
  // Leftover background processes of the group would keep the pipes open.
  kill(-pgid, SIGKILL);
  // Processes that left the group (setsid) too: everything running as the agent's uid.
  if (launch.uid >= 0) KillAllProcessesOf(launch.uid);
  out_reader.join();
  err_reader.join();
  int native = child.native_exit_code();
  if (WIFEXITED(native)) {
    result.exit_code = WEXITSTATUS(native);
  } else if (WIFSIGNALED(native)) {
    result.term_signal = WTERMSIG(native);
    result.exit_code = -1;
  } else {
    result.exit_code = child.exit_code();
  }
  result.tail = collector.Tail();
  result.duration = absl::Now() - start;
  return result;
}

}  // namespace fastest::runner
