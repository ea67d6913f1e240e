// End-to-end tests of the embedded /v1 API: the real fastest-server binary over real HTTP.
#include <signal.h>

#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/http/http_client.h"
#include "core/snapshot/sha256.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_harness.h"

namespace fastest::testing {
namespace {

using nlohmann::json;

const char kUnauthorized[] =
    R"({"error":{"code":"UNAUTHORIZED","message":"Authentication required"}})";

class ApiE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    Restart();
  }
  void Restart(std::vector<std::string> extra = {}) {
    server_.reset();
    std::vector<std::string> args = {"--backend=none"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto s = LaunchServer(data_dir_ + "/data", args);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    api_ = std::make_unique<Api>(server_.get());
  }
  std::string CreateProject(const std::string& name = "proj") {
    long st;
    json j = api_->Json("POST", "/v1/projects", json{{"name", name}}.dump(), &st);
    EXPECT_EQ(st, 201);
    return j["project"]["id"].get<std::string>();
  }
  std::string CreateWorkspace(const std::string& pid, std::optional<std::string> base = {}) {
    json body{{"name", "ws"}};
    if (base) body["base_snapshot_id"] = *base;
    long st;
    json j = api_->Json("POST", "/v1/projects/" + pid + "/workspaces", body.dump(), &st);
    EXPECT_EQ(st, 201) << j;
    return j["workspace"]["id"].get<std::string>();
  }
  void ExpectError(const core::HttpResponse& r, long status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["error"]["code"], code) << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string()) << r.body;
  }

  std::string data_dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Api> api_;
};

TEST_F(ApiE2eTest, HealthIsOpenEverythingElseNeedsAToken) {
  const std::string none;
  auto r = api_->Call("GET", "/health", "", &none);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["status"], "ok");
  // The original's body also has "timestamp": ISO-8601 UTC with milliseconds, near now.
  const std::string timestamp = json::parse(r.body).value("timestamp", "");
  EXPECT_EQ(timestamp.size(), 24u) << r.body;  // 2026-12-06T04:20:00.123Z
  EXPECT_EQ(timestamp.substr(19, 1) + timestamp.substr(23), ".Z") << r.body;
  absl::Time parsed;
  std::string parse_error;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, timestamp, &parsed, &parse_error)) << parse_error;
  EXPECT_LT(absl::AbsDuration(absl::Now() - parsed), absl::Minutes(1)) << timestamp;
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/projects"}, {"POST", "/run-next"}, {"POST", "/run-job"},
           {"GET", "/metrics"}, {"GET", "/v1/jobs/next"}, {"PUT", "/v1/blobs/upload/x"}}) {
    r = api_->Call(method, path, "", &none);
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_EQ(r.body, kUnauthorized) << path;
  }
  const std::string wrong = "not-the-token";
  EXPECT_EQ(api_->Call("GET", "/v1/projects", "", &wrong).status, 401);
  // The scheme must be exactly "Bearer ".
  core::HttpClient http;
  core::HttpRequest req;
  req.url = server_->url("/v1/projects");
  req.headers.emplace_back("Authorization", std::string("bearer ") + kTestToken);
  EXPECT_EQ(http.Send(req)->status, 401);
  EXPECT_EQ(api_->Call("GET", "/v1/projects").status, 200);
  // Unknown route.
  r = api_->Call("GET", "/v1/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":{"code":"NOT_FOUND","message":"Route not found"}})");
  // CORS is off by default (--cors_origin turns it on): no preflight route, no header.
  EXPECT_EQ(api_->Call("OPTIONS", "/v1/projects", "", &none).status, 404);
  EXPECT_EQ(api_->Call("GET", "/v1/projects").Header("access-control-allow-origin"), "");
}

