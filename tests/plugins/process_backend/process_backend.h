// File: tests/plugins/process_backend/process_backend.h
//
// ProcessBackend: a real SandboxBackend that runs each sandbox's command as a local child process
// instead of a container, for tests that need real processes but no container engine (server,
// runner end-to-end). Exported as libfastest_backend_process.so (FASTEST_DEFINE_BACKEND "process").
// It is NOT an isolation boundary; never use it for untrusted code.
//
// Config (open): {"schema":1,"state_dir":"/some/dir"}   state_dir is optional; default
//   $FASTEST_PROCESS_BACKEND_DIR, else $TEST_TMPDIR/fastest-process-backend, else
//   /tmp/fastest-process-backend-<uid>. Instances sharing a state_dir see the same sandboxes.
//
// A sandbox is <state_dir>/<id>/ with
//   state.json  {"schema":1,"id","name","image","labels","pid","supervisor_pid","created_at"}
//               (never the env: it may hold secrets)
//   log         stdout/stderr records in order (1 byte stream, 4 bytes LE length, data)
//   exit_code   written once the command exited (decimal; 128+N when killed by signal N)
//   work/       the working directory when spec.working_dir does not exist on this machine
//
// Semantics, container-like:
//   - command[0] is looked up in the sandbox PATH unless it contains '/'; not found is
//     kFailedPrecondition at create time.
//   - env is exactly spec.env, plus PATH (the host's, when spec.env has none) and HOME (work/,
//     when spec.env has none).
//   - the command runs in its own process group under a small supervisor process (double-forked,
//     so the host never has to reap it and sandboxes survive a host restart); the supervisor
//     captures output, enforces spec.timeout_ms (SIGKILL to the group -> exit 137), kills the
//     rest of the group when the main process exits, and writes exit_code.
//   - network_mode and resource limits are accepted and ignored (the process shares the host).
//   - Kill signals the whole process group; Remove kills (SIGKILL) and deletes the directory.
#ifndef FASTEST_TESTS_PLUGINS_PROCESS_BACKEND_PROCESS_BACKEND_H_
#define FASTEST_TESTS_PLUGINS_PROCESS_BACKEND_PROCESS_BACKEND_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/plugin/sandbox_backend.h"
#include "nlohmann/json.hpp"

namespace fastest::backends::process {

class ProcessBackend : public core::SandboxBackend {
 public:
  // Create: validates config and creates the state directory (kInvalidArgument / kInternal).
  static absl::StatusOr<std::unique_ptr<ProcessBackend>> Create(const nlohmann::json& config);

  absl::StatusOr<nlohmann::json> Describe() override;
  absl::StatusOr<core::SandboxInfo> CreateSandbox(const core::SandboxSpec& spec) override;
  absl::StatusOr<core::WaitResult> Wait(const std::string& id, absl::Duration timeout) override;
  absl::Status ReadLogs(const std::string& id, const core::LogOptions& options,
                        std::function<bool(int stream, absl::string_view data)> sink) override;
  absl::Status Kill(const std::string& id, int signal) override;
  absl::Status Remove(const std::string& id) override;
  absl::StatusOr<std::vector<core::SandboxInfo>> List(
      const std::map<std::string, std::string>& labels) override;
  const std::string& name() const override { return name_; }

  const std::string& state_dir() const { return state_dir_; }

 private:
  // What state.json holds (plus what the sandbox dir says about its exit).
  struct Record {
    std::string id, name, image;
    std::map<std::string, std::string> labels;
    int pid = 0;             // the command; also its process group id
    int supervisor_pid = 0;  // the process that writes exit_code
  };

  explicit ProcessBackend(std::string state_dir) : state_dir_(std::move(state_dir)) {}

  std::string SandboxDir(const std::string& id) const;
  absl::StatusOr<Record> LoadRecord(const std::string& id);
  absl::Status SaveRecord(const Record& record);
  // The exit code once the sandbox exited; nullopt while it runs. `lost` is set when the
  // supervisor vanished without writing one (killed from outside).
  std::optional<int> ExitCode(const Record& record, bool* lost) const;
  core::SandboxInfo Info(const Record& record) const;

  const std::string name_ = "process";
  const std::string state_dir_;
  absl::Mutex mu_;
  std::map<std::string, Record> records_ ABSL_GUARDED_BY(mu_);  // cache of state.json files
};

}  // namespace fastest::backends::process

#endif  // FASTEST_TESTS_PLUGINS_PROCESS_BACKEND_PROCESS_BACKEND_H_
