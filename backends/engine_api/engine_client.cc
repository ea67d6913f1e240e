#include "backends/engine_api/engine_client.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/engine_api/log_demuxer.h"
#include "core/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace fastest::backends::engine_api {
namespace {

bool ContainsIgnoreCase(absl::string_view haystack, absl::string_view needle) {
  return absl::StrContains(absl::AsciiStrToLower(haystack), absl::AsciiStrToLower(needle));
}

bool IsSuccess(long status) { return status >= 200 && status < 300; }

// curl's words for "nothing listens there" (as opposed to a connection lost mid-request).
bool IsConnectFailure(absl::string_view message) {
  return ContainsIgnoreCase(message, "connect") ||
         ContainsIgnoreCase(message, "refused");
}

std::chrono::milliseconds ToMillis(absl::Duration d) {
  int64_t ms = absl::ToInt64Milliseconds(d);
  return std::chrono::milliseconds(std::max<int64_t>(ms, 1));
}

bool IsStopped(const std::string& state) {
  return state == "exited" || state == "dead" || state == "stopped";
}

}  // namespace

absl::StatusOr<std::unique_ptr<EngineClient>> EngineClient::Create(EngineOptions options) {
  absl::StatusOr<core::Endpoint> endpoint = core::ParseEndpoint(options.endpoint);
  if (!endpoint.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bad ", options.engine_name,
                                                   " endpoint: ", endpoint.status().message()));
  }
  return std::unique_ptr<EngineClient>(new EngineClient(std::move(options), *std::move(endpoint)));
}

EngineClient::EngineClient(EngineOptions options, core::Endpoint endpoint)
    : options_(std::move(options)),
      endpoint_(std::move(endpoint)),
      where_(endpoint_.unix_socket.empty() ? endpoint_.base_url : endpoint_.unix_socket) {}

absl::Status EngineClient::TransportError(const absl::Status& status) const {
  if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::DeadlineExceededError(
        absl::StrCat(options_.engine_name, " at ", where_, " did not answer in time: ",
                     status.message()));
  }
  if (!endpoint_.unix_socket.empty()) {
    struct stat st;
    if (stat(endpoint_.unix_socket.c_str(), &st) != 0) {
      if (errno == EACCES) {
        return absl::PermissionDeniedError(absl::StrCat(
            "no permission to reach the ", options_.engine_name, " socket ", where_,
            ": run as root or as a member of the socket's group"));
      }
      return absl::UnavailableError(absl::StrCat("cannot reach the ", options_.engine_name,
                                                 " engine at ", where_, " (no such socket): ",
                                                 options_.start_hint));
    }
    if (access(endpoint_.unix_socket.c_str(), R_OK | W_OK) != 0 && errno == EACCES) {
      return absl::PermissionDeniedError(absl::StrCat(
          "permission denied on the ", options_.engine_name, " socket ", where_,
          ": run as root or as a member of the socket's group (e.g. docker)"));
    }
  }
  if (IsConnectFailure(status.message())) {
    return absl::UnavailableError(absl::StrCat("cannot reach the ", options_.engine_name,
                                               " engine at ", where_, " (connection refused): ",
                                               options_.start_hint));
  }
  return absl::UnavailableError(absl::StrCat("lost the connection to the ", options_.engine_name,
                                             " engine at ", where_, ": ", status.message()));
}

absl::StatusOr<core::HttpResponse> EngineClient::Call(
    const std::string& method, const std::string& path, std::string body,
    std::chrono::milliseconds timeout, bool versioned, bool libpod,
    std::function<bool(absl::string_view)> on_chunk) {
  std::string prefix;
  if (versioned) {
    FASTEST_RETURN_IF_ERROR(Negotiate());
    prefix = Prefix(libpod);
  }
  core::HttpRequest request;
  request.method = method;
  request.url = absl::StrCat(endpoint_.base_url, prefix, path);
  request.unix_socket = endpoint_.unix_socket;
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  request.body = std::move(body);
  request.timeout = timeout;
  bool streaming = static_cast<bool>(on_chunk);
  request.on_body_chunk = std::move(on_chunk);
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<core::HttpResponse> response = http_.Send(request);
    if (response.ok()) return response;
    const absl::Status& status = response.status();
    if (status.code() == absl::StatusCode::kCancelled) return status;  // our sink stopped
    // One retry when an established connection dropped (never for a refused connect, never after
    // streamed bytes were delivered).
    if (options_.retry_on_reset && attempt == 0 && !streaming &&
        status.code() == absl::StatusCode::kUnavailable && !IsConnectFailure(status.message())) {
      continue;
    }
    return TransportError(status);
  }
}

