#include "server/api/api_service.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/api/blob_batch.h"
#include "core/model/model.h"
#include "core/snapshot/manifest.h"  // IsValidUtf8
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"
#include "server/api/api_error.h"
#include "server/api/request_parsing.h"
#include "server/api/request_auth.h"
#include "server/api/run_result_json.h"
#include "server/api/standby_routes.h"
#include "core/crypto/secure_random.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace fastest::server {
namespace {

using core::Job;
using core::JobStatus;
using core::Project;
using core::Snapshot;
using core::Workspace;
using net::Request;
using net::Responder;
using net::Response;
using nlohmann::json;
using api_request::BadRequest;
using api_request::Forbidden;
using api_request::NonEmpty;
using api_request::OptInt;
using api_request::OptString;
using api_request::ParseHashes;
using api_request::ParseLimit;
using api_request::ParseObject;
using api_request::Trim;
using api_request::Unauthorized;
using api_request::Validation;
using api_request::WaitRequested;

using AuthedHandler = std::function<Response(const Request&, const AuthInfo&)>;
using AuthedAsyncHandler =
    std::function<void(const Request&, const AuthInfo&, std::shared_ptr<Responder>)>;


json DriftSummary(const core::DriftReport& d) {
  return json{{"files_added", d.files_added},     {"files_modified", d.files_modified},
              {"files_deleted", d.files_deleted}, {"bytes_changed", d.bytes_changed},
              {"summary", d.summary ? json(*d.summary) : json(nullptr)},
              {"reported_at", d.reported_at}};
}

template <typename T>
json JsonArray(const std::vector<T>& items) {
  json a = json::array();
  for (const auto& i : items) a.push_back(core::ToJson(i));
  return a;
}


// The blob routes answer every batch of every snapshot: their JSON is written directly (nlohmann
// builds a tree and escapes char by char). Only for strings that need no escaping: lowercase hex.
void AppendHexArray(std::string* out, const std::vector<absl::string_view>& hashes) {
  out->push_back('[');
  for (size_t i = 0; i < hashes.size(); ++i) {
    if (i > 0) out->push_back(',');
    out->push_back('"');
    out->append(hashes[i].data(), hashes[i].size());
    out->push_back('"');
  }
  out->push_back(']');
}

Response JsonText(std::string body) {
  Response r;
  r.status = 200;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

// Batch transfer limits (see server/README.md).
constexpr size_t kMaxBatchBlobs = 1000;
constexpr uint64_t kMaxBatchDownloadBytes = 64ull << 20;


// What a per-job token may touch beyond its job: the job's workspace, its base snapshot and that
// snapshot's manifest and blobs, what it uploaded itself, and the one output snapshot it creates.
// Loaded on first use per job (one manifest parse), kept in memory.
class JobScopes {
 public:
  JobScopes(Store* store, BlobStore* blobs) : store_(store), blobs_(blobs) {}

  struct Scope {
    std::string job_id, workspace_id, project_id;
    std::optional<std::string> base_snapshot_id;
    std::optional<std::string> output_snapshot_id;
    absl::flat_hash_set<std::string> readable;  // kind char + hash
  };

  // Runs `fn` on the job's scope under the lock. NotFound if the job is unknown.
  absl::Status With(const std::string& job_id, const std::function<void(Scope&)>& fn) {
    {
      absl::MutexLock lock(&mu_);
      auto it = scopes_.find(job_id);
      if (it != scopes_.end()) {
        fn(it->second);
        return absl::OkStatus();
      }
    }
    FASTEST_ASSIGN_OR_RETURN(Scope loaded, Load(job_id));
    absl::MutexLock lock(&mu_);
    if (scopes_.size() >= 4096) scopes_.clear();  // bounded; a cleared scope is reloaded
    auto [it, inserted] = scopes_.emplace(job_id, std::move(loaded));
    fn(it->second);
    return absl::OkStatus();
  }

  static std::string Key(BlobStore::Kind kind, absl::string_view hash) {
    return absl::StrCat(kind == BlobStore::Kind::kBlob ? "b" : "m", hash);
  }

 private:
  absl::StatusOr<Scope> Load(const std::string& job_id) {
    Scope scope;
    FASTEST_ASSIGN_OR_RETURN(core::Job job, store_->GetJob(job_id));
    FASTEST_ASSIGN_OR_RETURN(core::Workspace ws, store_->GetWorkspace(job.workspace_id));
    scope.job_id = job.id;
    scope.workspace_id = ws.id;
    scope.project_id = job.project_id;
    scope.base_snapshot_id = ws.base_snapshot_id;
    // A restart forgets the in-memory scope; the job's stored output snapshot is its own.
    scope.output_snapshot_id = job.output_snapshot_id;
    if (ws.base_snapshot_id) {
      FASTEST_ASSIGN_OR_RETURN(core::Snapshot snap, store_->GetSnapshot(*ws.base_snapshot_id));
      scope.readable.insert(Key(BlobStore::Kind::kManifest, snap.manifest_hash));
      auto text = blobs_->Get(BlobStore::Kind::kManifest, snap.manifest_hash);
      if (text.ok()) {
        auto manifest = core::ParseManifest(*text);
        if (manifest.ok()) {
          for (const auto& f : manifest->files) {
            scope.readable.insert(Key(BlobStore::Kind::kBlob, f.hash));
          }
        }
      }
    }
    return scope;
  }

  Store* store_;
  BlobStore* blobs_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Scope> scopes_ ABSL_GUARDED_BY(mu_);
};


}  // namespace

ApiService::ApiService(Store* store, BlobStore* blobs, BlobAccess* access, Dispatcher* dispatcher,
                       Metrics* metrics, ApiServiceOptions options)
    : store_(store),
      blobs_(blobs),
      access_(access),
      dispatcher_(dispatcher),
      metrics_(metrics),
      options_(std::move(options)) {}

void ApiService::Register(net::Router& router) {
  // The server's own errors (unknown route, 413, 401 before the body) in the API's shape.
  router.SetErrorFormatter(ErrorResponse);
  Store* store = store_;
  BlobStore* blobs = blobs_;
  Dispatcher* dispatcher = dispatcher_;
  Metrics* metrics = metrics_;
  BlobAccess* access = access_;
  const bool remote = options_.remote_jobs;
  const ApiServiceOptions options = options_;
  auto scopes = std::make_shared<JobScopes>(store, blobs);

  // Per-job tokens reach only the routes registered with kJobToken (and there only their own
  // job's records); every other route answers them 403 before the handler runs.
  enum Audience { kUserOnly, kJobToken };
  auto authed = [store](AuthedHandler fn, Audience audience) {
    return [store, fn = std::move(fn), audience](const Request& req) -> Response {
      auto auth = AuthenticateRequest(store, req);
      if (!auth.ok()) {
        if (absl::IsUnauthenticated(auth.status())) return Unauthorized();
        return ResponseFromStatus(auth.status());
      }
      if (auth->job_scope && audience != kJobToken) return Forbidden();
      return fn(req, *auth);
    };
  };
  // Every authenticated route reads SQLite (the token, then the records): off the io threads.
  constexpr net::Execution kBlocking = net::Execution::kWorkerPool;
  auto get = [&](const char* path, AuthedHandler fn, Audience a = kUserOnly) {
    router.AddSync("GET", path, authed(fn, a), kBlocking);
  };
  auto post = [&](const char* path, AuthedHandler fn, Audience a = kUserOnly) {
    router.AddSync("POST", path, authed(fn, a), kBlocking);
  };
  auto put = [&](const char* path, AuthedHandler fn, Audience a = kUserOnly) {
    router.AddSync("PUT", path, authed(fn, a), kBlocking);
  };
  // The snapshot hot path (exists, batch upload/download): CPU work on data in memory and the
  // page cache (token cache, in-memory grants and pack index, hash checks, appends without sync;
  // grants reach SQLite at most once per 20,000 new blobs, a token only on a cache miss), answered
  // on the io thread that read the request: two thread hops per batch made a full snapshot
  // 20-40 ms slower on 2 cores. Manifest uploads (fsync) and everything else use the pool.
  auto post_hot = [&](const char* path, AuthedHandler fn, Audience a = kUserOnly) {
    router.AddSync("POST", path, authed(fn, a), net::Execution::kIoThread);
  };
  auto async_post = [&](const char* path, AuthedAsyncHandler fn) {
    router.Add("POST", path,
               [store, fn = std::move(fn)](const Request& req, std::shared_ptr<Responder> r) {
                 auto auth = AuthenticateRequest(store, req);
                 if (!auth.ok()) return r->Send(Unauthorized());
                 if (auth->job_scope) return r->Send(Forbidden());
                 fn(req, *auth, std::move(r));
               },
               kBlocking);
  };
  // Whether the caller may see a blob/manifest: its user uploaded it, and for a per-job token
  // it is also part of the job's base snapshot or the job's own upload.
  auto visible = [access, scopes](const AuthInfo& auth, BlobStore::Kind kind,
                                  absl::string_view hash) {
    if (!access->CanRead(auth.user_id, kind, hash)) return false;
    if (!auth.job_scope) return true;
    bool ok = false;
    const std::string key = JobScopes::Key(kind, hash);
    scopes
        ->With(*auth.job_scope,
               [&](JobScopes::Scope& scope) { ok = scope.readable.contains(key); })
        .IgnoreError();
    return ok;
  };
  // Quota check, then (after the bytes are stored) the grant to the user and the job.
  auto grant = [access, scopes](const AuthInfo& auth, const std::vector<BlobAccess::Item>& items) {
    absl::Status s = access->Grant(auth.user_id, items);
    if (auth.job_scope) {
      scopes
          ->With(*auth.job_scope,
                 [&](JobScopes::Scope& scope) {
                   for (const auto& i : items) scope.readable.insert(JobScopes::Key(i.kind, i.hash));
                 })
          .IgnoreError();
    }
    return s;
  };
  auto quota_error = [](const absl::Status& s) {
    return ErrorResponse(413, "QUOTA_EXCEEDED", s.message());
  };

  RegisterOAuthRoutes(router, store, options.oauth);
  RegisterStandbyRoutes(router, dispatcher);

  // ------------------------------------------------------------------ health, metrics
  router.AddSync("GET", "/health", [](const Request&) {
    // The original API's body ({status, timestamp}) plus our own fields. Written directly (the
    // timestamp needs no escaping): load balancers and benchmarks call this one the most.
    return JsonText(absl::StrCat(R"({"service":"fastest-server","status":"ok","timestamp":")",
                                 core::NowIso8601(), R"("})"));
  });
  // Admin only: an unscoped token of the admin user, or the dedicated --metrics_token.
  router.AddSync("GET", "/metrics", [store, metrics, options](const Request& req) {
    const std::string header = req.Header("authorization");
    const bool metrics_token =
        !options.metrics_token.empty() && absl::StartsWith(header, "Bearer ") &&
        core::ConstantTimeEquals(absl::string_view(header).substr(7), options.metrics_token);
    if (!metrics_token) {
      auto auth = AuthenticateRequest(store, req);
      if (!auth.ok()) {
        if (absl::IsUnauthenticated(auth.status())) return Unauthorized();
        return ResponseFromStatus(auth.status());
      }
      if (auth->user_id != options.admin_user_id || auth->project_scope || auth->job_scope) {
        return Forbidden();
      }
    }
    auto counts = store->CountJobsByStatus();
    if (!counts.ok()) return ResponseFromStatus(counts.status());
    return Response::Text(200, metrics->Render(*counts), "text/plain; version=0.0.4");
  }, kBlocking);

