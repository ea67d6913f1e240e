// Least authority, end to end against the real fastest-server binary: what a sandbox's per-job
// token can and cannot do (every route), blob and manifest privacy between users, upload quota,
// /metrics, and the HTTP layer under hostile clients (announced bodies that never come, idle
// connections at the file-descriptor limit). The "agent" here is the stand-in runner script: it
// hands its token to the test, which then attacks with it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/api/blob_batch.h"
#include "core/snapshot/sha256.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_harness.h"

namespace fastest::testing {
namespace {

using nlohmann::json;

// The stand-in runner: hands its API token to the test (as a hostile agent would exfiltrate it)
// and waits until the test is done attacking, then exits.
const char kRunnerScript[] = R"SH(#!/bin/sh
TOKEN_FILE=@TOKEN_FILE@
printf '%s' "$API_TOKEN" > "$TOKEN_FILE.tmp" && mv "$TOKEN_FILE.tmp" "$TOKEN_FILE"
i=0
while [ ! -e "$TOKEN_FILE.done" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
)SH";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, field + ":")) {
      int64_t kb = 0;
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kb)) return kb;
    }
  }
  return -1;
}

// utime + stime of a process, in clock ticks.
int64_t CpuTicks(pid_t pid) {
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return -1;
  std::vector<std::string> f = absl::StrSplit(stat.substr(close_paren + 2), ' ');
  // After "pid (comm) ": state is field 3 -> index 0; utime field 14 -> 11, stime 15 -> 12.
  int64_t utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) || !absl::SimpleAtoi(f[12], &stime)) {
    return -1;
  }
  return utime + stime;
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// What the server answered before closing (or within `wait`).
std::string ReadReply(int fd, std::chrono::milliseconds wait, const std::string& stop = "}}") {
  timeval tv{};
  tv.tv_sec = wait.count() / 1000;
  tv.tv_usec = (wait.count() % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    got.append(buf, n);
    if (got.find(stop) != std::string::npos) break;
  }
  return got;
}

class SecurityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    state_dir_ = dir_ + "/sandboxes";
    script_ = dir_ + "/runner.sh";
    token_file_ = dir_ + "/job_token";
    std::string script = kRunnerScript;
    script.replace(script.find("@TOKEN_FILE@"), 12, token_file_);
    std::ofstream(script_) << script;
  }

  void StartServer(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--backend=" + ProcessBackendPath(),
        "--backend_config=" + json{{"schema", 1}, {"state_dir", state_dir_}}.dump(),
        "--runner_command=/bin/sh," + script_};
    args.insert(args.end(), extra.begin(), extra.end());
    auto s = LaunchServer(dir_ + "/data", args);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    api_ = std::make_unique<Api>(server_.get());
  }

  json Must(const std::string& method, const std::string& path, const std::string& body,
            long want) {
    long st = 0;
    json j = api_->Json(method, path, body, &st);
    EXPECT_EQ(st, want) << method << " " << path << " " << j;
    return j;
  }

  std::string Upload(const std::string& data, const std::string* token = nullptr) {
    const std::string hash = core::Sha256Hex(data);
    auto r = api_->Call("PUT", "/v1/blobs/upload/" + hash, data, token);
    EXPECT_TRUE(r.status == 200 || r.status == 201) << r.body;
    return hash;
  }
  std::string UploadManifest(const std::string& text, const std::string* token = nullptr) {
    const std::string hash = core::Sha256Hex(text);
    auto r = api_->Call("PUT", "/v1/blobs/manifests/" + hash, text, token);
    EXPECT_TRUE(r.status == 200 || r.status == 201) << r.body;
    return hash;
  }

  // A second user and its token (`token create` on the same data directory).
  std::string SecondUserToken(const std::string& email) {
    auto out = RunServerCommand({"token", "create", "--email=" + email, "--data_dir=" + dir_ + "/data"});
    EXPECT_TRUE(out.ok()) << out.status();
    std::string token = out.ok() ? *out : "";
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    return token;
  }

  std::string dir_, state_dir_, script_, token_file_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Api> api_;
};

