#include "backends/engine_api/engine_backend.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status/status_macros.h"

namespace fastest::backends::engine_api {

std::string SandboxState(absl::string_view engine_state) {
  if (engine_state == "running" || engine_state == "paused" || engine_state == "restarting") {
    return "running";
  }
  if (engine_state == "exited" || engine_state == "dead" || engine_state == "stopped") {
    return "exited";
  }
  if (engine_state == "created" || engine_state == "configured") return "created";
  return "unknown";
}

std::vector<Ulimit> UlimitsFor(int64_t pids_limit, int64_t nofile) {
  int64_t nproc = std::max<int64_t>(4096, pids_limit);
  return {Ulimit{"nofile", nofile, nofile}, Ulimit{"nproc", nproc, nproc}};
}

absl::StatusOr<ContainerSpec> ContainerSpecFor(const core::SandboxSpec& spec,
                                               const EngineBackendOptions& options) {
  if (spec.image.empty()) return absl::InvalidArgumentError("sandbox spec needs an image");
  ContainerSpec out;
  out.name = spec.name;
  out.image = spec.image;
  out.cmd = spec.command;
  out.env = spec.env;
  out.labels = spec.labels;
  out.working_dir = spec.working_dir;
  out.network_mode = spec.network_mode.empty() ? options.default_network_mode : spec.network_mode;
  if (out.network_mode != "host" && out.network_mode != "none" && out.network_mode != "bridge") {
    return absl::InvalidArgumentError(absl::StrCat(
        "network_mode '", out.network_mode, "' is not supported: use host, none or bridge"));
  }
  out.runtime = options.runtime;
  out.nano_cpus = spec.nano_cpus;
  out.memory_bytes = spec.memory_bytes;
  out.pids_limit = spec.pids_limit;
  if (options.disk_quota) out.disk_bytes = spec.disk_bytes;
  out.init = true;
  if (options.explicit_ulimits) out.ulimits = UlimitsFor(spec.pids_limit, options.nofile);

  out.memory_swap_bytes = spec.memory_bytes;  // no swap on top of the memory limit
  out.readonly_rootfs = true;
  out.cap_drop = {"ALL"};
  out.cap_add.assign(std::begin(kRunnerCapabilities), std::end(kRunnerCapabilities));
  out.security_opt = {"no-new-privileges"};
  // "exec": agents run build scripts and tools from the workspace and /tmp.
  constexpr int64_t kDefaultTmpfsBytes = 1LL << 30;
  int64_t workspace_bytes = spec.disk_bytes > 0 ? spec.disk_bytes : kDefaultTmpfsBytes;
  int64_t tmp_bytes = spec.memory_bytes > 0 ? spec.memory_bytes : kDefaultTmpfsBytes;
  out.tmpfs[kWorkspaceDir] = absl::StrCat("rw,exec,nosuid,nodev,mode=0755,size=", workspace_bytes);
  out.tmpfs["/tmp"] = absl::StrCat("rw,exec,nosuid,nodev,mode=1777,size=", tmp_bytes);
  if (!spec.channel_dir.empty()) {
    if (spec.channel_dir[0] != '/' || spec.channel_dir.find(':') != std::string::npos ||
        spec.channel_dir.find(',') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("channel_dir must be an absolute path without ':' or ',': ",
                       spec.channel_dir));
    }
    out.binds.push_back(absl::StrCat(spec.channel_dir, ":/run/fastest:ro"));
  }
  return out;
}

