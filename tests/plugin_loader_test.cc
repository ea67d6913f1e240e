// The backend loader and facade against real plugin .so files built in //tests/plugins: every
// loader failure mode with its message, name resolution, and the third-party plugin driven
// through every facade call.
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/plugin/backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string PluginsDir() {
  return absl::StrCat(getenv("TEST_SRCDIR"), "/", getenv("TEST_WORKSPACE"), "/tests/plugins");
}

std::string Plugin(const std::string& name) {
  return absl::StrCat(PluginsDir(), "/libfastest_backend_", name, ".so");
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// Sets an environment variable for one test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    const char* old = getenv(name);
    if (old != nullptr) old_ = old;
    had_ = old != nullptr;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

// ---- loader failure modes ---------------------------------------------------------------------

TEST(PluginLoaderTest, MissingFileByPath) {
  std::string path = PluginsDir() + "/libfastest_backend_absent.so";
  absl::StatusOr<std::unique_ptr<SandboxBackend>> b = OpenBackend(path, {});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(b.status()), AllOf(HasSubstr(path), HasSubstr("No such file")));
}

TEST(PluginLoaderTest, DirectoryIsNotAPlugin) {
  absl::StatusOr<std::unique_ptr<SandboxBackend>> b = OpenBackend(PluginsDir(), {});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(b.status()), HasSubstr("not a regular file"));
}

TEST(PluginLoaderTest, TextFileIsNotASharedLibrary) {
  std::string path = PluginsDir() + "/broken/libfastest_backend_text.so";
  absl::StatusOr<std::unique_ptr<SandboxBackend>> b = OpenBackend(path, {});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  // dlerror's text is included ("invalid ELF header" or "file too short" depending on size).
  EXPECT_THAT(Message(b.status()),
              AllOf(HasSubstr(path), HasSubstr("not a loadable shared library"),
                    ::testing::AnyOf(HasSubstr("invalid ELF header"), HasSubstr("too short"))));
}

TEST(PluginLoaderTest, EntrySymbolMissing) {
  absl::StatusOr<std::unique_ptr<SandboxBackend>> b = OpenBackend(Plugin("no_entry"), {});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(b.status()),
              AllOf(HasSubstr("does not export the entry symbol fastest_backend_entry"),
                    HasSubstr("FASTEST_DEFINE_BACKEND")));
}

TEST(PluginLoaderTest, EntryReturnsNull) {
  absl::StatusOr<std::unique_ptr<SandboxBackend>> b = OpenBackend(Plugin("null_entry"), {});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(b.status()), AllOf(HasSubstr("fastest_backend_entry(1, 0) returned NULL"),
                                         HasSubstr("cannot serve ABI 1.x")));
}

TEST(PluginLoaderTest, AbiMajorMismatch) {
  absl::StatusOr<std::unique_ptr<SandboxBackend>> b = OpenBackend(Plugin("abi_major2"), {});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(b.status()),
              HasSubstr("plugin built for ABI 2.x, this fastest speaks 1.x: rebuild the plugin "
                        "against core/abi/backend_abi.h 1.x"));
}

TEST(PluginLoaderTest, TableTooSmall) {
  absl::StatusOr<std::unique_ptr<SandboxBackend>> b = OpenBackend(Plugin("small_table"), {});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      Message(b.status()),
      AllOf(HasSubstr("table too small"),
            HasSubstr(absl::StrCat("needs at least ", FASTEST_BACKEND_API_V1_0_SIZE)),
            HasSubstr(absl::StrCat(offsetof(fastest_backend_api_v1, free_string), " bytes"))));
}

TEST(PluginLoaderTest, RequiredSlotNull) {
  absl::StatusOr<std::unique_ptr<SandboxBackend>> b = OpenBackend(Plugin("null_slot"), {});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(b.status()), HasSubstr("required slot 'read_logs' is NULL"));
}

// ---- name resolution --------------------------------------------------------------------------

