// File: core/plugin/sandbox_types.h
//
// The C++ form of the JSON documents that cross the backend ABI (core/abi/backend_abi.h): sandbox
// spec, sandbox info, wait result, log options, label selector and sandbox list. The host facade
// (core/plugin/backend.h) and the backend SDK (core/sdk/backend_sdk.h) both use these codecs, so
// the two sides of the boundary can never disagree on a field name.
//
// Every ToJson writes "schema": 1. Every FromJson ignores unknown fields, accepts a missing
// optional field, and returns InvalidArgument naming the field when a present field has the wrong
// type. FromJson never throws.
//
// Example:
//   SandboxSpec spec;
//   spec.image = "fastest/sandbox:0.1.0";
//   spec.command = {"fastest-runner"};
//   std::string wire = SandboxSpecToJson(spec).dump();
//   absl::StatusOr<SandboxSpec> back = SandboxSpecFromJson(nlohmann::json::parse(wire));
#ifndef FASTEST_CORE_PLUGIN_SANDBOX_TYPES_H_
#define FASTEST_CORE_PLUGIN_SANDBOX_TYPES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/json/json_util.h"  // DumpJson, ParseJsonObject
#include "nlohmann/json.hpp"

namespace fastest::core {

// The "schema" value this build writes into every ABI document.
inline constexpr int kSandboxSchemaVersion = 1;

// SandboxSpec: what to run. `env` may hold secrets: never log its values.
struct SandboxSpec {
  std::string name;  // optional engine-side name
  std::string image;
  std::vector<std::string> command;  // argv
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> labels;
  std::string working_dir;   // optional
  std::string network_mode;  // "host" | "none" | "bridge" | "" (backend default)
  int64_t nano_cpus = 0;     // resources; 0 = backend default / unlimited
  int64_t memory_bytes = 0;
  int64_t pids_limit = 0;
  int64_t disk_bytes = 0;
  int64_t timeout_ms = 0;  // hard cap the backend may enforce; 0 = none
  // Host directory with the sandbox's channel sockets, mounted read-only at /run/fastest by
  // backends whose Describe() says "channel_mount": true; "" = none.
  std::string channel_dir;
};

// SandboxInfo: one sandbox as the backend sees it. `state` is "created", "running", "exited" or
// "unknown"; `exit_code` is set once it exited (if the backend knows it).
struct SandboxInfo {
  std::string id;
  std::string name;
  std::string state;
  std::map<std::string, std::string> labels;
  std::optional<int> exit_code;
};

// WaitResult: exited=false means the deadline passed first.
struct WaitResult {
  bool exited = false;
  std::optional<int> exit_code;
};

// LogOptions: tail = number of last lines to deliver first (0 = all).
struct LogOptions {
  bool follow = false;
  int tail = 0;
  bool include_stdout = true;
  bool include_stderr = true;
};

// Stream numbers used by read_logs sinks.
inline constexpr int kStdoutStream = 1;
inline constexpr int kStderrStream = 2;

nlohmann::json SandboxSpecToJson(const SandboxSpec& spec);
absl::StatusOr<SandboxSpec> SandboxSpecFromJson(const nlohmann::json& json);

nlohmann::json SandboxInfoToJson(const SandboxInfo& info);
absl::StatusOr<SandboxInfo> SandboxInfoFromJson(const nlohmann::json& json);

nlohmann::json WaitResultToJson(const WaitResult& result);
absl::StatusOr<WaitResult> WaitResultFromJson(const nlohmann::json& json);

nlohmann::json LogOptionsToJson(const LogOptions& options);
absl::StatusOr<LogOptions> LogOptionsFromJson(const nlohmann::json& json);

// Label selector for list_sandboxes: {"schema":1,"labels":{...}}.
nlohmann::json LabelSelectorToJson(const std::map<std::string, std::string>& labels);
absl::StatusOr<std::map<std::string, std::string>> LabelSelectorFromJson(
    const nlohmann::json& json);

// Sandbox list (list_sandboxes output): {"schema":1,"sandboxes":[...]}.
nlohmann::json SandboxListToJson(const std::vector<SandboxInfo>& sandboxes);
absl::StatusOr<std::vector<SandboxInfo>> SandboxListFromJson(const nlohmann::json& json);

// True when `labels` carries every entry of `selector` with the same value.
bool LabelsMatch(const std::map<std::string, std::string>& labels,
                 const std::map<std::string, std::string>& selector);


}  // namespace fastest::core

#endif  // FASTEST_CORE_PLUGIN_SANDBOX_TYPES_H_