TEST_F(ApiE2eTest, ProjectsWorkspacesDriftAndValidation) {
  long st;
  json j = api_->Json("POST", "/v1/projects", R"({"name":"  My Project  "})", &st);
  ASSERT_EQ(st, 201);
  const std::string pid = j["project"]["id"];
  EXPECT_EQ(pid.size(), 26u);
  EXPECT_EQ(j["project"]["name"], "My Project");
  EXPECT_TRUE(j["project"]["last_snapshot_id"].is_null());
  EXPECT_EQ(j["project"]["created_at"].get<std::string>().size(), 24u);

  ExpectError(api_->Call("POST", "/v1/projects", R"({"name":"   "})"), 422, "VALIDATION_ERROR");
  ExpectError(api_->Call("POST", "/v1/projects", R"({})"), 422, "VALIDATION_ERROR");
  ExpectError(api_->Call("POST", "/v1/projects", R"({"name":)"), 400, "BAD_REQUEST");
  ExpectError(api_->Call("POST", "/v1/projects", R"({"name":123})"), 400, "BAD_REQUEST");
  ExpectError(api_->Call("POST", "/v1/projects", R"([1,2])"), 400, "BAD_REQUEST");

  j = api_->Json("GET", "/v1/projects", "", &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(j["projects"].size(), 1u);
  ExpectError(api_->Call("GET", "/v1/projects/NOPE"), 404, "NOT_FOUND");
  ExpectError(api_->Call("GET", "/v1/projects/" + pid + "/events?limit=abc"), 400, "BAD_REQUEST");

  // Workspaces.
  ExpectError(api_->Call("POST", "/v1/projects/" + pid + "/workspaces", R"({"name":""})"), 422,
              "VALIDATION_ERROR");
  ExpectError(api_->Call("POST", "/v1/projects/NOPE/workspaces", R"({"name":"x"})"), 404,
              "NOT_FOUND");
  // Unknown base snapshot: 422, not the original's 500.
  ExpectError(api_->Call("POST", "/v1/projects/" + pid + "/workspaces",
                         R"({"name":"x","base_snapshot_id":"NOPE"})"),
              422, "VALIDATION_ERROR");
  j = api_->Json("POST", "/v1/projects/" + pid + "/workspaces",
                 R"({"name":"laptop","machine_id":"m1","local_path":"/src"})", &st);
  ASSERT_EQ(st, 201);
  const std::string wid = j["workspace"]["id"];
  EXPECT_EQ(j["workspace"]["machine_id"], "m1");
  EXPECT_TRUE(j["workspace"]["base_snapshot_id"].is_null());

  j = api_->Json("GET", "/v1/workspaces/" + wid, "", &st);
  EXPECT_EQ(st, 200);
  EXPECT_TRUE(j["drift"].is_null());
  ExpectError(api_->Call("GET", "/v1/workspaces/NOPE"), 404, "NOT_FOUND");
  j = api_->Json("POST", "/v1/workspaces/" + wid + "/heartbeat", "", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["success"], true);
  EXPECT_TRUE(j["last_seen_at"].is_string());

  j = api_->Json("POST", "/v1/workspaces/" + wid + "/drift",
                 R"({"files_added":2,"files_modified":1,"bytes_changed":100,"summary":"s"})", &st);
  EXPECT_EQ(st, 201);
  EXPECT_EQ(j["drift_report"]["files_added"], 2);
  EXPECT_EQ(j["drift_report"]["files_deleted"], 0);
  ExpectError(api_->Call("POST", "/v1/workspaces/" + wid + "/drift", R"({"files_added":"2"})"),
              400, "BAD_REQUEST");
  j = api_->Json("GET", "/v1/workspaces/" + wid + "/drift", "", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["drift_reports"].size(), 1u);
  EXPECT_EQ(j["latest"]["summary"], "s");
  j = api_->Json("GET", "/v1/projects/" + pid + "/workspaces", "", &st);
  ASSERT_EQ(j["workspaces"].size(), 1u);
  EXPECT_EQ(j["workspaces"][0]["drift"]["files_added"], 2);

  j = api_->Json("GET", "/v1/projects/" + pid, "", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["workspaces"].size(), 1u);
  EXPECT_TRUE(j["snapshots"].is_array());
  std::vector<std::string> types;
  for (const auto& e : j["events"]) types.push_back(e["type"]);
  EXPECT_EQ(types, (std::vector<std::string>{"drift.reported", "workspace.created",
                                             "project.created"}));
  j = api_->Json("GET", "/v1/projects/" + pid + "/status", "", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["last_activity"]["type"], "drift.reported");
  j = api_->Json("GET", "/v1/projects/" + pid + "/events?limit=1", "", &st);
  EXPECT_EQ(j["events"].size(), 1u);
}

TEST_F(ApiE2eTest, SnapshotsAreIdempotentAndOwnershipIsEnforced) {
  const std::string pid = CreateProject();
  const std::string hash(64, 'a');
  long st;
  json j = api_->Json("POST", "/v1/projects/" + pid + "/snapshots",
                      json{{"manifest_hash", hash}}.dump(), &st);
  ASSERT_EQ(st, 201);
  EXPECT_EQ(j["created"], true);
  EXPECT_EQ(j["snapshot"]["source"], "cli");
  const std::string sid = j["snapshot"]["id"];
  j = api_->Json("POST", "/v1/projects/" + pid + "/snapshots",
                 json{{"manifest_hash", hash}, {"source", "agent"}, {"parent_snapshot_id", "X"}}
                     .dump(),
                 &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["created"], false);
  EXPECT_EQ(j["snapshot"]["id"], sid);
  EXPECT_EQ(j["snapshot"]["source"], "cli");
  ExpectError(api_->Call("POST", "/v1/projects/" + pid + "/snapshots", "{}"), 422,
              "VALIDATION_ERROR");
  j = api_->Json("GET", "/v1/projects/" + pid + "/snapshots", "", &st);
  EXPECT_EQ(j["snapshots"].size(), 1u);
  j = api_->Json("GET", "/v1/snapshots/" + sid, "", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["snapshot"]["manifest_hash"], hash);
  ExpectError(api_->Call("GET", "/v1/snapshots/NOPE"), 404, "NOT_FOUND");
  j = api_->Json("GET", "/v1/projects/" + pid + "/status", "", &st);
  EXPECT_EQ(j["last_snapshot_id"], sid);
  const std::string wid = CreateWorkspace(pid, sid);

  // A second user, minted with the CLI while the server runs.
  auto other = RunServerCommand({"token", "create", "--email=other@example.test",
                                 "--data_dir=" + data_dir_ + "/data", "--backend=none"});
  ASSERT_TRUE(other.ok()) << other.status();
  std::string other_token = *other;
  while (!other_token.empty() && other_token.back() == '\n') other_token.pop_back();
  ASSERT_EQ(other_token.substr(0, 4), "fst_");
  Api other_api(server_.get(), other_token);
  EXPECT_EQ(other_api.Call("GET", "/v1/projects/" + pid).status, 404);
  EXPECT_EQ(other_api.Call("GET", "/v1/workspaces/" + wid).status, 404);
  ExpectError(other_api.Call("GET", "/v1/snapshots/" + sid), 403, "FORBIDDEN");
  ExpectError(other_api.Call("POST", "/v1/jobs", json{{"workspace_id", wid}, {"prompt", "x"}}
                                                     .dump()),
              403, "FORBIDDEN");
  EXPECT_EQ(other_api.Json("GET", "/v1/projects")["projects"].size(), 0u);
}

TEST_F(ApiE2eTest, BlobsAndManifests) {
  long st;
  // exists: at most 100 hashes are looked at.
  json hashes = json::array();
  for (int i = 0; i < 150; ++i) hashes.push_back(core::Sha256Hex(std::to_string(i)));
  json j = api_->Json("POST", "/v1/blobs/exists", json{{"hashes", hashes}}.dump(), &st);
  ASSERT_EQ(st, 200);
  EXPECT_EQ(j["checked"], 100);
  EXPECT_EQ(j["missing"].size(), 100u);
  // Strings that are not hashes are simply missing, echoed as valid JSON.
  j = api_->Json("POST", "/v1/blobs/exists",
                 json{{"hashes", {"not \"a\" hash\n", core::Sha256Hex("0")}}}.dump(), &st);
  ASSERT_EQ(st, 200);
  EXPECT_EQ(j["missing"], json({"not \"a\" hash\n", core::Sha256Hex("0")}));
  EXPECT_EQ(j["existing"], json::array());
  ExpectError(api_->Call("POST", "/v1/blobs/exists", "{}"), 422, "VALIDATION_ERROR");
  ExpectError(api_->Call("POST", "/v1/blobs/exists", "{nope"), 400, "BAD_REQUEST");

  std::string data("bin\0ary\xff data", 13);
  const std::string hash = core::Sha256Hex(data);
  j = api_->Json("PUT", "/v1/blobs/upload/" + hash, data, &st);
  EXPECT_EQ(st, 201);
  EXPECT_EQ(j["size"], 13);
  EXPECT_EQ(j["created"], true);
  j = api_->Json("PUT", "/v1/blobs/upload/" + hash, data, &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["created"], false);
  ExpectError(api_->Call("PUT", "/v1/blobs/upload/" + hash, "other"), 400, "HASH_MISMATCH");
  std::string upper = hash;
  for (auto& c : upper) c = toupper(c);
  ExpectError(api_->Call("PUT", "/v1/blobs/upload/" + upper, data), 400, "HASH_MISMATCH");
  const std::string empty_hash = core::Sha256Hex("");
  EXPECT_EQ(api_->Call("PUT", "/v1/blobs/upload/" + empty_hash, "").status, 201);

  auto r = api_->Call("GET", "/v1/blobs/download/" + hash);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, data);
  EXPECT_EQ(r.Header("content-type"), "application/octet-stream");
  // Per-user content: no shared cache may keep it.
  EXPECT_EQ(r.Header("cache-control"), "private, max-age=31536000, immutable");
  ExpectError(api_->Call("GET", "/v1/blobs/download/" + std::string(64, '0')), 404, "NOT_FOUND");
  ExpectError(api_->Call("GET", "/v1/blobs/download/..%2F..%2Ffastest.db"), 404, "NOT_FOUND");

  j = api_->Json("POST", "/v1/blobs/exists", json{{"hashes", {hash, std::string(64, '1')}}}.dump());
  EXPECT_EQ(j["existing"], json::array({hash}));
  j = api_->Json("POST", "/v1/blobs/presign-upload", json{{"hashes", {hash}}}.dump(), &st);
  EXPECT_EQ(j["urls"][hash], "/v1/blobs/upload/" + hash);
  j = api_->Json("POST", "/v1/blobs/presign-download", json{{"hashes", {hash}}}.dump(), &st);
  EXPECT_EQ(j["urls"][hash], "/v1/blobs/download/" + hash);

  // Manifest round trip, byte for byte (BOM and all).
  const std::string manifest =
      "\xEF\xBB\xBF{\n  \"version\": \"1\",\n  \"files\": [ {\"path\": \"\xC3\xA9.txt\"} ]\n}";
  const std::string mhash = core::Sha256Hex(manifest);
  j = api_->Json("PUT", "/v1/blobs/manifests/" + mhash, manifest, &st);
  EXPECT_EQ(st, 201);
  EXPECT_EQ(j["created"], true);
  EXPECT_EQ(api_->Call("PUT", "/v1/blobs/manifests/" + mhash, manifest).status, 200);
  r = api_->Call("GET", "/v1/blobs/manifests/" + mhash);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, manifest);
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(api_->Call("GET", "/v1/blobs/download/" + mhash).status, 404);
  ExpectError(api_->Call("PUT", "/v1/blobs/manifests/" + mhash, manifest + " "), 400,
              "HASH_MISMATCH");
  const std::string bad_utf8 = "\xff\xfe";
  ExpectError(api_->Call("PUT", "/v1/blobs/manifests/" + core::Sha256Hex(bad_utf8), bad_utf8),
              400, "HASH_MISMATCH");
  ExpectError(api_->Call("GET", "/v1/blobs/manifests/" + std::string(64, 'f')), 404, "NOT_FOUND");
}