TEST(PluginLoaderTest, BareNameNotFoundListsEverySearchedPlace) {
  ScopedEnv env("FASTEST_PLUGIN_PATH", "/nonexistent-a::/nonexistent-b");
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  ASSERT_GT(n, 0);
  std::string binary_dir(exe, n);
  binary_dir = binary_dir.substr(0, binary_dir.rfind('/'));

  std::vector<std::string> dirs = BackendSearchDirs("nosuch");
  ASSERT_GE(dirs.size(), 3u);
  // Binary directory first, then FASTEST_PLUGIN_PATH in order.
  EXPECT_EQ(std::vector<std::string>(dirs.begin(), dirs.begin() + 3),
            (std::vector<std::string>{binary_dir, "/nonexistent-a", "/nonexistent-b"}));

  absl::StatusOr<std::unique_ptr<SandboxBackend>> b = OpenBackend("nosuch", {});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kNotFound);
  std::string message = Message(b.status());
  EXPECT_THAT(message, AllOf(HasSubstr("libfastest_backend_nosuch.so not found"),
                             HasSubstr("FASTEST_PLUGIN_PATH"), HasSubstr("lib/fastest")));
  size_t previous = 0;
  for (const std::string& dir : dirs) {
    size_t at = message.find(dir + "/libfastest_backend_nosuch.so");
    ASSERT_NE(at, std::string::npos) << dir << " missing in: " << message;
    EXPECT_GE(at, previous) << dir << " out of order in: " << message;
    previous = at;
  }
}

TEST(PluginLoaderTest, SearchOrderForAnInjectedBinary) {
  BackendSearchContext context;
  context.binary_path = "/opt/fastest/bin/fastest-server";
  context.plugin_path = "/plugins-a::/plugins-b";
  context.runfiles_dir = "/r";
  EXPECT_EQ(BackendSearchDirs("docker", context),
            (std::vector<std::string>{
                "/opt/fastest/bin",
                "/plugins-a",
                "/plugins-b",
                "/opt/fastest/lib/fastest",
                "/r/fastest/backends/docker",
                "/opt/fastest/bin/fastest-server.runfiles/fastest/backends/docker",
                "/opt/fastest/backends/docker",
            }));

  // A binary in /bin: no "//" in the paths; duplicates are listed once.
  context = {};
  context.binary_path = "/bin/fastest-server";
  context.plugin_path = "/bin:/lib/fastest";
  EXPECT_EQ(BackendSearchDirs("podman", context),
            (std::vector<std::string>{"/bin", "/lib/fastest",
                                      "/bin/fastest-server.runfiles/fastest/backends/podman",
                                      "/backends/podman"}));

  // Unknown binary (no /proc): only FASTEST_PLUGIN_PATH.
  context = {};
  context.plugin_path = "/p";
  EXPECT_EQ(BackendSearchDirs("docker", context), (std::vector<std::string>{"/p"}));
}

// Real directory layouts in a temp dir, each holding a copy of the thirdparty test plugin where
// the layout puts it; the "binary" is only a path (the search never executes it).
class PluginLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[PATH_MAX];
    snprintf(dir_template, sizeof(dir_template), "%s/layoutXXXXXX", getenv("TEST_TMPDIR"));
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    root_ = dir_template;
  }

  // Copies the thirdparty plugin to root_/relative_dir/ and returns the copy's path.
  std::string PlacePlugin(const std::string& relative_dir) {
    std::string dir = root_ + "/" + relative_dir;
    std::string target = dir + "/libfastest_backend_thirdparty.so";
    std::string command = absl::StrCat("mkdir -p '", dir, "' && cp '", Plugin("thirdparty"),
                                       "' '", target, "'");
    EXPECT_EQ(system(command.c_str()), 0) << command;
    return target;
  }

  // The plugin the layout resolves to, loaded and opened for real.
  std::string ResolveAndOpen(const BackendSearchContext& context) {
    absl::StatusOr<std::string> path = ResolveBackendPath("thirdparty", context);
    if (!path.ok()) return std::string(path.status().message());
    absl::StatusOr<std::shared_ptr<BackendPlugin>> plugin = BackendPlugin::Load(*path);
    EXPECT_TRUE(plugin.ok()) << plugin.status();
    if (plugin.ok()) {
      absl::StatusOr<std::unique_ptr<SandboxBackend>> b = (*plugin)->Open({{"schema", 1}});
      EXPECT_TRUE(b.ok()) << b.status();
    }
    return *path;
  }

  // A search from the binary at root_/relative_binary, with nothing from the environment.
  BackendSearchContext Binary(const std::string& relative_binary) {
    BackendSearchContext context;
    context.binary_path = root_ + "/" + relative_binary;
    return context;
  }

  std::string root_;
};

