#include "core/plugin/backend.h"

#include <dlfcn.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "core/plugin/abi_status.h"
#include "core/status/status_macros.h"

namespace fastest::core {
namespace {

constexpr char kPluginPathEnv[] = "FASTEST_PLUGIN_PATH";
// The workspace name in runfiles paths (WORKSPACE: workspace(name = "fastest")).
constexpr char kRunfilesWorkspace[] = "fastest";
constexpr char kRebuildHint[] =
    "rebuild the plugin against core/abi/backend_abi.h 1.x with FASTEST_DEFINE_BACKEND "
    "(core/sdk/backend_sdk.h)";

// dlerror() state is per thread in glibc, but the "clear, call, read" sequence must not interleave
// with another loader call on the same thread's behalf; one lock keeps loading simple.
absl::Mutex load_mutex(absl::kConstInit);

std::string DlError() {
  const char* text = dlerror();
  return text != nullptr ? std::string(text) : std::string("unknown dlopen error");
}

bool IsValidBackendName(absl::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::string BinaryPath() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// ParentDir("/a/b") == "/a", ParentDir("/a") == "/", "" when there is no '/'.
std::string ParentDir(absl::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return "";
  return slash == 0 ? "/" : std::string(path.substr(0, slash));
}

std::string JoinPath(const std::string& dir, const std::string& file) {
  if (!dir.empty() && dir.back() == '/') return dir + file;
  return dir + "/" + file;
}

// ---- the facade ------------------------------------------------------------------------------

// A plugin-owned output string, released with the plugin's free_string.
class PluginString {
 public:
  explicit PluginString(void (*free_string)(char*)) : free_string_(free_string) {}
  ~PluginString() {
    if (value_ != nullptr) free_string_(value_);
  }
  PluginString(const PluginString&) = delete;
  PluginString& operator=(const PluginString&) = delete;

  char** out() { return &value_; }
  const char* get() const { return value_; }

 private:
  void (*free_string_)(char*);
  char* value_ = nullptr;
};

// What read_logs' C callback needs: the C++ sink, and any exception it threw (which must not
// unwind through the plugin's C frames).
struct LogSinkContext {
  std::function<bool(int, absl::string_view)>* sink;
  std::string sink_error;
};

int32_t LogSinkTrampoline(void* user_data, int32_t stream, const char* data, size_t size) {
  auto* context = static_cast<LogSinkContext*>(user_data);
  try {
    bool keep_going = (*context->sink)(static_cast<int>(stream),
                                       absl::string_view(data != nullptr ? data : "", size));
    return keep_going ? 0 : 1;
  } catch (const std::exception& e) {
    context->sink_error = e.what();
  } catch (...) {
    context->sink_error = "unknown exception";
  }
  return 1;
}

class PluginBackend final : public SandboxBackend {
 public:
  PluginBackend(std::shared_ptr<const BackendPlugin> plugin, const fastest_backend_api_v1& table,
                fastest_backend* instance)
      : plugin_(std::move(plugin)), table_(table), instance_(instance), name_(plugin_->name()) {}

  ~PluginBackend() override { table_.close(instance_); }

  absl::StatusOr<nlohmann::json> Describe() override {
    fastest_error err{};
    PluginString out(table_.free_string);
    int32_t rc = table_.describe(instance_, out.out(), &err);
    FASTEST_RETURN_IF_ERROR(SlotStatus("describe", rc, err));
    return ParseOutput("describe", out);
  }

  absl::StatusOr<BackendCapabilities> Capabilities() override {
    FASTEST_ASSIGN_OR_RETURN(nlohmann::json doc, Describe());
    absl::StatusOr<BackendCapabilities> caps = ParseBackendCapabilities(doc, plugin_->capabilities());
    if (!caps.ok()) return Annotate(caps.status(), absl::StrCat(name_, " (", plugin_->path(), ")"));
    return caps;
  }

  absl::StatusOr<SandboxInfo> CreateSandbox(const SandboxSpec& spec) override {
    std::string spec_json = DumpJson(SandboxSpecToJson(spec));
    fastest_error err{};
    PluginString out(table_.free_string);
    int32_t rc = table_.create_sandbox(instance_, spec_json.c_str(), out.out(), &err);
    FASTEST_RETURN_IF_ERROR(SlotStatus("create_sandbox", rc, err));
    FASTEST_ASSIGN_OR_RETURN(nlohmann::json j, ParseOutput("create_sandbox", out));
    return WithContext("create_sandbox", SandboxInfoFromJson(j));
  }

  absl::StatusOr<WaitResult> Wait(const std::string& id, absl::Duration timeout) override {
    fastest_error err{};
    PluginString out(table_.free_string);
    int32_t rc = table_.wait_sandbox(instance_, id.c_str(), TimeoutMs(timeout), out.out(), &err);
    if (rc == FASTEST_DEADLINE_EXCEEDED) return WaitResult{};  // deadline first: not an error
    FASTEST_RETURN_IF_ERROR(SlotStatus("wait_sandbox", rc, err));
    FASTEST_ASSIGN_OR_RETURN(nlohmann::json j, ParseOutput("wait_sandbox", out));
    return WithContext("wait_sandbox", WaitResultFromJson(j));
  }

  absl::Status ReadLogs(const std::string& id, const LogOptions& options,
                        std::function<bool(int stream, absl::string_view data)> sink) override {
    if (!sink) return absl::InvalidArgumentError("ReadLogs: sink is empty");
    std::string options_json = DumpJson(LogOptionsToJson(options));
    LogSinkContext context{&sink, ""};
    fastest_error err{};
    int32_t rc = table_.read_logs(instance_, id.c_str(), options_json.c_str(), &LogSinkTrampoline,
                                  &context, &err);
    if (!context.sink_error.empty()) {
      return absl::InternalError(absl::StrCat("read_logs: log sink threw: ", context.sink_error));
    }
    return SlotStatus("read_logs", rc, err);
  }

  absl::Status Kill(const std::string& id, int signal) override {
    fastest_error err{};
    int32_t rc = table_.kill_sandbox(instance_, id.c_str(), signal, &err);
    return SlotStatus("kill_sandbox", rc, err);
  }

  absl::Status Remove(const std::string& id) override {
    fastest_error err{};
    int32_t rc = table_.remove_sandbox(instance_, id.c_str(), &err);
    return SlotStatus("remove_sandbox", rc, err);
  }

  absl::StatusOr<std::vector<SandboxInfo>> List(
      const std::map<std::string, std::string>& labels) override {
    std::string selector = DumpJson(LabelSelectorToJson(labels));
    fastest_error err{};
    PluginString out(table_.free_string);
    int32_t rc = table_.list_sandboxes(instance_, selector.c_str(), out.out(), &err);
    FASTEST_RETURN_IF_ERROR(SlotStatus("list_sandboxes", rc, err));
    FASTEST_ASSIGN_OR_RETURN(nlohmann::json j, ParseOutput("list_sandboxes", out));
    return WithContext("list_sandboxes", SandboxListFromJson(j));
  }

  const std::string& name() const override { return name_; }

 private:
  // -1 = no deadline (ABI), otherwise milliseconds rounded up so a short timeout never becomes 0.
  static int64_t TimeoutMs(absl::Duration timeout) {
    if (timeout == absl::InfiniteDuration()) return -1;
    if (timeout <= absl::ZeroDuration()) return 0;
    if (timeout >= absl::Hours(24 * 365 * 100)) return -1;  // effectively forever
    return absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)));
  }

