// End-to-end: the real fastest-runner binary against the real fastest-server binary on loopback,
// with scripted agents (shell commands via FASTEST_AGENT_COMMAND).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "core/api/api_client.h"
#include "core/api/testing/loopback_http_server.h"
#include "core/http/http_client.h"
#include "core/snapshot/manifest.h"
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/exit_codes.h"
#include "tests/runner/e2e_harness.h"

namespace fastest::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "e2e-secret-token-XYZ123";

class RunnerE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    server_ = MakeServer(dir_ + "/data", kToken, PickFreePort());
    ASSERT_TRUE(server_->Start().ok()) << ReadTestFile(server_->log_path());
    core::RetryPolicy retry;
    retry.max_elapsed = absl::Seconds(20);
    api_ = std::make_unique<core::ApiClient>(http_, server_->url(), kToken, retry);
    ws_ = dir_ + "/workspace";
  }

  std::map<std::string, std::string> Env(const std::string& job_id, const std::string& agent) {
    return {{"JOB_ID", job_id},
            {"API_URL", server_->url()},
            {"API_TOKEN", kToken},
            {"WORK_DIR", ws_},
            {"FASTEST_AGENT_HOME", dir_ + "/agent-home"},
            {"FASTEST_AGENT_COMMAND", agent},
            {"FASTEST_AGENT_TIMEOUT", "60"},
            {"FASTEST_API_RETRY_SECONDS", "20"}};
  }

  core::Job GetJob(const std::string& id) {
    auto job = api_->GetJob(id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : core::Job();
  }

  // A base tree: files to edit, delete, chmod and keep.
  std::string MakeBaseTree() {
    std::string tree = dir_ + "/base";
    WriteTestFile(tree, "edit.txt", "original\n");
    WriteTestFile(tree, "delete.txt", "bye\n");
    WriteTestFile(tree, "script.sh", "#!/bin/sh\necho hi\n", 0644);
    WriteTestFile(tree, "keep/unchanged.txt", "same\n");
    return tree;
  }

  void CorruptBlobCase(bool original_api);

  // Runs `agent` (which changes nothing) on the seeded job: it completes with the base snapshot,
  // neither a manifest upload nor a new snapshot row. Returns the runner's output.
  RunnerRun ExpectOutputIsTheBase(const SeededJob& seeded, const std::string& agent) {
    EXPECT_TRUE(seeded.base_snapshot_id.has_value());
    auto before = api_->ListSnapshots(seeded.project_id, 100);
    EXPECT_TRUE(before.ok()) << before.status();
    RunnerRun run = RunRunner(Env(seeded.job_id, agent));
    EXPECT_EQ(run.exit_code, runner::kExitCompleted) << run.all();
    EXPECT_THAT(run.stdout_text, HasSubstr("Manifest unchanged (already stored)"));
    EXPECT_THAT(run.stdout_text, HasSubstr("Changes: +0 ~0 -0"));
    core::Job job = GetJob(seeded.job_id);
    EXPECT_EQ(job.status, core::JobStatus::kCompleted);
    EXPECT_EQ(job.output_snapshot_id, seeded.base_snapshot_id);
    auto after = api_->ListSnapshots(seeded.project_id, 100);
    EXPECT_TRUE(after.ok()) << after.status();
    if (before.ok() && after.ok()) EXPECT_EQ(after->size(), before->size());
    return run;
  }

  std::string dir_;
  std::string ws_;
  std::unique_ptr<ServerProcess> server_;
  core::HttpClient http_;
  std::unique_ptr<core::ApiClient> api_;
};