TEST_F(PluginLayoutTest, InstallPrefix) {
  std::string plugin = PlacePlugin("prefix/lib/fastest");
  EXPECT_EQ(ResolveAndOpen(Binary("prefix/bin/fastest-server")), plugin);
}

TEST_F(PluginLayoutTest, BazelBinTreeWithoutRunfiles) {
  std::string plugin = PlacePlugin("bin/backends/thirdparty");
  EXPECT_EQ(ResolveAndOpen(Binary("bin/server/fastest-server")), plugin);
}

TEST_F(PluginLayoutTest, RunfilesBesideTheBinaryWinOverTheBuildTree) {
  PlacePlugin("bin/backends/thirdparty");
  std::string plugin =
      PlacePlugin("bin/server/fastest-server.runfiles/fastest/backends/thirdparty");
  EXPECT_EQ(ResolveAndOpen(Binary("bin/server/fastest-server")), plugin);
}

TEST_F(PluginLayoutTest, RunfilesDirFromTheEnvironment) {
  std::string plugin = PlacePlugin("elsewhere/fastest/backends/thirdparty");
  BackendSearchContext context = Binary("bin/server/fastest-server");
  context.runfiles_dir = root_ + "/elsewhere";
  EXPECT_EQ(ResolveAndOpen(context), plugin);
}