  absl::Status SlotStatus(const char* slot, int32_t rc, const fastest_error& err) const {
    if (rc == FASTEST_OK) return absl::OkStatus();
    // The plugin may have filled the buffer without a terminator; never read past it.
    std::string message(err.message, strnlen(err.message, sizeof(err.message)));
    if (message.empty()) message = absl::StrCat("failed with code ", rc, " and no message");
    if (StatusCodeFromAbi(rc) == absl::StatusCode::kUnknown && rc != FASTEST_UNKNOWN) {
      message = absl::StrCat(message, " (plugin returned unknown code ", rc, ")");
    }
    return absl::Status(StatusCodeFromAbi(rc), absl::StrCat(name_, ": ", slot, ": ", message));
  }

  absl::StatusOr<nlohmann::json> ParseOutput(const char* slot, const PluginString& out) const {
    if (out.get() == nullptr) {
      return absl::InternalError(
          absl::StrCat(name_, ": ", slot, ": plugin returned OK without an output document"));
    }
    absl::StatusOr<nlohmann::json> j = ParseJsonObject(out.get(), "plugin output");
    if (!j.ok())
      return absl::InternalError(absl::StrCat(name_, ": ", slot, ": ", j.status().message()));
    return j;
  }

  template <typename T>
  absl::StatusOr<T> WithContext(const char* slot, absl::StatusOr<T> value) const {
    if (value.ok()) return value;
    return absl::InternalError(absl::StrCat(
        name_, ": ", slot, ": plugin returned a bad document: ", value.status().message()));
  }

