// File: backends/engine_api/engine_backend_suite.h
//
// One conformance suite, against a REAL engine, for every backend built on the Engine API (docker,
// podman) - both directly (the C++ class) and through its plugin .so. A backend's test instantiates
// it:
//
//   INSTANTIATE_TEST_SUITE_P(Docker, EngineBackendSuite,
//       testing::Values(EngineSuiteParam{"docker_direct", "tools/start_dockerd.sh", "", Make}),
//       EngineSuiteParamName);
//
// The suite FAILS (never skips) when the engine does not answer or the test image is missing, with
// a message naming the script to run. Every container it creates carries the label
// fastest.test_run=<unique>, and TearDown removes them and asserts none is left.
#ifndef FASTEST_BACKENDS_ENGINE_API_ENGINE_BACKEND_SUITE_H_
#define FASTEST_BACKENDS_ENGINE_API_ENGINE_BACKEND_SUITE_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "core/plugin/sandbox_backend.h"
#include "gtest/gtest.h"

namespace fastest::backends::engine_api {

// The image the suite runs: busybox only, built by
//   tools/build_sandbox_image.sh --tag fastest/test-busybox:latest --no-runner --no-opencode [--podman]
inline constexpr char kTestImage[] = "fastest/test-busybox:latest";

struct EngineSuiteParam {
  std::string name;          // test name suffix, e.g. "docker_direct"
  std::string start_script;  // what to run when the engine is down, e.g. "tools/start_dockerd.sh"
  std::string import_flag;   // extra build_sandbox_image.sh flag for this engine ("--podman")
  std::function<absl::StatusOr<std::unique_ptr<core::SandboxBackend>>()> make;
};

// Prints the param's name in gtest messages (instead of its bytes).
void PrintTo(const EngineSuiteParam& param, std::ostream* os);

std::string EngineSuiteParamName(const testing::TestParamInfo<EngineSuiteParam>& info);

class EngineBackendSuite : public testing::TestWithParam<EngineSuiteParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A spec running `script` with sh -c, labelled with this test's run label.
  core::SandboxSpec Spec(const std::string& script) const;

  std::shared_ptr<core::SandboxBackend> backend_;
  std::string run_label_;  // value of fastest.test_run
};

}  // namespace fastest::backends::engine_api

#endif  // FASTEST_BACKENDS_ENGINE_API_ENGINE_BACKEND_SUITE_H_
