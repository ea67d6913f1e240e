// File: tests/runner/e2e_harness.h
//
// Helpers for the runner end-to-end tests: start/stop the real fastest-server binary on a loopback
// port with a temp data dir and a known token, seed a project/workspace/job through ApiClient, and
// run the real fastest-runner binary with a given environment.
#ifndef FASTEST_TESTS_RUNNER_E2E_HARNESS_H_
#define FASTEST_TESTS_RUNNER_E2E_HARNESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/api/api_client.h"
#include "core/http/http_client.h"
#include "core/snapshot/manifest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/server_process.h"

namespace fastest::testing {

// A free TCP port on 127.0.0.1 (bound to 0, then released).
int PickFreePort();

// Writes `content` to root/rel (creating parents) with `mode`.
void WriteTestFile(const std::string& root, const std::string& rel, const std::string& content,
                   unsigned mode = 0644);
std::string ReadTestFile(const std::string& path);

// The real server binary (tests/testing/server_process.h) on `port` with --backend=none and
// FASTEST_API_TOKEN=token; restartable on the same port, Kill() simulates a crash.
std::unique_ptr<ServerProcess> MakeServer(const std::string& data_dir, const std::string& token,
                                          int port);

struct RunnerRun {
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
  std::string all() const { return stdout_text + stderr_text; }
};

// Runs the real runner with exactly `env` (plus PATH), waits (up to timeout_s), returns its output.
RunnerRun RunRunner(const std::map<std::string, std::string>& env, int timeout_s = 90);

// Seeds a project + base snapshot of `tree_dir` (empty string = no base) + workspace + job.
struct SeededJob {
  std::string project_id;
  std::optional<std::string> base_snapshot_id;
  std::string workspace_id;
  std::string job_id;
  core::Manifest base_manifest;
};
absl::StatusOr<SeededJob> SeedJob(core::ApiClient& api, const std::string& tree_dir,
                                  const std::string& prompt);
// Seeds a job whose base snapshot points at an arbitrary (possibly hostile) manifest text.
absl::StatusOr<SeededJob> SeedJobWithManifestText(core::ApiClient& api, const std::string& text,
                                                  const std::string& prompt);

// Downloads and parses a snapshot's manifest.
absl::StatusOr<core::Manifest> FetchManifest(core::ApiClient& api, const std::string& snapshot_id);

}  // namespace fastest::testing

#endif  // FASTEST_TESTS_RUNNER_E2E_HARNESS_H_