std::string EngineClient::Prefix(bool libpod) {
  absl::MutexLock lock(&mu_);
  if (!version_.has_value()) return "";
  if (libpod) return absl::StrCat("/v", version_->libpod_api_version, "/libpod");
  return absl::StrCat("/v", version_->negotiated);
}

absl::Status EngineClient::Ping() {
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse response,
                           Call("GET", "/_ping", "", options_.request_timeout, false));
  if (response.status != 200) {
    return EngineHttpError(EngineOp::kPing, response.status, response.body, options_.engine_name,
                           "");
  }
  return absl::OkStatus();
}

absl::Status EngineClient::Negotiate() {
  {
    absl::MutexLock lock(&mu_);
    if (version_.has_value()) return absl::OkStatus();
  }
  // Unversioned; concurrent first calls may both negotiate, which is harmless. Docker and Podman
  // both put their API version in /_ping's headers, which spares /version (~400 ms on Podman).
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse ping,
                           Call("GET", "/_ping", "", options_.request_timeout, false));
  if (ping.status != 200) {
    return EngineHttpError(EngineOp::kPing, ping.status, ping.body, options_.engine_name, "");
  }
  EngineVersion version;
  version.api_version = ping.Header("api-version");
  version.libpod_api_version = ping.Header("libpod-api-version");
  if (version.api_version.empty()) {
    FASTEST_RETURN_IF_ERROR(FetchVersion(&version));
  }
  version.negotiated = CompareApiVersions(version.api_version, options_.max_api_version) < 0
                           ? version.api_version
                           : options_.max_api_version;
  absl::MutexLock lock(&mu_);
  if (!version_.has_value()) version_ = std::move(version);
  return absl::OkStatus();
}

absl::Status EngineClient::FetchVersion(EngineVersion* version) {
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse response,
                           Call("GET", "/version", "", options_.request_timeout, false));
  if (response.status != 200) {
    return EngineHttpError(EngineOp::kVersion, response.status, response.body,
                           options_.engine_name, "");
  }
  nlohmann::json json = nlohmann::json::parse(response.body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InternalError(absl::StrCat(options_.engine_name, " /version is not JSON: ",
                                            EngineMessage(response.body)));
  }
  auto text = [&](const char* key) {
    auto it = json.find(key);
    return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  version->version = text("Version");
  if (version->api_version.empty()) version->api_version = text("ApiVersion");
  std::string min_version = text("MinAPIVersion");
  if (version->api_version.empty()) {
    return absl::InternalError(
        absl::StrCat(options_.engine_name, " did not report its API version"));
  }
  if (!min_version.empty() && CompareApiVersions(min_version, options_.max_api_version) > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        options_.engine_name, " at ", where_, " needs API >= ", min_version, "; fastest speaks ",
        options_.max_api_version));
  }
  return absl::OkStatus();
}

absl::StatusOr<EngineVersion> EngineClient::Version() {
  FASTEST_RETURN_IF_ERROR(Negotiate());
  EngineVersion version;
  {
    absl::MutexLock lock(&mu_);
    version = *version_;
  }
  if (!version.version.empty()) return version;
  FASTEST_RETURN_IF_ERROR(FetchVersion(&version));
  absl::MutexLock lock(&mu_);
  version_->version = version.version;
  return *version_;
}