// Every route of the server, called with a sandbox's per-job token: the ones the runner needs
// work, every other one answers 403 (blobs outside the job's reach answer like missing ones).
TEST_F(SecurityE2eTest, PerJobTokenReachesOnlyWhatItsRunnerNeeds) {
  StartServer();
  // The job's base: a manifest with one file, uploaded by the owner.
  const std::string base_blob = Upload("base file content");
  const std::string base_manifest = UploadManifest(
      json{{"version", "1"}, {"files", {{{"path", "a.txt"}, {"hash", base_blob}, {"size", 17}, {"mode", 420}}}}}
          .dump());
  const std::string other_blob = Upload("another file of the same user, not in the base");
  const std::string project =
      Must("POST", "/v1/projects", R"({"name":"p"})", 201)["project"]["id"];
  const std::string base_snapshot =
      Must("POST", "/v1/projects/" + project + "/snapshots",
           json{{"manifest_hash", base_manifest}}.dump(), 201)["snapshot"]["id"];
  const std::string other_snapshot =
      Must("POST", "/v1/projects/" + project + "/snapshots",
           json{{"manifest_hash", core::Sha256Hex("other")}}.dump(), 201)["snapshot"]["id"];
  const std::string workspace =
      Must("POST", "/v1/projects/" + project + "/workspaces",
           json{{"name", "w"}, {"base_snapshot_id", base_snapshot}}.dump(),
           201)["workspace"]["id"];
  const std::string other_workspace =
      Must("POST", "/v1/projects/" + project + "/workspaces", R"({"name":"w2"})",
           201)["workspace"]["id"];
  const std::string job = Must("POST", "/v1/jobs",
                               json{{"workspace_id", workspace}, {"prompt", "attack"}}.dump(),
                               201)["job"]["id"];
  const std::string sibling = Must("POST", "/v1/jobs",
                                   json{{"workspace_id", workspace}, {"prompt", "sibling"}}.dump(),
                                   201)["job"]["id"];
  Must("POST", "/run-job", json{{"job_id", job}, {"wait", false}}.dump(), 202);
  ASSERT_TRUE(Eventually([&] { return !ReadFile(token_file_).empty(); }, 10000))
      << server_->Log();
  const std::string token = ReadFile(token_file_);
  ASSERT_TRUE(absl::StartsWith(token, "fst_")) << "the sandbox got something else than a per-job token";
  ASSERT_NE(token, kTestToken);

  const std::string new_blob_data = "written by the job";
  const std::string new_blob = core::Sha256Hex(new_blob_data);
  std::string batch;
  core::AppendBlobFrame(&batch, core::Sha256Hex("batch blob"), "batch blob");
  const std::string out_manifest_text =
      json{{"version", "1"}, {"files", {{{"path", "b.txt"}, {"hash", new_blob}, {"size", 18}, {"mode", 420}}}}}
          .dump();
  const std::string out_manifest = core::Sha256Hex(out_manifest_text);

  struct Case {
    std::string method, path, body;
    int want;
  };
  // In order: the allowed calls of a runner's life, then everything else.
  const std::vector<Case> cases = {
      {"GET", "/v1/jobs/" + job, "", 200},
      {"POST", "/v1/jobs/" + job + "/status", R"({"status":"running"})", 200},
      {"GET", "/v1/workspaces/" + workspace, "", 200},
      {"GET", "/v1/snapshots/" + base_snapshot, "", 200},
      {"GET", "/v1/blobs/manifests/" + base_manifest, "", 200},
      {"GET", "/v1/blobs/download/" + base_blob, "", 200},
      {"POST", "/v1/blobs/batch-download", json{{"hashes", {base_blob}}}.dump(), 200},
      {"POST", "/v1/blobs/exists", json{{"hashes", {base_blob, new_blob}}}.dump(), 200},
      {"POST", "/v1/blobs/presign-upload", json{{"hashes", {new_blob}}}.dump(), 200},
      {"POST", "/v1/blobs/presign-download", json{{"hashes", {base_blob}}}.dump(), 200},
      {"PUT", "/v1/blobs/upload/" + new_blob, new_blob_data, 201},
      {"POST", "/v1/blobs/batch-upload", batch, 200},
      {"PUT", "/v1/blobs/manifests/" + out_manifest, out_manifest_text, 201},
      {"POST", "/v1/projects/" + project + "/snapshots",
       json{{"manifest_hash", out_manifest}}.dump(), 201},
      // Forbidden: everything else.
      {"GET", "/metrics", "", 403},
      {"POST", "/v1/projects", R"({"name":"x"})", 403},
      {"GET", "/v1/projects", "", 403},
      {"GET", "/v1/projects/" + project, "", 403},
      {"GET", "/v1/projects/" + project + "/status", "", 403},
      {"GET", "/v1/projects/" + project + "/events", "", 403},
      {"POST", "/v1/projects/" + project + "/workspaces", R"({"name":"x"})", 403},
      {"GET", "/v1/projects/" + project + "/workspaces", "", 403},
      {"GET", "/v1/workspaces/" + other_workspace, "", 403},
      {"POST", "/v1/workspaces/" + workspace + "/heartbeat", "", 403},
      {"POST", "/v1/workspaces/" + workspace + "/drift", R"({"files_added":1})", 403},
      {"GET", "/v1/workspaces/" + workspace + "/drift", "", 403},
      {"GET", "/v1/projects/" + project + "/snapshots", "", 403},
      {"GET", "/v1/snapshots/" + other_snapshot, "", 403},
      // A second output snapshot (another manifest it may read: its base).
      {"POST", "/v1/projects/" + project + "/snapshots",
       json{{"manifest_hash", base_manifest}}.dump(), 403},
      {"POST", "/v1/jobs", json{{"workspace_id", workspace}, {"prompt", "more"}}.dump(), 403},
      {"GET", "/v1/jobs", "", 403},
      {"GET", "/v1/jobs/next", "", 403},
      {"GET", "/v1/jobs/" + sibling, "", 403},
      {"POST", "/v1/jobs/" + sibling + "/cancel", "", 403},
      {"POST", "/v1/jobs/" + job + "/cancel", "", 403},
      {"POST", "/v1/jobs/" + sibling + "/status", R"({"status":"running"})", 403},
      {"GET", "/v1/jobs/" + job + "/logs", "", 403},
      {"GET", "/v1/jobs/" + sibling + "/logs", "", 403},
      {"POST", "/run-next", "", 403},
      {"POST", "/run-job", json{{"job_id", sibling}}.dump(), 403},
      // Its own job completed with a snapshot of its choosing.
      {"POST", "/v1/jobs/" + job + "/status",
       json{{"status", "completed"}, {"output_snapshot_id", other_snapshot}}.dump(), 403},
      // Content of its user that is not part of its job: as if it did not exist.
      {"GET", "/v1/blobs/download/" + other_blob, "", 404},
  };
  std::string output_snapshot;
  for (const Case& c : cases) {
    auto r = api_->Call(c.method, c.path, c.body, &token);
    EXPECT_EQ(r.status, c.want) << c.method << " " << c.path << " -> " << r.body;
    if (c.want == 403) {
      EXPECT_TRUE(absl::StrContains(r.body, "FORBIDDEN")) << c.method << " " << c.path << r.body;
    }
    if (c.method == "POST" && absl::EndsWith(c.path, "/snapshots") && r.status == 201) {
      output_snapshot = json::parse(r.body)["snapshot"]["id"];
    }
    if (c.path == "/v1/blobs/exists") {
      json j = json::parse(r.body);
      EXPECT_EQ(j["existing"], json({base_blob})) << j;
      EXPECT_EQ(j["missing"], json({new_blob})) << j;
    }
    if (c.path == "/v1/blobs/batch-download") {
      EXPECT_TRUE(absl::StrContains(r.body, "base file content")) << r.body;
    }
  }
  ASSERT_FALSE(output_snapshot.empty());
  // Its own output snapshot is readable, the other blob is missing in a batch too.
  EXPECT_EQ(api_->Call("GET", "/v1/snapshots/" + output_snapshot, "", &token).status, 200);
  auto missing = api_->Call("POST", "/v1/blobs/batch-download",
                            json{{"hashes", {other_blob}}}.dump(), &token);
  EXPECT_EQ(missing.body, other_blob + " missing\n");
  // The legal end of its job: completed with the snapshot it created.
  EXPECT_EQ(api_->Call("POST", "/v1/jobs/" + job + "/status",
                       json{{"status", "completed"}, {"output_snapshot_id", output_snapshot}}.dump(),
                       &token)
                .status,
            200);
  std::ofstream(token_file_ + ".done") << "1";
  // Sibling untouched, job completed; once the job ended its token is dead.
  EXPECT_EQ(Must("GET", "/v1/jobs/" + sibling, "", 200)["job"]["status"], "pending");
  EXPECT_TRUE(Eventually(
      [&] { return api_->Call("GET", "/v1/jobs/" + job, "", &token).status == 401; }, 10000));
  EXPECT_EQ(Must("GET", "/v1/jobs/" + job, "", 200)["job"]["status"], "completed");
  EXPECT_FALSE(absl::StrContains(server_->Log(), token));
}