TEST_F(RunnerE2ETest, ScriptedAgentChangesAreExactlyInTheSnapshotAndNoSecretsLeak) {
  auto seeded = SeedJob(*api_, MakeBaseTree(), "edit, add, delete and chmod");
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  const std::string agent =
      "set -e; echo \"agent got: $1\"; printf 'changed\\n' > edit.txt; mkdir -p newdir; "
      "printf 'new file\\n' > newdir/added.txt; rm delete.txt; chmod 755 script.sh; "
      "mkdir -p node_modules && echo junk > node_modules/junk.js; "
      "env > env.txt; echo \"token=[${API_TOKEN:-}]\"; echo 'to stderr' >&2; "
      // Same user as the runner: it must not find the token in the runner's process either.
      "tr '\\0' '\\n' < /proc/$PPID/environ > parent_env.txt";
  RunnerRun run = RunRunner(Env(seeded->job_id, agent));
  ASSERT_EQ(run.exit_code, runner::kExitCompleted) << run.all();

  core::Job job = GetJob(seeded->job_id);
  EXPECT_EQ(job.status, core::JobStatus::kCompleted);
  ASSERT_TRUE(job.output_snapshot_id.has_value());
  EXPECT_THAT(run.stdout_text, HasSubstr("Output snapshot: " + *job.output_snapshot_id));
  EXPECT_THAT(run.stdout_text, HasSubstr("[agent] agent got: edit, add, delete and chmod"));
  EXPECT_THAT(run.stdout_text, HasSubstr("[agent:stderr] to stderr"));
  EXPECT_THAT(run.stdout_text, HasSubstr("[restoring] Restored 4 files"));
  EXPECT_THAT(run.stdout_text, HasSubstr("[snapshotting] Changes: +3 ~1 -1"));
  EXPECT_THAT(run.stdout_text, HasSubstr("token=[]"));

  auto out_snap = api_->GetSnapshot(*job.output_snapshot_id);
  ASSERT_TRUE(out_snap.ok());
  EXPECT_EQ(out_snap->parent_snapshot_id.value_or(""), seeded->base_snapshot_id.value_or("?"));
  EXPECT_EQ(out_snap->source, "agent");

  auto manifest = FetchManifest(*api_, *job.output_snapshot_id);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  std::map<std::string, core::FileEntry> by_path;
  for (const auto& e : manifest->files) by_path[e.path] = e;
  std::map<std::string, core::FileEntry> base;
  for (const auto& e : seeded->base_manifest.files) base[e.path] = e;
  std::set<std::string> paths;
  for (const auto& [p, e] : by_path) paths.insert(p);
  EXPECT_EQ(paths, (std::set<std::string>{"edit.txt", "env.txt", "keep/unchanged.txt",
                                          "newdir/added.txt", "parent_env.txt", "script.sh"}));
  EXPECT_EQ(by_path["edit.txt"].hash, core::Sha256Hex("changed\n"));
  EXPECT_EQ(by_path["newdir/added.txt"].hash, core::Sha256Hex("new file\n"));
  EXPECT_EQ(by_path["newdir/added.txt"].mode, 0644u);
  EXPECT_EQ(by_path["script.sh"].hash, base["script.sh"].hash);
  EXPECT_EQ(base["script.sh"].mode, 0644u);
  EXPECT_EQ(by_path["script.sh"].mode, 0755u);
  EXPECT_EQ(by_path["keep/unchanged.txt"], base["keep/unchanged.txt"]);

  // Secrets: not in the runner's output, not in the agent's environment (hence not in the
  // snapshot), and the agent's config/state is outside the workspace.
  EXPECT_THAT(run.all(), Not(HasSubstr(kToken)));
  auto env_blob = api_->DownloadVerifiedBlob(by_path["env.txt"].hash);
  ASSERT_TRUE(env_blob.ok());
  EXPECT_THAT(*env_blob, HasSubstr("FASTEST_PROMPT=edit, add, delete and chmod"));
  EXPECT_THAT(*env_blob, HasSubstr("XDG_CONFIG_HOME=" + dir_ + "/agent-home/config"));
  EXPECT_THAT(*env_blob, Not(HasSubstr(kToken)));
  EXPECT_THAT(*env_blob, Not(HasSubstr("\nAPI_TOKEN=")));
  EXPECT_THAT(*env_blob, Not(HasSubstr("\nAPI_URL=")));
  EXPECT_FALSE(absl::StartsWith(*env_blob, "API_TOKEN="));
  for (const auto& e : manifest->files) {
    auto blob = api_->DownloadVerifiedBlob(e.hash);
    ASSERT_TRUE(blob.ok());
    EXPECT_THAT(*blob, Not(HasSubstr(kToken))) << e.path;
  }
  // No temp files or strays left in the workspace.
  for (const auto& entry : fs::recursive_directory_iterator(ws_)) {
    EXPECT_THAT(entry.path().string(), Not(HasSubstr("fsttmp")));
  }
}

