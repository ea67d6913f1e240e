#include "core/plugin/sandbox_types.h"

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status/status_macros.h"

namespace fastest::core {
namespace {

using nlohmann::json;

// Each reader leaves `out` untouched when the field is absent (or null for optional fields) and
// fails only when the field is present with the wrong type, so readers stay forward compatible.

absl::Status NotObject(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": expected a JSON object"));
}

absl::Status WrongType(absl::string_view field, absl::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat("field \"", field, "\" must be ", want));
}

absl::Status ReadString(const json& j, const char* field, std::string* out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return WrongType(field, "a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status ReadBool(const json& j, const char* field, bool* out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) return WrongType(field, "a boolean");
  *out = it->get<bool>();
  return absl::OkStatus();
}

absl::Status ReadInt64(const json& j, const char* field, int64_t* out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (it->is_number_unsigned()) {
    uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return WrongType(field, "an integer that fits in int64");
    }
    *out = static_cast<int64_t>(v);
    return absl::OkStatus();
  }
  if (!it->is_number_integer()) return WrongType(field, "an integer");
  *out = it->get<int64_t>();
  return absl::OkStatus();
}

absl::Status ReadInt(const json& j, const char* field, int* out) {
  int64_t v = *out;
  FASTEST_RETURN_IF_ERROR(ReadInt64(j, field, &v));
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
    return WrongType(field, "an integer that fits in int32");
  }
  *out = static_cast<int>(v);
  return absl::OkStatus();
}

absl::Status ReadOptionalInt(const json& j, const char* field, std::optional<int>* out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    out->reset();
    return absl::OkStatus();
  }
  int v = 0;
  FASTEST_RETURN_IF_ERROR(ReadInt(j, field, &v));
  *out = v;
  return absl::OkStatus();
}

absl::Status ReadStringMap(const json& j, const char* field,
                           std::map<std::string, std::string>* out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_object()) return WrongType(field, "an object of strings");
  out->clear();
  for (auto entry = it->begin(); entry != it->end(); ++entry) {
    if (!entry.value().is_string()) {
      return WrongType(absl::StrCat(field, ".", entry.key()), "a string");
    }
    (*out)[entry.key()] = entry.value().get<std::string>();
  }
  return absl::OkStatus();
}

absl::Status ReadStringList(const json& j, const char* field, std::vector<std::string>* out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) return WrongType(field, "an array of strings");
  out->clear();
  for (const json& item : *it) {
    if (!item.is_string()) return WrongType(field, "an array of strings");
    out->push_back(item.get<std::string>());
  }
  return absl::OkStatus();
}

json OptionalInt(const std::optional<int>& v) { return v.has_value() ? json(*v) : json(nullptr); }

}  // namespace

json SandboxSpecToJson(const SandboxSpec& spec) {
  json j = {{"schema", kSandboxSchemaVersion},
            {"image", spec.image},
            {"command", spec.command},
            {"env", spec.env},
            {"labels", spec.labels},
            {"resources",
             {{"nano_cpus", spec.nano_cpus},
              {"memory_bytes", spec.memory_bytes},
              {"pids_limit", spec.pids_limit},
              {"disk_bytes", spec.disk_bytes}}},
            {"timeout_ms", spec.timeout_ms}};
  if (!spec.name.empty()) j["name"] = spec.name;
  if (!spec.working_dir.empty()) j["working_dir"] = spec.working_dir;
  if (!spec.network_mode.empty()) j["network_mode"] = spec.network_mode;
  if (!spec.channel_dir.empty()) j["channel_dir"] = spec.channel_dir;
  return j;
}

absl::StatusOr<SandboxSpec> SandboxSpecFromJson(const json& j) {
  if (!j.is_object()) return NotObject("sandbox spec");
  SandboxSpec spec;
  FASTEST_RETURN_IF_ERROR(ReadString(j, "name", &spec.name));
  FASTEST_RETURN_IF_ERROR(ReadString(j, "image", &spec.image));
  FASTEST_RETURN_IF_ERROR(ReadStringList(j, "command", &spec.command));
  FASTEST_RETURN_IF_ERROR(ReadStringMap(j, "env", &spec.env));
  FASTEST_RETURN_IF_ERROR(ReadStringMap(j, "labels", &spec.labels));
  FASTEST_RETURN_IF_ERROR(ReadString(j, "working_dir", &spec.working_dir));
  FASTEST_RETURN_IF_ERROR(ReadString(j, "network_mode", &spec.network_mode));
  FASTEST_RETURN_IF_ERROR(ReadString(j, "channel_dir", &spec.channel_dir));
  auto res = j.find("resources");
  if (res != j.end() && !res->is_null()) {
    if (!res->is_object()) return WrongType("resources", "an object");
    FASTEST_RETURN_IF_ERROR(ReadInt64(*res, "nano_cpus", &spec.nano_cpus));
    FASTEST_RETURN_IF_ERROR(ReadInt64(*res, "memory_bytes", &spec.memory_bytes));
    FASTEST_RETURN_IF_ERROR(ReadInt64(*res, "pids_limit", &spec.pids_limit));
    FASTEST_RETURN_IF_ERROR(ReadInt64(*res, "disk_bytes", &spec.disk_bytes));
  }
  FASTEST_RETURN_IF_ERROR(ReadInt64(j, "timeout_ms", &spec.timeout_ms));
  return spec;
}

