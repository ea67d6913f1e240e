// File: core/plugin/sandbox_backend.h
//
// SandboxBackend: the one C++ interface for "a place that runs sandboxes". Two sides use it:
//   - the host: OpenBackend() (core/plugin/backend.h) returns an implementation that forwards every
//     call through a loaded plugin's C table (core/abi/backend_abi.h);
//   - backend authors: implement it in C++ and export it with FASTEST_DEFINE_BACKEND
//     (core/sdk/backend_sdk.h), which turns it back into the C table.
// Server and runner code only ever see this interface and absl::Status results.
//
// Threading: every method may be called concurrently from several threads; methods may block, so
// call them from a worker pool, never from a network I/O thread.
//
// Status codes (same meaning on both sides of the ABI):
//   kUnavailable         engine not reachable (daemon down) - retrying may help
//   kFailedPrecondition  image missing, bad credentials - fix the setup first
//   kInvalidArgument     malformed config/spec
//   kNotFound            unknown sandbox id
//   kPermissionDenied    no access to the engine
//   kAlreadyExists       name conflict
//   kInternal            anything else
#ifndef FASTEST_CORE_PLUGIN_SANDBOX_BACKEND_H_
#define FASTEST_CORE_PLUGIN_SANDBOX_BACKEND_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/plugin/capabilities.h"
#include "core/plugin/sandbox_types.h"
#include "core/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace fastest::core {

class SandboxBackend {
 public:
  virtual ~SandboxBackend() = default;

  // Describe: capabilities and health, the "capabilities" document of backend_abi.h
  // ({"schema":1,"name":...,"log_streaming":bool,"health":"ok"|"<reason>",...}).
  virtual absl::StatusOr<nlohmann::json> Describe() = 0;

  // Capabilities: Describe() as the typed BackendCapabilities (core/plugin/capabilities.h). The
  // plugin facade (OpenBackend) also checks the document against the plugin's static
  // FASTEST_CAP_* bits and fails when they disagree.
  virtual absl::StatusOr<BackendCapabilities> Capabilities() {
    FASTEST_ASSIGN_OR_RETURN(nlohmann::json doc, Describe());
    return ParseBackendCapabilities(doc);
  }

  // CreateSandbox: create AND start a sandbox. Returns its id (opaque) and state.
  virtual absl::StatusOr<SandboxInfo> CreateSandbox(const SandboxSpec& spec) = 0;

  // Wait: block until the sandbox exits or `timeout` passes. absl::ZeroDuration() checks once;
  // absl::InfiniteDuration() waits forever. A passed deadline is NOT an error: OK with
  // exited=false. NotFound for an unknown id.
  virtual absl::StatusOr<WaitResult> Wait(const std::string& id, absl::Duration timeout) = 0;

  // ReadLogs: deliver output in order to `sink(stream, data)` (stream kStdoutStream=1 or
  // kStderrStream=2; `data` is valid only during the call). With options.follow, blocks until the
  // sandbox exits. The sink returns false to stop early (ReadLogs then returns OK).
  virtual absl::Status ReadLogs(const std::string& id, const LogOptions& options,
                                std::function<bool(int stream, absl::string_view data)> sink) = 0;

  // Kill: send `signal` (9, 15, ...) to the sandbox's main process. Already exited is OK.
  virtual absl::Status Kill(const std::string& id, int signal) = 0;

  // Remove: delete the sandbox (killing it first if it runs). NotFound for an unknown id.
  virtual absl::Status Remove(const std::string& id) = 0;

  // List: every sandbox carrying all of `labels` (empty = all sandboxes of this backend).
  virtual absl::StatusOr<std::vector<SandboxInfo>> List(
      const std::map<std::string, std::string>& labels) = 0;

  // name: the backend's short name ("docker", "process", ...).
  virtual const std::string& name() const = 0;
};

}  // namespace fastest::core

#endif  // FASTEST_CORE_PLUGIN_SANDBOX_BACKEND_H_