TEST_F(RunnerE2ETest, NoBaseSnapshotStartsEmptyAndTerminalJobIsRefused) {
  auto seeded = SeedJob(*api_, "", "create one file");
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  WriteTestFile(ws_, "leftover.txt", "from a previous job");
  RunnerRun run = RunRunner(Env(seeded->job_id, "echo hello > hello.txt"));
  ASSERT_EQ(run.exit_code, runner::kExitCompleted) << run.all();
  EXPECT_THAT(run.stdout_text, HasSubstr("No base snapshot - starting with empty workspace"));
  core::Job job = GetJob(seeded->job_id);
  auto manifest = FetchManifest(*api_, job.output_snapshot_id.value_or("?"));
  ASSERT_TRUE(manifest.ok());
  ASSERT_EQ(manifest->files.size(), 1u);
  EXPECT_EQ(manifest->files[0].path, "hello.txt");

  // Running the completed job again is refused and changes nothing.
  RunnerRun again = RunRunner(Env(seeded->job_id, "echo again > again.txt"));
  EXPECT_EQ(again.exit_code, runner::kExitNotRunnable) << again.all();
  EXPECT_THAT(again.stderr_text, HasSubstr("is completed; refusing to run it"));
  EXPECT_EQ(GetJob(seeded->job_id).status, core::JobStatus::kCompleted);
  EXPECT_FALSE(fs::exists(ws_ + "/again.txt"));
}

// An agent that changes nothing: the output is the base snapshot itself (what the API answers for
// an existing manifest hash), found without uploading the manifest or creating a snapshot.
TEST_F(RunnerE2ETest, UnchangedWorkspaceCompletesWithTheBaseSnapshot) {
  auto seeded = SeedJob(*api_, MakeBaseTree(), "only look");
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  ExpectOutputIsTheBase(*seeded, "cat edit.txt; ls -l");
}

// Mixed-case names, in the order the original TypeScript runner writes them (localeCompare,
// en-US), spelled out here rather than computed: case-insensitive, `_` before letters.
constexpr const char* kIcuOrderedNames[] = {"_config.yml", "main.c",     "Makefile",  "Notes.txt",
                                            "README.md",   "src/app.rs", "src/Lib.rs"};

// A base snapshot whose manifest lists `names` in exactly the given order (its blobs uploaded),
// as a producer with another sort order would have stored it.
absl::StatusOr<SeededJob> SeedJobWithOrderedBase(core::ApiClient& api, const std::string& tree,
                                                 const std::vector<std::string>& names,
                                                 const std::string& prompt) {
  for (const std::string& name : names) WriteTestFile(tree, name, "content of " + name + "\n");
  // Uploads the blobs (and a byte-ordered manifest we do not use).
  FASTEST_ASSIGN_OR_RETURN(SeededJob blobs, SeedJob(api, tree, "seed blobs"));
  std::map<std::string, core::FileEntry> by_path;
  for (const core::FileEntry& e : blobs.base_manifest.files) by_path[e.path] = e;
  core::Manifest ordered;
  for (const std::string& name : names) ordered.files.push_back(by_path.at(name));
  FASTEST_ASSIGN_OR_RETURN(SeededJob seeded, SeedJobWithManifestText(
                                                 api, core::SerializeManifestAsGiven(ordered), prompt));
  seeded.base_manifest = ordered;
  return seeded;
}