// Blobs and manifests are deduplicated on disk but visible per user: another user's token
// learns nothing from exists, download, batch download or manifest reads, and gets access only
// by uploading the bytes itself.
TEST_F(SecurityE2eTest, BlobsAndManifestsArePrivateToTheirUser) {
  const std::string bob = SecondUserToken("bob@example.test");
  ASSERT_FALSE(bob.empty());
  StartServer({"--upload_quota_bytes=1048576"});
  const std::string secret = "alice's secret file";
  const std::string blob = Upload(secret);
  const std::string manifest = UploadManifest(R"({"files":[]})");
  // Alice sees her content.
  EXPECT_EQ(api_->Call("GET", "/v1/blobs/download/" + blob).body, secret);
  // Bob does not: exists says missing, downloads say not found.
  auto exists = api_->Call("POST", "/v1/blobs/exists", json{{"hashes", {blob}}}.dump(), &bob);
  ASSERT_EQ(exists.status, 200);
  EXPECT_EQ(json::parse(exists.body)["existing"], json::array());
  EXPECT_EQ(json::parse(exists.body)["missing"], json({blob}));
  auto down = api_->Call("GET", "/v1/blobs/download/" + blob, "", &bob);
  EXPECT_EQ(down.status, 404);
  EXPECT_FALSE(absl::StrContains(down.body, secret));
  EXPECT_EQ(api_->Call("POST", "/v1/blobs/batch-download", json{{"hashes", {blob}}}.dump(), &bob)
                .body,
            blob + " missing\n");
  EXPECT_EQ(api_->Call("GET", "/v1/blobs/manifests/" + manifest, "", &bob).status, 404);
  // Uploading the same bytes: "created" from Bob's point of view (no existence leak), then his.
  auto up = api_->Call("PUT", "/v1/blobs/upload/" + blob, secret, &bob);
  EXPECT_EQ(up.status, 201) << up.body;
  EXPECT_EQ(json::parse(up.body)["created"], true);
  EXPECT_EQ(api_->Call("GET", "/v1/blobs/download/" + blob, "", &bob).body, secret);
  // Wrong bytes under a hash grant nothing.
  const std::string guessed = core::Sha256Hex("carol's content");
  EXPECT_EQ(api_->Call("PUT", "/v1/blobs/upload/" + guessed, "not it", &bob).status, 400);
  std::string frame;
  core::AppendBlobFrame(&frame, guessed, "not it either");
  auto batch = api_->Call("POST", "/v1/blobs/batch-upload", frame, &bob);
  EXPECT_TRUE(absl::StrContains(batch.body, "HASH_MISMATCH")) << batch.body;
  EXPECT_EQ(api_->Call("GET", "/v1/blobs/download/" + guessed, "", &bob).status, 404);
  // Alice re-uploading her own blob: not created.
  auto again = api_->Call("PUT", "/v1/blobs/upload/" + blob, secret);
  EXPECT_EQ(json::parse(again.body)["created"], false);
  // Quota: Bob may store 1 MiB of distinct content.
  std::string big(700 * 1024, 'q');
  EXPECT_EQ(api_->Call("PUT", "/v1/blobs/upload/" + core::Sha256Hex(big), big, &bob).status, 201);
  big[0] = 'r';
  auto over = api_->Call("PUT", "/v1/blobs/upload/" + core::Sha256Hex(big), big, &bob);
  EXPECT_EQ(over.status, 413) << over.body;
  EXPECT_TRUE(absl::StrContains(over.body, "QUOTA_EXCEEDED")) << over.body;
  EXPECT_EQ(api_->Call("GET", "/v1/blobs/download/" + core::Sha256Hex(big), "", &bob).status, 404);
  // Grants survive a restart.
  server_.reset();
  StartServer({"--upload_quota_bytes=1048576"});
  EXPECT_EQ(api_->Call("GET", "/v1/blobs/download/" + blob, "", &bob).body, secret);
  EXPECT_EQ(api_->Call("GET", "/v1/blobs/manifests/" + manifest, "", &bob).status, 404);
}

