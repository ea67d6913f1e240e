// Projects with their activity events, workspaces with drift reports, snapshots.
#include "server/store/store.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "core/model/model.h"
#include "core/status/status_macros.h"
#include "server/store/sqlite_statement.h"

namespace fastest::server {
namespace {

using store_internal::Stmt;
using store_internal::Txn;
using core::ActivityEvent;
using core::DriftReport;
using core::Project;
using core::Snapshot;
using core::Workspace;
const char kProjectCols[] = "id, owner_user_id, name, created_at, updated_at, last_snapshot_id";
Project ReadProject(const Stmt& s) {
  Project p;
  p.id = s.Text(0);
  p.owner_user_id = s.Text(1);
  p.name = s.Text(2);
  p.created_at = s.Text(3);
  p.updated_at = s.Text(4);
  p.last_snapshot_id = s.OptText(5);
  return p;
}

const char kWorkspaceCols[] =
    "id, project_id, name, machine_id, base_snapshot_id, local_path, last_seen_at, created_at";
Workspace ReadWorkspace(const Stmt& s) {
  Workspace w;
  w.id = s.Text(0);
  w.project_id = s.Text(1);
  w.name = s.Text(2);
  w.machine_id = s.OptText(3);
  w.base_snapshot_id = s.OptText(4);
  w.local_path = s.OptText(5);
  w.last_seen_at = s.OptText(6);
  w.created_at = s.Text(7);
  return w;
}

const char kSnapshotCols[] =
    "id, project_id, manifest_hash, parent_snapshot_id, source, created_at";
Snapshot ReadSnapshot(const Stmt& s) {
  Snapshot n;
  n.id = s.Text(0);
  n.project_id = s.Text(1);
  n.manifest_hash = s.Text(2);
  n.parent_snapshot_id = s.OptText(3);
  n.source = s.Text(4);
  n.created_at = s.Text(5);
  return n;
}

const char kEventCols[] =
    "id, project_id, workspace_id, actor, type, snapshot_id, message, created_at";
ActivityEvent ReadEvent(const Stmt& s) {
  ActivityEvent e;
  e.id = s.Text(0);
  e.project_id = s.Text(1);
  e.workspace_id = s.OptText(2);
  e.actor = s.Text(3);
  e.type = s.Text(4);
  e.snapshot_id = s.OptText(5);
  e.message = s.OptText(6);
  e.created_at = s.Text(7);
  return e;
}

const char kDriftCols[] =
    "id, workspace_id, files_added, files_modified, files_deleted, bytes_changed, summary, "
    "reported_at";
DriftReport ReadDrift(const Stmt& s) {
  DriftReport d;
  d.id = s.Text(0);
  d.workspace_id = s.Text(1);
  d.files_added = s.Int(2);
  d.files_modified = s.Int(3);
  d.files_deleted = s.Int(4);
  d.bytes_changed = s.Int(5);
  d.summary = s.OptText(6);
  d.reported_at = s.Text(7);
  return d;
}

}  // namespace

// ---------------------------------------------------------------- events

absl::Status Store::AddEventLocked(const std::string& project_id,
                                   const std::optional<std::string>& workspace_id,
                                   const std::string& actor, const std::string& type,
                                   const std::optional<std::string>& snapshot_id,
                                   const std::optional<std::string>& message) {
  Stmt s(db_, absl::StrCat("INSERT INTO activity_events(", kEventCols,
                           ") VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
  return s.Bind(1, core::NewId())
      .Bind(2, project_id)
      .Bind(3, workspace_id)
      .Bind(4, actor)
      .Bind(5, type)
      .Bind(6, snapshot_id)
      .Bind(7, message)
      .Bind(8, core::NowIso8601())
      .Run();
}

absl::StatusOr<std::vector<ActivityEvent>> Store::ListEvents(const std::string& project_id,
                                                            int limit) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kEventCols,
                           " FROM activity_events WHERE project_id = ? "
                           "ORDER BY created_at DESC, rowid DESC LIMIT ?"));
  s.Bind(1, project_id).Bind(2, int64_t{limit});
  std::vector<ActivityEvent> out;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadEvent(s));
  }
  return out;
}

// ---------------------------------------------------------------- projects

