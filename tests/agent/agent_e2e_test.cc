// End to end with the REAL agent: fastest-server (embedded API, --backend=docker) runs the job in a
// real container of the sandbox image (tools/build_sandbox_image.sh: runner + OpenCode), the real
// OpenCode binary talks to the offline model stub (tools/model_stub) on loopback (host network),
// and the job's output snapshot is checked file by file.
//
//   basic.json -> completed; output = the example + exactly the scenario's changes
//   error.json -> failed with the stub's error message, well within the job timeout
//   stall.json -> failed by the job timeout ("timed out")
//
// Needs dockerd (tools/start_dockerd.sh) and the image (tools/build_sandbox_image.sh); without them
// the test FAILS with the fix, it never skips. Image: $FASTEST_TEST_IMAGE or fastest/sandbox:0.1.0.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/api/api_client.h"
#include "core/http/http_client.h"
#include "core/snapshot/directory_scan.h"
#include "core/snapshot/manifest.h"
#include "core/snapshot/safe_fs.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"

namespace fastest::tests {
namespace {

constexpr char kToken[] = "agent-e2e-token-5f0c2a";
// The provider key: only the server has it; the stub refuses completions without it, so a
// completed job proves the model gateway added it. The sandbox must never see it.
constexpr char kModelKey[] = "sk-stub-9b1e47d2c85a3f60";

std::string Env(const char* n, const char* fallback = "") {
  const char* v = getenv(n);
  return v && *v ? v : fallback;
}

std::string Image() { return Env("FASTEST_TEST_IMAGE", "fastest/sandbox:0.1.0"); }

std::string Abs(const std::string& rel) {
  char buf[4096];
  return realpath(rel.c_str(), buf) ? buf : rel;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TempDir(const std::string& name) {
  std::string base = Env("TEST_TMPDIR", "/tmp");
  std::string tmpl = absl::StrCat(base, "/", name, "_XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  return mkdtemp(buf.data());
}

// A child process with the test's environment plus `extra_env`, its output in a log file, in its
// own process group; SIGTERM (then SIGKILL after 5 s) on destruction.
class Child {
 public:
  Child(std::vector<std::string> argv, const std::map<std::string, std::string>& extra_env,
        std::string log_path) {
    testing::SpawnOptions o;
    o.binary = argv.front();
    o.args.assign(argv.begin() + 1, argv.end());
    o.env = testing::CurrentEnvironment();
    for (const auto& [k, v] : extra_env) o.env[k] = v;
    o.log_path = std::move(log_path);
    o.new_process_group = true;
    log_path_ = o.log_path;
    absl::StatusOr<testing::ChildProcess> child = testing::ChildProcess::Spawn(o);
    if (child.ok()) {
      process_ = std::move(*child);
    } else {
      spawn_error_ = child.status().ToString();
    }
  }
  ~Child() { process_.Stop(absl::Seconds(5)); }
  std::string Log() const { return spawn_error_ + ReadFile(log_path_); }

  // Waits for a port file written by the child; 0 if it exits first or on timeout.
  int WaitPort(const std::string& port_file, absl::Duration timeout) {
    absl::StatusOr<int> port = process_.WaitForPortFile(port_file, timeout);
    return port.ok() ? *port : 0;
  }

 private:
  testing::ChildProcess process_;
  std::string log_path_;
  std::string spawn_error_;
};

struct JobOutcome {
  core::Job job;
  absl::Duration took;
  std::string server_log, stub_log;
  std::string job_log;
  std::string followed_log;  // GET /v1/jobs/:id/logs?follow=1 from the dispatch on
  std::string sandbox_env;   // the container's Config.Env, seen while the job ran
};

class AgentE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Fail (not skip) with the fix when the engine or the image is missing.
    core::HttpClient http;
    core::HttpRequest ping;
    ping.url = "http://localhost/_ping";
    ping.unix_socket = "/var/run/docker.sock";
    ping.timeout = std::chrono::milliseconds(3000);
    auto r = http.Send(ping);
    docker_error_ = "";
    if (!r.ok() || r->status != 200) {
      docker_error_ = "dockerd is not running on /var/run/docker.sock: start it with "
                      "`sudo bash tools/start_dockerd.sh`";
      return;
    }
    core::HttpRequest img;
    img.url = absl::StrCat("http://localhost/images/", Image(), "/json");
    img.unix_socket = "/var/run/docker.sock";
    auto ri = http.Send(img);
    if (!ri.ok() || ri->status != 200) {
      docker_error_ = absl::StrCat("the sandbox image ", Image(),
                                   " is missing: build it with `bash tools/build_sandbox_image.sh`");
    }
  }

  void SetUp() override { ASSERT_TRUE(docker_error_.empty()) << docker_error_; }

  // Copy of examples/hello (runfiles are symlinks; the scanner skips symlinks).
  std::string CopyExample() {
    std::string dir = TempDir("hello");
    std::string cmd = absl::StrCat("cp -rL --preserve=mode examples/hello/. ", dir, "/");
    EXPECT_EQ(system(cmd.c_str()), 0) << cmd;
    return dir;
  }

  // Runs one job on `dir` against a fresh stub (scenario) + server (job_timeout).
  JobOutcome RunScenario(const std::string& scenario, const std::string& dir,
                         absl::Duration job_timeout, core::Manifest* base_out) {
    JobOutcome out;
    std::string work = TempDir(absl::StrCat("agent_", scenario));
    std::string stub_port = work + "/stub.port";
    Child stub({Abs("tools/model_stub/fastest-model-stub"),
                absl::StrCat("--scenario=", Abs(absl::StrCat("examples/scenarios/", scenario, ".json"))),
                "--port=0", absl::StrCat("--port_file=", stub_port),
                "--require_key_env=FASTEST_STUB_KEY"},
               {{"FASTEST_STUB_KEY", kModelKey}}, work + "/stub.log");
    int sp = stub.WaitPort(stub_port, absl::Seconds(10));
    EXPECT_GT(sp, 0) << "model stub did not start:\n" << stub.Log();
    if (sp <= 0) return out;

    std::string server_port = work + "/server.port";
    Child server({Abs("server/fastest-server"), "--backend=docker", "--host=127.0.0.1", "--port=0",
                  absl::StrCat("--port_file=", server_port), absl::StrCat("--data_dir=", work, "/data"),
                  absl::StrCat("--image=", Image()), "--instance_type=standard-3",
                  absl::StrCat("--job_timeout=", absl::FormatDuration(job_timeout))},
                 {{"FASTEST_API_TOKEN", kToken},
                  {"FASTEST_PLUGIN_PATH", Abs("backends/docker")},
                  {"FASTEST_MODEL_BASE_URL", absl::StrCat("http://127.0.0.1:", sp, "/v1")},
                  {"FASTEST_MODEL_API_KEY", kModelKey},
                  // The real provider must not be used even if the caller has keys set.
                  {"ANTHROPIC_API_KEY", ""},
                  {"OPENAI_API_KEY", ""}},
                 work + "/server.log");
    int port = server.WaitPort(server_port, absl::Seconds(20));
    EXPECT_GT(port, 0) << "fastest-server did not start:\n" << server.Log();
    if (port <= 0) return out;

    core::HttpClient http;
    core::ApiClient api(http, absl::StrCat("http://127.0.0.1:", port), kToken);
    absl::StatusOr<core::Manifest> base = core::BuildManifestFromDirectory(dir);
    EXPECT_TRUE(base.ok()) << base.status();
    if (!base.ok()) return out;
    *base_out = *base;
    std::vector<std::string> hashes;
    std::map<std::string, std::string> path_of;
    for (const auto& f : base->files) {
      if (path_of.emplace(f.hash, f.path).second) hashes.push_back(f.hash);
    }
    auto missing = api.MissingBlobs(hashes);
    EXPECT_TRUE(missing.ok()) << missing.status();
    for (const auto& h : *missing) {
      auto up = api.UploadBlobFromFile(h, dir + "/" + path_of[h]);
      EXPECT_TRUE(up.ok()) << up.status();
    }
    std::string mh = core::ManifestHash(*base);
    EXPECT_TRUE(api.UploadManifest(mh, core::SerializeManifest(*base)).ok());
    auto project = api.CreateProject("agent-e2e");
    EXPECT_TRUE(project.ok()) << project.status();
    auto snap = api.CreateSnapshot(project->id, mh, std::nullopt, "cli");
    EXPECT_TRUE(snap.ok()) << snap.status();
    core::CreateWorkspaceRequest wr;
    wr.name = "hello";
    wr.base_snapshot_id = snap->snapshot.id;
    auto ws = api.CreateWorkspace(project->id, wr);
    EXPECT_TRUE(ws.ok()) << ws.status();
    auto job = api.CreateJob(ws->id, "Add a farewell script, document it and record a greeting");
    EXPECT_TRUE(job.ok()) << job.status();
    if (!job.ok()) return out;

    absl::Time start = absl::Now();
    nlohmann::json body = {{"job_id", job->id}, {"wait", false}};
    auto dispatched = api.CallJson("POST", "/run-job", &body, false);
    EXPECT_TRUE(dispatched.ok()) << dispatched.status();
    // Someone follows the log from the start (as `fastest run` does): it is captured live.
    std::thread follower([&, job_id = job->id] {
      core::HttpClient follow_http;
      core::HttpRequest req;
      req.url = absl::StrCat("http://127.0.0.1:", port, "/v1/jobs/", job_id, "/logs?follow=1");
      req.bearer_token = kToken;
      req.timeout = std::chrono::milliseconds(absl::ToInt64Milliseconds(job_timeout) + 60000);
      auto r = follow_http.Send(req);
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) out.followed_log = r->body;
    });
    absl::Time deadline = start + job_timeout + absl::Seconds(30);
    out.job = *job;
    core::HttpRequest find;
    find.url = "http://localhost/containers/json?filters=%7B%22label%22%3A%5B%22fastest.job_id%3D" +
               job->id + "%22%5D%7D";
    find.unix_socket = "/var/run/docker.sock";
    while (absl::Now() < deadline) {
      if (out.sandbox_env.empty()) {
        auto found = http.Send(find);
        nlohmann::json list = found.ok() ? nlohmann::json::parse(found->body, nullptr, false)
                                         : nlohmann::json();
        if (list.is_array() && !list.empty()) {
          core::HttpRequest inspect;
          inspect.url = absl::StrCat("http://localhost/containers/",
                                     list[0].value("Id", std::string()), "/json");
          inspect.unix_socket = "/var/run/docker.sock";
          auto got = http.Send(inspect);
          nlohmann::json doc = got.ok() ? nlohmann::json::parse(got->body, nullptr, false)
                                        : nlohmann::json();
          if (doc.is_object()) out.sandbox_env = doc["Config"]["Env"].dump();
        }
      }
      auto j = api.GetJob(job->id);
      if (j.ok()) {
        out.job = *j;
        if (core::IsTerminal(j->status)) break;
      }
      absl::SleepFor(absl::Milliseconds(250));
    }
    out.took = absl::Now() - start;
    EXPECT_TRUE(core::IsTerminal(out.job.status))
        << "job still " << core::JobStatusName(out.job.status) << " after " << out.took;

    if (out.job.status == core::JobStatus::kCompleted && out.job.output_snapshot_id) {
      auto s = api.GetSnapshot(*out.job.output_snapshot_id);
      EXPECT_TRUE(s.ok()) << s.status();
      auto text = api.GetManifest(s->manifest_hash);
      EXPECT_TRUE(text.ok()) << text.status();
      auto m = core::ParseManifest(*text);
      EXPECT_TRUE(m.ok()) << m.status();
      output_ = *m;
      // Contents of every file, for exact comparison.
      output_blobs_.clear();
      for (const auto& f : m->files) {
        auto b = api.DownloadVerifiedBlob(f.hash);
        EXPECT_TRUE(b.ok()) << f.path << ": " << b.status();
        if (b.ok()) output_blobs_[f.path] = *b;
      }
    }
    // No sandbox of this job is left behind.
    core::HttpRequest list;
    // filters={"label":["fastest.job_id=<id>"]}, URL-encoded.
    list.url = "http://localhost/containers/json?all=1&filters=%7B%22label%22%3A%5B%22fastest.job_id%3D" +
               job->id + "%22%5D%7D";
    list.unix_socket = "/var/run/docker.sock";
    // The dispatcher removes the sandbox right after the job ends (docker removes asynchronously).
    std::string left;
    absl::Time gone_by = absl::Now() + absl::Seconds(20);
    do {
      auto lr = http.Send(list);
      EXPECT_TRUE(lr.ok()) << lr.status();
      left = lr.ok() ? lr->body : "";
      if (left == "[]\n") break;
      absl::SleepFor(absl::Milliseconds(250));
    } while (absl::Now() < gone_by);
    EXPECT_EQ(left, "[]\n") << "containers of job " << job->id << " left 20 s after it ended";

    follower.join();
    out.server_log = server.Log();
    out.stub_log = stub.Log();
    out.job_log = ReadFile(absl::StrCat(work, "/data/logs/", job->id, ".log"));
    return out;
  }