  // ------------------------------------------------------------------ projects
  post("/v1/projects", [store](const Request& req, const AuthInfo& auth) {
    json body;
    if (auto err = ParseObject(req, &body, false)) return *err;
    std::optional<std::string> name;
    if (auto err = OptString(body, "name", &name)) return *err;
    std::string trimmed = Trim(name);
    if (trimmed.empty()) return Validation("Project name is required");
    if (auth.project_scope) return ErrorResponse(403, "FORBIDDEN", "Access denied");
    auto p = store->CreateProject(auth.user_id, trimmed);
    if (!p.ok()) return ResponseFromStatus(p.status());
    return Response::Json(201, {{"project", core::ToJson(*p)}});
  });
  get("/v1/projects", [store](const Request&, const AuthInfo& auth) {
    auto ps = store->ListProjects(auth.user_id);
    if (!ps.ok()) return ResponseFromStatus(ps.status());
    json a = json::array();
    for (const auto& p : *ps) {
      if (CanSeeProject(auth, p)) a.push_back(core::ToJson(p));
    }
    return Response::Json(200, {{"projects", a}});
  });
  get("/v1/projects/:projectId", [store](const Request& req, const AuthInfo& auth) {
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    auto ws = store->ListWorkspaces(p->id);
    auto snaps = store->ListSnapshots(p->id, 10);
    auto events = store->ListEvents(p->id, 20);
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    if (!snaps.ok()) return ResponseFromStatus(snaps.status());
    if (!events.ok()) return ResponseFromStatus(events.status());
    return Response::Json(200, {{"project", core::ToJson(*p)},
                                {"workspaces", JsonArray(*ws)},
                                {"snapshots", JsonArray(*snaps)},
                                {"events", JsonArray(*events)}});
  });
  get("/v1/projects/:projectId/status", [store](const Request& req, const AuthInfo& auth) {
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    auto events = store->ListEvents(p->id, 1);
    if (!events.ok()) return ResponseFromStatus(events.status());
    json last = nullptr;
    if (!events->empty()) {
      last = {{"type", (*events)[0].type}, {"created_at", (*events)[0].created_at}};
    }
    return Response::Json(
        200, {{"last_snapshot_id", p->last_snapshot_id ? json(*p->last_snapshot_id) : json()},
              {"updated_at", p->updated_at},
              {"last_activity", last}});
  });
  get("/v1/projects/:projectId/events", [store](const Request& req, const AuthInfo& auth) {
    int limit;
    if (auto err = ParseLimit(req, 20, &limit)) return *err;
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    auto events = store->ListEvents(p->id, limit);
    if (!events.ok()) return ResponseFromStatus(events.status());
    return Response::Json(200, {{"events", JsonArray(*events)}});
  });