std::vector<std::string> PathsOf(const core::Manifest& m) {
  std::vector<std::string> paths;
  for (const core::FileEntry& e : m.files) paths.push_back(e.path);
  return paths;
}

// The original runner's base (ICU order) and an agent that changes nothing: the job's output is
// the base snapshot, not a re-sorted copy with a new hash.
TEST_F(RunnerE2ETest, UnchangedWorkspaceOnAnIcuOrderedBaseIsTheBase) {
  const std::vector<std::string> names(std::begin(kIcuOrderedNames), std::end(kIcuOrderedNames));
  auto seeded = SeedJobWithOrderedBase(*api_, dir_ + "/base", names, "only look");
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  RunnerRun run = ExpectOutputIsTheBase(*seeded, "cat Makefile; ls");
  EXPECT_THAT(run.stdout_text, HasSubstr("Manifest order: base manifest is in ICU (en-US) order"));
}

// A change on an ICU-ordered base: the new manifest keeps ICU order (new names included).
TEST_F(RunnerE2ETest, ChangedWorkspaceOnAnIcuOrderedBaseKeepsIcuOrder) {
  const std::vector<std::string> names(std::begin(kIcuOrderedNames), std::end(kIcuOrderedNames));
  auto seeded = SeedJobWithOrderedBase(*api_, dir_ + "/base", names, "add two files");
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  RunnerRun run = RunRunner(Env(seeded->job_id, "echo z > Zeta.txt; echo a > src/Apple.rs"));
  ASSERT_EQ(run.exit_code, runner::kExitCompleted) << run.all();
  core::Job job = GetJob(seeded->job_id);
  ASSERT_NE(job.output_snapshot_id, seeded->base_snapshot_id);
  auto manifest = FetchManifest(*api_, job.output_snapshot_id.value_or("?"));
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(PathsOf(*manifest),
            (std::vector<std::string>{"_config.yml", "main.c", "Makefile", "Notes.txt",
                                      "README.md", "src/app.rs", "src/Apple.rs", "src/Lib.rs",
                                      "Zeta.txt"}));
}

// A base in neither order (hand-made): byte order, said in the log; the unchanged tree gets a new
// (byte-ordered) manifest.
TEST_F(RunnerE2ETest, BaseInNeitherOrderFallsBackToByteOrder) {
  const std::vector<std::string> names = {"README.md", "main.c", "Makefile", "b.txt", "a.txt"};
  auto seeded = SeedJobWithOrderedBase(*api_, dir_ + "/base", names, "only look");
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  RunnerRun run = RunRunner(Env(seeded->job_id, "true"));
  ASSERT_EQ(run.exit_code, runner::kExitCompleted) << run.all();
  EXPECT_THAT(run.stdout_text,
              HasSubstr("sorted neither by bytes nor by ICU (en-US) collation (a foreign or "
                        "hand-made order): using byte order"));
  EXPECT_THAT(run.stdout_text, HasSubstr("Changes: +0 ~0 -0"));
  core::Job job = GetJob(seeded->job_id);
  auto manifest = FetchManifest(*api_, job.output_snapshot_id.value_or("?"));
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(PathsOf(*manifest), (std::vector<std::string>{"Makefile", "README.md", "a.txt",
                                                          "b.txt", "main.c"}));
}

TEST_F(RunnerE2ETest, AgentNonZeroExitFailsWithExitCodeAndTail) {
  auto seeded = SeedJob(*api_, MakeBaseTree(), "fail please");
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  RunnerRun run = RunRunner(Env(seeded->job_id, "echo 'model said no' >&2; exit 3"));
  EXPECT_EQ(run.exit_code, runner::kExitJobFailed) << run.all();
  core::Job job = GetJob(seeded->job_id);
  EXPECT_EQ(job.status, core::JobStatus::kFailed);
  EXPECT_THAT(job.error.value_or(""), HasSubstr("Agent exited with code 3"));
  EXPECT_THAT(job.error.value_or(""), HasSubstr("model said no"));
  EXPECT_FALSE(job.output_snapshot_id.has_value());
  EXPECT_THAT(run.stderr_text, HasSubstr("Job failed: Agent exited with code 3"));
}