  std::shared_ptr<const BackendPlugin> plugin_;  // keeps the library (and table_) alive
  fastest_backend_api_v1 table_;
  fastest_backend* instance_;
  std::string name_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<BackendPlugin>> BackendPlugin::Load(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("backend plugin ", path, ": ", strerror(errno), "; check the --backend path"));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("backend plugin ", path, ": not a regular file; pass the .so file itself"));
  }

  absl::MutexLock lock(&load_mutex);
  dlerror();  // clear any stale error
  // RTLD_NOW: resolve every symbol now, so a plugin with a missing dependency fails here with a
  //   clear dlerror instead of aborting the process at its first call (dlopen(3)).
  // RTLD_LOCAL: the plugin's symbols (its own copies of Abseil, JSON, ...) do not become visible
  //   to later plugins, so two plugins built against different library versions cannot collide.
  // RTLD_NODELETE: never unmap the code. A plugin's threads, thread_local destructors or atexit
  //   handlers may still run after close(); unloading would turn that into a crash. Mapped code
  //   costs only address space.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "backend plugin ", path, ": not a loadable shared library: ", DlError(),
        "; pass a fastest backend .so built for this platform (a libfastest_backend_<name>.so)"));
  }
  auto fail = [&](absl::Status status) {
    dlclose(handle);
    return status;
  };

  dlerror();
  void* symbol = dlsym(handle, FASTEST_BACKEND_ENTRY_SYMBOL);
  if (symbol == nullptr) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("backend plugin ", path, ": does not export the entry symbol ",
                     FASTEST_BACKEND_ENTRY_SYMBOL, " (", DlError(),
                     "); it is not a fastest backend: ", kRebuildHint)));
  }
  auto entry = reinterpret_cast<fastest_backend_entry_fn>(symbol);
  const fastest_backend_api_v1* api = nullptr;
  try {
    api = entry(FASTEST_BACKEND_ABI_MAJOR, FASTEST_BACKEND_ABI_MINOR);
  } catch (...) {
    // Undefined behaviour across a C boundary, but a C++ plugin might do it; refuse, don't crash.
    return fail(absl::FailedPreconditionError(absl::StrCat("backend plugin ", path, ": ",
                                                           FASTEST_BACKEND_ENTRY_SYMBOL,
                                                           " threw an exception; ", kRebuildHint)));
  }
  if (api == nullptr) {
    return fail(absl::FailedPreconditionError(absl::StrCat(
        "backend plugin ", path, ": ", FASTEST_BACKEND_ENTRY_SYMBOL, "(", FASTEST_BACKEND_ABI_MAJOR,
        ", ", FASTEST_BACKEND_ABI_MINOR, ") returned NULL: the plugin cannot serve ABI ",
        FASTEST_BACKEND_ABI_MAJOR, ".x; ", kRebuildHint)));
  }
  // abi_major and struct_size sit at the same offsets in every ABI version; read them first.
  if (api->abi_major != FASTEST_BACKEND_ABI_MAJOR) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("backend plugin ", path, ": plugin built for ABI ", api->abi_major,
                     ".x, this fastest speaks ", FASTEST_BACKEND_ABI_MAJOR,
                     ".x: rebuild the plugin against core/abi/backend_abi.h ",
                     FASTEST_BACKEND_ABI_MAJOR, ".x")));
  }
  if (api->struct_size < FASTEST_BACKEND_API_V1_0_SIZE) {
    return fail(absl::FailedPreconditionError(absl::StrCat(
        "backend plugin ", path, ": function table is ", api->struct_size,
        " bytes, ABI 1.0 needs at least ", FASTEST_BACKEND_API_V1_0_SIZE,
        " (table too small: built against a truncated or modified header); ", kRebuildHint)));
  }

  auto plugin = std::shared_ptr<BackendPlugin>(new BackendPlugin());
  plugin->path_ = path;
  plugin->handle_ = handle;
  // Copy only what the plugin declared; a newer plugin's extra slots are simply not seen.
  std::memcpy(&plugin->table_, api, std::min<size_t>(api->struct_size, sizeof(plugin->table_)));

  const fastest_backend_api_v1& t = plugin->table_;
  const std::pair<const char*, bool> required[] = {
      {"name", t.name != nullptr},
      {"open", t.open != nullptr},
      {"close", t.close != nullptr},
      {"describe", t.describe != nullptr},
      {"create_sandbox", t.create_sandbox != nullptr},
      {"wait_sandbox", t.wait_sandbox != nullptr},
      {"read_logs", t.read_logs != nullptr},
      {"kill_sandbox", t.kill_sandbox != nullptr},
      {"remove_sandbox", t.remove_sandbox != nullptr},
      {"list_sandboxes", t.list_sandboxes != nullptr},
      {"free_string", t.free_string != nullptr},
  };
  for (const auto& [slot, present] : required) {
    if (!present) {
      plugin->handle_ = nullptr;
      return fail(absl::FailedPreconditionError(absl::StrCat(
          "backend plugin ", path, ": required slot '", slot,
          "' is NULL (every 1.0 slot is required); the plugin is incomplete: ", kRebuildHint)));
    }
  }
  plugin->name_ = t.name;
  plugin->version_ = t.version != nullptr ? t.version : "";
  return plugin;
}

