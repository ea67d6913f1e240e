// The standby channel over real HTTP: ApiService with a dispatcher whose warm pool runs on the
// fake backend (each warm sandbox a thread that long-polls GET /v1/standby/assignment like the
// runner), a real SQLite store and blob files. An attacker holding a waiting sandbox's standby
// credential tries every route family; it may only fetch its own assignment.
#include "server/api/standby_routes.h"

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/http/http_client.h"
#include "core/net/http_server.h"
#include "core/snapshot/sha256.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/api/api_service.h"
#include "server/api/route_cases.h"
#include "server/dispatch/dispatch_fakes.h"
#include "server/dispatch/job_source.h"
#include "server/metrics/metrics.h"
#include "server/store/blob_access.h"
#include "server/store/blob_store.h"
#include "server/store/store.h"

namespace fastest::server {
namespace {

using nlohmann::json;
using namespace ::fastest::server::dispatch_fakes;  // NOLINT: the fakes

constexpr char kAdmin[] = "standby-test-admin-token";

struct Seen {
  std::mutex mu;
  std::string base;
  std::map<std::string, std::string> job_of;     // sandbox -> job it was given
  std::map<std::string, std::string> token_of;   // sandbox -> job token it was given
  std::map<std::string, int> job_read_status;    // sandbox -> GET /v1/jobs/:id with that token
  std::map<std::string, int> last_status;        // sandbox -> last poll's HTTP status
};

core::HttpResponse Call(const std::string& method, const std::string& url,
                        const std::string& body, const std::string& token) {
  core::HttpClient http;
  core::HttpRequest req;
  req.method = method;
  req.url = url;
  req.body = body;
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
  req.bearer_token = token;
  req.timeout = std::chrono::milliseconds(30000);
  auto r = http.Send(req);
  EXPECT_TRUE(r.ok()) << method << " " << url << ": " << r.status();
  return r.ok() ? *r : core::HttpResponse{};
}

// A standby runner over HTTP: polls until it has a job, reads the job with the job's token, marks
// it running, ends. Retired (410) or refused (401): it ends too.
SandboxScript StandbyRunner(Seen* seen) {
  return [seen](SandboxControl& ctl) -> int {
    const std::string credential = ctl.env().at("API_TOKEN");
    std::string base;
    {
      std::lock_guard<std::mutex> lock(seen->mu);
      base = seen->base;
    }
    while (true) {
      core::HttpResponse r =
          Call("GET", base + "/v1/standby/assignment?wait=1", "", credential);
      {
        std::lock_guard<std::mutex> lock(seen->mu);
        seen->last_status[ctl.id()] = static_cast<int>(r.status);
      }
      if (r.status == 204) {
        if (!ctl.Sleep(absl::Milliseconds(1))) return 137;
        continue;
      }
      if (r.status != 200) return 0;
      json a = json::parse(r.body);
      const std::string job = a.value("job_id", "");
      const std::string token = a.value("api_token", "");
      core::HttpResponse read = Call("GET", base + "/v1/jobs/" + job, "", token);
      Call("POST", base + "/v1/jobs/" + job + "/status", R"({"status":"running"})", token);
      std::lock_guard<std::mutex> lock(seen->mu);
      seen->job_of[ctl.id()] = job;
      seen->token_of[ctl.id()] = token;
      seen->job_read_status[ctl.id()] = static_cast<int>(read.status);
      return 0;
    }
  };
}

bool WaitFor(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(15)) {
  const absl::Time end = absl::Now() + limit;
  while (!done()) {
    if (absl::Now() > end) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

class StandbyRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/standby";
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    std::filesystem::create_directories(dir_, ec);
    auto store = Store::Open(dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto user = store_->EnsureUser("admin@example.test");
    ASSERT_TRUE(user.ok());
    ASSERT_TRUE(store_->ImportToken(*user, kAdmin).ok());
    blobs_ = std::make_unique<BlobStore>(dir_);
    ASSERT_TRUE(blobs_->Init().ok());
    access_ = std::make_unique<BlobAccess>(store_.get(), 0);
    ASSERT_TRUE(access_->Init(blobs_.get()).ok());
    source_ = std::make_unique<StoreJobSource>(store_.get());
    backend_ = std::make_unique<FakeBackend>(StandbyRunner(&seen_));
    DispatcherOptions o = Options();
    o.max_instances = 3;
    o.warm_pool = 2;
    WarmPoolOptions timing;
    timing.tick = absl::Milliseconds(20);
    o.warm_pool_options = timing;
    dispatcher_ =
        std::make_unique<Dispatcher>(source_.get(), store_->server_id(), backend_.get(), &metrics_, o);
    server_ = std::make_unique<net::HttpServer>(net::HttpServerOptions{});
    ApiServiceOptions api_options;
    api_options.admin_user_id = *user;
    service_ = std::make_unique<ApiService>(store_.get(), blobs_.get(), access_.get(),
                                            dispatcher_.get(), &metrics_, api_options);
    service_->Register(server_->router());
    ASSERT_TRUE(server_->Start().ok());
    base_ = absl::StrCat("http://127.0.0.1:", server_->port());
    {
      std::lock_guard<std::mutex> lock(seen_.mu);
      seen_.base = base_;
    }
    ASSERT_TRUE(dispatcher_->Start().ok());
  }

  void TearDown() override {
    if (dispatcher_) dispatcher_->Stop();
    WaitFor([&] { return backend_->running() == 0; });
    if (server_) server_->Stop();
    dispatcher_.reset();
  }

  json Admin(const std::string& method, const std::string& path, const std::string& body) {
    core::HttpResponse r = Call(method, base_ + path, body, kAdmin);
    EXPECT_LT(r.status, 300) << method << " " << path << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }

  std::string dir_, base_;
  Seen seen_;
  Metrics metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<BlobAccess> access_;
  std::unique_ptr<StoreJobSource> source_;
  std::unique_ptr<FakeBackend> backend_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<ApiService> service_;
};

TEST_F(StandbyRoutesTest, AWaitingSandboxsCredentialReachesNothingButItsOwnAssignment) {
  // Something worth stealing: a project, a workspace, a blob, a manifest and a job.
  const std::string pid = Admin("POST", "/v1/projects", R"({"name":"p"})")["project"]["id"];
  const std::string wid = Admin("POST", "/v1/projects/" + pid + "/workspaces",
                                R"({"name":"main","machine_id":"m1"})")["workspace"]["id"];
  const std::string blob = "secret source code\n";
  const std::string bhash = core::Sha256Hex(blob);
  ASSERT_LT(Call("PUT", base_ + "/v1/blobs/upload/" + bhash, blob, kAdmin).status, 300);
  const std::string manifest =
      json{{"version", 1}, {"files", json::array({json{{"path", "a.txt"}, {"hash", bhash},
                                                      {"size", blob.size()}, {"mode", 420}}})}}
          .dump();
  const std::string mhash = core::Sha256Hex(manifest);
  Call("PUT", base_ + "/v1/blobs/manifests/" + mhash, manifest, kAdmin);
  const std::string jid =
      Admin("POST", "/v1/jobs", json{{"workspace_id", wid}, {"prompt", "x"}}.dump())["job"]["id"];

  ASSERT_TRUE(WaitFor([&] { return dispatcher_->warm_ready() == 2; }));
  const std::string cred_a = backend_->spec_of("sb-1").env.at("API_TOKEN");
  const std::string cred_b = backend_->spec_of("sb-2").env.at("API_TOKEN");
  ASSERT_NE(cred_a, cred_b);

  // Every route the API registered (a new one is attacked too), each hash param once as the
  // blob and once as the manifest.
  int attacked = 0;
  for (const std::string& hash : {bhash, mhash}) {
    absl::StatusOr<std::vector<RouteCase>> routes =
        RouteCases(server_->router(), {{"projectId", pid},
                                       {"workspaceId", wid},
                                       {"snapshotId", "snap_x"},
                                       {"jobId", jid},
                                       {"hash", hash}});
    ASSERT_TRUE(routes.ok()) << routes.status();
    for (const RouteCase& route : *routes) {
      if (IsPublicRoute(route)) continue;
      const std::string body = route.method == "GET" ? ""
                                                     : json{{"hashes", {bhash}},
                                                            {"job_id", jid},
                                                            {"name", "x"}}
                                                           .dump();
      core::HttpResponse r = Call(route.method, base_ + route.path, body, cred_a);
      EXPECT_EQ(r.status, 401) << route.method << " " << route.path
                               << " with a standby credential: " << r.body;
      EXPECT_EQ(r.body.find("secret source"), std::string::npos);
      ++attacked;
    }
  }
  EXPECT_GE(attacked, 60);
  // Nothing happened on its behalf: the job is still pending and unclaimed.
  EXPECT_EQ(Admin("GET", "/v1/jobs/" + jid, "")["job"]["status"], "pending");
  // Malformed wait.
  EXPECT_EQ(Call("GET", base_ + "/v1/standby/assignment?wait=x", "", cred_a).status, 400);
  EXPECT_EQ(Call("GET", base_ + "/v1/standby/assignment", "", "fst_standby_guess").status, 401);
  EXPECT_EQ(Call("GET", base_ + "/v1/standby/assignment", "", "").status, 401);
  // A user's API token is no standby credential either.
  EXPECT_EQ(Call("GET", base_ + "/v1/standby/assignment?wait=0", "", kAdmin).status, 401);

  // The job goes to one warm sandbox; the other's credential never sees it.
  ASSERT_TRUE(dispatcher_->RunJob(jid, nullptr).ok());
  std::string winner;
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(seen_.mu);
    if (seen_.job_of.empty()) return false;
    winner = seen_.job_of.begin()->first;
    return true;
  }));
  const std::string loser = winner == "sb-1" ? "sb-2" : "sb-1";
  const std::string winner_cred = winner == "sb-1" ? cred_a : cred_b;
  const std::string loser_cred = winner == "sb-1" ? cred_b : cred_a;
  {
    std::lock_guard<std::mutex> lock(seen_.mu);
    EXPECT_EQ(seen_.job_of[winner], jid);
    EXPECT_EQ(seen_.job_read_status[winner], 200) << "the job's token did not work";
    EXPECT_EQ(seen_.job_of.count(loser), 0u);
  }
  core::HttpResponse other = Call("GET", base_ + "/v1/standby/assignment?wait=0", "", loser_cred);
  EXPECT_EQ(other.status, 204) << other.body;
  EXPECT_EQ(other.body.find(jid), std::string::npos);
  // The winner's credential is spent: its assignment is not fetched twice.
  EXPECT_EQ(Call("GET", base_ + "/v1/standby/assignment?wait=0", "", winner_cred).status, 401);
  EXPECT_EQ(Call("GET", base_ + "/v1/jobs/" + jid, "", winner_cred).status, 401);

  // Shutdown drains the pool: the waiting runner is told to go (410).
  dispatcher_->Stop();
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(seen_.mu);
    for (auto& [sb, status] : seen_.last_status) {
      if (sb != winner && status == 410) return true;
    }
    return false;
  }));
  EXPECT_EQ(backend_->live(), 0);
}

}  // namespace
}  // namespace fastest::server
