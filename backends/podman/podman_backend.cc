#include "backends/podman/podman_backend.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/json/config_fields.h"
#include "core/status/status_macros.h"

namespace fastest::backends::podman {
namespace {

bool IsSocket(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

constexpr char kWhat[] = "podman config";

absl::StatusOr<std::string> OptionalString(const nlohmann::json& config, const char* key) {
  return core::OptionalString(config, key, "", kWhat);
}

}  // namespace

std::string DiscoverPodmanHost() {
  const char* env = std::getenv("CONTAINER_HOST");
  if (env != nullptr && env[0] != '\0') return env;
  std::string rootless;
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && xdg[0] != '\0') rootless = absl::StrCat(xdg, "/podman/podman.sock");
  if (IsSocket(kRootfulPodmanSocket)) return absl::StrCat("unix://", kRootfulPodmanSocket);
  if (!rootless.empty() && IsSocket(rootless)) return absl::StrCat("unix://", rootless);
  // Nothing listens yet: name the socket this user would get, so the error points at it.
  if (geteuid() != 0 && !rootless.empty()) return absl::StrCat("unix://", rootless);
  return absl::StrCat("unix://", kRootfulPodmanSocket);
}

absl::StatusOr<engine_api::EngineBackendOptions> PodmanBackendOptions(const nlohmann::json& config) {
  FASTEST_ASSIGN_OR_RETURN(nlohmann::json cfg, core::ConfigObject(config, kWhat));
  engine_api::EngineBackendOptions options;
  options.name = "podman";
  FASTEST_ASSIGN_OR_RETURN(std::string host, OptionalString(cfg, "host"));
  options.engine.endpoint = host.empty() ? DiscoverPodmanHost() : host;
  options.engine.engine_name = "Podman";
  options.engine.start_hint = "start the podman service (tools/start_podman.sh)";
  options.engine.retry_on_reset = true;
  FASTEST_ASSIGN_OR_RETURN(std::string wait, OptionalString(cfg, "wait"));
  if (wait.empty() || wait == "libpod") {
    options.engine.wait_method = engine_api::WaitMethod::kLibpod;
  } else if (wait == "compat") {
    options.engine.wait_method = engine_api::WaitMethod::kCompat;
  } else {
    return absl::InvalidArgumentError("podman config: \"wait\" must be \"libpod\" or \"compat\"");
  }
  FASTEST_ASSIGN_OR_RETURN(std::string network_mode, OptionalString(cfg, "network_mode"));
  if (!network_mode.empty()) options.default_network_mode = network_mode;
  FASTEST_ASSIGN_OR_RETURN(options.runtime, OptionalString(cfg, "runtime"));
  if (options.runtime.empty()) options.runtime = "runc";
  options.explicit_ulimits = true;
  auto nofile = cfg.find("nofile");
  if (nofile != cfg.end() && !nofile->is_null()) {
    if (!nofile->is_number_integer() || nofile->get<int64_t>() <= 0) {
      return absl::InvalidArgumentError("podman config: \"nofile\" must be a positive integer");
    }
    options.nofile = nofile->get<int64_t>();
  }
  return options;
}

absl::StatusOr<std::unique_ptr<PodmanBackend>> PodmanBackend::Create(const nlohmann::json& config) {
  FASTEST_ASSIGN_OR_RETURN(engine_api::EngineBackendOptions options, PodmanBackendOptions(config));
  FASTEST_RETURN_IF_ERROR(engine_api::EngineBackend::ValidateOptions(options));
  FASTEST_ASSIGN_OR_RETURN(std::unique_ptr<engine_api::EngineClient> engine,
                           engine_api::EngineClient::Create(options.engine));
  return std::unique_ptr<PodmanBackend>(new PodmanBackend(std::move(options), std::move(engine)));
}

}  // namespace fastest::backends::podman