BackendPlugin::~BackendPlugin() {
  // Drops the reference only: RTLD_NODELETE keeps the code mapped (see Load).
  if (handle_ != nullptr) dlclose(handle_);
}

absl::StatusOr<std::unique_ptr<SandboxBackend>> BackendPlugin::Open(const nlohmann::json& config) {
  std::string config_json = DumpJson(config.is_null() ? nlohmann::json::object() : config);
  fastest_error err{};
  fastest_backend* instance = nullptr;
  int32_t rc = table_.open(config_json.c_str(), &instance, &err);
  if (rc != FASTEST_OK) {
    std::string message(err.message, strnlen(err.message, sizeof(err.message)));
    if (message.empty()) message = absl::StrCat("failed with code ", rc, " and no message");
    if (instance != nullptr) table_.close(instance);
    return absl::Status(StatusCodeFromAbi(rc), absl::StrCat(name_, ": open: ", message));
  }
  if (instance == nullptr) {
    return absl::InternalError(
        absl::StrCat(name_, ": open: plugin returned OK without an instance (", path_, ")"));
  }
  return std::unique_ptr<SandboxBackend>(new PluginBackend(shared_from_this(), table_, instance));
}

namespace {

std::string PluginFileName(absl::string_view name) {
  return absl::StrCat("libfastest_backend_", name, ".so");
}

// The directory holding `runfiles_path` according to a runfiles manifest ("<path> <real path>"
// per line), or "" when the manifest is unreadable or has no such entry.
std::string DirFromRunfilesManifest(const std::string& manifest, const std::string& runfiles_path) {
  std::ifstream in(manifest);
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view entry(line);
    if (absl::ConsumePrefix(&entry, runfiles_path) && absl::ConsumePrefix(&entry, " ")) {
      return ParentDir(entry);
    }
  }
  return "";
}

}  // namespace