TEST_F(RunnerE2ETest, AgentTimeoutFailsTheJob) {
  auto seeded = SeedJob(*api_, MakeBaseTree(), "hang");
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  auto env = Env(seeded->job_id, "echo working; sleep 60");
  env["FASTEST_AGENT_TIMEOUT"] = "1s";
  absl::Time start = absl::Now();
  RunnerRun run = RunRunner(env);
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
  EXPECT_EQ(run.exit_code, runner::kExitJobFailed) << run.all();
  core::Job job = GetJob(seeded->job_id);
  EXPECT_EQ(job.status, core::JobStatus::kFailed);
  EXPECT_THAT(job.error.value_or(""), HasSubstr("Agent timed out after 1s"));
  EXPECT_THAT(job.error.value_or(""), HasSubstr("working"));
}

// The server is killed while the agent runs and restarted (same port, same data) a few seconds
// later, while the runner is already retrying its snapshot calls: the runner recovers and the job
// completes.
TEST_F(RunnerE2ETest, ApiOutageDuringAgentIsRiddenOut) {
  auto seeded = SeedJob(*api_, MakeBaseTree(), "survive an outage");
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  std::string marker = dir_ + "/agent_started";
  auto env = Env(seeded->job_id, "touch " + marker + "; sleep 2; echo new > outage.txt");
  std::atomic<bool> restarted{false};
  std::thread chaos([&] {
    for (int i = 0; i < 400 && !fs::exists(marker); ++i) usleep(25 * 1000);
    server_->Kill();
    sleep(5);  // the agent ends after 2 s; the runner then retries against a dead port
    restarted = server_->Start().ok();
  });
  RunnerRun run = RunRunner(env);
  chaos.join();
  ASSERT_TRUE(restarted.load());
  EXPECT_EQ(run.exit_code, runner::kExitCompleted) << run.all();
  core::Job job = GetJob(seeded->job_id);
  EXPECT_EQ(job.status, core::JobStatus::kCompleted);
  auto manifest = FetchManifest(*api_, job.output_snapshot_id.value_or("?"));
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  bool found = false;
  for (const auto& e : manifest->files) found |= e.path == "outage.txt";
  EXPECT_TRUE(found);
}

// The server stays down past the runner's retry budget: the runner gives up clearly with
// kExitApiUnreachable instead of hanging, and the job is not marked completed.
TEST_F(RunnerE2ETest, ApiOutageBeyondRetryCapFailsClearly) {
  auto seeded = SeedJob(*api_, MakeBaseTree(), "outage too long");
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  std::string marker = dir_ + "/agent_started";
  auto env = Env(seeded->job_id, "touch " + marker + "; sleep 1; echo x > x.txt");
  env["FASTEST_API_RETRY_SECONDS"] = "2";
  std::thread chaos([&] {
    for (int i = 0; i < 400 && !fs::exists(marker); ++i) usleep(25 * 1000);
    server_->Kill();
  });
  absl::Time start = absl::Now();
  RunnerRun run = RunRunner(env);
  chaos.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  EXPECT_EQ(run.exit_code, runner::kExitApiUnreachable) << run.all();
  EXPECT_THAT(run.stderr_text, HasSubstr("Job failed: Snapshot failed"));
  EXPECT_THAT(run.stderr_text, HasSubstr("Failed to update job status"));
  EXPECT_THAT(run.all(), Not(HasSubstr(kToken)));
  ASSERT_TRUE(server_->Start().ok());
  EXPECT_EQ(GetJob(seeded->job_id).status, core::JobStatus::kRunning);
}