TEST_F(PluginLayoutTest, RunfilesManifest) {
  std::string plugin = PlacePlugin("real/place");
  std::string manifest = root_ + "/MANIFEST";
  FILE* f = fopen(manifest.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fprintf(f, "fastest/server/fastest-server /x/fastest-server\n");
  fprintf(f, "fastest/backends/thirdparty/libfastest_backend_thirdparty.so %s\n", plugin.c_str());
  fclose(f);
  BackendSearchContext context = Binary("bin/server/fastest-server");
  context.runfiles_manifest = manifest;
  EXPECT_EQ(ResolveAndOpen(context), plugin);
}

TEST_F(PluginLayoutTest, BinaryDirectoryComesFirst) {
  PlacePlugin("prefix/lib/fastest");
  std::string plugin = PlacePlugin("prefix/bin");
  EXPECT_EQ(ResolveAndOpen(Binary("prefix/bin/fastest-server")), plugin);
}

TEST_F(PluginLayoutTest, NotFoundNamesEveryPlace) {
  BackendSearchContext context = Binary("bin/server/fastest-server");
  context.runfiles_dir = root_ + "/rf";
  std::string message = ResolveAndOpen(context);
  for (const std::string& dir : BackendSearchDirs("thirdparty", context)) {
    EXPECT_THAT(message, HasSubstr(dir + "/libfastest_backend_thirdparty.so"));
  }
  EXPECT_THAT(message, AllOf(HasSubstr(root_ + "/bin/lib/fastest/"),
                             HasSubstr(root_ + "/bin/backends/thirdparty/"),
                             HasSubstr(root_ + "/rf/fastest/backends/thirdparty/")));
}

TEST(PluginLoaderTest, BadFlagsAreInvalidArguments) {
  EXPECT_EQ(OpenBackend("", {}).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<SandboxBackend>> dotted = OpenBackend("x.so", {});
  EXPECT_EQ(dotted.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(dotted.status()), HasSubstr("./x.so"));
  EXPECT_EQ(OpenBackend("a b", {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PluginLoaderTest, BareNameResolvesThroughPluginPath) {
  ScopedEnv env("FASTEST_PLUGIN_PATH", "/nonexistent:" + PluginsDir());
  absl::StatusOr<std::string> path = ResolveBackendPath("thirdparty");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, Plugin("thirdparty"));
  absl::StatusOr<std::unique_ptr<SandboxBackend>> b = OpenBackend("thirdparty", {{"schema", 1}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->name(), "thirdparty");
}

// ---- the third-party plugin through the facade -------------------------------------------------

class ThirdPartyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::shared_ptr<BackendPlugin>> plugin =
        BackendPlugin::Load(Plugin("thirdparty"));
    ASSERT_TRUE(plugin.ok()) << plugin.status();
    plugin_ = *plugin;
    absl::StatusOr<std::unique_ptr<SandboxBackend>> backend = plugin_->Open({{"schema", 1}});
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
  }

  SandboxInfo Create(std::vector<std::string> command,
                     std::map<std::string, std::string> labels = {}, std::string name = "") {
    SandboxSpec spec;
    spec.image = "mem";
    spec.command = std::move(command);
    spec.labels = std::move(labels);
    spec.name = std::move(name);
    absl::StatusOr<SandboxInfo> info = backend_->CreateSandbox(spec);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : SandboxInfo{};
  }

  std::string AllLogs(const std::string& id, LogOptions options = {}) {
    std::string text;
    absl::Status status = backend_->ReadLogs(id, options, [&](int stream, absl::string_view d) {
      absl::StrAppend(&text, stream, ":", d);
      return true;
    });
    EXPECT_TRUE(status.ok()) << status;
    return text;
  }

  std::shared_ptr<BackendPlugin> plugin_;
  std::unique_ptr<SandboxBackend> backend_;
};

TEST_F(ThirdPartyTest, TableMetadataAndDescribe) {
  EXPECT_EQ(plugin_->name(), "thirdparty");
  EXPECT_EQ(plugin_->version(), "1.2.3");
  EXPECT_EQ(plugin_->abi_minor(), 0u);
  EXPECT_EQ(plugin_->capabilities(), FASTEST_CAP_LOG_STREAMING);
  EXPECT_EQ(plugin_->path(), Plugin("thirdparty"));

  absl::StatusOr<nlohmann::json> caps = backend_->Describe();
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_EQ((*caps)["schema"], 1);
  EXPECT_EQ((*caps)["name"], "thirdparty");
  EXPECT_EQ((*caps)["version"], "1.2.3");
  EXPECT_EQ((*caps)["log_streaming"], true);
  EXPECT_EQ((*caps)["health"], "ok");
  EXPECT_EQ((*caps)["default_network_mode"], "none");
}

TEST_F(ThirdPartyTest, CreateWaitLogs) {
  SandboxInfo echo = Create({"echo", "hello", "world"});
  EXPECT_EQ(echo.state, "exited");
  absl::StatusOr<WaitResult> done = backend_->Wait(echo.id, absl::Seconds(5));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->exited);
  EXPECT_EQ(done->exit_code, 0);
  EXPECT_EQ(AllLogs(echo.id), "1:hello world\n");

  SandboxInfo fail = Create({"fail", "3"});
  done = backend_->Wait(fail.id, absl::InfiniteDuration());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->exit_code, 3);
  EXPECT_EQ(AllLogs(fail.id), "2:failing\n");
  LogOptions no_stderr;
  no_stderr.include_stderr = false;
  EXPECT_EQ(AllLogs(fail.id, no_stderr), "");
}

TEST_F(ThirdPartyTest, WaitDeadlineIsNotAnError) {
  SandboxInfo hang = Create({"hang"});
  EXPECT_EQ(hang.state, "running");
  absl::Time start = absl::Now();
  absl::StatusOr<WaitResult> pending = backend_->Wait(hang.id, absl::Milliseconds(50));
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_FALSE(pending->exited);
  EXPECT_FALSE(pending->exit_code.has_value());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(45));
  pending = backend_->Wait(hang.id, absl::ZeroDuration());
  ASSERT_TRUE(pending.ok());
  EXPECT_FALSE(pending->exited);
}

TEST_F(ThirdPartyTest, FollowLogsWhileKilled) {
  SandboxInfo hang = Create({"hang"});
  std::string followed;
  absl::Status follow_status;
  std::thread reader([&] {
    LogOptions follow;
    follow.follow = true;
    follow_status = backend_->ReadLogs(hang.id, follow, [&](int stream, absl::string_view d) {
      absl::StrAppend(&followed, stream, ":", d);
      return true;
    });
  });
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_TRUE(backend_->Kill(hang.id, 15).ok());
  reader.join();
  EXPECT_TRUE(follow_status.ok()) << follow_status;
  EXPECT_EQ(followed, "2:killed by signal 15\n");
  absl::StatusOr<WaitResult> done = backend_->Wait(hang.id, absl::Seconds(1));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->exit_code, 143);
}