TEST_F(ApiE2eTest, JobsLifecycleAndTransitions) {
  const std::string pid = CreateProject();
  const std::string wid = CreateWorkspace(pid);
  long st;
  ExpectError(api_->Call("POST", "/v1/jobs", R"({"prompt":"x"})"), 422, "VALIDATION_ERROR");
  ExpectError(api_->Call("POST", "/v1/jobs", json{{"workspace_id", wid}, {"prompt", " "}}.dump()),
              422, "VALIDATION_ERROR");
  ExpectError(api_->Call("POST", "/v1/jobs", R"({"workspace_id":"NOPE","prompt":"x"})"), 404,
              "NOT_FOUND");
  ExpectError(api_->Call("POST", "/v1/jobs", R"({"workspace_id":5,"prompt":"x"})"), 400,
              "BAD_REQUEST");
  json j = api_->Json("GET", "/v1/jobs/next", "", &st);
  EXPECT_EQ(st, 200);
  EXPECT_TRUE(j["job"].is_null());

  j = api_->Json("POST", "/v1/jobs", json{{"workspace_id", wid}, {"prompt", "  first  "}}.dump(),
                 &st);
  ASSERT_EQ(st, 201);
  const std::string job1 = j["job"]["id"];
  EXPECT_EQ(j["job"]["prompt"], "first");
  EXPECT_EQ(j["job"]["status"], "pending");
  EXPECT_EQ(j["job"]["project_id"], pid);
  j = api_->Json("POST", "/v1/jobs", json{{"workspace_id", wid}, {"prompt", "second"}}.dump());
  const std::string job2 = j["job"]["id"];

  EXPECT_EQ(api_->Json("GET", "/v1/jobs/next")["job"]["id"], job1);
  EXPECT_EQ(api_->Json("GET", "/v1/jobs")["jobs"].size(), 2u);
  EXPECT_EQ(api_->Json("GET", "/v1/jobs?limit=1")["jobs"][0]["id"], job2);
  EXPECT_EQ(api_->Json("GET", "/v1/jobs?workspace_id=" + wid)["jobs"].size(), 2u);
  EXPECT_EQ(api_->Json("GET", "/v1/jobs?project_id=NOPE")["jobs"].size(), 0u);
  ExpectError(api_->Call("GET", "/v1/jobs/NOPE"), 404, "NOT_FOUND");
  EXPECT_EQ(api_->Json("GET", "/v1/jobs/" + job1)["job"]["id"], job1);

  const std::string status_path = "/v1/jobs/" + job1 + "/status";
  ExpectError(api_->Call("POST", status_path, R"({"status":"bogus"})"), 422, "VALIDATION_ERROR");
  ExpectError(api_->Call("POST", status_path, R"({"status":"completed"})"), 409, "INVALID_STATE");
  ExpectError(api_->Call("POST", status_path, "not json"), 400, "BAD_REQUEST");
  j = api_->Json("POST", status_path, R"({"status":"running"})", &st);
  ASSERT_EQ(st, 200);
  EXPECT_EQ(j["job"]["status"], "running");
  EXPECT_TRUE(j["job"]["started_at"].is_string());
  EXPECT_TRUE(j["job"]["completed_at"].is_null());
  // Unknown output snapshot: 422, not the original's 500.
  ExpectError(api_->Call("POST", status_path,
                         R"({"status":"completed","output_snapshot_id":"NOPE"})"),
              422, "VALIDATION_ERROR");
  json snap = api_->Json("POST", "/v1/projects/" + pid + "/snapshots",
                         json{{"manifest_hash", std::string(64, 'b')}}.dump());
  const std::string sid = snap["snapshot"]["id"];
  j = api_->Json("POST", status_path,
                 json{{"status", "completed"}, {"output_snapshot_id", sid}}.dump(), &st);
  ASSERT_EQ(st, 200);
  EXPECT_EQ(j["job"]["status"], "completed");
  EXPECT_EQ(j["job"]["output_snapshot_id"], sid);
  EXPECT_TRUE(j["job"]["completed_at"].is_string());
  ExpectError(api_->Call("POST", status_path, R"({"status":"pending"})"), 409, "INVALID_STATE");
  ExpectError(api_->Call("POST", "/v1/jobs/" + job1 + "/cancel"), 409, "INVALID_STATE");

  j = api_->Json("POST", "/v1/jobs/" + job2 + "/cancel", "", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["job"]["status"], "cancelled");
  EXPECT_TRUE(j["job"]["completed_at"].is_string());
  ExpectError(api_->Call("POST", "/v1/jobs/" + job2 + "/status", R"({"status":"completed"})"),
              409, "INVALID_STATE");
  ExpectError(api_->Call("POST", "/v1/jobs/NOPE/cancel"), 404, "NOT_FOUND");
  EXPECT_EQ(api_->Json("GET", "/v1/jobs?status=cancelled")["jobs"].size(), 1u);

  // Worker endpoints without a backend.
  ExpectError(api_->Call("POST", "/run-job", "{}"), 400, "VALIDATION_ERROR");
  ExpectError(api_->Call("POST", "/run-job", R"({"job_id":"NOPE"})"), 404, "NOT_FOUND");
  ExpectError(api_->Call("POST", "/run-next"), 503, "UNAVAILABLE");

  std::string metrics = api_->Call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("fastest_jobs{status=\"completed\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("fastest_jobs{status=\"cancelled\"} 1"), std::string::npos);
}

