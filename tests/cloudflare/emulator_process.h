// File: tests/cloudflare/emulator_process.h
//
// EmulatorProcess: starts the real cf-bridge-emulator binary (a runfile) on 127.0.0.1:0 as a child
// process, waits for its port file, and stops it (SIGTERM to that pid only) on destruction, which
// removes its containers. RequireDocker() checks /var/run/docker.sock first and FAILS (never
// skips) with what to do when Docker does not answer or no sandbox image exists.
#ifndef FASTEST_TESTS_CLOUDFLARE_EMULATOR_PROCESS_H_
#define FASTEST_TESTS_CLOUDFLARE_EMULATOR_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testing/child_process.h"

namespace fastest::tests::cloudflare {

inline constexpr char kTestApiKey[] = "test-bridge-key-1234";

// RequireDocker: OK when dockerd answers /_ping on /var/run/docker.sock; otherwise an error that
// says to run tools/start_dockerd.sh.
absl::Status RequireDocker();

// TestImage: $FASTEST_CF_TEST_IMAGE, else the first existing of fastest/sandbox:0.1.0 and
// fastest/test-busybox:latest; an error naming tools/build_sandbox_image.sh otherwise.
absl::StatusOr<std::string> TestImage();

class EmulatorProcess {
 public:
  ~EmulatorProcess();
  // Start: runs the emulator with SANDBOX_API_KEY=kTestApiKey and `extra_args`.
  static absl::StatusOr<std::unique_ptr<EmulatorProcess>> Start(
      const std::vector<std::string>& extra_args = {});
  const std::string& url() const { return url_; }
  int port() const { return port_; }
  // Stop: SIGTERM and wait (idempotent).
  void Stop();

 private:
  EmulatorProcess() = default;
  fastest::testing::ChildProcess child_;
  int port_ = 0;
  std::string url_;
};

}  // namespace fastest::tests::cloudflare

#endif  // FASTEST_TESTS_CLOUDFLARE_EMULATOR_PROCESS_H_
