// File: backends/engine_api/engine_client.h
//
// EngineClient: a client of the Docker-compatible Engine API over a unix socket or TCP, on
// fastest::core::HttpClient. ONE implementation serves Docker (/var/run/docker.sock, API v1.41) and
// Podman (`podman system service`, whose socket serves the same compat API plus /libpod/...);
// engine differences are EngineOptions, never copies of this code.
//
// - Version negotiation: the first call does GET /_ping (its Api-Version header; GET /version when
//   the header is missing), then prefixes every path with
//   /v<min(server ApiVersion, options.max_api_version)>. A failed negotiation is retried by the
//   next call (the daemon may be started later). Version() adds GET /version (engine version).
// - Errors (absl::Status) say what to do: engine down -> Unavailable "cannot reach the Docker engine
//   at <socket>: start dockerd (tools/start_dockerd.sh)"; socket not accessible -> PermissionDenied;
//   image missing -> FailedPrecondition naming tools/build_sandbox_image.sh; name conflict ->
//   AlreadyExists; unknown container -> NotFound; engine 5xx -> Internal with its message.
// - Thread-safe: one client may be shared by many threads (HttpClient pools connections).
//
// Example:
//   EngineOptions options;
//   options.endpoint = "unix:///var/run/docker.sock";
//   FASTEST_ASSIGN_OR_RETURN(std::unique_ptr<EngineClient> engine, EngineClient::Create(options));
//   ContainerSpec spec;  spec.image = "fastest/sandbox:0.1.0";  spec.cmd = {"fastest-runner"};
//   FASTEST_ASSIGN_OR_RETURN(std::string id, engine->CreateContainer(spec));
//   FASTEST_RETURN_IF_ERROR(engine->StartContainer(id));
//   FASTEST_ASSIGN_OR_RETURN(WaitOutcome done, engine->WaitContainer(id, absl::Minutes(5)));
//   FASTEST_RETURN_IF_ERROR(engine->RemoveContainer(id));
#ifndef FASTEST_BACKENDS_ENGINE_API_ENGINE_CLIENT_H_
#define FASTEST_BACKENDS_ENGINE_API_ENGINE_CLIENT_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/engine_api/engine_requests.h"
#include "core/http/http_client.h"

namespace fastest::backends::engine_api {

// How EngineClient::WaitContainer waits.
enum class WaitMethod {
  // POST /vX/containers/{id}/wait?condition=not-running (Docker; Podman compat polls slowly).
  kCompat,
  // POST /vX/libpod/containers/{id}/wait?condition=stopped&condition=exited&interval=...
  // (Podman only: a short poll interval makes it much faster than the compat wait).
  kLibpod,
};

struct EngineOptions {
  // "unix:///path.sock", "tcp://host:port", "http://host:port".
  std::string endpoint = "unix:///var/run/docker.sock";
  // For messages: "Docker" or "Podman".
  std::string engine_name = "Docker";
  // What to run when the engine is down, e.g. "start dockerd (tools/start_dockerd.sh)".
  std::string start_hint = "start dockerd (tools/start_dockerd.sh)";
  // Highest compat API version we speak.
  std::string max_api_version = "1.41";
  WaitMethod wait_method = WaitMethod::kCompat;
  // libpod wait poll interval (Podman's default is 250ms).
  std::string libpod_wait_interval = "10ms";
  // Retry a request once when an established connection was reset/closed mid-request (Podman's
  // service may drop idle keep-alive connections). Never retried: connection refused.
  bool retry_on_reset = false;
  // Deadline for ordinary (non-wait, non-follow) requests.
  std::chrono::milliseconds request_timeout{30000};
};

// Result of WaitContainer: exited=false when the deadline passed first.
struct WaitOutcome {
  bool exited = false;
  std::optional<int> exit_code;
};

// Engine identity from /version (+ the negotiated API version).
struct EngineVersion {
  std::string version;      // "20.10.24+dfsg1", "4.3.1"
  std::string api_version;  // the server's ApiVersion
  std::string negotiated;   // the version we use in paths, e.g. "1.41"
  std::string libpod_api_version;  // Podman only ("4.3.1"), from the Libpod-Api-Version header
};

class EngineClient {
 public:
  // Create: parses the endpoint; no I/O yet. InvalidArgument for a malformed endpoint.
  static absl::StatusOr<std::unique_ptr<EngineClient>> Create(EngineOptions options);

  EngineClient(const EngineClient&) = delete;
  EngineClient& operator=(const EngineClient&) = delete;

  // Ping: GET /_ping (unversioned). OK when the engine answers "OK".
  absl::Status Ping();

  // Version: negotiates once and fetches /version once (both cached); the engine's identity.
  absl::StatusOr<EngineVersion> Version();

  // CreateContainer: POST /containers/create; returns the container id.
  absl::StatusOr<std::string> CreateContainer(const ContainerSpec& spec);

  // StartContainer: POST /containers/{id}/start (already started is OK).
  absl::Status StartContainer(const std::string& id);

  // WaitContainer: blocks until the container stops or `timeout` passes (then exited=false, OK).
  // ZeroDuration checks once (inspect); InfiniteDuration waits without a deadline.
  absl::StatusOr<WaitOutcome> WaitContainer(const std::string& id, absl::Duration timeout);

  // Logs: GET /containers/{id}/logs, demultiplexed; sink(stream 1|2, bytes) returns false to stop
  // (Logs then returns OK). With query.follow, returns when the container stops.
  absl::Status Logs(const std::string& id, const LogQuery& query,
                    const std::function<bool(int stream, absl::string_view data)>& sink);

  // KillContainer: POST /containers/{id}/kill?signal=N. A container that is not running is OK.
  absl::Status KillContainer(const std::string& id, int signal);

  // RemoveContainer: DELETE /containers/{id}?force=1&v=1 (kills a running one, drops volumes).
  absl::Status RemoveContainer(const std::string& id);

  // ListContainers: GET /containers/json?all=1 with a label filter (every label must match).
  absl::StatusOr<std::vector<ContainerSummary>> ListContainers(
      const std::map<std::string, std::string>& labels);

  // InspectContainer: GET /containers/{id}/json.
  absl::StatusOr<ContainerSummary> InspectContainer(const std::string& id);

  const EngineOptions& options() const { return options_; }
  // Socket path or base URL, for messages.
  const std::string& where() const { return where_; }

 private:
  EngineClient(EngineOptions options, core::Endpoint endpoint);

  // Sends `method` `path` (path without the /vX.Y prefix; `versioned` adds it, `libpod` uses the
  // libpod prefix instead), mapping transport errors to Unavailable/PermissionDenied with hints.
  absl::StatusOr<core::HttpResponse> Call(const std::string& method, const std::string& path,
                                          std::string body, std::chrono::milliseconds timeout,
                                          bool versioned = true, bool libpod = false,
                                          std::function<bool(absl::string_view)> on_chunk = {});
  absl::Status Negotiate();
  // GET /version into `version` (engine version; API version when still unknown).
  absl::Status FetchVersion(EngineVersion* version);
  absl::Status TransportError(const absl::Status& status) const;
  std::string Prefix(bool libpod);

  EngineOptions options_;
  core::Endpoint endpoint_;
  std::string where_;
  core::HttpClient http_;
  absl::Mutex mu_;
  std::optional<EngineVersion> version_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fastest::backends::engine_api

#endif  // FASTEST_BACKENDS_ENGINE_API_ENGINE_CLIENT_H_
