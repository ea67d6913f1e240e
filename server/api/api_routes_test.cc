// The API's routes in-process: ApiService on an HttpServer on 127.0.0.1 port 0 with a real SQLite
// store and blob files in a temporary directory, driven over real HTTP with core/http's client.
// Tables over the routes check the status code and the error JSON shape
// (`{"error":{"code":STRING,"message":STRING}}`) of bad requests.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/http/http_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/api/in_process_api.h"
#include "server/api/route_cases.h"

namespace fastest::server {
namespace {

using nlohmann::json;

constexpr char kToken[] = "routes-test-token";
constexpr size_t kMaxBody = 64 << 10;
constexpr char kHash[] = "0000000000000000000000000000000000000000000000000000000000000000";

struct Route {
  const char* method;
  const char* path;  // {p} = a project id, {w} = a workspace id, {h} = a hash
};

// Routes whose body is a JSON object: a malformed one is 400 BAD_REQUEST.
const Route kJsonRoutes[] = {
    {"POST", "/v1/projects"},
    {"POST", "/v1/projects/{p}/workspaces"},
    {"POST", "/v1/workspaces/{w}/drift"},
    {"POST", "/v1/projects/{p}/snapshots"},
    {"POST", "/v1/blobs/exists"},
    {"POST", "/v1/blobs/batch-download"},
};

class ApiRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = ::testing::TempDir() + "/" +
                            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(api_.Start(dir, kToken, kMaxBody).ok());
    base_ = api_.base_url();

    core::HttpResponse p = Send("POST", "/v1/projects", R"({"name":"routes"})", kToken);
    ASSERT_EQ(p.status, 201) << p.body;
    project_id_ = json::parse(p.body)["project"]["id"].get<std::string>();
    core::HttpResponse w = Send("POST", Path("/v1/projects/{p}/workspaces"),
                                R"({"name":"main","machine_id":"m1"})", kToken);
    ASSERT_EQ(w.status, 201) << w.body;
    workspace_id_ = json::parse(w.body)["workspace"]["id"].get<std::string>();
  }
  // Every registered route, parameters filled with this test's ids (unknown job/snapshot ids).
  std::vector<RouteCase> AllRoutes() {
    absl::StatusOr<std::vector<RouteCase>> cases =
        RouteCases(api_.router(), {{"projectId", project_id_},
                                   {"workspaceId", workspace_id_},
                                   {"snapshotId", "snap_unknown"},
                                   {"jobId", "job_unknown"},
                                   {"hash", kHash}});
    EXPECT_TRUE(cases.ok()) << cases.status();
    return cases.ok() ? *cases : std::vector<RouteCase>{};
  }

  std::string Path(const std::string& pattern) {
    return absl::StrReplaceAll(pattern,
                               {{"{p}", project_id_}, {"{w}", workspace_id_}, {"{h}", kHash}});
  }

  core::HttpResponse Send(const std::string& method, const std::string& path,
                          const std::string& body, const std::string& token) {
    core::HttpRequest req;
    req.method = method;
    req.url = base_ + path;
    req.body = body;
    if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
    req.bearer_token = token;
    auto r = http_.Send(req);
    EXPECT_TRUE(r.ok()) << method << " " << path << ": " << r.status();
    return r.ok() ? *r : core::HttpResponse{};
  }

  // The status and the API's error shape with this code.
  static void ExpectError(const core::HttpResponse& r, int status, const std::string& code,
                          const std::string& what) {
    EXPECT_EQ(r.status, status) << what << ": " << r.body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << what << ": " << r.body;
    ASSERT_TRUE(j.contains("error") && j["error"].is_object()) << what << ": " << r.body;
    EXPECT_EQ(j["error"].value("code", ""), code) << what << ": " << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string()) << what << ": " << r.body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty()) << what;
  }

  InProcessApi api_;
  core::HttpClient http_;
  std::string base_, project_id_, workspace_id_;
};

TEST_F(ApiRoutesTest, NoTokenOrAWrongTokenIs401OnEveryRoute) {
  std::vector<RouteCase> routes = AllRoutes();
  int checked = 0;
  for (const RouteCase& route : routes) {
    if (IsPublicRoute(route)) continue;
    const std::string what = absl::StrCat(route.method, " ", route.pattern);
    const std::string body = route.method == "GET" ? "" : "{}";
    ExpectError(Send(route.method, route.path, body, ""), 401, "UNAUTHORIZED",
                what + " (no token)");
    ExpectError(Send(route.method, route.path, body, "not-a-token"), 401, "UNAUTHORIZED",
                what + " (wrong token)");
    ++checked;
  }
  // The walk covers the API, not a few routes (30+ today; the public ones are few).
  EXPECT_GE(checked, 30);
  EXPECT_LE(routes.size() - checked, 8u);
}

TEST_F(ApiRoutesTest, MalformedJsonIs400) {
  for (const Route& route : kJsonRoutes) {
    const std::string what = absl::StrCat(route.method, " ", route.path);
    ExpectError(Send(route.method, Path(route.path), "{\"name\": ", kToken), 400, "BAD_REQUEST",
                what + " (malformed)");
    ExpectError(Send(route.method, Path(route.path), "[1,2]", kToken), 400, "BAD_REQUEST",
                what + " (not an object)");
  }
}

TEST_F(ApiRoutesTest, OversizedBodyIs413WithOrWithoutAToken) {
  const std::string big(kMaxBody + 1, 'x');
  for (const RouteCase& route : AllRoutes()) {
    if (route.method == "GET" || IsPublicRoute(route)) continue;
    const std::string what = absl::StrCat(route.method, " ", route.pattern);
    ExpectError(Send(route.method, route.path, big, kToken), 413, "PAYLOAD_TOO_LARGE", what);
    ExpectError(Send(route.method, route.path, big, ""), 413, "PAYLOAD_TOO_LARGE",
                what + " (no token)");
  }
}

TEST_F(ApiRoutesTest, TheRouteListNamesEveryRoute) {
  std::vector<RouteCase> routes = AllRoutes();
  auto has = [&](const std::string& method, const std::string& pattern) {
    for (const RouteCase& r : routes) {
      if (r.method == method && r.pattern == pattern) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("GET", "/health"));
  EXPECT_TRUE(has("POST", "/v1/jobs/:jobId/status"));
  EXPECT_TRUE(has("PUT", "/v1/blobs/manifests/:hash"));
  EXPECT_TRUE(has("POST", "/run-job"));
}

TEST_F(ApiRoutesTest, UnknownRoutesAndUnknownIdsAre404) {
  ExpectError(Send("GET", "/v1/nope", "", kToken), 404, "NOT_FOUND", "unknown route");
  ExpectError(Send("GET", "/v1/projects/prj_unknown", "", kToken), 404, "NOT_FOUND",
              "unknown project");
  ExpectError(Send("GET", "/v1/jobs/job_unknown", "", kToken), 404, "NOT_FOUND", "unknown job");
  EXPECT_EQ(Send("GET", "/health", "", "").status, 200);
}

}  // namespace
}  // namespace fastest::server