absl::StatusOr<Project> Store::CreateProject(const std::string& owner_user_id,
                                             const std::string& name) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  Project p;
  p.id = core::NewId();
  p.owner_user_id = owner_user_id;
  p.name = name;
  p.created_at = p.updated_at = core::NowIso8601();
  Stmt s(db_, absl::StrCat("INSERT INTO projects(", kProjectCols, ") VALUES(?, ?, ?, ?, ?, ?)"));
  FASTEST_RETURN_IF_ERROR(s.Bind(1, p.id)
                              .Bind(2, p.owner_user_id)
                              .Bind(3, p.name)
                              .Bind(4, p.created_at)
                              .Bind(5, p.updated_at)
                              .Bind(6, p.last_snapshot_id)
                              .Run());
  FASTEST_RETURN_IF_ERROR(AddEventLocked(p.id, std::nullopt, "web", "project.created",
                                         std::nullopt, absl::StrCat("Project \"", name,
                                                                    "\" created")));
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return p;
}

absl::StatusOr<Project> Store::GetProjectLocked(const std::string& id) {
  Stmt s(db_, absl::StrCat("SELECT ", kProjectCols, " FROM projects WHERE id = ?"));
  s.Bind(1, id);
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("Project not found");
  return ReadProject(s);
}

absl::StatusOr<Project> Store::GetProject(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return GetProjectLocked(id);
}

absl::StatusOr<std::vector<Project>> Store::ListProjects(const std::string& owner_user_id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kProjectCols,
                           " FROM projects WHERE owner_user_id = ? "
                           "ORDER BY updated_at DESC, rowid DESC"));
  s.Bind(1, owner_user_id);
  std::vector<Project> out;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadProject(s));
  }
  return out;
}

// ---------------------------------------------------------------- workspaces

absl::StatusOr<Workspace> Store::GetWorkspaceLocked(const std::string& id) {
  Stmt s(db_, absl::StrCat("SELECT ", kWorkspaceCols, " FROM workspaces WHERE id = ?"));
  s.Bind(1, id);
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("Workspace not found");
  return ReadWorkspace(s);
}

absl::StatusOr<Workspace> Store::CreateWorkspace(Workspace ws) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  if (ws.base_snapshot_id) {
    auto snap = GetSnapshotLocked(*ws.base_snapshot_id);
    if (!snap.ok() || snap->project_id != ws.project_id) {
      return absl::NotFoundError("Base snapshot not found");
    }
  }
  ws.id = core::NewId();
  ws.created_at = core::NowIso8601();
  Stmt s(db_, absl::StrCat("INSERT INTO workspaces(", kWorkspaceCols,
                           ") VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
  FASTEST_RETURN_IF_ERROR(s.Bind(1, ws.id)
                              .Bind(2, ws.project_id)
                              .Bind(3, ws.name)
                              .Bind(4, ws.machine_id)
                              .Bind(5, ws.base_snapshot_id)
                              .Bind(6, ws.local_path)
                              .Bind(7, ws.last_seen_at)
                              .Bind(8, ws.created_at)
                              .Run());
  FASTEST_RETURN_IF_ERROR(AddEventLocked(ws.project_id, ws.id, "cli", "workspace.created",
                                         ws.base_snapshot_id,
                                         absl::StrCat("Workspace \"", ws.name, "\" created")));
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return ws;
}

absl::StatusOr<Workspace> Store::GetWorkspace(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return GetWorkspaceLocked(id);
}

absl::StatusOr<std::vector<Workspace>> Store::ListWorkspaces(const std::string& project_id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kWorkspaceCols,
                           " FROM workspaces WHERE project_id = ? "
                           "ORDER BY created_at DESC, rowid DESC"));
  s.Bind(1, project_id);
  std::vector<Workspace> out;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadWorkspace(s));
  }
  return out;
}

absl::StatusOr<std::string> Store::Heartbeat(const std::string& workspace_id) {
  absl::MutexLock lock(&mu_);
  FASTEST_RETURN_IF_ERROR(GetWorkspaceLocked(workspace_id).status());
  std::string now = core::NowIso8601();
  Stmt s(db_, "UPDATE workspaces SET last_seen_at = ? WHERE id = ?");
  FASTEST_RETURN_IF_ERROR(s.Bind(1, now).Bind(2, workspace_id).Run());
  return now;
}