  // ------------------------------------------------------------------ workspaces
  post("/v1/projects/:projectId/workspaces", [store](const Request& req, const AuthInfo& auth) {
    json body;
    if (auto err = ParseObject(req, &body, false)) return *err;
    std::optional<std::string> name, base, machine, local_path;
    if (auto err = OptString(body, "name", &name)) return *err;
    if (auto err = OptString(body, "base_snapshot_id", &base)) return *err;
    if (auto err = OptString(body, "machine_id", &machine)) return *err;
    if (auto err = OptString(body, "local_path", &local_path)) return *err;
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    std::string trimmed = Trim(name);
    if (trimmed.empty()) return Validation("Workspace name is required");
    Workspace ws;
    ws.project_id = p->id;
    ws.name = trimmed;
    ws.base_snapshot_id = NonEmpty(base);
    ws.machine_id = NonEmpty(machine);
    ws.local_path = NonEmpty(local_path);
    auto created = store->CreateWorkspace(ws);
    if (absl::IsNotFound(created.status())) {
      return Validation("base_snapshot_id does not name a snapshot of this project");
    }
    if (!created.ok()) return ResponseFromStatus(created.status());
    return Response::Json(201, {{"workspace", core::ToJson(*created)}});
  });
  get("/v1/projects/:projectId/workspaces", [store](const Request& req, const AuthInfo& auth) {
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    auto ws = store->ListWorkspaces(p->id);
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    json a = json::array();
    for (const auto& w : *ws) {
      json item = core::ToJson(w);
      auto drift = store->ListDriftReports(w.id, 1);
      item["drift"] = drift.ok() && !drift->empty() ? DriftSummary((*drift)[0]) : json(nullptr);
      a.push_back(std::move(item));
    }
    return Response::Json(200, {{"workspaces", a}});
  });
  get("/v1/workspaces/:workspaceId", [store, scopes](const Request& req, const AuthInfo& auth) {
    if (auth.job_scope) {
      bool own = false;
      absl::Status s = scopes->With(*auth.job_scope, [&](JobScopes::Scope& scope) {
        own = scope.workspace_id == req.Param("workspaceId");
      });
      if (!s.ok() || !own) return Forbidden();
    }
    auto ws = OwnedWorkspace(store, auth, req.Param("workspaceId"));
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    auto drift = store->ListDriftReports(ws->id, 1);
    if (!drift.ok()) return ResponseFromStatus(drift.status());
    return Response::Json(200, {{"workspace", core::ToJson(*ws)},
                                {"drift", drift->empty() ? json(nullptr)
                                                         : core::ToJson((*drift)[0])}});
  }, kJobToken);
  post("/v1/workspaces/:workspaceId/heartbeat", [store](const Request& req, const AuthInfo& auth) {
    auto ws = OwnedWorkspace(store, auth, req.Param("workspaceId"));
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    auto seen = store->Heartbeat(ws->id);
    if (!seen.ok()) return ResponseFromStatus(seen.status());
    return Response::Json(200, {{"success", true}, {"last_seen_at", *seen}});
  });
  post("/v1/workspaces/:workspaceId/drift", [store](const Request& req, const AuthInfo& auth) {
    json body;
    if (auto err = ParseObject(req, &body, true)) return *err;
    core::DriftReport d;
    std::optional<std::string> summary;
    if (auto err = OptInt(body, "files_added", &d.files_added)) return *err;
    if (auto err = OptInt(body, "files_modified", &d.files_modified)) return *err;
    if (auto err = OptInt(body, "files_deleted", &d.files_deleted)) return *err;
    if (auto err = OptInt(body, "bytes_changed", &d.bytes_changed)) return *err;
    if (auto err = OptString(body, "summary", &summary)) return *err;
    auto ws = OwnedWorkspace(store, auth, req.Param("workspaceId"));
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    d.workspace_id = ws->id;
    d.summary = NonEmpty(summary);
    auto saved = store->AddDriftReport(d);
    if (!saved.ok()) return ResponseFromStatus(saved.status());
    return Response::Json(201, {{"drift_report", core::ToJson(*saved)}});
  });
  get("/v1/workspaces/:workspaceId/drift", [store](const Request& req, const AuthInfo& auth) {
    int limit;
    if (auto err = ParseLimit(req, 10, &limit)) return *err;
    auto ws = OwnedWorkspace(store, auth, req.Param("workspaceId"));
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    auto reports = store->ListDriftReports(ws->id, limit);
    if (!reports.ok()) return ResponseFromStatus(reports.status());
    return Response::Json(200, {{"drift_reports", JsonArray(*reports)},
                                {"latest", reports->empty() ? json(nullptr)
                                                            : core::ToJson((*reports)[0])}});
  });