absl::StatusOr<std::string> EngineClient::CreateContainer(const ContainerSpec& spec) {
  if (spec.image.empty()) return absl::InvalidArgumentError("container spec needs an image");
  if (!spec.name.empty() && !IsValidContainerRef(spec.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad container name '", spec.name, "': use [A-Za-z0-9_.-]"));
  }
  std::string body = BuildCreateBody(spec).dump(-1, ' ', false,
                                                nlohmann::json::error_handler_t::replace);
  FASTEST_ASSIGN_OR_RETURN(
      core::HttpResponse response,
      Call("POST", BuildCreatePath(spec.name), std::move(body), options_.request_timeout));
  if (!IsSuccess(response.status)) {
    return EngineHttpError(EngineOp::kCreate, response.status, response.body,
                           options_.engine_name, spec.image);
  }
  nlohmann::json json = nlohmann::json::parse(response.body, nullptr, false);
  if (json.is_discarded() || !json.is_object() || !json.contains("Id") ||
      !json["Id"].is_string()) {
    return absl::InternalError(absl::StrCat(options_.engine_name,
                                            " create returned no Id: ",
                                            EngineMessage(response.body)));
  }
  return json["Id"].get<std::string>();
}

absl::Status EngineClient::StartContainer(const std::string& id) {
  if (!IsValidContainerRef(id)) return absl::InvalidArgumentError("bad container id");
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse response,
                           Call("POST", absl::StrCat("/containers/", id, "/start"), "",
                                options_.request_timeout));
  if (response.status == 304 || IsSuccess(response.status)) return absl::OkStatus();
  return EngineHttpError(EngineOp::kStart, response.status, response.body, options_.engine_name,
                         id);
}

absl::StatusOr<WaitOutcome> EngineClient::WaitContainer(const std::string& id,
                                                        absl::Duration timeout) {
  if (!IsValidContainerRef(id)) return absl::InvalidArgumentError("bad container id");
  WaitOutcome outcome;
  if (timeout <= absl::ZeroDuration()) {
    FASTEST_ASSIGN_OR_RETURN(ContainerSummary info, InspectContainer(id));
    outcome.exited = IsStopped(info.state);
    outcome.exit_code = info.exit_code;
    return outcome;
  }
  std::chrono::milliseconds deadline =
      timeout == absl::InfiniteDuration() ? std::chrono::milliseconds(0) : ToMillis(timeout);

  bool libpod = options_.wait_method == WaitMethod::kLibpod;
  if (libpod) {
    FASTEST_RETURN_IF_ERROR(Negotiate());
    absl::MutexLock lock(&mu_);
    libpod = !version_->libpod_api_version.empty();  // not a Podman engine: compat wait
  }
  std::string path =
      libpod ? absl::StrCat("/containers/", id, "/wait?condition=exited&condition=stopped",
                            "&interval=", UrlEncode(options_.libpod_wait_interval))
             : absl::StrCat("/containers/", id, "/wait?condition=not-running");
  absl::StatusOr<core::HttpResponse> response =
      Call("POST", path, "", deadline, /*versioned=*/true, libpod);
  if (!response.ok()) {
    if (response.status().code() == absl::StatusCode::kDeadlineExceeded) return outcome;
    return response.status();
  }
  if (!IsSuccess(response->status)) {
    return EngineHttpError(EngineOp::kWait, response->status, response->body,
                           options_.engine_name, id);
  }
  nlohmann::json json = nlohmann::json::parse(response->body, nullptr, false);
  outcome.exited = true;
  if (!json.is_discarded() && json.is_number_integer()) {
    outcome.exit_code = json.get<int>();  // libpod: the bare exit code
  } else if (!json.is_discarded() && json.is_object() && json.contains("StatusCode") &&
             json["StatusCode"].is_number_integer()) {
    outcome.exit_code = json["StatusCode"].get<int>();
  } else {
    return absl::InternalError(absl::StrCat(options_.engine_name, " wait returned ",
                                            EngineMessage(response->body)));
  }
  return outcome;
}