TEST_F(SecurityE2eTest, MetricsNeedTheAdminOrTheMetricsToken) {
  const std::string bob = SecondUserToken("bob@example.test");
  StartServer();
  EXPECT_EQ(api_->Call("GET", "/metrics").status, 200);
  EXPECT_EQ(api_->Call("GET", "/metrics", "", &bob).status, 403);
  const std::string nobody = "nope";
  EXPECT_EQ(api_->Call("GET", "/metrics", "", &nobody).status, 401);
  server_.reset();
  auto s = LaunchServer(dir_ + "/data", {"--backend=none"},
                                {{"FASTEST_METRICS_TOKEN", "scrape-0123456789"}});
  ASSERT_TRUE(s.ok()) << s.status();
  server_ = std::move(*s);
  api_ = std::make_unique<Api>(server_.get());
  const std::string scrape = "scrape-0123456789";
  auto r = api_->Call("GET", "/metrics", "", &scrape);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(absl::StrContains(r.body, "fastest_jobs")) << r.body;
  // The metrics token is no API token.
  EXPECT_EQ(api_->Call("GET", "/v1/projects", "", &scrape).status, 401);
}

// Remote mode would hand the server's own token to every sandbox: refused unless asked for.
TEST_F(SecurityE2eTest, RemoteModeRefusesToShareTheServerTokenByDefault) {
  auto out = RunServerCommand({"--data_dir=" + dir_ + "/remote-worker", "--port=0",
                               "--backend=" + ProcessBackendPath(),
                               "--api_url=http://127.0.0.1:9"});
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(absl::StrContains(out.status().message(), "--share_remote_token_with_sandboxes"))
      << out.status();
}