  static std::string docker_error_;
  core::Manifest output_;
  std::map<std::string, std::string> output_blobs_;
};

std::string AgentE2eTest::docker_error_;

std::string Context(const JobOutcome& o) {
  std::string log = o.server_log.size() > 6000 ? o.server_log.substr(o.server_log.size() - 6000)
                                               : o.server_log;
  return absl::StrCat("job ", o.job.id, " status=", core::JobStatusName(o.job.status),
                      " error=", o.job.error.value_or("(none)"), "\n--- stub log:\n", o.stub_log,
                      "\n--- server log (tail):\n", log);
}

TEST_F(AgentE2eTest, BasicScenarioCompletesWithExactlyTheScenarioChanges) {
  std::string dir = CopyExample();
  core::Manifest base;
  JobOutcome o = RunScenario("basic", dir, absl::Minutes(3), &base);
  ASSERT_EQ(o.job.status, core::JobStatus::kCompleted) << Context(o);
  ASSERT_TRUE(o.job.output_snapshot_id.has_value());
  std::printf("basic scenario job: created -> completed in %s\n",
              absl::FormatDuration(o.took).c_str());

  // Expected tree: the example with the scenario's edits applied by hand.
  std::string readme = ReadFile(dir + "/README.md");
  size_t at = readme.find("TODO: say goodbye too.");
  ASSERT_NE(at, std::string::npos);
  readme.replace(at, strlen("TODO: say goodbye too."),
                 "Greets (src/greet.sh) and says goodbye (src/farewell.sh).");
  std::map<std::string, std::pair<std::string, uint32_t>> expected = {
      {"README.md", {readme, 0644}},
      {"src/greet.sh", {ReadFile(dir + "/src/greet.sh"), 0755}},
      {"src/farewell.sh",
       {"#!/bin/sh\n# Says goodbye to $1 (default: world).\necho \"Goodbye, ${1:-world}!\"\n", 0755}},
      {"greeting.txt", {"Hello, fastest!\n", 0644}},
  };
  std::map<std::string, std::pair<std::string, uint32_t>> got;
  for (const auto& f : output_.files) got[f.path] = {output_blobs_[f.path], f.mode};
  EXPECT_EQ(got, expected) << Context(o);

  // The model traffic went through the server's gateway, which added the key; the sandbox only
  // had a placeholder.
  EXPECT_FALSE(o.sandbox_env.empty()) << "never saw the job's container";
  EXPECT_FALSE(absl::StrContains(o.sandbox_env, kModelKey)) << o.sandbox_env;
  EXPECT_TRUE(absl::StrContains(o.sandbox_env, "FASTEST_MODEL_API_KEY=fastest-model-gateway"))
      << o.sandbox_env;
  EXPECT_TRUE(absl::StrContains(o.job_log, "[gateway] POST /v1/chat/completions -> 200"))
      << o.job_log;
  // Followed live, each gateway line lands among the output it belongs to (before the runner's
  // snapshot), not after it at the end; and none is written twice.
  const size_t first_gateway = o.followed_log.find("[gateway] POST /v1/chat/completions");
  const size_t snapshot_line = o.followed_log.find("Output snapshot:");
  ASSERT_NE(first_gateway, std::string::npos) << o.followed_log;
  ASSERT_NE(snapshot_line, std::string::npos) << o.followed_log;
  EXPECT_LT(first_gateway, snapshot_line) << o.followed_log;
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count(o.job_log, "[gateway] POST"), count(o.followed_log, "[gateway] POST"));
  EXPECT_EQ(o.followed_log, o.job_log);
  EXPECT_FALSE(absl::StrContains(o.job_log, kModelKey));
  // The live log: the runner follows OpenCode's event stream (tool calls, the final text).
  EXPECT_TRUE(absl::StrContains(o.job_log, "[agent] tool write: ")) << o.job_log;
  EXPECT_TRUE(absl::StrContains(o.job_log, "[agent] tool bash: ")) << o.job_log;
  EXPECT_TRUE(absl::StrContains(o.job_log, "[agent] text: Done: added src/farewell.sh"))
      << o.job_log;
  // The stub saw all four agent turns and no title request (the runner names the session, so
  // OpenCode spends no model call on a title).
  EXPECT_TRUE(absl::StrContains(o.stub_log, "turn 4/4: text")) << o.stub_log;
  EXPECT_FALSE(absl::StrContains(o.stub_log, "title/no-tools reply")) << o.stub_log;
  // The parent of the output is the base snapshot's manifest.
  EXPECT_NE(core::ManifestHash(output_), core::ManifestHash(base));
}

