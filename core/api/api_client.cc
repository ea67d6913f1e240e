#include "core/api/api_client.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/api/api_client_internal.h"
#include "core/encoding/percent_encoding.h"
#include "core/json/json_util.h"
#include "core/status/status_macros.h"

namespace fastest::core {
// ---- Projects ----

absl::StatusOr<Project> ApiClient::CreateProject(absl::string_view name) {
  nlohmann::json body = {{"name", std::string(name)}};
  FASTEST_ASSIGN_OR_RETURN(nlohmann::json j, CallJson("POST", "/v1/projects", &body, false));
  return Field<Project>(j, "project", ProjectFromJson);
}

absl::StatusOr<ProjectDetails> ApiClient::GetProject(absl::string_view project_id) {
  FASTEST_RETURN_IF_ERROR(CheckId("project", project_id));
  FASTEST_ASSIGN_OR_RETURN(nlohmann::json j,
                           CallJson("GET", absl::StrCat("/v1/projects/", project_id), nullptr));
  ProjectDetails details;
  FASTEST_ASSIGN_OR_RETURN(details.project, Field<Project>(j, "project", ProjectFromJson));
  if (j.contains("workspaces")) {
    FASTEST_ASSIGN_OR_RETURN(details.workspaces,
                             ListField<Workspace>(j, "workspaces", WorkspaceFromJson));
  }
  if (j.contains("snapshots")) {
    FASTEST_ASSIGN_OR_RETURN(details.snapshots,
                             ListField<Snapshot>(j, "snapshots", SnapshotFromJson));
  }
  return details;
}

absl::StatusOr<std::vector<Project>> ApiClient::ListProjects() {
  FASTEST_ASSIGN_OR_RETURN(nlohmann::json j, CallJson("GET", "/v1/projects", nullptr));
  return ListField<Project>(j, "projects", ProjectFromJson);
}

// ---- Workspaces ----

absl::StatusOr<Workspace> ApiClient::CreateWorkspace(absl::string_view project_id,
                                                     const CreateWorkspaceRequest& request) {
  FASTEST_RETURN_IF_ERROR(CheckId("project", project_id));
  nlohmann::json body = {{"name", request.name}};
  if (request.base_snapshot_id) body["base_snapshot_id"] = *request.base_snapshot_id;
  if (request.machine_id) body["machine_id"] = *request.machine_id;
  if (request.local_path) body["local_path"] = *request.local_path;
  FASTEST_ASSIGN_OR_RETURN(
      nlohmann::json j,
      CallJson("POST", absl::StrCat("/v1/projects/", project_id, "/workspaces"), &body, false));
  return Field<Workspace>(j, "workspace", WorkspaceFromJson);
}

absl::StatusOr<Workspace> ApiClient::GetWorkspace(absl::string_view workspace_id) {
  FASTEST_RETURN_IF_ERROR(CheckId("workspace", workspace_id));
  FASTEST_ASSIGN_OR_RETURN(
      nlohmann::json j, CallJson("GET", absl::StrCat("/v1/workspaces/", workspace_id), nullptr));
  return Field<Workspace>(j, "workspace", WorkspaceFromJson);
}

absl::StatusOr<std::vector<Workspace>> ApiClient::ListWorkspaces(absl::string_view project_id) {
  FASTEST_RETURN_IF_ERROR(CheckId("project", project_id));
  FASTEST_ASSIGN_OR_RETURN(
      nlohmann::json j,
      CallJson("GET", absl::StrCat("/v1/projects/", project_id, "/workspaces"), nullptr));
  return ListField<Workspace>(j, "workspaces", WorkspaceFromJson);
}

// ---- Snapshots ----

absl::StatusOr<CreateSnapshotResult> ApiClient::CreateSnapshot(
    absl::string_view project_id, absl::string_view manifest_hash,
    const std::optional<std::string>& parent_snapshot_id, absl::string_view source) {
  FASTEST_RETURN_IF_ERROR(CheckId("project", project_id));
  FASTEST_RETURN_IF_ERROR(CheckHash(manifest_hash));
  nlohmann::json body = {{"manifest_hash", std::string(manifest_hash)},
                         {"source", std::string(source)}};
  if (parent_snapshot_id) body["parent_snapshot_id"] = *parent_snapshot_id;
  // Idempotent per manifest hash, so retrying any transient failure is safe.
  FASTEST_ASSIGN_OR_RETURN(
      nlohmann::json j,
      CallJson("POST", absl::StrCat("/v1/projects/", project_id, "/snapshots"), &body, true));
  CreateSnapshotResult result;
  FASTEST_ASSIGN_OR_RETURN(result.snapshot, Field<Snapshot>(j, "snapshot", SnapshotFromJson));
  result.created = j.value("created", false);
  return result;
}

absl::StatusOr<Snapshot> ApiClient::GetSnapshot(absl::string_view snapshot_id) {
  FASTEST_RETURN_IF_ERROR(CheckId("snapshot", snapshot_id));
  FASTEST_ASSIGN_OR_RETURN(
      nlohmann::json j, CallJson("GET", absl::StrCat("/v1/snapshots/", snapshot_id), nullptr));
  return Field<Snapshot>(j, "snapshot", SnapshotFromJson);
}

absl::StatusOr<std::vector<Snapshot>> ApiClient::ListSnapshots(absl::string_view project_id,
                                                               int limit) {
  FASTEST_RETURN_IF_ERROR(CheckId("project", project_id));
  FASTEST_ASSIGN_OR_RETURN(
      nlohmann::json j,
      CallJson("GET",
               absl::StrCat("/v1/projects/", project_id,
                            "/snapshots?limit=", std::max(1, std::min(limit, 100))),
               nullptr));
  return ListField<Snapshot>(j, "snapshots", SnapshotFromJson);
}

// ---- Jobs ----

absl::StatusOr<Job> ApiClient::CreateJob(absl::string_view workspace_id,
                                         absl::string_view prompt) {
  nlohmann::json body = {{"workspace_id", std::string(workspace_id)},
                         {"prompt", std::string(prompt)}};
  FASTEST_ASSIGN_OR_RETURN(nlohmann::json j, CallJson("POST", "/v1/jobs", &body, false));
  return Field<Job>(j, "job", JobFromJson);
}

absl::StatusOr<Job> ApiClient::GetJob(absl::string_view job_id) {
  FASTEST_RETURN_IF_ERROR(CheckId("job", job_id));
  FASTEST_ASSIGN_OR_RETURN(nlohmann::json j,
                           CallJson("GET", absl::StrCat("/v1/jobs/", job_id), nullptr));
  return Field<Job>(j, "job", JobFromJson);
}

absl::StatusOr<std::optional<Job>> ApiClient::NextJob() {
  FASTEST_ASSIGN_OR_RETURN(nlohmann::json j, CallJson("GET", "/v1/jobs/next", nullptr));
  auto it = j.find("job");
  if (it == j.end() || it->is_null()) return std::optional<Job>();
  FASTEST_ASSIGN_OR_RETURN(Job job, Field<Job>(j, "job", JobFromJson));
  return std::optional<Job>(std::move(job));
}

absl::StatusOr<std::vector<Job>> ApiClient::ListJobs(const JobFilter& filter) {
  std::string path =
      absl::StrCat("/v1/jobs?limit=", std::max(1, std::min(filter.limit, 100)));
  if (filter.workspace_id) absl::StrAppend(&path, "&workspace_id=", PercentEncode(*filter.workspace_id));
  if (filter.project_id) absl::StrAppend(&path, "&project_id=", PercentEncode(*filter.project_id));
  if (filter.status) absl::StrAppend(&path, "&status=", JobStatusName(*filter.status));
  FASTEST_ASSIGN_OR_RETURN(nlohmann::json j, CallJson("GET", path, nullptr));
  return ListField<Job>(j, "jobs", JobFromJson);
}

absl::StatusOr<Job> ApiClient::CancelJob(absl::string_view job_id) {
  FASTEST_RETURN_IF_ERROR(CheckId("job", job_id));
  FASTEST_ASSIGN_OR_RETURN(
      nlohmann::json j, CallJson("POST", absl::StrCat("/v1/jobs/", job_id, "/cancel"), nullptr));
  return Field<Job>(j, "job", JobFromJson);
}

absl::StatusOr<Job> ApiClient::UpdateJobStatus(absl::string_view job_id, JobStatus status,
                                               const std::optional<std::string>& output_snapshot_id,
                                               const std::optional<std::string>& error) {
  FASTEST_RETURN_IF_ERROR(CheckId("job", job_id));
  nlohmann::json body = {{"status", std::string(JobStatusName(status))}};
  if (output_snapshot_id) body["output_snapshot_id"] = *output_snapshot_id;
  if (error) body["error"] = *error;
  FASTEST_ASSIGN_OR_RETURN(
      nlohmann::json j, CallJson("POST", absl::StrCat("/v1/jobs/", job_id, "/status"), &body));
  return Field<Job>(j, "job", JobFromJson);
}

// ---- Manifests ----

absl::Status ApiClient::UploadManifest(absl::string_view hash, absl::string_view text) {
  FASTEST_RETURN_IF_ERROR(CheckHash(hash));
  std::string path = absl::StrCat("/v1/blobs/manifests/", hash);
  auto make = [&]() {
    HttpRequest req;
    req.timeout = ToChrono(retry_.transfer_timeout);
    req.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
    req.body = std::string(text);
    return req;
  };
  return SendWithRetry("PUT", path, make, true).status();
}

absl::StatusOr<std::string> ApiClient::GetManifest(absl::string_view hash) {
  FASTEST_RETURN_IF_ERROR(CheckHash(hash));
  return GetContent(absl::StrCat("/v1/blobs/manifests/", hash));
}

}  // namespace fastest::core