// A standby runner (warm pool) whose API is gone rides it out on the client's retry schedule,
// then gives up clearly within FASTEST_API_RETRY_SECONDS; one whose credential the API refuses
// exits at once. Neither prints its credential.
TEST_F(RunnerE2ETest, StandbyRunnerGivesUpOnALostApiAndARefusedCredential) {
  std::map<std::string, std::string> env = Env("", "true");
  env.erase("JOB_ID");
  env["FASTEST_STANDBY"] = "1";
  env["FASTEST_API_RETRY_SECONDS"] = "2";

  // The server's own token is no standby credential: 401, no retry.
  absl::Time start = absl::Now();
  RunnerRun refused = RunRunner(env);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(refused.exit_code, runner::kExitNotRunnable) << refused.all();
  EXPECT_THAT(refused.all(), HasSubstr("The API refused the standby credential (HTTP 401)"));
  EXPECT_THAT(refused.all(), Not(HasSubstr(kToken)));

  server_->Kill();
  start = absl::Now();
  RunnerRun lost = RunRunner(env);
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Seconds(1)) << "gave up without retrying";
  EXPECT_LT(took, absl::Seconds(20));
  EXPECT_EQ(lost.exit_code, runner::kExitApiUnreachable) << lost.all();
  EXPECT_THAT(lost.all(), HasSubstr("API unreachable while waiting for a job"));
  EXPECT_THAT(lost.all(), Not(HasSubstr(kToken)));
  ASSERT_TRUE(server_->Start().ok());
}

// A proxy in front of the server corrupts one blob download: the runner refuses it.
// A corrupt blob fails the job, whether it arrives in a batch answer (fastest-server) or through
// the per-blob endpoint (a server without the batch extension, like the original API: the proxy
// answers the batch paths with 404 and the runner falls back).
TEST_F(RunnerE2ETest, CorruptBlobFailsWithHashMismatch) { CorruptBlobCase(false); }

TEST_F(RunnerE2ETest, CorruptBlobFailsAgainstServerWithoutBatches) {
  CorruptBlobCase(true);
}

void RunnerE2ETest::CorruptBlobCase(bool original_api) {
  std::string tree = MakeBaseTree();
  WriteTestFile(tree, "victim.txt", "the real content\n");
  auto seeded = SeedJob(*api_, tree, "never runs");
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  const std::string victim = core::Sha256Hex("the real content\n");
  core::HttpClient proxy_http;
  const std::string upstream = server_->url();
  core::testing::LoopbackHttpServer proxy([&](const core::testing::TestRequest& req) {
    if (original_api && absl::StartsWith(req.target, "/v1/blobs/batch-")) {
      return core::testing::TestResponse{
          404, "application/json", R"({"error":{"code":"NOT_FOUND","message":"Route not found"}})"};
    }
    core::HttpRequest out;
    out.method = req.method;
    out.url = upstream + req.target;
    out.body = req.body;
    std::string auth = req.Header("authorization");
    if (!auth.empty()) out.headers.emplace_back("Authorization", auth);
    auto resp = proxy_http.Send(out);
    core::testing::TestResponse r;
    if (!resp.ok()) return core::testing::TestResponse{502, "text/plain", "upstream down"};
    r.status = static_cast<int>(resp->status);
    r.content_type = resp->Header("content-type");
    r.body = resp->body;
    if (absl::EndsWith(req.target, victim)) r.body = "tampered content!\n";
    if (absl::StartsWith(req.target, "/v1/blobs/batch-download")) {
      // Same length, so the framing stays intact and only the hash check can catch it.
      r.body = absl::StrReplaceAll(r.body, {{"the real content\n", "the fake content\n"}});
    }
    return r;
  });
  std::string marker = dir_ + "/agent_ran";
  auto env = Env(seeded->job_id, "touch " + marker);
  env["API_URL"] = proxy.base_url();
  RunnerRun run = RunRunner(env);
  EXPECT_EQ(run.exit_code, runner::kExitJobFailed) << run.all();
  core::Job job = GetJob(seeded->job_id);
  EXPECT_EQ(job.status, core::JobStatus::kFailed);
  EXPECT_THAT(job.error.value_or(""), HasSubstr("hash mismatch"));
  EXPECT_THAT(job.error.value_or(""), HasSubstr("victim.txt"));
  EXPECT_FALSE(fs::exists(marker)) << "agent must not run on a corrupt workspace";
  EXPECT_FALSE(fs::exists(ws_ + "/victim.txt"));
  bool per_blob = false, batch = false;
  for (const auto& r : proxy.requests()) {
    per_blob |= absl::StartsWith(r.target, "/v1/blobs/download/");
    batch |= absl::StartsWith(r.target, "/v1/blobs/batch-download");
  }
  EXPECT_TRUE(batch);  // tried first in both cases
  EXPECT_EQ(per_blob, original_api);
}

