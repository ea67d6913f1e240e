// File: backends/engine_api/engine_requests.h
//
// The pure (no I/O) half of the Engine API client: request paths and bodies, response parsing and
// the mapping of engine HTTP errors to absl::Status. Shared by Docker (Engine API v1.41) and
// Podman's Docker-compatible API; engine differences are fields of ContainerSpec/options, never
// copies of this code. Unit-tested in engine_requests_test.cc.
#ifndef FASTEST_BACKENDS_ENGINE_API_ENGINE_REQUESTS_H_
#define FASTEST_BACKENDS_ENGINE_API_ENGINE_REQUESTS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fastest::backends::engine_api {

// Ulimit: one HostConfig.Ulimits entry ("nofile", "nproc", ...).
struct Ulimit {
  std::string name;
  int64_t soft = 0;
  int64_t hard = 0;
};

// ContainerSpec: what POST /containers/create needs. Zero resource values are omitted (engine
// default). `env` may hold secrets: never log it.
struct ContainerSpec {
  std::string name;  // optional; engine generates one when empty
  std::string image;
  std::vector<std::string> cmd;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> labels;
  std::string working_dir;
  std::string network_mode;  // "host" | "none" | "bridge" | ""
  std::string runtime;       // HostConfig.Runtime, e.g. "runc"; "" = engine default
  int64_t nano_cpus = 0;
  int64_t memory_bytes = 0;
  int64_t pids_limit = 0;
  int64_t disk_bytes = 0;  // HostConfig.StorageOpt size; only when the storage driver allows
  bool init = true;        // an init process reaps zombies
  std::vector<Ulimit> ulimits;
  // Hardening (HostConfig): see ContainerSpecFor in engine_backend.h for what fastest sets.
  int64_t memory_swap_bytes = 0;                // MemorySwap; == memory_bytes: no swap
  bool readonly_rootfs = false;                 // ReadonlyRootfs
  std::vector<std::string> cap_drop;            // CapDrop, e.g. {"ALL"}
  std::vector<std::string> cap_add;             // CapAdd
  std::vector<std::string> security_opt;        // SecurityOpt, e.g. {"no-new-privileges"}
  std::vector<std::string> binds;               // Binds: "host:container[:ro]"
  std::map<std::string, std::string> tmpfs;     // Tmpfs: mount point -> mount options
};

// ContainerSummary: one container from list or inspect, in engine terms.
struct ContainerSummary {
  std::string id;
  std::string name;   // without the leading '/'
  std::string state;  // engine state: created, running, exited, dead, paused, ...
  std::map<std::string, std::string> labels;
  std::optional<int> exit_code;  // known once exited
};

// The query of GET /containers/{id}/logs.
struct LogQuery {
  bool follow = false;
  int tail = 0;  // 0 = all
  bool stdout_stream = true;
  bool stderr_stream = true;
};

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string UrlEncode(absl::string_view text);

// True for ids and names safe to put in a URL path ([A-Za-z0-9_.-], 1..128 chars).
bool IsValidContainerRef(absl::string_view ref);

// "1.41" vs "1.40": negative, zero or positive like strcmp, comparing numerically.
int CompareApiVersions(absl::string_view a, absl::string_view b);

// BuildCreateBody: the JSON body of POST /containers/create.
nlohmann::json BuildCreateBody(const ContainerSpec& spec);

// BuildCreatePath: "/containers/create" plus "?name=" when named.
std::string BuildCreatePath(absl::string_view name);

// BuildListPath: "/containers/json?all=1&filters={"label":["k=v",...]}" (url-encoded).
std::string BuildListPath(const std::map<std::string, std::string>& labels);

// BuildLogsPath: "/containers/{id}/logs?stdout=1&stderr=1&follow=0&tail=all".
std::string BuildLogsPath(absl::string_view id, const LogQuery& query);

// ParseContainerList: the array GET /containers/json returns (Docker and Podman compat).
absl::StatusOr<std::vector<ContainerSummary>> ParseContainerList(absl::string_view body);

// ParseInspect: GET /containers/{id}/json.
absl::StatusOr<ContainerSummary> ParseInspect(absl::string_view body);

// ExitCodeFromStatusText: "Exited (137) 2 seconds ago" -> 137; nullopt otherwise.
std::optional<int> ExitCodeFromStatusText(absl::string_view status);

// EngineMessage: the "message" of an engine error body, else the body itself (trimmed, capped).
std::string EngineMessage(absl::string_view body);

// What was being done when the engine answered with an error; picks the error mapping.
enum class EngineOp { kPing, kVersion, kCreate, kStart, kWait, kLogs, kKill, kRemove, kList, kInspect };

// EngineHttpError: maps a non-2xx engine answer to a Status with a message that says what to do:
//   404 on create (no such image)  -> FailedPrecondition "image X is missing: build it with
//                                     tools/build_sandbox_image.sh"
//   404 otherwise                  -> NotFound "no such container <ref>"
//   409 (Podman: 500 "already in use" on create) -> AlreadyExists (name conflict)
//   400                            -> InvalidArgument, 401/403 -> PermissionDenied
//   5xx and anything else          -> Internal with the engine's message
// `engine` names the engine ("Docker", "Podman"); `ref` is the image (create) or container id.
absl::Status EngineHttpError(EngineOp op, long http_status, absl::string_view body,
                             absl::string_view engine, absl::string_view ref);

}  // namespace fastest::backends::engine_api

#endif  // FASTEST_BACKENDS_ENGINE_API_ENGINE_REQUESTS_H_
