// The dashboard in a real headless Chromium: starts the real fastest-server (process backend,
// scripted runner) and runs tests/dashboard/dashboard_test.mjs (puppeteer-core) against it.
// Fails, never skips, when node, chromium or puppeteer-core is missing.
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/server_harness.h"
#include "tests/testing/child_process.h"

namespace fastest::testing {
namespace {

// The sandbox "runner": the job's prompt says what to do. The XSS job prints hostile HTML to
// its log and completes with a snapshot whose file names and contents are hostile too.
const char kRunnerScript[] = R"SH(#!/bin/sh
H="Authorization: Bearer $API_TOKEN"
JOB=$(curl -sf -H "$H" "$API_URL/v1/jobs/$JOB_ID") || { echo "cannot fetch job" >&2; exit 20; }
curl -sf -X POST -H "$H" -d '{"status":"running"}' "$API_URL/v1/jobs/$JOB_ID/status" >/dev/null \
  || exit 21
# complete MANIFEST_HASH: uploads the manifest the test wrote to @DIR@/manifests (a per-job token
# may only create a snapshot of a manifest it uploaded), creates the output snapshot, reports it.
complete() {
  PID=$(echo "$JOB" | sed 's/.*"project_id":"\([0-9A-Z]*\)".*/\1/')
  curl -sf -X PUT -H "$H" --data-binary "@@DIR@/manifests/$1" \
    "$API_URL/v1/blobs/manifests/$1" >/dev/null || exit 23
  SNAP=$(curl -sf -X POST -H "$H" -d "{\"manifest_hash\":\"$1\"}" \
    "$API_URL/v1/projects/$PID/snapshots") || exit 24
  OUT=$(echo "$SNAP" | sed 's/.*"snapshot":{[^}]*"id":"\([0-9A-Z]*\)".*/\1/')
  curl -sf -X POST -H "$H" -d "{\"status\":\"completed\",\"output_snapshot_id\":\"$OUT\"}" \
    "$API_URL/v1/jobs/$JOB_ID/status" >/dev/null || exit 22
  echo "Output snapshot: $OUT"
}
SID=$(echo "$JOB" | sed -n 's/.*"prompt":"[a-z]*:\([0-9a-f]*\).*/\1/p')
case "$JOB" in
  *'"prompt":"slow:'*)
    echo "agent: starting"
    for i in 1 2 3 4 5 6; do echo "agent: step $i of 6"; sleep 0.4; done
    echo "agent: warning on stderr" >&2
    complete "$SID" ;;
  *'"prompt":"sleep'*) echo "agent: waiting to be cancelled"; sleep 60 ;;
  *'"prompt":"xss:'*)
    echo '<img src=x onerror="window.__xss=(window.__xss||[]).concat(\"log\")">'
    echo '<script>window.__xss=(window.__xss||[]).concat("log-script")</script>'
    printf '\033[1;31mred alert\033[0m in colour\n'
    complete "$SID" ;;
esac
)SH";

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? std::string(buf) : path;
}

// node from $FASTEST_NODE or PATH.
std::string FindNode() {
  if (const char* n = getenv("FASTEST_NODE"); n != nullptr && *n != '\0') return n;
  const char* path = getenv("PATH");
  std::vector<std::string> dirs = absl::StrSplit(path ? path : "", ':', absl::SkipEmpty());
  dirs.push_back("/usr/bin");
  dirs.push_back("/usr/local/bin");
  for (const std::string& d : dirs) {
    const std::string candidate = d + "/node";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

TEST(DashboardBrowserTest, SignInJobsLogDiffCancelAndXss) {
  const std::string dir = FreshDir("dashboard");
  const std::string script = dir + "/runner.sh";
  std::ofstream(script) << absl::StrReplaceAll(kRunnerScript, {{"@DIR@", dir}});
  auto server = LaunchServer(
      dir + "/data",
      {"--backend=" + ProcessBackendPath(),
       "--backend_config=" +
           nlohmann::json{{"schema", 1}, {"state_dir", dir + "/sandboxes"}}.dump(),
       "--runner_command=/bin/sh," + script, "--auto_dispatch", "--max_instances=4"});
  ASSERT_TRUE(server.ok()) << server.status();

  const std::string node = FindNode();
  ASSERT_FALSE(node.empty()) << "node is missing: run `bash tools/setup.sh` (installs nodejs)";
  const char* outputs = getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  std::map<std::string, std::string> env = CurrentEnvironment();
  env["DASHBOARD_URL"] = (*server)->url("");
  env["DASHBOARD_TOKEN"] = kTestToken;
  env["DASHBOARD_ARTIFACTS"] = outputs ? outputs : dir + "/artifacts";
  env["DASHBOARD_TMP"] = dir;
  env["HOME"] = dir;
  // The driver resolves puppeteer-core next to its real (source tree) location.
  auto driver = ChildProcess::Spawn(
      node, {RealPath(Runfile("tests/dashboard/dashboard_test.mjs"))}, env, dir + "/driver.log");
  ASSERT_TRUE(driver.ok()) << driver.status();
  absl::StatusOr<int> status = driver->Wait(absl::Seconds(100));
  const std::string log = ReadFileTail(dir + "/driver.log", 64 * 1024);
  std::cout << log << std::endl;
  ASSERT_TRUE(status.ok()) << "browser test timed out\n" << log;
  EXPECT_EQ(ExitCode(*status), 0) << DescribeWaitStatus(*status) << "\n"
                                  << log << "\nserver log:\n"
                                  << ReadFileTail((*server)->log_path());
  // The token never reaches the server's log (it travels in headers, never in URLs).
  EXPECT_FALSE(absl::StrContains((*server)->Log(), kTestToken));
}

}  // namespace
}  // namespace fastest::testing
