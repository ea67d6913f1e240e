// File: core/model/model.cc
#include "core/model/model.h"

#include <time.h>

#include <array>
#include <cstdio>

#include "core/crypto/secure_random.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status/status_macros.h"

namespace fastest::core {
namespace {

using nlohmann::json;

constexpr std::array<absl::string_view, 5> kStatusNames = {"pending", "running", "completed", "failed",
                                                           "cancelled"};

absl::Status NotObject(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": expected a JSON object"));
}

// Reads a required string field.
absl::Status ReadString(const json& j, absl::string_view what, const char* key, std::string* out) {
  auto it = j.find(key);
  if (it == j.end()) return absl::InvalidArgumentError(absl::StrCat(what, ".", key, ": missing"));
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".", key, ": expected a string, got ", it->type_name()));
  }
  *out = it->get_ref<const std::string&>();
  return absl::OkStatus();
}

// Reads a nullable string field; missing or null → nullopt.
absl::Status ReadOptString(const json& j, absl::string_view what, const char* key,
                           std::optional<std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    out->reset();
    return absl::OkStatus();
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".", key, ": expected a string or null, got ", it->type_name()));
  }
  *out = it->get_ref<const std::string&>();
  return absl::OkStatus();
}

// Reads a required integer field (no floats, no strings).
absl::Status ReadInt(const json& j, absl::string_view what, const char* key, int64_t* out) {
  auto it = j.find(key);
  if (it == j.end()) return absl::InvalidArgumentError(absl::StrCat(what, ".", key, ": missing"));
  if (it->is_number_unsigned()) {
    uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ".", key, ": out of range"));
    }
    *out = static_cast<int64_t>(u);
    return absl::OkStatus();
  }
  if (it->is_number_integer()) {
    *out = it->get<int64_t>();
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, ".", key, ": expected an integer, got ", it->type_name()));
}

json OptToJson(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }

}  // namespace

absl::string_view JobStatusName(JobStatus status) {
  size_t i = static_cast<size_t>(status);
  return i < kStatusNames.size() ? kStatusNames[i] : absl::string_view("unknown");
}

absl::StatusOr<JobStatus> ParseJobStatus(absl::string_view name) {
  for (size_t i = 0; i < kStatusNames.size(); ++i) {
    if (kStatusNames[i] == name) return static_cast<JobStatus>(i);
  }
  return absl::InvalidArgumentError(absl::StrCat("invalid job status '", name, "'"));
}

bool IsTerminal(JobStatus status) {
  return status == JobStatus::kCompleted || status == JobStatus::kFailed ||
         status == JobStatus::kCancelled;
}

bool IsLegalTransition(JobStatus from, JobStatus to) {
  switch (from) {
    case JobStatus::kPending:
      return to == JobStatus::kRunning || to == JobStatus::kFailed || to == JobStatus::kCancelled;
    case JobStatus::kRunning:
      return to == JobStatus::kRunning || to == JobStatus::kCompleted || to == JobStatus::kFailed ||
             to == JobStatus::kCancelled;
    default:
      return false;
  }
}

json ToJson(const Project& v) {
  return json{{"id", v.id},
              {"owner_user_id", v.owner_user_id},
              {"name", v.name},
              {"created_at", v.created_at},
              {"updated_at", v.updated_at},
              {"last_snapshot_id", OptToJson(v.last_snapshot_id)}};
}

json ToJson(const Workspace& v) {
  return json{{"id", v.id},
              {"project_id", v.project_id},
              {"name", v.name},
              {"machine_id", OptToJson(v.machine_id)},
              {"base_snapshot_id", OptToJson(v.base_snapshot_id)},
              {"local_path", OptToJson(v.local_path)},
              {"last_seen_at", OptToJson(v.last_seen_at)},
              {"created_at", v.created_at}};
}

json ToJson(const Snapshot& v) {
  return json{{"id", v.id},
              {"project_id", v.project_id},
              {"manifest_hash", v.manifest_hash},
              {"parent_snapshot_id", OptToJson(v.parent_snapshot_id)},
              {"source", v.source},
              {"created_at", v.created_at}};
}

json ToJson(const Job& v) {
  return json{{"id", v.id},
              {"workspace_id", v.workspace_id},
              {"project_id", v.project_id},
              {"prompt", v.prompt},
              {"status", std::string(JobStatusName(v.status))},
              {"output_snapshot_id", OptToJson(v.output_snapshot_id)},
              {"error", OptToJson(v.error)},
              {"created_at", v.created_at},
              {"started_at", OptToJson(v.started_at)},
              {"completed_at", OptToJson(v.completed_at)}};
}

json ToJson(const DriftReport& v) {
  return json{{"id", v.id},
              {"workspace_id", v.workspace_id},
              {"files_added", v.files_added},
              {"files_modified", v.files_modified},
              {"files_deleted", v.files_deleted},
              {"bytes_changed", v.bytes_changed},
              {"summary", OptToJson(v.summary)},
              {"reported_at", v.reported_at}};
}

json ToJson(const ActivityEvent& v) {
  return json{{"id", v.id},
              {"project_id", v.project_id},
              {"workspace_id", OptToJson(v.workspace_id)},
              {"actor", v.actor},
              {"type", v.type},
              {"snapshot_id", OptToJson(v.snapshot_id)},
              {"message", OptToJson(v.message)},
              {"created_at", v.created_at}};
}

