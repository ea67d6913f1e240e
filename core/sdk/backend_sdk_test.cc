// Drives the table FASTEST_DEFINE_BACKEND builds, directly through its C slots, with a tiny
// backend whose behaviour is chosen per test.
#include "core/sdk/backend_sdk.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using fastest::core::LogOptions;
using fastest::core::SandboxInfo;
using fastest::core::SandboxSpec;
using fastest::core::WaitResult;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class ScriptedBackend : public fastest::core::SandboxBackend {
 public:
  absl::StatusOr<nlohmann::json> Describe() override {
    return nlohmann::json{{"max_parallel_sandboxes", 3}};
  }
  absl::StatusOr<SandboxInfo> CreateSandbox(const SandboxSpec& spec) override {
    if (spec.image == "throw") throw std::runtime_error("boom");
    if (spec.image == "throw-int") throw 42;
    if (spec.image == "long-error") {
      // 2000 bytes of a 3-byte UTF-8 character: truncation must not split one.
      std::string message;
      for (int i = 0; i < 700; ++i) message += "\xE2\x82\xAC";
      return absl::FailedPreconditionError(message);
    }
    return SandboxInfo{"id-1", spec.name, "running", spec.labels, {}};
  }
  absl::StatusOr<WaitResult> Wait(const std::string& id, absl::Duration timeout) override {
    last_timeout = timeout;
    if (id == "missing") return absl::NotFoundError("no sandbox missing");
    if (id == "slow") return WaitResult{};
    return WaitResult{true, 7};
  }
  absl::Status ReadLogs(const std::string& id, const LogOptions& options,
                        std::function<bool(int, absl::string_view)> sink) override {
    if (!sink(1, "one")) return absl::OkStatus();
    if (!sink(2, "two")) return absl::OkStatus();
    return absl::OkStatus();
  }
  absl::Status Kill(const std::string& id, int signal) override { return absl::OkStatus(); }
  absl::Status Remove(const std::string& id) override { return absl::NotFoundError(id); }
  absl::StatusOr<std::vector<SandboxInfo>> List(
      const std::map<std::string, std::string>& labels) override {
    return std::vector<SandboxInfo>{SandboxInfo{"id-1", "", "running", labels, {}}};
  }
  const std::string& name() const override { return name_; }

  static absl::Duration last_timeout;

 private:
  std::string name_ = "scripted";
};
absl::Duration ScriptedBackend::last_timeout;

absl::StatusOr<std::unique_ptr<fastest::core::SandboxBackend>> MakeScripted(
    const nlohmann::json& config) {
  if (config.value("fail", false)) return absl::UnavailableError("engine down");
  return std::make_unique<ScriptedBackend>();
}

}  // namespace

FASTEST_DEFINE_BACKEND("scripted", "9.9", FASTEST_CAP_LOG_STREAMING, MakeScripted)

namespace {

class BackendSdkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ = fastest_backend_entry(FASTEST_BACKEND_ABI_MAJOR, FASTEST_BACKEND_ABI_MINOR);
    ASSERT_NE(api_, nullptr);
    fastest_error err{};
    ASSERT_EQ(api_->open("{\"schema\":1}", &backend_, &err), FASTEST_OK) << err.message;
  }
  void TearDown() override { api_->close(backend_); }

  std::string Take(char* s) {
    std::string copy = s != nullptr ? s : "";
    api_->free_string(s);
    return copy;
  }

  const fastest_backend_api_v1* api_ = nullptr;
  fastest_backend* backend_ = nullptr;
};

TEST_F(BackendSdkTest, TableHeader) {
  EXPECT_EQ(api_->abi_major, 1u);
  EXPECT_EQ(api_->struct_size, sizeof(fastest_backend_api_v1));
  EXPECT_STREQ(api_->name, "scripted");
  EXPECT_STREQ(api_->version, "9.9");
  EXPECT_EQ(api_->capabilities, FASTEST_CAP_LOG_STREAMING);
  EXPECT_EQ(fastest_backend_entry(2, 0), nullptr);
  EXPECT_EQ(fastest_backend_entry(0, 0), nullptr);
}

TEST_F(BackendSdkTest, OpenErrors) {
  fastest_backend* b = nullptr;
  fastest_error err{};
  EXPECT_EQ(api_->open("{\"fail\":true}", &b, &err), FASTEST_UNAVAILABLE);
  EXPECT_STREQ(err.message, "engine down");
  EXPECT_EQ(b, nullptr);
  fastest_error err2{};
  EXPECT_EQ(api_->open("{oops", &b, &err2), FASTEST_INVALID_ARGUMENT);
  EXPECT_THAT(err2.message, HasSubstr("not valid JSON"));
}

TEST_F(BackendSdkTest, DescribeFillsDefaults) {
  char* out = nullptr;
  fastest_error err{};
  ASSERT_EQ(api_->describe(backend_, &out, &err), FASTEST_OK);
  nlohmann::json caps = nlohmann::json::parse(Take(out));
  EXPECT_EQ(caps["schema"], 1);
  EXPECT_EQ(caps["name"], "scripted");
  EXPECT_EQ(caps["version"], "9.9");
  EXPECT_EQ(caps["log_streaming"], true);
  EXPECT_EQ(caps["warm_pool"], false);
  EXPECT_EQ(caps["health"], "ok");
  EXPECT_EQ(caps["max_parallel_sandboxes"], 3);
}