  // ------------------------------------------------------------------ snapshots
  post("/v1/projects/:projectId/snapshots", [store, scopes, visible](const Request& req,
                                                                     const AuthInfo& auth) {
    json body;
    if (auto err = ParseObject(req, &body, false)) return *err;
    std::optional<std::string> hash, parent, source;
    if (auto err = OptString(body, "manifest_hash", &hash)) return *err;
    if (auto err = OptString(body, "parent_snapshot_id", &parent)) return *err;
    if (auto err = OptString(body, "source", &source)) return *err;
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    if (!hash || hash->empty()) return Validation("manifest_hash is required");
    if (auth.job_scope) {
      // One output snapshot, of a manifest this job may read (it uploaded it, or its base).
      std::optional<std::string> existing;
      absl::Status st = scopes->With(*auth.job_scope, [&](JobScopes::Scope& scope) {
        existing = scope.output_snapshot_id;
      });
      if (!st.ok()) return ResponseFromStatus(st);
      if (!visible(auth, BlobStore::Kind::kManifest, *hash)) return Forbidden();
      if (existing) {
        auto prior = store->GetSnapshot(*existing);
        if (!prior.ok() || prior->manifest_hash != *hash) {
          return ErrorResponse(403, "FORBIDDEN", "This job already created its output snapshot");
        }
      }
    }
    auto created = store->CreateSnapshot(p->id, *hash, NonEmpty(parent),
                                         NonEmpty(source).value_or("cli"));
    if (!created.ok()) return ResponseFromStatus(created.status());
    if (auth.job_scope) {
      scopes
          ->With(*auth.job_scope,
                 [&](JobScopes::Scope& scope) { scope.output_snapshot_id = created->first.id; })
          .IgnoreError();
    }
    return Response::Json(created->second ? 201 : 200,
                          {{"snapshot", core::ToJson(created->first)},
                           {"created", created->second}});
  }, kJobToken);
  get("/v1/projects/:projectId/snapshots", [store](const Request& req, const AuthInfo& auth) {
    int limit;
    if (auto err = ParseLimit(req, 50, &limit)) return *err;
    auto p = OwnedProject(store, auth, req.Param("projectId"));
    if (!p.ok()) return ResponseFromStatus(p.status());
    auto snaps = store->ListSnapshots(p->id, limit);
    if (!snaps.ok()) return ResponseFromStatus(snaps.status());
    return Response::Json(200, {{"snapshots", JsonArray(*snaps)}});
  });
  get("/v1/snapshots/:snapshotId", [store, scopes](const Request& req, const AuthInfo& auth) {
    if (auth.job_scope) {
      // Its base snapshot and its own output, nothing else of the project.
      bool own = false;
      const std::string id = req.Param("snapshotId");
      absl::Status st = scopes->With(*auth.job_scope, [&](JobScopes::Scope& scope) {
        own = scope.base_snapshot_id == id || scope.output_snapshot_id == id;
      });
      if (!st.ok() || !own) return Forbidden();
    }
    auto s = OwnedSnapshot(store, auth, req.Param("snapshotId"));
    if (!s.ok()) return ResponseFromStatus(s.status());
    return Response::Json(200, {{"snapshot", core::ToJson(*s)}});
  }, kJobToken);