absl::Status EngineBackend::ValidateOptions(const EngineBackendOptions& options) {
  if (options.default_network_mode != "host" && options.default_network_mode != "none" &&
      options.default_network_mode != "bridge") {
    return absl::InvalidArgumentError(absl::StrCat("network_mode '", options.default_network_mode,
                                                   "' is not supported: use host, none or bridge"));
  }
  if (options.nofile <= 0) return absl::InvalidArgumentError("nofile must be positive");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<EngineBackend>> EngineBackend::Create(
    EngineBackendOptions options) {
  FASTEST_RETURN_IF_ERROR(ValidateOptions(options));
  FASTEST_ASSIGN_OR_RETURN(std::unique_ptr<EngineClient> engine,
                           EngineClient::Create(options.engine));
  return std::unique_ptr<EngineBackend>(new EngineBackend(std::move(options), std::move(engine)));
}

EngineBackend::EngineBackend(EngineBackendOptions options, std::unique_ptr<EngineClient> engine)
    : options_(std::move(options)), engine_(std::move(engine)) {}

absl::StatusOr<nlohmann::json> EngineBackend::Describe() {
  nlohmann::json doc = {
      {"schema", 1},
      {"name", options_.name},
      {"log_streaming", true},
      {"warm_pool", false},
      {"network_modes", {"host", "none", "bridge"}},
      {"default_network_mode", options_.default_network_mode},
      {"max_parallel_sandboxes", 0},
      {"channel_mount", true},
      {"sealed", true},
      {"endpoint", engine_->where()},
  };
  // Health is part of the answer, not an error: an engine that is down is "not healthy".
  absl::Status ping = engine_->Ping();
  absl::StatusOr<EngineVersion> version =
      ping.ok() ? engine_->Version() : absl::StatusOr<EngineVersion>(ping);
  if (version.ok()) {
    doc["version"] = version->version;
    doc["api_version"] = version->negotiated;
    if (!version->libpod_api_version.empty()) doc["libpod_api_version"] = version->libpod_api_version;
    doc["health"] = "ok";
  } else {
    doc["version"] = "";
    doc["health"] = std::string(version.status().message());
  }
  return doc;
}

absl::StatusOr<core::SandboxInfo> EngineBackend::CreateSandbox(const core::SandboxSpec& spec) {
  FASTEST_ASSIGN_OR_RETURN(ContainerSpec container, ContainerSpecFor(spec, options_));
  FASTEST_ASSIGN_OR_RETURN(std::string id, engine_->CreateContainer(container));
  absl::Status started = engine_->StartContainer(id);
  if (!started.ok()) {
    // Leave nothing behind: a created-but-unstartable container would leak.
    (void)engine_->RemoveContainer(id);
    return core::Annotate(started, absl::StrCat("starting sandbox from ", spec.image));
  }
  core::SandboxInfo info;
  info.id = id;
  info.name = spec.name;
  info.state = "running";
  info.labels = spec.labels;
  return info;
}

absl::StatusOr<core::WaitResult> EngineBackend::Wait(const std::string& id,
                                                    absl::Duration timeout) {
  FASTEST_ASSIGN_OR_RETURN(WaitOutcome outcome, engine_->WaitContainer(id, timeout));
  core::WaitResult result;
  result.exited = outcome.exited;
  result.exit_code = outcome.exit_code;
  return result;
}

absl::Status EngineBackend::ReadLogs(const std::string& id, const core::LogOptions& options,
                                     std::function<bool(int stream, absl::string_view data)> sink) {
  LogQuery query;
  query.follow = options.follow;
  query.tail = options.tail;
  query.stdout_stream = options.include_stdout;
  query.stderr_stream = options.include_stderr;
  return engine_->Logs(id, query, sink);
}

absl::Status EngineBackend::Kill(const std::string& id, int signal) {
  return engine_->KillContainer(id, signal);
}

absl::Status EngineBackend::Remove(const std::string& id) { return engine_->RemoveContainer(id); }

absl::StatusOr<std::vector<core::SandboxInfo>> EngineBackend::List(
    const std::map<std::string, std::string>& labels) {
  FASTEST_ASSIGN_OR_RETURN(std::vector<ContainerSummary> containers,
                           engine_->ListContainers(labels));
  std::vector<core::SandboxInfo> out;
  out.reserve(containers.size());
  for (ContainerSummary& c : containers) {
    core::SandboxInfo info;
    info.id = std::move(c.id);
    info.name = std::move(c.name);
    info.state = SandboxState(c.state);
    info.labels = std::move(c.labels);
    info.exit_code = c.exit_code;
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace fastest::backends::engine_api