TEST_F(AgentE2eTest, ModelErrorFailsTheJobWithTheError) {
  std::string dir = CopyExample();
  core::Manifest base;
  JobOutcome o = RunScenario("error", dir, absl::Minutes(2), &base);
  ASSERT_EQ(o.job.status, core::JobStatus::kFailed) << Context(o);
  std::string err = o.job.error.value_or("");
  EXPECT_TRUE(absl::StrContains(err, "model stub: scripted upstream failure")) << Context(o);
  // Fails on its own (OpenCode gives up after its retries), long before the job timeout.
  EXPECT_LT(o.took, absl::Seconds(90)) << Context(o);
}

TEST_F(AgentE2eTest, ModelStallFailsTheJobAtTheJobTimeout) {
  std::string dir = CopyExample();
  core::Manifest base;
  const absl::Duration timeout = absl::Seconds(30);
  JobOutcome o = RunScenario("stall", dir, timeout, &base);
  ASSERT_EQ(o.job.status, core::JobStatus::kFailed) << Context(o);
  EXPECT_TRUE(absl::StrContains(o.job.error.value_or(""), "timed out")) << Context(o);
  EXPECT_GE(o.took, timeout - absl::Seconds(1)) << Context(o);
  EXPECT_LT(o.took, timeout + absl::Seconds(25)) << Context(o);
  EXPECT_TRUE(absl::StrContains(o.stub_log, "stall")) << o.stub_log;
}

}  // namespace
}  // namespace fastest::tests
