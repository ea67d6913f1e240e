// File: tests/server/server_harness.h
//
// Test helpers: start the real fastest-server binary (from runfiles) on 127.0.0.1 with port 0,
// read its bound port from --port_file, and talk to it over HTTP with core::HttpClient.
#ifndef FASTEST_TESTS_SERVER_SERVER_HARNESS_H_
#define FASTEST_TESTS_SERVER_SERVER_HARNESS_H_

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "core/http/http_client.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"
#include "tests/testing/server_process.h"

namespace fastest::testing {

inline constexpr char kTestToken[] = "test-token-0123456789";

// A fresh directory under $TEST_TMPDIR.
std::string FreshDir(const std::string& name);
// Runfiles path of a workspace-relative file ("server/fastest-server"): RunfilePath.
std::string Runfile(const std::string& path);
// The process backend plugin and the server binary.
std::string ProcessBackendPath();
std::string ServerBinaryPath();

// Starts fastest-server (tests/testing/server_process.h) with --port=0 --data_dir=data_dir plus
// `args`; its environment is the test's own plus FASTEST_API_TOKEN=kTestToken plus `env`.
absl::StatusOr<std::unique_ptr<ServerProcess>> LaunchServer(
    const std::string& data_dir, const std::vector<std::string>& args,
    const std::map<std::string, std::string>& env = {});

// Runs the server binary to completion (e.g. `token create`), returning its stdout.
absl::StatusOr<std::string> RunServerCommand(const std::vector<std::string>& args);

// A small client: one call, JSON helpers.
class Api {
 public:
  explicit Api(const ServerProcess* server, std::string token = kTestToken)
      : server_(server), token_(std::move(token)) {}
  core::HttpResponse Call(const std::string& method, const std::string& path,
                          const std::string& body = "", const std::string* token = nullptr,
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Call + parse the body as JSON (null JSON if it does not parse).
  nlohmann::json Json(const std::string& method, const std::string& path,
                      const std::string& body = "", long* status = nullptr);
  void set_token(std::string t) { token_ = std::move(t); }

 private:
  const ServerProcess* server_;
  std::string token_;
  core::HttpClient http_;
};

// sha256('{"files":[]}'): the manifest stand-in runners upload as their job's output.
inline constexpr char kEmptyManifestHash[] =
    "602e35a92eec4bc0a2ec6ae113f07bfc6933322fb69fe8dee416e5a67217e2a2";
// A stand-in runner script (sh) with "@MAKE_OUTPUT@" replaced by a shell function `make_output`:
// it uploads that manifest and creates the snapshot with the job's own token (a job may report
// only the snapshot it created). The script must have set H (auth header) and JOB (job JSON).
std::string WithMakeOutput(const std::string& script_template);

// Number of entries in `dir` (0 when it does not exist): sandboxes left in a backend's state dir.
int CountEntries(const std::string& dir);

// Polls `pred` every 50 ms until it holds or `timeout_ms` passes; returns its last value.
template <typename Pred>
bool Eventually(Pred pred, int timeout_ms = 10000) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

}  // namespace fastest::testing

#endif  // FASTEST_TESTS_SERVER_SERVER_HARNESS_H_
