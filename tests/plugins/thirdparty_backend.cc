// libfastest_backend_thirdparty.so: an in-memory backend written only against the public SDK, the
// way an outside author would write one. Built as its own .so and linked into nothing; the loader
// test loads it by path. Sandboxes are simulated by command[0]:
//   ["echo", args...]  stdout "args...\n", exits 0
//   ["fail", "N"]      stderr "failing\n", exits N
//   ["hang"]           runs until Kill(sig) -> exit 128+sig
//   ["throw"]          CreateSandbox throws (proves the SDK turns exceptions into errors)
// Config: {"fail_open": true} makes open fail with FailedPrecondition.
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "core/sdk/backend_sdk.h"

namespace thirdparty {
namespace {

using fastest::core::LogOptions;
using fastest::core::SandboxInfo;
using fastest::core::SandboxSpec;
using fastest::core::WaitResult;

struct Sandbox {
  SandboxInfo info;
  std::vector<std::pair<int, std::string>> logs;  // (stream, line)
};

class InMemoryBackend : public fastest::core::SandboxBackend {
 public:
  absl::StatusOr<nlohmann::json> Describe() override {
    absl::MutexLock lock(&mu_);
    return nlohmann::json{{"network_modes", {"none"}},
                          {"default_network_mode", "none"},
                          {"max_parallel_sandboxes", 0},
                          {"sandboxes", sandboxes_.size()}};
  }

  absl::StatusOr<SandboxInfo> CreateSandbox(const SandboxSpec& spec) override {
    if (spec.command.empty()) return absl::InvalidArgumentError("command is empty");
    const std::string& program = spec.command[0];
    if (program == "throw") throw std::runtime_error("thirdparty: asked to throw");
    absl::MutexLock lock(&mu_);
    for (const auto& [id, sandbox] : sandboxes_) {
      if (!spec.name.empty() && sandbox.info.name == spec.name) {
        return absl::AlreadyExistsError(absl::StrCat("sandbox name ", spec.name, " is taken"));
      }
    }
    Sandbox sandbox;
    sandbox.info.id = absl::StrCat("mem-", ++next_id_);
    sandbox.info.name = spec.name;
    sandbox.info.labels = spec.labels;
    std::vector<std::string> args(spec.command.begin() + 1, spec.command.end());
    if (program == "echo") {
      sandbox.logs.push_back({1, absl::StrCat(absl::StrJoin(args, " "), "\n")});
      Exit(sandbox, 0);
    } else if (program == "fail") {
      int code = 1;
      if (!args.empty() && !absl::SimpleAtoi(args[0], &code)) {
        return absl::InvalidArgumentError("fail: exit code must be an integer");
      }
      sandbox.logs.push_back({2, "failing\n"});
      Exit(sandbox, code);
    } else if (program == "hang") {
      sandbox.info.state = "running";
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown command ", program));
    }
    SandboxInfo info = sandbox.info;
    sandboxes_[info.id] = std::move(sandbox);
    return info;
  }

  absl::StatusOr<WaitResult> Wait(const std::string& id, absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    absl::Time deadline =
        timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
    while (true) {
      auto it = sandboxes_.find(id);
      if (it == sandboxes_.end()) return absl::NotFoundError(absl::StrCat("no sandbox ", id));
      if (it->second.info.state == "exited") return WaitResult{true, it->second.info.exit_code};
      if (cv_.WaitWithDeadline(&mu_, deadline)) return WaitResult{};
    }
  }

  absl::Status ReadLogs(const std::string& id, const LogOptions& options,
                        std::function<bool(int, absl::string_view)> sink) override {
    absl::MutexLock lock(&mu_);
    size_t next = 0;
    bool first = true;
    while (true) {
      auto it = sandboxes_.find(id);
      if (it == sandboxes_.end()) return absl::NotFoundError(absl::StrCat("no sandbox ", id));
      const auto& logs = it->second.logs;
      if (first && options.tail > 0 && logs.size() > static_cast<size_t>(options.tail)) {
        next = logs.size() - options.tail;
      }
      first = false;
      for (; next < logs.size(); ++next) {
        int stream = logs[next].first;
        if ((stream == 1 && !options.include_stdout) || (stream == 2 && !options.include_stderr)) {
          continue;
        }
        if (!sink(stream, logs[next].second)) return absl::OkStatus();
      }
      if (!options.follow || it->second.info.state == "exited") return absl::OkStatus();
      cv_.Wait(&mu_);
    }
  }

  absl::Status Kill(const std::string& id, int signal) override {
    absl::MutexLock lock(&mu_);
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return absl::NotFoundError(absl::StrCat("no sandbox ", id));
    if (it->second.info.state != "exited") {
      it->second.logs.push_back({2, absl::StrCat("killed by signal ", signal, "\n")});
      Exit(it->second, 128 + signal);
      cv_.SignalAll();
    }
    return absl::OkStatus();
  }

  absl::Status Remove(const std::string& id) override {
    absl::MutexLock lock(&mu_);
    if (sandboxes_.erase(id) == 0) return absl::NotFoundError(absl::StrCat("no sandbox ", id));
    cv_.SignalAll();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<SandboxInfo>> List(
      const std::map<std::string, std::string>& labels) override {
    absl::MutexLock lock(&mu_);
    std::vector<SandboxInfo> out;
    for (const auto& [id, sandbox] : sandboxes_) {
      if (fastest::core::LabelsMatch(sandbox.info.labels, labels)) out.push_back(sandbox.info);
    }
    return out;
  }

  const std::string& name() const override { return name_; }

 private:
  static void Exit(Sandbox& sandbox, int code) {
    sandbox.info.state = "exited";
    sandbox.info.exit_code = code;
  }

  const std::string name_ = "thirdparty";
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::map<std::string, Sandbox> sandboxes_;
  int next_id_ = 0;
};

absl::StatusOr<std::unique_ptr<fastest::core::SandboxBackend>> MakeInMemory(
    const nlohmann::json& config) {
  if (config.value("fail_open", false)) {
    return absl::FailedPreconditionError("thirdparty: configured to fail (fail_open)");
  }
  return std::make_unique<InMemoryBackend>();
}

}  // namespace
}  // namespace thirdparty

FASTEST_DEFINE_BACKEND("thirdparty", "1.2.3", FASTEST_CAP_LOG_STREAMING, thirdparty::MakeInMemory)