json SandboxInfoToJson(const SandboxInfo& info) {
  return json{{"schema", kSandboxSchemaVersion},
              {"id", info.id},
              {"name", info.name},
              {"state", info.state},
              {"labels", info.labels},
              {"exit_code", OptionalInt(info.exit_code)}};
}

absl::StatusOr<SandboxInfo> SandboxInfoFromJson(const json& j) {
  if (!j.is_object()) return NotObject("sandbox");
  SandboxInfo info;
  FASTEST_RETURN_IF_ERROR(ReadString(j, "id", &info.id));
  if (info.id.empty()) return absl::InvalidArgumentError("sandbox: field \"id\" is missing");
  FASTEST_RETURN_IF_ERROR(ReadString(j, "name", &info.name));
  FASTEST_RETURN_IF_ERROR(ReadString(j, "state", &info.state));
  if (info.state.empty()) info.state = "unknown";
  FASTEST_RETURN_IF_ERROR(ReadStringMap(j, "labels", &info.labels));
  FASTEST_RETURN_IF_ERROR(ReadOptionalInt(j, "exit_code", &info.exit_code));
  return info;
}

json WaitResultToJson(const WaitResult& result) {
  return json{{"schema", kSandboxSchemaVersion},
              {"exited", result.exited},
              {"exit_code", OptionalInt(result.exit_code)}};
}

absl::StatusOr<WaitResult> WaitResultFromJson(const json& j) {
  if (!j.is_object()) return NotObject("wait result");
  WaitResult result;
  FASTEST_RETURN_IF_ERROR(ReadBool(j, "exited", &result.exited));
  FASTEST_RETURN_IF_ERROR(ReadOptionalInt(j, "exit_code", &result.exit_code));
  return result;
}

json LogOptionsToJson(const LogOptions& options) {
  return json{{"schema", kSandboxSchemaVersion},
              {"follow", options.follow},
              {"tail", options.tail},
              {"stdout", options.include_stdout},
              {"stderr", options.include_stderr}};
}

absl::StatusOr<LogOptions> LogOptionsFromJson(const json& j) {
  if (!j.is_object()) return NotObject("log options");
  LogOptions options;
  FASTEST_RETURN_IF_ERROR(ReadBool(j, "follow", &options.follow));
  FASTEST_RETURN_IF_ERROR(ReadInt(j, "tail", &options.tail));
  if (options.tail < 0) return WrongType("tail", "a non-negative integer");
  FASTEST_RETURN_IF_ERROR(ReadBool(j, "stdout", &options.include_stdout));
  FASTEST_RETURN_IF_ERROR(ReadBool(j, "stderr", &options.include_stderr));
  return options;
}

json LabelSelectorToJson(const std::map<std::string, std::string>& labels) {
  return json{{"schema", kSandboxSchemaVersion}, {"labels", labels}};
}

absl::StatusOr<std::map<std::string, std::string>> LabelSelectorFromJson(const json& j) {
  if (!j.is_object()) return NotObject("label selector");
  std::map<std::string, std::string> labels;
  FASTEST_RETURN_IF_ERROR(ReadStringMap(j, "labels", &labels));
  return labels;
}

json SandboxListToJson(const std::vector<SandboxInfo>& sandboxes) {
  json items = json::array();
  for (const SandboxInfo& info : sandboxes) items.push_back(SandboxInfoToJson(info));
  return json{{"schema", kSandboxSchemaVersion}, {"sandboxes", std::move(items)}};
}

absl::StatusOr<std::vector<SandboxInfo>> SandboxListFromJson(const json& j) {
  if (!j.is_object()) return NotObject("sandbox list");
  std::vector<SandboxInfo> out;
  auto it = j.find("sandboxes");
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return WrongType("sandboxes", "an array");
  for (const json& item : *it) {
    absl::StatusOr<SandboxInfo> info = SandboxInfoFromJson(item);
    if (!info.ok()) return Annotate(info.status(), "sandbox list");
    out.push_back(*std::move(info));
  }
  return out;
}

bool LabelsMatch(const std::map<std::string, std::string>& labels,
                 const std::map<std::string, std::string>& selector) {
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

}  // namespace fastest::core