TEST_F(ApiE2eTest, BodyLimitGives413) {
  Restart({"--max_body_bytes=1024"});
  std::string big(4096, 'x');
  ExpectError(api_->Call("PUT", "/v1/blobs/upload/" + core::Sha256Hex(big), big), 413,
              "PAYLOAD_TOO_LARGE");
  std::string ok(1000, 'y');
  EXPECT_EQ(api_->Call("PUT", "/v1/blobs/upload/" + core::Sha256Hex(ok), ok).status, 201);
}

TEST_F(ApiE2eTest, StateSurvivesRestart) {
  const std::string pid = CreateProject("keep");
  const std::string wid = CreateWorkspace(pid);
  json j = api_->Json("POST", "/v1/jobs", json{{"workspace_id", wid}, {"prompt", "p"}}.dump());
  const std::string job = j["job"]["id"];
  const std::string blob = "persist me";
  ASSERT_EQ(api_->Call("PUT", "/v1/blobs/upload/" + core::Sha256Hex(blob), blob).status, 201);
  EXPECT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
  Restart();
  EXPECT_EQ(api_->Json("GET", "/v1/projects/" + pid)["project"]["name"], "keep");
  EXPECT_EQ(api_->Json("GET", "/v1/jobs/" + job)["job"]["status"], "pending");
  EXPECT_EQ(api_->Call("GET", "/v1/blobs/download/" + core::Sha256Hex(blob)).body, blob);
  // The env token was stored hashed, never in clear.
  std::string grep = "grep -rqa '" + std::string(kTestToken) + "' '" + data_dir_ + "/data'";
  EXPECT_NE(std::system(grep.c_str()), 0);
}

}  // namespace
}  // namespace fastest::testing