absl::StatusOr<DriftReport> Store::AddDriftReport(DriftReport d) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  FASTEST_ASSIGN_OR_RETURN(Workspace ws, GetWorkspaceLocked(d.workspace_id));
  d.id = core::NewId();
  d.reported_at = core::NowIso8601();
  Stmt s(db_, absl::StrCat("INSERT INTO drift_reports(", kDriftCols,
                           ") VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
  FASTEST_RETURN_IF_ERROR(s.Bind(1, d.id)
                              .Bind(2, d.workspace_id)
                              .Bind(3, d.files_added)
                              .Bind(4, d.files_modified)
                              .Bind(5, d.files_deleted)
                              .Bind(6, d.bytes_changed)
                              .Bind(7, d.summary)
                              .Bind(8, d.reported_at)
                              .Run());
  Stmt u(db_, "UPDATE workspaces SET last_seen_at = ? WHERE id = ?");
  FASTEST_RETURN_IF_ERROR(u.Bind(1, d.reported_at).Bind(2, d.workspace_id).Run());
  if (d.files_added > 0 || d.files_modified > 0 || d.files_deleted > 0) {
    FASTEST_RETURN_IF_ERROR(AddEventLocked(
        ws.project_id, ws.id, "cli", "drift.reported", std::nullopt,
        d.summary ? *d.summary
                  : absl::StrCat(d.files_added, " added, ", d.files_modified, " modified, ",
                                 d.files_deleted, " deleted")));
  }
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return d;
}

absl::StatusOr<std::vector<DriftReport>> Store::ListDriftReports(
    const std::string& workspace_id, int limit) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kDriftCols,
                           " FROM drift_reports WHERE workspace_id = ? "
                           "ORDER BY reported_at DESC, rowid DESC LIMIT ?"));
  s.Bind(1, workspace_id).Bind(2, int64_t{limit});
  std::vector<DriftReport> out;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadDrift(s));
  }
  return out;
}

// ---------------------------------------------------------------- snapshots

absl::StatusOr<Snapshot> Store::GetSnapshotLocked(const std::string& id) {
  Stmt s(db_, absl::StrCat("SELECT ", kSnapshotCols, " FROM snapshots WHERE id = ?"));
  s.Bind(1, id);
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("Snapshot not found");
  return ReadSnapshot(s);
}

absl::StatusOr<Snapshot> Store::GetSnapshot(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return GetSnapshotLocked(id);
}

absl::StatusOr<std::pair<Snapshot, bool>> Store::CreateSnapshot(
    const std::string& project_id, const std::string& manifest_hash,
    std::optional<std::string> parent_snapshot_id, const std::string& source) {
  absl::MutexLock lock(&mu_);
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  FASTEST_RETURN_IF_ERROR(GetProjectLocked(project_id).status());
  {
    Stmt s(db_, absl::StrCat("SELECT ", kSnapshotCols,
                             " FROM snapshots WHERE project_id = ? AND manifest_hash = ?"));
    s.Bind(1, project_id).Bind(2, manifest_hash);
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) return std::make_pair(ReadSnapshot(s), false);
  }
  Snapshot n;
  n.id = core::NewId();
  n.project_id = project_id;
  n.manifest_hash = manifest_hash;
  n.parent_snapshot_id = std::move(parent_snapshot_id);
  n.source = source;
  n.created_at = core::NowIso8601();
  Stmt s(db_, absl::StrCat("INSERT INTO snapshots(", kSnapshotCols, ") VALUES(?, ?, ?, ?, ?, ?)"));
  FASTEST_RETURN_IF_ERROR(s.Bind(1, n.id)
                              .Bind(2, n.project_id)
                              .Bind(3, n.manifest_hash)
                              .Bind(4, n.parent_snapshot_id)
                              .Bind(5, n.source)
                              .Bind(6, n.created_at)
                              .Run());
  Stmt u(db_, "UPDATE projects SET last_snapshot_id = ?, updated_at = ? WHERE id = ?");
  FASTEST_RETURN_IF_ERROR(u.Bind(1, n.id).Bind(2, n.created_at).Bind(3, project_id).Run());
  FASTEST_RETURN_IF_ERROR(AddEventLocked(project_id, std::nullopt, source, "snapshot.pushed",
                                         n.id, absl::StrCat("Snapshot ", n.id, " pushed")));
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return std::make_pair(n, true);
}

absl::StatusOr<std::vector<Snapshot>> Store::ListSnapshots(const std::string& project_id,
                                                          int limit) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kSnapshotCols,
                           " FROM snapshots WHERE project_id = ? "
                           "ORDER BY created_at DESC, rowid DESC LIMIT ?"));
  s.Bind(1, project_id).Bind(2, int64_t{limit});
  std::vector<Snapshot> out;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ReadSnapshot(s));
  }
  return out;
}

}  // namespace fastest::server