BackendSearchContext BackendSearchContext::FromProcess() {
  auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr ? std::string(value) : std::string();
  };
  return {BinaryPath(), env(kPluginPathEnv), env("RUNFILES_DIR"), env("RUNFILES_MANIFEST_FILE")};
}

std::vector<std::string> BackendSearchDirs(absl::string_view name,
                                           const BackendSearchContext& context) {
  std::vector<std::string> dirs;
  auto add = [&dirs](std::string dir) {
    if (!dir.empty() && std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) {
      dirs.push_back(std::move(dir));
    }
  };
  const std::string binary_dir = ParentDir(context.binary_path);
  // <bindir>/.. without a trailing '/', so that "/bin/x" gives "/lib/fastest", not "//lib/...".
  std::string prefix = binary_dir.empty() ? "" : ParentDir(binary_dir);
  if (prefix == "/") prefix.clear();
  const std::string package = absl::StrCat("backends/", name);
  const std::string runfiles_package = absl::StrCat(kRunfilesWorkspace, "/", package);

  add(binary_dir);
  for (absl::string_view dir : absl::StrSplit(context.plugin_path, ':', absl::SkipEmpty())) {
    add(std::string(dir));
  }
  if (!binary_dir.empty()) add(absl::StrCat(prefix, "/lib/fastest"));
  if (!context.runfiles_dir.empty()) add(JoinPath(context.runfiles_dir, runfiles_package));
  if (!context.binary_path.empty()) {
    add(absl::StrCat(context.binary_path, ".runfiles/", runfiles_package));
  }
  const std::string manifest_key = absl::StrCat(runfiles_package, "/", PluginFileName(name));
  for (const std::string& manifest :
       {context.runfiles_manifest,
        context.binary_path.empty() ? std::string()
                                    : absl::StrCat(context.binary_path, ".runfiles_manifest")}) {
    if (!manifest.empty()) add(DirFromRunfilesManifest(manifest, manifest_key));
  }
  if (!binary_dir.empty()) add(absl::StrCat(prefix, "/", package));
  return dirs;
}

absl::StatusOr<std::string> ResolveBackendPath(absl::string_view backend_flag,
                                               const BackendSearchContext& context) {
  if (backend_flag.empty()) {
    return absl::InvalidArgumentError(
        "--backend is empty: pass a backend name (docker, podman, cloudflare) or a path to a "
        "libfastest_backend_<name>.so");
  }
  if (backend_flag.find('/') != absl::string_view::npos) return std::string(backend_flag);
  if (!IsValidBackendName(backend_flag)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--backend=", backend_flag,
                     ": a backend name may only contain letters, digits, '_' and "
                     "'-'; to load a file, pass a path containing '/' (e.g. ./",
                     backend_flag, ")"));
  }
  std::string file = PluginFileName(backend_flag);
  std::vector<std::string> dirs = BackendSearchDirs(backend_flag, context);
  std::vector<std::string> searched;
  for (const std::string& dir : dirs) {
    std::string candidate = JoinPath(dir, file);
    if (access(candidate.c_str(), F_OK) == 0) return candidate;
    searched.push_back(candidate);
  }
  return absl::NotFoundError(
      absl::StrCat("backend \"", backend_flag, "\": ", file, " not found; searched: ",
                   searched.empty() ? std::string("(nowhere)") : absl::StrJoin(searched, ", "),
                   ". Put the plugin next to the fastest binary or in <prefix>/lib/fastest, add its directory to ",
                   kPluginPathEnv, " (colon-separated), or pass --backend=/path/to/", file));
}

absl::StatusOr<std::shared_ptr<BackendPlugin>> LoadBackendPlugin(absl::string_view backend_flag) {
  FASTEST_ASSIGN_OR_RETURN(std::string path, ResolveBackendPath(backend_flag));
  return BackendPlugin::Load(path);
}

absl::StatusOr<std::unique_ptr<SandboxBackend>> OpenBackend(absl::string_view backend_flag,
                                                            const nlohmann::json& config) {
  FASTEST_ASSIGN_OR_RETURN(std::shared_ptr<BackendPlugin> plugin, LoadBackendPlugin(backend_flag));
  return plugin->Open(config);
}

}  // namespace fastest::core
