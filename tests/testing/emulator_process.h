// File: tests/testing/emulator_process.h
//
// EmulatorProcess: the REAL cf-bridge-emulator binary (tools/cf_bridge_emulator, a runfile) as a
// child process on 127.0.0.1:0. Start waits for its port file; Stop (and the destructor) sends
// SIGTERM to that pid only and waits, and the emulator removes its containers. Used by the
// Cloudflare suites (tests/cloudflare), the end-to-end suite (tests/e2e) and the benchmarks.
//
// RequireDocker() checks /var/run/docker.sock and FAILS (never skips) with what to do when Docker
// does not answer; TestImage() picks a sandbox image that exists.
//
// Example:
//   FASTEST_ASSIGN_OR_RETURN(auto emulator, EmulatorProcess::Start());
//   backend_config["bridge_url"] = emulator->url();
//   backend_config["api_key"] = emulator->api_key();
#ifndef FASTEST_TESTS_TESTING_EMULATOR_PROCESS_H_
#define FASTEST_TESTS_TESTING_EMULATOR_PROCESS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/http/http_client.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"

namespace fastest::testing {

inline constexpr char kEmulatorTestApiKey[] = "test-bridge-key-1234";

// RequireDocker: OK when dockerd answers /_ping on /var/run/docker.sock; otherwise an error that
// says to run tools/start_dockerd.sh.
absl::Status RequireDocker();

// TestImage: $FASTEST_CF_TEST_IMAGE, else the first existing of fastest/sandbox:0.1.0 and
// fastest/test-busybox:latest; an error naming tools/build_sandbox_image.sh otherwise.
absl::StatusOr<std::string> TestImage();

struct EmulatorOptions {
  std::string api_key = kEmulatorTestApiKey;  // its SANDBOX_API_KEY
  std::string image;     // empty: TestImage()
  std::string work_dir;  // port file and log; empty: a fresh directory under $TEST_TMPDIR
  std::vector<std::string> extra_args;  // e.g. {"--max-instances", "1"}
  // The emulator's environment: the test's own (default) or only PATH. SANDBOX_API_KEY is added.
  bool inherit_environment = true;
};

class EmulatorProcess {
 public:
  ~EmulatorProcess();
  EmulatorProcess(const EmulatorProcess&) = delete;
  EmulatorProcess& operator=(const EmulatorProcess&) = delete;

  static absl::StatusOr<std::unique_ptr<EmulatorProcess>> Start(EmulatorOptions options = {});

  const std::string& url() const { return url_; }
  int port() const { return port_; }
  const std::string& api_key() const { return options_.api_key; }
  const std::string& image() const { return options_.image; }
  std::string Log() const;
  // SIGTERM and wait up to 30 s (it removes its containers first). Idempotent.
  void Stop();

  // POST /_emulator/faults (see tools/cf_bridge_emulator/bridge_emulator.h); DELETE clears.
  absl::Status SetFaults(const nlohmann::json& faults);
  absl::Status ClearFaults();
  // GET /_emulator/state.
  absl::StatusOr<nlohmann::json> State();

 private:
  explicit EmulatorProcess(EmulatorOptions options) : options_(std::move(options)) {}

  EmulatorOptions options_;
  ChildProcess child_;
  int port_ = 0;
  std::string url_;
  std::string log_path_;
  core::HttpClient http_;
};

}  // namespace fastest::testing

#endif  // FASTEST_TESTS_TESTING_EMULATOR_PROCESS_H_