struct HostileCase {
  std::string name;
  std::vector<std::pair<std::string, std::string>> entries;  // path, content
  std::string expected_error;
};

TEST_F(RunnerE2ETest, HostileManifestsFailWithNoWritesOutsideTheWorkspace) {
  const std::string outside = dir_ + "/outside";
  const std::string abs_target = dir_ + "/abs_target.txt";
  std::vector<HostileCase> cases = {
      {"dotdot", {{"ok.txt", "fine"}, {"../escape.txt", "escaped"}}, "Invalid manifest"},
      {"nested-dotdot", {{"a/../../escape2.txt", "escaped"}}, "Invalid manifest"},
      {"absolute", {{abs_target, "escaped"}}, "Invalid manifest"},
      {"symlink", {{"ok.txt", "fine"}, {"evil/pwned.txt", "escaped"}}, "symlink"},
      {"duplicate", {{"dup.txt", "one"}, {"dup.txt", "two"}}, "Invalid manifest"},
  };
  for (const HostileCase& c : cases) {
    SCOPED_TRACE(c.name);
    fs::remove_all(ws_);
    fs::remove_all(outside);
    fs::create_directories(ws_);
    fs::create_directories(outside);
    if (c.name == "symlink") {
      ASSERT_EQ(symlink(outside.c_str(), (ws_ + "/evil").c_str()), 0);
    }
    // Hand-written manifest (the server does not validate manifests); blobs are really uploaded
    // so a naive runner would write them.
    std::string text = "{\n  \"version\": \"1\",\n  \"files\": [";
    for (size_t i = 0; i < c.entries.size(); ++i) {
      const auto& [path, content] = c.entries[i];
      std::string hash = core::Sha256Hex(content);
      ASSERT_TRUE(api_->UploadBlob(hash, content).ok());
      absl::StrAppend(&text, i ? "," : "", "\n    {\"path\": \"", path, "\", \"hash\": \"", hash,
                      "\", \"size\": ", content.size(), ", \"mode\": 420}");
    }
    absl::StrAppend(&text, "\n  ]\n}");
    auto seeded = SeedJobWithManifestText(*api_, text, "hostile " + c.name);
    ASSERT_TRUE(seeded.ok()) << seeded.status();
    std::string marker = dir_ + "/agent_ran";
    fs::remove(marker);
    RunnerRun run = RunRunner(Env(seeded->job_id, "touch " + marker));
    EXPECT_EQ(run.exit_code, runner::kExitJobFailed) << run.all();
    core::Job job = GetJob(seeded->job_id);
    EXPECT_EQ(job.status, core::JobStatus::kFailed);
    EXPECT_THAT(job.error.value_or(""), HasSubstr(c.expected_error));
    EXPECT_FALSE(fs::exists(marker));
    EXPECT_FALSE(fs::exists(dir_ + "/escape.txt"));
    EXPECT_FALSE(fs::exists(dir_ + "/escape2.txt"));
    EXPECT_FALSE(fs::exists(abs_target));
    EXPECT_TRUE(fs::is_empty(outside));
    EXPECT_FALSE(fs::exists(ws_ + "/ok.txt"));  // nothing written at all
    EXPECT_FALSE(fs::exists(ws_ + "/dup.txt"));
  }
}

}  // namespace
}  // namespace fastest::testing
