// File: tests/e2e/backend_test_base.h
//
// BackendTest: the base of the e2e suites parameterised by backend name ("docker", "podman",
// "cloudflare"). ConnectBackend() sets kind_, engine_ and image_, and fails the test (never skips)
// with what to run when the engine or the sandbox image is missing.
//
//   class MyTest : public BackendTest {
//     void SetUp() override { ASSERT_NO_FATAL_FAILURE(ConnectBackend()); ... }
//   };
#ifndef FASTEST_TESTS_E2E_BACKEND_TEST_BASE_H_
#define FASTEST_TESTS_E2E_BACKEND_TEST_BASE_H_

#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "tests/e2e/e2e_harness.h"

namespace fastest::e2e {

class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void ConnectBackend() {
    absl::StatusOr<BackendKind> kind = ParseBackendKind(GetParam());
    ASSERT_TRUE(kind.ok()) << kind.status();
    kind_ = *kind;
    absl::StatusOr<SandboxEngine> sandbox = ConnectSandboxEngine(kind_);
    ASSERT_TRUE(sandbox.ok()) << "needs a container engine and the sandbox image: "
                              << sandbox.status().message();
    engine_ = std::move(sandbox->engine);
    image_ = sandbox->image;
    stale_runner_ = sandbox->stale_runner;
  }

  BackendKind kind_ = BackendKind::kDocker;
  std::unique_ptr<backends::engine_api::EngineClient> engine_;
  std::string image_;
  // "" when the image's runner is this tree's; else a warning (see SandboxEngine).
  std::string stale_runner_;
};

}  // namespace fastest::e2e

#endif  // FASTEST_TESTS_E2E_BACKEND_TEST_BASE_H_