// 20 connections announcing 100 MiB bodies and sending nothing: without a token they get 401
// at once (no body read, no 100 Continue); with a valid token the server holds only what has
// arrived. Either way the server's memory barely moves.
TEST_F(SecurityE2eTest, AnnouncedBodiesCostNothingUntilTheyArrive) {
  StartServer({"--read_timeout=20s"});
  const pid_t pid = server_->pid();
  const int64_t rss_before = ProcStatusKb(pid, "VmRSS");
  ASSERT_GT(rss_before, 0);
  const std::string announce =
      "PUT /v1/blobs/upload/" + std::string(64, 'a') +
      " HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 104857600\r\n";
  std::vector<int> anonymous;
  for (int i = 0; i < 20; ++i) {
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(WriteAll(fd, announce + "\r\n"));
    anonymous.push_back(fd);
  }
  for (int fd : anonymous) {
    std::string reply = ReadReply(fd, std::chrono::milliseconds(3000));
    EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 401")) << reply;
    EXPECT_FALSE(absl::StrContains(reply, "100 Continue")) << reply;
  }
  std::vector<int> authed;
  const std::string with_token =
      announce + "Authorization: Bearer " + kTestToken + "\r\n\r\n";
  for (int i = 0; i < 20; ++i) {
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(WriteAll(fd, with_token));
    authed.push_back(fd);
  }
  for (int fd : authed) {
    std::string reply = ReadReply(fd, std::chrono::milliseconds(2000), "\r\n\r\n");
    EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 100 Continue")) << reply;
    // A first few bytes of the body arrive; the rest never does.
    ASSERT_TRUE(WriteAll(fd, std::string(1000, 'x')));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int64_t rss_after = ProcStatusKb(pid, "VmRSS");
  EXPECT_LT(rss_after - rss_before, 50 * 1024)
      << "RSS grew from " << rss_before << " kB to " << rss_after << " kB";
  // The server still serves.
  EXPECT_EQ(api_->Call("GET", "/health").status, 200);
  for (int fd : anonymous) close(fd);
  for (int fd : authed) close(fd);
}

// At the open-file limit the server keeps answering and does not spin: idle connections make
// room for new ones, and a failing accept backs off.
TEST_F(SecurityE2eTest, AtTheFileDescriptorLimitHealthStillAnswersWithoutSpinning) {
  // The child inherits a low soft limit; the test's own limit is restored right after.
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  rlimit low = old;
  low.rlim_cur = 160;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  auto s = LaunchServer(dir_ + "/data", {"--backend=none", "--read_timeout=60s"});
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  ASSERT_TRUE(s.ok()) << s.status();
  server_ = std::move(*s);
  api_ = std::make_unique<Api>(server_.get());
  const pid_t pid = server_->pid();
  std::vector<int> idle;
  for (int i = 0; i < 400; ++i) {
    int fd = Connect(server_->port());
    if (fd >= 0) idle.push_back(fd);
  }
  ASSERT_GT(idle.size(), 300u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int64_t ticks_before = CpuTicks(pid);
  const auto start = std::chrono::steady_clock::now();
  auto health = api_->Call("GET", "/health", "", nullptr, std::chrono::seconds(5));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_LT(took, std::chrono::seconds(2));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const int64_t ticks = CpuTicks(pid) - ticks_before;
  const int64_t hz = sysconf(_SC_CLK_TCK);
  // Over ~2 s: a spinning acceptor burns ~2 s of CPU; allow 20% of one core.
  EXPECT_LT(ticks, hz * 2 / 5) << "server used " << ticks << " ticks of CPU while idle-capped";
  for (int fd : idle) close(fd);
}

}  // namespace
}  // namespace fastest::testing