absl::Status EngineClient::Logs(
    const std::string& id, const LogQuery& query,
    const std::function<bool(int stream, absl::string_view data)>& sink) {
  if (!IsValidContainerRef(id)) return absl::InvalidArgumentError("bad container id");
  LogDemuxer demux(sink);
  // The status code is only known when Send returns; an error body is JSON ('{'), a log stream
  // starts with a frame header whose first byte is 0, 1 or 2. The first byte decides.
  enum class Mode { kUnknown, kFrames, kError } mode = Mode::kUnknown;
  std::string error_body;
  auto on_chunk = [&](absl::string_view chunk) {
    if (mode == Mode::kUnknown && !chunk.empty()) {
      mode = static_cast<unsigned char>(chunk[0]) <= 2 ? Mode::kFrames : Mode::kError;
    }
    if (mode == Mode::kError) {
      if (error_body.size() < 4096) error_body.append(chunk.data(), chunk.size());
      return true;
    }
    return demux.Feed(chunk);
  };
  std::chrono::milliseconds timeout =
      query.follow ? std::chrono::milliseconds(0) : options_.request_timeout;
  absl::StatusOr<core::HttpResponse> response =
      Call("GET", BuildLogsPath(id, query), "", timeout, true, false, on_chunk);
  if (!response.ok()) {
    if (response.status().code() == absl::StatusCode::kCancelled && demux.stopped()) {
      return absl::OkStatus();
    }
    return response.status();
  }
  if (!IsSuccess(response->status)) {
    return EngineHttpError(EngineOp::kLogs, response->status, error_body, options_.engine_name,
                           id);
  }
  return absl::OkStatus();
}

absl::Status EngineClient::KillContainer(const std::string& id, int signal) {
  if (!IsValidContainerRef(id)) return absl::InvalidArgumentError("bad container id");
  FASTEST_ASSIGN_OR_RETURN(
      core::HttpResponse response,
      Call("POST", absl::StrCat("/containers/", id, "/kill?signal=", signal), "",
           options_.request_timeout));
  if (IsSuccess(response.status)) return absl::OkStatus();
  std::string message = EngineMessage(response.body);
  // Docker: 409 "is not running"; Podman: 409/500 "... state improper". Both mean: nothing to kill.
  if ((response.status == 409 || response.status == 500) &&
      (ContainsIgnoreCase(message, "not running") ||
       ContainsIgnoreCase(message, "state improper"))) {
    return absl::OkStatus();
  }
  return EngineHttpError(EngineOp::kKill, response.status, response.body, options_.engine_name,
                         id);
}

absl::Status EngineClient::RemoveContainer(const std::string& id) {
  if (!IsValidContainerRef(id)) return absl::InvalidArgumentError("bad container id");
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse response,
                           Call("DELETE", absl::StrCat("/containers/", id, "?force=1&v=1"), "",
                                options_.request_timeout));
  if (IsSuccess(response.status)) return absl::OkStatus();
  if (response.status == 409 &&
      ContainsIgnoreCase(EngineMessage(response.body), "already in progress")) {
    return absl::OkStatus();
  }
  return EngineHttpError(EngineOp::kRemove, response.status, response.body, options_.engine_name,
                         id);
}

absl::StatusOr<std::vector<ContainerSummary>> EngineClient::ListContainers(
    const std::map<std::string, std::string>& labels) {
  const std::string path = BuildListPath(labels);
  for (int attempt = 1;; ++attempt) {
    FASTEST_ASSIGN_OR_RETURN(core::HttpResponse response,
                             Call("GET", path, "", options_.request_timeout));
    if (IsSuccess(response.status)) return ParseContainerList(response.body);
    // Podman 4.3 answers 500 "read /proc/<pid>/cgroup: no such process" when a container exits
    // while it lists; the next listing is consistent again.
    const bool exit_race = response.status == 500 &&
                           absl::StrContains(response.body, "no such process");
    if (!exit_race || attempt == 3) {
      return EngineHttpError(EngineOp::kList, response.status, response.body,
                             options_.engine_name, "");
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<ContainerSummary> EngineClient::InspectContainer(const std::string& id) {
  if (!IsValidContainerRef(id)) return absl::InvalidArgumentError("bad container id");
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse response,
                           Call("GET", absl::StrCat("/containers/", id, "/json"), "",
                                options_.request_timeout));
  if (!IsSuccess(response.status)) {
    return EngineHttpError(EngineOp::kInspect, response.status, response.body,
                           options_.engine_name, id);
  }
  return ParseInspect(response.body);
}

}  // namespace fastest::backends::engine_api
