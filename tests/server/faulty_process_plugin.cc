// A test backend plugin (libfastest_backend_faulty_process.so): the process backend with faults
// the dispatcher must survive.
//
// Config: the process backend's ("state_dir"), plus
//   "hang_follow": "after_exit"  a FOLLOWING ReadLogs delivers the output while the sandbox runs,
//                                then never returns (an engine log stream that is never closed
//                                after its container is gone; seen once with Podman)
//                  "always"      a following ReadLogs blocks at once and delivers nothing
//                  absent/"none" normal
//   "wait_error": "<message>"    every Wait fails with Unavailable(<message>) once the sandbox
//                                runs (a backend that lost its engine/bridge)
// One-shot reads, Kill, Remove and List always work.
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "core/sdk/backend_sdk.h"
#include "tests/plugins/process_backend/process_backend.h"

namespace {

using fastest::backends::process::ProcessBackend;

class FaultyProcessBackend : public fastest::core::SandboxBackend {
 public:
  FaultyProcessBackend(std::unique_ptr<ProcessBackend> inner, std::string hang_follow,
                       std::string wait_error)
      : inner_(std::move(inner)),
        hang_follow_(std::move(hang_follow)),
        wait_error_(std::move(wait_error)) {}

  absl::StatusOr<nlohmann::json> Describe() override {
    auto d = inner_->Describe();
    if (d.ok()) (*d)["name"] = name_;
    return d;
  }
  absl::StatusOr<fastest::core::SandboxInfo> CreateSandbox(
      const fastest::core::SandboxSpec& spec) override {
    return inner_->CreateSandbox(spec);
  }
  absl::StatusOr<fastest::core::WaitResult> Wait(const std::string& id,
                                                 absl::Duration timeout) override {
    if (!wait_error_.empty()) return absl::UnavailableError(wait_error_);
    return inner_->Wait(id, timeout);
  }
  absl::Status ReadLogs(const std::string& id, const fastest::core::LogOptions& options,
                        std::function<bool(int stream, absl::string_view data)> sink) override {
    if (!options.follow || hang_follow_.empty() || hang_follow_ == "none") {
      return inner_->ReadLogs(id, options, sink);
    }
    if (hang_follow_ == "after_exit") inner_->ReadLogs(id, options, sink).IgnoreError();
    // Never notified, and never destroyed (so the backend can be closed while threads wait
    // here): the stream "stays open" forever and delivers nothing more.
    static absl::Notification* const never = new absl::Notification();
    never->WaitForNotification();
    return absl::OkStatus();
  }
  absl::Status Kill(const std::string& id, int signal) override { return inner_->Kill(id, signal); }
  absl::Status Remove(const std::string& id) override { return inner_->Remove(id); }
  absl::StatusOr<std::vector<fastest::core::SandboxInfo>> List(
      const std::map<std::string, std::string>& labels) override {
    return inner_->List(labels);
  }
  const std::string& name() const override { return name_; }

 private:
  const std::string name_ = "faulty_process";
  std::unique_ptr<ProcessBackend> inner_;
  const std::string hang_follow_;
  const std::string wait_error_;
};

absl::StatusOr<std::unique_ptr<fastest::core::SandboxBackend>> MakeFaultyProcessBackend(
    const nlohmann::json& config) {
  if (!config.is_object()) return absl::InvalidArgumentError("faulty_process: config must be an object");
  nlohmann::json inner_config = config;
  std::string hang_follow, wait_error;
  for (auto [key, out] : {std::pair<const char*, std::string*>{"hang_follow", &hang_follow},
                          std::pair<const char*, std::string*>{"wait_error", &wait_error}}) {
    if (!inner_config.contains(key)) continue;
    if (!inner_config[key].is_string()) {
      return absl::InvalidArgumentError(std::string("faulty_process: ") + key + " must be a string");
    }
    *out = inner_config[key].get<std::string>();
    inner_config.erase(key);
  }
  if (!hang_follow.empty() && hang_follow != "none" && hang_follow != "after_exit" &&
      hang_follow != "always") {
    return absl::InvalidArgumentError("faulty_process: hang_follow is none, after_exit or always");
  }
  auto inner = ProcessBackend::Create(inner_config);
  if (!inner.ok()) return inner.status();
  return std::unique_ptr<fastest::core::SandboxBackend>(
      new FaultyProcessBackend(std::move(*inner), hang_follow, wait_error));
}

}  // namespace

FASTEST_DEFINE_BACKEND("faulty_process", "0.1.0", FASTEST_CAP_LOG_STREAMING,
                       MakeFaultyProcessBackend)