TEST_F(ThirdPartyTest, ListRemoveAndErrorCodes) {
  SandboxInfo a = Create({"hang"}, {{"fastest.server_id", "s1"}, {"k", "a"}});
  SandboxInfo b = Create({"echo"}, {{"fastest.server_id", "s2"}});
  absl::StatusOr<std::vector<SandboxInfo>> s1 = backend_->List({{"fastest.server_id", "s1"}});
  ASSERT_TRUE(s1.ok()) << s1.status();
  ASSERT_EQ(s1->size(), 1u);
  EXPECT_EQ((*s1)[0].id, a.id);
  EXPECT_EQ((*s1)[0].labels.at("k"), "a");
  absl::StatusOr<std::vector<SandboxInfo>> all = backend_->List({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);

  ASSERT_TRUE(backend_->Remove(a.id).ok());
  absl::Status again = backend_->Remove(a.id);
  EXPECT_EQ(again.code(), absl::StatusCode::kNotFound);
  // The facade prefixes "<backend>: <slot>: " to the plugin's message.
  EXPECT_EQ(Message(again), absl::StrCat("thirdparty: remove_sandbox: no sandbox ", a.id));
  EXPECT_EQ(backend_->Wait("nope", absl::ZeroDuration()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(backend_->Kill("nope", 9).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(backend_->ReadLogs("nope", {}, [](int, absl::string_view) { return true; }).code(),
            absl::StatusCode::kNotFound);
  s1 = backend_->List({{"fastest.server_id", "s1"}});
  ASSERT_TRUE(s1.ok());
  EXPECT_TRUE(s1->empty());
  ASSERT_TRUE(backend_->Remove(b.id).ok());

  Create({"echo"}, {}, "taken");
  SandboxSpec dup;
  dup.command = {"echo"};
  dup.name = "taken";
  EXPECT_EQ(backend_->CreateSandbox(dup).status().code(), absl::StatusCode::kAlreadyExists);
  SandboxSpec unknown;
  unknown.command = {"frobnicate"};
  EXPECT_EQ(backend_->CreateSandbox(unknown).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ThirdPartyTest, PluginExceptionsAndSinkExceptionsBecomeInternal) {
  SandboxSpec spec;
  spec.command = {"throw"};
  absl::StatusOr<SandboxInfo> thrown = backend_->CreateSandbox(spec);
  EXPECT_EQ(thrown.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Message(thrown.status()),
            "thirdparty: create_sandbox: uncaught exception: thirdparty: asked to throw");

  SandboxInfo echo = Create({"echo", "x"});
  absl::Status sink_threw = backend_->ReadLogs(echo.id, {}, [](int, absl::string_view) -> bool {
    throw std::runtime_error("sink exploded");
  });
  EXPECT_EQ(sink_threw.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(Message(sink_threw), HasSubstr("sink exploded"));

  // The backend still works afterwards.
  EXPECT_EQ(AllLogs(echo.id), "1:x\n");
}

TEST_F(ThirdPartyTest, OpenErrorsComeBackWithTheirCode) {
  absl::StatusOr<std::unique_ptr<SandboxBackend>> failing = plugin_->Open({{"fail_open", true}});
  EXPECT_EQ(failing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Message(failing.status()),
            "thirdparty: open: thirdparty: configured to fail (fail_open)");
  absl::StatusOr<std::unique_ptr<SandboxBackend>> not_object =
      plugin_->Open(nlohmann::json::array({1, 2}));
  EXPECT_EQ(not_object.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ThirdPartyTest, InstancesAreIndependentAndOutliveThePluginHandle) {
  absl::StatusOr<std::unique_ptr<SandboxBackend>> other = plugin_->Open({});
  ASSERT_TRUE(other.ok());
  Create({"echo"});
  absl::StatusOr<std::vector<SandboxInfo>> seen = (*other)->List({});
  ASSERT_TRUE(seen.ok());
  EXPECT_TRUE(seen->empty());  // in-memory state is per instance

  // Dropping every BackendPlugin reference keeps the library alive for the open instances.
  plugin_.reset();
  SandboxInfo after = Create({"echo", "still", "here"});
  EXPECT_EQ(AllLogs(after.id), "1:still here\n");
  other->reset();
}

}  // namespace
}  // namespace fastest::core
