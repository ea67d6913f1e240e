// Every backend plugin built in this tree, loaded through the real loader: its describe document
// and its static FASTEST_CAP_* bits must agree (BackendCapabilities refuses a contradiction), and
// the bits must say what the document says. The plugins come as arguments from the BUILD file
// (bazel/backends.bzl's list plus the test plugins), so a new backend is covered on its own.
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/plugin/backend.h"
#include "core/plugin/capabilities.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/runfiles.h"

namespace fastest::core {
namespace {

std::vector<std::string>* g_plugins = nullptr;

// A config each plugin opens with and that sends nothing off this machine.
nlohmann::json ConfigFor(const std::string& name, const std::string& temp_dir) {
  if (name == "cloudflare") {
    // A closed loopback port: describe reports the bridge unhealthy instead of failing.
    return {{"bridge_url", "http://127.0.0.1:9"},
            {"api_key", "capabilities-test"},
            {"state_file", temp_dir + "/cloudflare-state.json"},
            {"max_attempts", 1}};
  }
  if (name == "process") return {{"state_dir", temp_dir + "/process-state"}};
  return nlohmann::json::object();
}

TEST(BackendCapabilitiesTest, EveryPluginsDescribeAgreesWithItsStaticBits) {
  ASSERT_NE(g_plugins, nullptr);
  ASSERT_GE(g_plugins->size(), 3u) << "the BUILD file passes every in-tree plugin";
  const std::string temp_dir = testing::MakeTempDir("caps_");
  for (const std::string& rel : *g_plugins) {
    SCOPED_TRACE(rel);
    absl::StatusOr<std::shared_ptr<BackendPlugin>> plugin =
        BackendPlugin::Load(testing::RunfilePath(rel));
    ASSERT_TRUE(plugin.ok()) << plugin.status();
    absl::StatusOr<std::unique_ptr<SandboxBackend>> backend =
        (*plugin)->Open(ConfigFor((*plugin)->name(), temp_dir));
    ASSERT_TRUE(backend.ok()) << backend.status();
    absl::StatusOr<BackendCapabilities> caps = (*backend)->Capabilities();
    ASSERT_TRUE(caps.ok()) << caps.status();
    EXPECT_EQ(caps->bits(), (*plugin)->capabilities())
        << "describe and FASTEST_DEFINE_BACKEND's capabilities differ for " << (*plugin)->name();
    EXPECT_EQ(caps->name, (*plugin)->name());
  }
}

}  // namespace
}  // namespace fastest::core

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::vector<std::string> plugins(argv + 1, argv + argc);
  fastest::core::g_plugins = &plugins;
  return RUN_ALL_TESTS();
}