  // ------------------------------------------------------------------ blobs and manifests
  // Only content the caller may already read counts as existing: anything else is "missing",
  // the client uploads it, and the verified upload grants access (stored once on disk).
  post_hot("/v1/blobs/exists", [blobs, visible](const Request& req, const AuthInfo& auth) {
    std::vector<std::string> hashes;
    if (auto err = ParseHashes(req, &hashes)) return *err;
    auto exists = [&](const std::string& h) {
      return visible(auth, BlobStore::Kind::kBlob, h) && blobs->Exists(BlobStore::Kind::kBlob, h);
    };
    if (!std::all_of(hashes.begin(), hashes.end(), core::IsLowerHexSha256)) {
      // Anything goes in the original API's answer (unknown strings are just "missing").
      json missing = json::array(), existing = json::array();
      for (const auto& h : hashes) {
        (exists(h) ? existing : missing).push_back(h);
      }
      return Response::Json(200, {{"missing", missing},
                                  {"existing", existing},
                                  {"checked", static_cast<int64_t>(hashes.size())}});
    }
    std::vector<absl::string_view> missing, existing;
    for (const auto& h : hashes) {
      (exists(h) ? existing : missing).push_back(h);
    }
    std::string out;
    out.reserve(hashes.size() * 67 + 64);
    out += "{\"missing\":";
    AppendHexArray(&out, missing);
    out += ",\"existing\":";
    AppendHexArray(&out, existing);
    absl::StrAppend(&out, ",\"checked\":", hashes.size(), "}");
    return JsonText(std::move(out));
  }, kJobToken);
  for (const char* kind : {"upload", "download"}) {
    std::string path = absl::StrCat("/v1/blobs/presign-", kind);
    std::string prefix = absl::StrCat("/v1/blobs/", kind, "/");
    post(path.c_str(), [prefix](const Request& req, const AuthInfo&) {
      std::vector<std::string> hashes;
      if (auto err = ParseHashes(req, &hashes)) return *err;
      json urls = json::object();
      for (const auto& h : hashes) urls[h] = prefix + h;
      return Response::Json(200, {{"urls", urls}});
    }, kJobToken);
  }
  put("/v1/blobs/upload/:hash", [blobs, access, visible, grant, quota_error](
                                     const Request& req, const AuthInfo& auth) {
    const std::string hash = req.Param("hash");
    std::vector<BlobAccess::Item> items = {{BlobStore::Kind::kBlob, hash, req.body.size()}};
    if (absl::Status q = access->CheckQuota(auth.user_id, items); !q.ok()) return quota_error(q);
    // "created" from the caller's point of view: whether anyone else stored it stays private.
    const bool had = visible(auth, BlobStore::Kind::kBlob, hash);
    auto stored = blobs->Put(BlobStore::Kind::kBlob, hash, req.body);
    if (absl::IsInvalidArgument(stored.status())) {
      return ErrorResponse(
          400, "HASH_MISMATCH",
          absl::StrCat("Content hash ", core::Sha256Hex(req.body).substr(0, 16),
                       "... does not match requested hash ", hash.substr(0, 16), "..."));
    }
    if (!stored.ok()) return ResponseFromStatus(stored.status());
    if (absl::Status g = grant(auth, items); !g.ok()) return ResponseFromStatus(g);
    const bool created = !had;
    return Response::Json(created ? 201 : 200,
                          {{"hash", hash},
                           {"size", static_cast<int64_t>(req.body.size())},
                           {"created", created}});
  }, kJobToken);
  get("/v1/blobs/download/:hash", [blobs, visible](const Request& req, const AuthInfo& auth) {
    if (!visible(auth, BlobStore::Kind::kBlob, req.Param("hash"))) {
      return ResponseFromStatus(absl::NotFoundError("Blob not found"));
    }
    auto data = blobs->Get(BlobStore::Kind::kBlob, req.Param("hash"));
    if (!data.ok()) return ResponseFromStatus(data.status());
    Response r = Response::Text(200, std::move(*data), "application/octet-stream");
    r.SetHeader("Cache-Control", "private, max-age=31536000, immutable");
    return r;
  }, kJobToken);
  // Batch transfer (a fastest extension; wire format in core/api/blob_batch.h and
  // server/README.md). Clients detect it by the 404 an original deployment answers.
  post_hot("/v1/blobs/batch-upload", [blobs, access, visible, grant, quota_error](
                                     const Request& req, const AuthInfo& auth) {
    // Parse every frame first: a malformed body stores nothing.
    std::vector<BlobStore::BlobPut> items;
    core::BlobBatchReader reader(std::numeric_limits<uint64_t>::max(), /*allow_missing=*/false);
    absl::Status parsed = reader.Feed(req.body, [&](const core::BlobFrame& f) {
      if (items.size() >= kMaxBatchBlobs) {
        return absl::ResourceExhaustedError(
            absl::StrCat("A batch holds at most ", kMaxBatchBlobs, " blobs"));
      }
      items.push_back(BlobStore::BlobPut{f.hash, f.data});
      return absl::OkStatus();
    });
    if (parsed.ok()) parsed = reader.Finish();
    if (absl::IsResourceExhausted(parsed)) {
      return ErrorResponse(413, "PAYLOAD_TOO_LARGE", parsed.message());
    }
    if (!parsed.ok()) return BadRequest(parsed.message());
    std::vector<BlobAccess::Item> grants;
    grants.reserve(items.size());
    for (const auto& item : items) {
      grants.push_back({BlobStore::Kind::kBlob, std::string(item.hash), item.data.size()});
    }
    if (absl::Status q = access->CheckQuota(auth.user_id, grants); !q.ok()) return quota_error(q);
    std::vector<bool> had(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      had[i] = visible(auth, BlobStore::Kind::kBlob, items[i].hash);
    }
    // One verified append for the whole batch. Disk trouble fails the request (retryable).
    auto outcomes = blobs->PutBlobs(items);
    if (!outcomes.ok()) return ResponseFromStatus(outcomes.status());
    // Only verified blobs are granted (one transaction for the batch).
    std::vector<BlobAccess::Item> verified;
    verified.reserve(grants.size());
    for (size_t i = 0; i < items.size(); ++i) {
      if ((*outcomes)[i].outcome != BlobStore::PutResult::kHashMismatch) {
        verified.push_back(std::move(grants[i]));
      }
    }
    if (absl::Status g = grant(auth, verified); !g.ok()) return ResponseFromStatus(g);
    // Frame hashes are lowercase hex (the reader checks), so the JSON is written directly.
    std::string out;
    out.reserve(items.size() * 100 + 64);
    out += "{\"results\":[";
    int64_t stored = 0, created_count = 0, failed = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      const BlobStore::BlobPut& item = items[i];
      const BlobStore::PutResult& outcome = (*outcomes)[i];
      if (i > 0) out.push_back(',');
      if (outcome.outcome == BlobStore::PutResult::kHashMismatch) {
        absl::StrAppend(&out, "{\"hash\":\"", item.hash,
                        "\",\"error\":{\"code\":\"HASH_MISMATCH\",\"message\":\"Content hash ",
                        outcome.content_hash.substr(0, 16), "... does not match requested hash ",
                        item.hash.substr(0, 16), "...\"}}");
        ++failed;
        continue;
      }
      const bool created = !had[i];
      absl::StrAppend(&out, "{\"hash\":\"", item.hash, "\",\"size\":", item.data.size(),
                      ",\"created\":", created ? "true" : "false", "}");
      ++stored;
      if (created) ++created_count;
    }
    absl::StrAppend(&out, "],\"stored\":", stored, ",\"created\":", created_count,
                    ",\"failed\":", failed, "}");
    return JsonText(std::move(out));
  }, kJobToken);
  post_hot("/v1/blobs/batch-download", [blobs, visible](const Request& req, const AuthInfo& auth) {
    json body;
    if (auto err = ParseObject(req, &body, false)) return *err;
    auto it = body.find("hashes");
    if (it == body.end() || !it->is_array()) return Validation("hashes array is required");
    if (it->size() > kMaxBatchBlobs) {
      return ErrorResponse(413, "PAYLOAD_TOO_LARGE",
                           absl::StrCat("A batch holds at most ", kMaxBatchBlobs, " blobs"));
    }
    std::vector<std::string> hashes;
    hashes.reserve(it->size());
    for (const auto& h : *it) {
      if (!h.is_string()) return BadRequest("'hashes' must contain strings");
      hashes.push_back(h.get<std::string>());
    }
    // Sizes first: the answer is refused before any reading if it would be too large, and the
    // response buffer is allocated once.
    std::vector<std::optional<uint64_t>> sizes(hashes.size());
    uint64_t total = 0;
    for (size_t i = 0; i < hashes.size(); ++i) {
      // Content the caller may not read answers exactly like content nobody stored.
      if (visible(auth, BlobStore::Kind::kBlob, hashes[i])) {
        sizes[i] = blobs->Size(BlobStore::Kind::kBlob, hashes[i]);
      }
      total += sizes[i].value_or(0) + core::kMaxBlobBatchHeaderBytes;
    }
    if (total > kMaxBatchDownloadBytes) {
      return ErrorResponse(413, "PAYLOAD_TOO_LARGE",
                           absl::StrCat("The requested blobs exceed ", kMaxBatchDownloadBytes,
                                        " bytes; ask for fewer at a time"));
    }
    std::string out;
    out.reserve(total);
    for (size_t i = 0; i < hashes.size(); ++i) {
      // Only valid keys are echoed (Size() is nullopt for anything else), so no hostile string
      // can break the framing.
      if (!sizes[i]) {
        if (core::IsLowerHexSha256(hashes[i])) {
          core::AppendMissingFrame(&out, hashes[i]);
          continue;
        }
        return BadRequest(absl::StrCat("not a lowercase sha256 hex hash at index ", i));
      }
      out += core::BlobFrameHeader(hashes[i], *sizes[i]);
      auto n = blobs->AppendTo(BlobStore::Kind::kBlob, hashes[i], &out);
      if (!n.ok() || *n != *sizes[i]) {
        return ResponseFromStatus(
            n.ok() ? absl::InternalError("blob changed size while being read") : n.status());
      }
    }
    Response r;
    r.status = 200;
    r.body = std::move(out);
    r.headers = {{"Content-Type", core::kBlobBatchContentType}, {"Cache-Control", "no-store"}};
    return r;
  }, kJobToken);
  put("/v1/blobs/manifests/:hash", [blobs, access, visible, grant, quota_error](
                                        const Request& req, const AuthInfo& auth) {
    const std::string hash = req.Param("hash");
    std::vector<BlobAccess::Item> items = {{BlobStore::Kind::kManifest, hash, req.body.size()}};
    if (absl::Status q = access->CheckQuota(auth.user_id, items); !q.ok()) return quota_error(q);
    const bool had = visible(auth, BlobStore::Kind::kManifest, hash);
    // The original hashes manifests as UTF-8 text, so invalid bytes can never match.
    if (!core::IsValidUtf8(req.body)) {
      return ErrorResponse(400, "HASH_MISMATCH", "Manifest hash does not match");
    }
    auto created = blobs->Put(BlobStore::Kind::kManifest, hash, req.body);
    if (absl::IsInvalidArgument(created.status())) {
      return ErrorResponse(400, "HASH_MISMATCH", "Manifest hash does not match");
    }
    if (!created.ok()) return ResponseFromStatus(created.status());
    if (absl::Status g = grant(auth, items); !g.ok()) return ResponseFromStatus(g);
    return Response::Json(had ? 200 : 201, {{"hash", hash}, {"created", !had}});
  }, kJobToken);
  get("/v1/blobs/manifests/:hash", [blobs, visible](const Request& req, const AuthInfo& auth) {
    if (!visible(auth, BlobStore::Kind::kManifest, req.Param("hash"))) {
      return ResponseFromStatus(absl::NotFoundError("Manifest not found"));
    }
    auto data = blobs->Get(BlobStore::Kind::kManifest, req.Param("hash"));
    if (!data.ok()) return ResponseFromStatus(data.status());
    Response r = Response::Text(200, std::move(*data), "application/json");
    r.SetHeader("Cache-Control", "private, max-age=31536000, immutable");
    return r;
  }, kJobToken);

  // ------------------------------------------------------------------ jobs
  post("/v1/jobs", [store, dispatcher](const Request& req, const AuthInfo& auth) {
    json body;
    if (auto err = ParseObject(req, &body, false)) return *err;
    std::optional<std::string> workspace_id, prompt;
    if (auto err = OptString(body, "workspace_id", &workspace_id)) return *err;
    if (auto err = OptString(body, "prompt", &prompt)) return *err;
    if (!workspace_id || workspace_id->empty()) return Validation("workspace_id is required");
    std::string trimmed = Trim(prompt);
    if (trimmed.empty()) return Validation("prompt is required");
    auto ws = store->GetWorkspace(*workspace_id);
    if (!ws.ok()) return ResponseFromStatus(ws.status());
    auto p = store->GetProject(ws->project_id);
    if (!p.ok() || !CanSeeProject(auth, *p)) {
      return ErrorResponse(403, "FORBIDDEN", "Access denied");
    }
    auto job = store->CreateJob(*ws, trimmed);
    if (!job.ok()) return ResponseFromStatus(job.status());
    if (dispatcher) dispatcher->NotifyJobCreated();
    return Response::Json(201, {{"job", core::ToJson(*job)}});
  });
  get("/v1/jobs", [store](const Request& req, const AuthInfo& auth) {
    JobFilter f;
    if (auto err = ParseLimit(req, 20, &f.limit)) return *err;
    f.owner_user_id = auth.user_id;
    f.project_scope = auth.project_scope;
    if (!req.Query("workspace_id").empty()) f.workspace_id = req.Query("workspace_id");
    if (!req.Query("project_id").empty()) f.project_id = req.Query("project_id");
    if (!req.Query("status").empty()) f.status = req.Query("status");
    auto jobs = store->ListJobs(f);
    if (!jobs.ok()) return ResponseFromStatus(jobs.status());
    return Response::Json(200, {{"jobs", JsonArray(*jobs)}});
  });
  get("/v1/jobs/next", [store](const Request&, const AuthInfo& auth) {
    auto job = store->NextPendingJob(auth.user_id, auth.project_scope);
    if (!job.ok()) return ResponseFromStatus(job.status());
    return Response::Json(200, {{"job", *job ? core::ToJson(**job) : json(nullptr)}});
  });
  get("/v1/jobs/:jobId", [store](const Request& req, const AuthInfo& auth) {
    if (auth.job_scope && *auth.job_scope != req.Param("jobId")) return Forbidden();
    auto job = OwnedJob(store, auth, req.Param("jobId"));
    if (!job.ok()) return ResponseFromStatus(job.status());
    return Response::Json(200, {{"job", core::ToJson(*job)}});
  }, kJobToken);
  post("/v1/jobs/:jobId/cancel", [store, dispatcher](const Request& req, const AuthInfo& auth) {
    auto job = OwnedJob(store, auth, req.Param("jobId"));
    if (!job.ok()) return ResponseFromStatus(job.status());
    auto cancelled = store->CancelJob(job->id);
    if (!cancelled.ok()) return ResponseFromStatus(cancelled.status());
    if (dispatcher) dispatcher->NotifyJobCancelled(job->id);
    return Response::Json(200, {{"job", core::ToJson(*cancelled)}});
  });
  post("/v1/jobs/:jobId/status", [store, scopes](const Request& req, const AuthInfo& auth) {
    if (auth.job_scope && *auth.job_scope != req.Param("jobId")) return Forbidden();
    json body;
    if (auto err = ParseObject(req, &body, false)) return *err;
    std::optional<std::string> status, output, error;
    if (auto err = OptString(body, "status", &status)) return *err;
    if (auto err = OptString(body, "output_snapshot_id", &output)) return *err;
    if (auto err = OptString(body, "error", &error)) return *err;
    auto job = OwnedJob(store, auth, req.Param("jobId"));
    if (!job.ok()) return ResponseFromStatus(job.status());
    auto to = core::ParseJobStatus(status.value_or(""));
    if (!to.ok()) return Validation("Invalid status");
    if (NonEmpty(output)) {
      auto snap = store->GetSnapshot(*output);
      if (!snap.ok() || snap->project_id != job->project_id) {
        return Validation("output_snapshot_id does not name a snapshot of this project");
      }
      if (auth.job_scope) {
        // A job reports the snapshot it created, or its base when nothing changed (the runner
        // then reuses the base instead of creating the same row again) — never one of its choosing.
        std::optional<std::string> own, base;
        scopes
            ->With(*auth.job_scope,
                   [&](JobScopes::Scope& scope) {
                     own = scope.output_snapshot_id;
                     base = scope.base_snapshot_id;
                   })
            .IgnoreError();
        if (own != *output && base != *output) {
          return ErrorResponse(403, "FORBIDDEN",
                               "output_snapshot_id must be the snapshot this job created");
        }
      }
    }
    auto updated = store->UpdateJobStatus(job->id, *to, NonEmpty(output), NonEmpty(error),
                                          /*enforce_transitions=*/true);
    if (!updated.ok()) return ResponseFromStatus(updated.status());
    return Response::Json(200, {{"job", core::ToJson(*updated)}});
  }, kJobToken);

  // ------------------------------------------------------------------ worker endpoints
  async_post("/run-next", [dispatcher, remote](const Request& req, const AuthInfo& auth,
                                       std::shared_ptr<Responder> r) {
    json body;
    if (auto err = ParseObject(req, &body, true)) return r->Send(*err);
    if (auth.project_scope) return r->Send(ErrorResponse(403, "FORBIDDEN", "Access denied"));
    if (!dispatcher) {
      return r->Send(ErrorResponse(503, "UNAVAILABLE", "No sandbox backend configured"));
    }
    const bool wait = WaitRequested(req, body);
    Dispatcher::DoneCallback done;
    if (wait) done = [r](const RunResult& result) { r->Send(Response::Json(200, RunResultToJson(result))); };
    auto id = dispatcher->RunNext(
        remote ? std::nullopt : std::optional<std::string>(auth.user_id), done);
    if (!id.ok()) return r->Send(ResponseFromStatus(id.status()));
    if (!*id) return r->Send(Response::Json(200, {{"message", "No pending jobs"}}));
    if (!wait) r->Send(Response::Json(202, {{"job_id", **id}, {"status", "accepted"}}));
  });
  async_post("/run-job", [store, dispatcher, remote](const Request& req, const AuthInfo& auth,
                                             std::shared_ptr<Responder> r) {
    json body;
    if (auto err = ParseObject(req, &body, false)) return r->Send(*err);
    std::optional<std::string> job_id;
    if (auto err = OptString(body, "job_id", &job_id)) return r->Send(*err);
    if (!job_id || job_id->empty()) {
      return r->Send(ErrorResponse(400, "VALIDATION_ERROR", "job_id is required"));
    }
    if (auth.project_scope) return r->Send(ErrorResponse(403, "FORBIDDEN", "Access denied"));
    if (!remote) {
      auto job = OwnedJob(store, auth, *job_id);
      if (!job.ok()) return r->Send(ResponseFromStatus(job.status()));
    }
    if (!dispatcher) {
      return r->Send(ErrorResponse(503, "UNAVAILABLE", "No sandbox backend configured"));
    }
    const bool wait = WaitRequested(req, body);
    Dispatcher::DoneCallback done;
    if (wait) done = [r](const RunResult& result) { r->Send(Response::Json(200, RunResultToJson(result))); };
    absl::Status s = dispatcher->RunJob(*job_id, done);
    if (!s.ok()) return r->Send(ResponseFromStatus(s));
    if (!wait) r->Send(Response::Json(202, {{"job_id", *job_id}, {"status", "accepted"}}));
  });
}

}  // namespace fastest::server