absl::StatusOr<Project> ProjectFromJson(const json& j) {
  constexpr absl::string_view w = "project";
  if (!j.is_object()) return NotObject(w);
  Project v;
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "id", &v.id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "owner_user_id", &v.owner_user_id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "name", &v.name));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "created_at", &v.created_at));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "updated_at", &v.updated_at));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "last_snapshot_id", &v.last_snapshot_id));
  return v;
}

absl::StatusOr<Workspace> WorkspaceFromJson(const json& j) {
  constexpr absl::string_view w = "workspace";
  if (!j.is_object()) return NotObject(w);
  Workspace v;
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "id", &v.id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "project_id", &v.project_id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "name", &v.name));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "machine_id", &v.machine_id));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "base_snapshot_id", &v.base_snapshot_id));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "local_path", &v.local_path));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "last_seen_at", &v.last_seen_at));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "created_at", &v.created_at));
  return v;
}

absl::StatusOr<Snapshot> SnapshotFromJson(const json& j) {
  constexpr absl::string_view w = "snapshot";
  if (!j.is_object()) return NotObject(w);
  Snapshot v;
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "id", &v.id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "project_id", &v.project_id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "manifest_hash", &v.manifest_hash));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "parent_snapshot_id", &v.parent_snapshot_id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "source", &v.source));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "created_at", &v.created_at));
  return v;
}

absl::StatusOr<Job> JobFromJson(const json& j) {
  constexpr absl::string_view w = "job";
  if (!j.is_object()) return NotObject(w);
  Job v;
  std::string status;
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "id", &v.id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "workspace_id", &v.workspace_id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "project_id", &v.project_id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "prompt", &v.prompt));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "status", &status));
  FASTEST_ASSIGN_OR_RETURN(v.status, ParseJobStatus(status));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "output_snapshot_id", &v.output_snapshot_id));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "error", &v.error));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "created_at", &v.created_at));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "started_at", &v.started_at));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "completed_at", &v.completed_at));
  return v;
}

absl::StatusOr<DriftReport> DriftReportFromJson(const json& j) {
  constexpr absl::string_view w = "drift_report";
  if (!j.is_object()) return NotObject(w);
  DriftReport v;
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "id", &v.id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "workspace_id", &v.workspace_id));
  FASTEST_RETURN_IF_ERROR(ReadInt(j, w, "files_added", &v.files_added));
  FASTEST_RETURN_IF_ERROR(ReadInt(j, w, "files_modified", &v.files_modified));
  FASTEST_RETURN_IF_ERROR(ReadInt(j, w, "files_deleted", &v.files_deleted));
  FASTEST_RETURN_IF_ERROR(ReadInt(j, w, "bytes_changed", &v.bytes_changed));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "summary", &v.summary));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "reported_at", &v.reported_at));
  return v;
}

absl::StatusOr<ActivityEvent> ActivityEventFromJson(const json& j) {
  constexpr absl::string_view w = "activity_event";
  if (!j.is_object()) return NotObject(w);
  ActivityEvent v;
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "id", &v.id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "project_id", &v.project_id));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "workspace_id", &v.workspace_id));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "actor", &v.actor));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "type", &v.type));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "snapshot_id", &v.snapshot_id));
  FASTEST_RETURN_IF_ERROR(ReadOptString(j, w, "message", &v.message));
  FASTEST_RETURN_IF_ERROR(ReadString(j, w, "created_at", &v.created_at));
  return v;
}

std::string NewId() {
  static constexpr char kDigits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  int64_t ms = absl::ToUnixMillis(absl::Now());
  if (ms < 0) ms = 0;
  std::string prefix;
  do {
    prefix.insert(prefix.begin(), kDigits[ms % 36]);
    ms /= 36;
  } while (ms > 0);
  if (prefix.size() < 10) prefix.insert(0, 10 - prefix.size(), '0');
  return prefix + SecureRandomString(kDigits, 16);
}

std::string FormatIso8601(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

std::string NowIso8601() {
  // Formatting through cctz is a visible cost at tens of thousands of calls a second (every
  // /health answer carries one): calls within the same millisecond share the text.
  thread_local int64_t cached_ms = -1;
  thread_local std::string cached;
  const absl::Time now = absl::Now();
  const int64_t ms = absl::ToUnixMillis(now);
  if (ms != cached_ms) {
    cached = FormatIso8601(now);
    cached_ms = ms;
  }
  return cached;
}

absl::StatusOr<absl::Time> ParseTimestamp(absl::string_view ts) {
  std::string s(ts);
  absl::Time t;
  std::string err;
  // %E*S accepts seconds with or without a fraction.
  if (s.size() >= 20 && s[10] == 'T' && s.back() == 'Z' &&
      absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", s, absl::UTCTimeZone(), &t, &err)) {
    return t;
  }
  if (s.size() == 19 && s[10] == ' ' &&
      absl::ParseTime("%Y-%m-%d %H:%M:%S", s, absl::UTCTimeZone(), &t, &err)) {
    return t;
  }
  return absl::InvalidArgumentError(absl::StrCat("invalid timestamp '", s, "'"));
}

}  // namespace fastest::core