TEST_F(BackendSdkTest, ExceptionsBecomeInternal) {
  char* out = nullptr;
  fastest_error err{};
  EXPECT_EQ(api_->create_sandbox(backend_, "{\"image\":\"throw\"}", &out, &err), FASTEST_INTERNAL);
  EXPECT_STREQ(err.message, "uncaught exception: boom");
  EXPECT_EQ(out, nullptr);
  fastest_error err2{};
  EXPECT_EQ(api_->create_sandbox(backend_, "{\"image\":\"throw-int\"}", &out, &err2),
            FASTEST_INTERNAL);
  EXPECT_THAT(err2.message, StartsWith("uncaught exception: "));
}

TEST_F(BackendSdkTest, LongMessagesTruncateOnUtf8Boundary) {
  char* out = nullptr;
  fastest_error err{};
  EXPECT_EQ(api_->create_sandbox(backend_, "{\"image\":\"long-error\"}", &out, &err),
            FASTEST_FAILED_PRECONDITION);
  size_t len = strnlen(err.message, sizeof(err.message));
  ASSERT_LT(len, sizeof(err.message));
  EXPECT_THAT(err.message, ::testing::EndsWith("..."));
  EXPECT_EQ((len - 3) % 3, 0u) << "cut inside a multi-byte character";
}

TEST_F(BackendSdkTest, CreateRejectsBadSpec) {
  char* out = nullptr;
  fastest_error err{};
  EXPECT_EQ(api_->create_sandbox(backend_, "{\"command\":5}", &out, &err),
            FASTEST_INVALID_ARGUMENT);
  EXPECT_THAT(err.message, HasSubstr("command"));
  fastest_error err2{};
  EXPECT_EQ(api_->create_sandbox(backend_, nullptr, &out, &err2), FASTEST_INVALID_ARGUMENT);
}

TEST_F(BackendSdkTest, WaitMapsDeadlineAndTimeouts) {
  char* out = nullptr;
  fastest_error err{};
  EXPECT_EQ(api_->wait_sandbox(backend_, "slow", 5, &out, &err), FASTEST_DEADLINE_EXCEEDED);
  EXPECT_EQ(nlohmann::json::parse(Take(out))["exited"], false);
  EXPECT_EQ(ScriptedBackend::last_timeout, absl::Milliseconds(5));

  fastest_error err2{};
  ASSERT_EQ(api_->wait_sandbox(backend_, "done", -1, &out, &err2), FASTEST_OK);
  EXPECT_EQ(ScriptedBackend::last_timeout, absl::InfiniteDuration());
  nlohmann::json result = nlohmann::json::parse(Take(out));
  EXPECT_EQ(result["exited"], true);
  EXPECT_EQ(result["exit_code"], 7);

  fastest_error err3{};
  EXPECT_EQ(api_->wait_sandbox(backend_, "missing", 0, &out, &err3), FASTEST_NOT_FOUND);
  EXPECT_STREQ(err3.message, "no sandbox missing");
}

TEST_F(BackendSdkTest, ReadLogsStopsWhenSinkSaysSo) {
  struct Collected {
    std::string text;
    int calls = 0;
  } collected;
  auto sink = [](void* user, int32_t stream, const char* data, size_t size) -> int32_t {
    auto* c = static_cast<Collected*>(user);
    c->text += std::to_string(stream) + std::string(data, size);
    return ++c->calls >= 1 ? 1 : 0;  // stop after the first chunk
  };
  fastest_error err{};
  EXPECT_EQ(api_->read_logs(backend_, "id-1", "{}", sink, &collected, &err), FASTEST_OK);
  EXPECT_EQ(collected.text, "1one");
  fastest_error err2{};
  EXPECT_EQ(api_->read_logs(backend_, "id-1", "{}", nullptr, nullptr, &err2),
            FASTEST_INVALID_ARGUMENT);
}

TEST_F(BackendSdkTest, ListRemoveKill) {
  char* out = nullptr;
  fastest_error err{};
  ASSERT_EQ(api_->list_sandboxes(backend_, "{\"labels\":{\"a\":\"1\"}}", &out, &err), FASTEST_OK);
  nlohmann::json list = nlohmann::json::parse(Take(out));
  EXPECT_EQ(list["sandboxes"][0]["labels"]["a"], "1");
  fastest_error err2{};
  EXPECT_EQ(api_->remove_sandbox(backend_, "zzz", &err2), FASTEST_NOT_FOUND);
  fastest_error err3{};
  EXPECT_EQ(api_->kill_sandbox(backend_, "id-1", 9, &err3), FASTEST_OK);
  EXPECT_EQ(api_->kill_sandbox(backend_, nullptr, 9, &err3), FASTEST_INVALID_ARGUMENT);
}

}  // namespace
