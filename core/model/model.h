// File: core/model/model.h
//
// The fastest domain objects (Project, Workspace, Snapshot, Job, DriftReport, ActivityEvent) and their
// JSON mapping. Field names and types are exactly those of the /v1 wire contract (PROTOCOLS.md §1.3):
// nullable fields are std::optional and are emitted as JSON null; timestamps are kept as the strings
// the API returned (both "2026-11-26T14:34:18.536Z" and "2026-11-26 14:33:37" occur).
//
// Example:
//   FASTEST_ASSIGN_OR_RETURN(Job job, JobFromJson(body["job"]));
//   if (!IsLegalTransition(job.status, JobStatus::kRunning)) return absl::FailedPreconditionError(...);
#ifndef FASTEST_CORE_MODEL_MODEL_H_
#define FASTEST_CORE_MODEL_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/json/json_util.h"  // DumpJson
#include "nlohmann/json.hpp"

namespace fastest::core {

// JobStatus: the five wire values "pending", "running", "completed", "failed", "cancelled".
enum class JobStatus { kPending, kRunning, kCompleted, kFailed, kCancelled };

// JobStatusName: the wire string of a status ("pending", ...).
absl::string_view JobStatusName(JobStatus status);

// ParseJobStatus: the inverse of JobStatusName; exact, case-sensitive. Unknown → InvalidArgument.
absl::StatusOr<JobStatus> ParseJobStatus(absl::string_view name);

// IsTerminal: completed, failed and cancelled accept no further transition.
bool IsTerminal(JobStatus status);

// IsLegalTransition: the intended state machine (PROTOCOLS §1.8):
//   pending → running | failed | cancelled;  running → completed | failed | cancelled;
//   running → running (idempotent retry of the "running" callback). Nothing leaves a terminal state.
bool IsLegalTransition(JobStatus from, JobStatus to);

struct Project {
  std::string id;
  std::string owner_user_id;
  std::string name;
  std::string created_at;
  std::string updated_at;
  std::optional<std::string> last_snapshot_id;
};

struct Workspace {
  std::string id;
  std::string project_id;
  std::string name;
  std::optional<std::string> machine_id;
  std::optional<std::string> base_snapshot_id;
  std::optional<std::string> local_path;
  std::optional<std::string> last_seen_at;
  std::string created_at;
};

struct Snapshot {
  std::string id;
  std::string project_id;
  std::string manifest_hash;
  std::optional<std::string> parent_snapshot_id;
  std::string source;
  std::string created_at;
};

struct Job {
  std::string id;
  std::string workspace_id;
  std::string project_id;
  std::string prompt;
  JobStatus status = JobStatus::kPending;
  std::optional<std::string> output_snapshot_id;
  std::optional<std::string> error;
  std::string created_at;
  std::optional<std::string> started_at;
  std::optional<std::string> completed_at;
};

struct DriftReport {
  std::string id;
  std::string workspace_id;
  int64_t files_added = 0;
  int64_t files_modified = 0;
  int64_t files_deleted = 0;
  int64_t bytes_changed = 0;
  std::optional<std::string> summary;
  std::string reported_at;
};

struct ActivityEvent {
  std::string id;
  std::string project_id;
  std::optional<std::string> workspace_id;
  std::string actor;
  std::string type;
  std::optional<std::string> snapshot_id;
  std::optional<std::string> message;
  std::string created_at;
};

// ToJson: every field, nullopt as JSON null. (nlohmann::json objects are key-sorted; field order on the
// wire is informational only.)
nlohmann::json ToJson(const Project& v);
nlohmann::json ToJson(const Workspace& v);
nlohmann::json ToJson(const Snapshot& v);
nlohmann::json ToJson(const Job& v);
nlohmann::json ToJson(const DriftReport& v);
nlohmann::json ToJson(const ActivityEvent& v);

// XFromJson: required fields must be present with the right type; nullable fields may be null or
// missing (→ nullopt); unknown fields are ignored. Wrong types → InvalidArgument naming the field.
absl::StatusOr<Project> ProjectFromJson(const nlohmann::json& j);
absl::StatusOr<Workspace> WorkspaceFromJson(const nlohmann::json& j);
absl::StatusOr<Snapshot> SnapshotFromJson(const nlohmann::json& j);
absl::StatusOr<Job> JobFromJson(const nlohmann::json& j);
absl::StatusOr<DriftReport> DriftReportFromJson(const nlohmann::json& j);
absl::StatusOr<ActivityEvent> ActivityEventFromJson(const nlohmann::json& j);

// NewId: 26 chars [0-9A-Z]: current Unix ms in base 36, left-padded with '0' to 10 chars, then 16
// base-36 chars from the OS CSPRNG (the original API's id scheme). Sorts roughly by creation time.
std::string NewId();

// NowIso8601: the current UTC time like JS toISOString(): "2026-11-26T14:34:18.536Z" (24 chars).
std::string NowIso8601();

// FormatIso8601: the same format for a given time.
std::string FormatIso8601(absl::Time t);

// ParseTimestamp: accepts both wire forms, "2026-11-26T14:34:18.536Z" (ms optional, 'Z' required)
// and SQLite's "2026-11-26 14:33:37" (UTC). Anything else → InvalidArgument.
absl::StatusOr<absl::Time> ParseTimestamp(absl::string_view ts);

}  // namespace fastest::core

#endif  // FASTEST_CORE_MODEL_MODEL_H_
