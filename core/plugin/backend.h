// File: core/plugin/backend.h
//
// The backend plugin loader and facade. `--backend=<flag>` becomes a SandboxBackend:
//
//   "docker" | "podman" | "cloudflare" | "<name>"  (letters, digits, '_' and '-')
//       -> libfastest_backend_<name>.so, searched in order in
//            1. the directory of the running binary <bindir> (dirname of /proc/self/exe),
//            2. each directory of FASTEST_PLUGIN_PATH (colon-separated, empty entries skipped),
//            3. <bindir>/../lib/fastest (an install prefix, tools/install.sh),
//            4. Bazel runfiles: $RUNFILES_DIR/fastest/backends/<name>, then
//               <binary>.runfiles/fastest/backends/<name> (`bazel run`, bazel-bin), then the
//               entry in $RUNFILES_MANIFEST_FILE or <binary>.runfiles_manifest,
//            5. <bindir>/../backends/<name> (the bazel-bin tree without runfiles);
//          duplicates are searched once;
//   any value containing '/' (e.g. "/opt/acme/libfastest_backend_acme.so", "./x.so")
//       -> that file, as given.
//
// Loading validates the plugin fully before it is used (see backend_abi.h): it must be a loadable
// shared library exporting `fastest_backend_entry`, the entry must return a table for ABI major 1,
// the table must be at least FASTEST_BACKEND_API_V1_0_SIZE bytes and every 1.0 slot non-NULL. Each
// failure is a specific Status naming the file and what to do; nothing crashes:
//   kInvalidArgument     empty flag, or a name with characters other than [A-Za-z0-9_-]
//   kNotFound            the file does not exist (for a name: every place searched is listed)
//   kFailedPrecondition  not a shared library (dlerror text included), entry symbol missing, entry
//                        returned NULL, ABI major mismatch, table too small, required slot NULL
//
// The facade converts every call through the C table: zeroed fastest_error, outputs released with
// the plugin's free_string, codes mapped 1:1 to absl::StatusCode, messages prefixed with
// "<backend name>: <slot>: ". The loaded library stays mapped while any backend opened from it
// exists (it is never unloaded, see backend.cc).
//
// Example:
//   FASTEST_ASSIGN_OR_RETURN(std::unique_ptr<SandboxBackend> backend,
//                            OpenBackend("docker", {{"schema", 1}}));
//   FASTEST_ASSIGN_OR_RETURN(SandboxInfo sandbox, backend->CreateSandbox(spec));
//   FASTEST_ASSIGN_OR_RETURN(WaitResult done, backend->Wait(sandbox.id, absl::Minutes(30)));
#ifndef FASTEST_CORE_PLUGIN_BACKEND_H_
#define FASTEST_CORE_PLUGIN_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/abi/backend_abi.h"
#include "core/plugin/sandbox_backend.h"
#include "nlohmann/json.hpp"

namespace fastest::core {

// BackendPlugin: one loaded and validated plugin library. Thread-safe; share it freely.
class BackendPlugin : public std::enable_shared_from_this<BackendPlugin> {
 public:
  // Load: dlopen `path` and validate it (errors as described at the top of this file).
  static absl::StatusOr<std::shared_ptr<BackendPlugin>> Load(const std::string& path);

  // Open: a new backend instance from `config` (the plugin's `open` slot). The instance keeps
  // this plugin alive. Errors are the plugin's, e.g. kInvalidArgument for a bad config.
  absl::StatusOr<std::unique_ptr<SandboxBackend>> Open(const nlohmann::json& config);

  const std::string& path() const { return path_; }
  const std::string& name() const { return name_; }        // the table's `name`
  const std::string& version() const { return version_; }  // the table's `version`
  uint32_t abi_minor() const { return table_.abi_minor; }
  uint32_t capabilities() const { return table_.capabilities; }  // FASTEST_CAP_* bits

  ~BackendPlugin();
  BackendPlugin(const BackendPlugin&) = delete;
  BackendPlugin& operator=(const BackendPlugin&) = delete;

 private:
  BackendPlugin() = default;

  std::string path_;
  std::string name_;
  std::string version_;
  void* handle_ = nullptr;
  // A zero-filled copy of the plugin's table: slots beyond its struct_size read as NULL.
  fastest_backend_api_v1 table_{};
};

// BackendSearchContext: what the search for a bare name depends on. FromProcess() reads
// /proc/self/exe and the environment; tests inject a binary path to check a layout.
struct BackendSearchContext {
  std::string binary_path;        // absolute path of the running binary ("" if unknown)
  std::string plugin_path;        // FASTEST_PLUGIN_PATH
  std::string runfiles_dir;       // RUNFILES_DIR
  std::string runfiles_manifest;  // RUNFILES_MANIFEST_FILE

  static BackendSearchContext FromProcess();
};

// BackendSearchDirs: where the bare backend `name` is looked up, in order (see the top of this
// file). Lists directories whether or not they exist; a runfiles manifest contributes a directory
// only when it has an entry for the plugin.
std::vector<std::string> BackendSearchDirs(
    absl::string_view name,
    const BackendSearchContext& context = BackendSearchContext::FromProcess());

// ResolveBackendPath: the file `backend_flag` designates (see the top of this file).
absl::StatusOr<std::string> ResolveBackendPath(
    absl::string_view backend_flag,
    const BackendSearchContext& context = BackendSearchContext::FromProcess());

// LoadBackendPlugin: ResolveBackendPath + BackendPlugin::Load.
absl::StatusOr<std::shared_ptr<BackendPlugin>> LoadBackendPlugin(absl::string_view backend_flag);

// OpenBackend: LoadBackendPlugin + Open(config). What server, runner and CLI call.
absl::StatusOr<std::unique_ptr<SandboxBackend>> OpenBackend(absl::string_view backend_flag,
                                                            const nlohmann::json& config);

}  // namespace fastest::core

#endif  // FASTEST_CORE_PLUGIN_BACKEND_H_
