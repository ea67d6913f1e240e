#include "core/plugin/sandbox_types.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(SandboxTypesTest, SpecRoundTripsEveryField) {
  SandboxSpec spec;
  spec.name = "fastest-job-1";
  spec.image = "fastest/sandbox:0.1.0";
  spec.command = {"sh", "-c", "echo hi"};
  spec.env = {{"JOB_ID", "1"}, {"API_TOKEN", "secret"}};
  spec.labels = {{"fastest.job_id", "1"}};
  spec.working_dir = "/workspace";
  spec.network_mode = "host";
  spec.nano_cpus = 2000000000;
  spec.memory_bytes = 1 << 30;
  spec.pids_limit = 256;
  spec.disk_bytes = 5;
  spec.timeout_ms = 60000;

  json j = SandboxSpecToJson(spec);
  EXPECT_EQ(j["schema"], 1);
  EXPECT_EQ(j["resources"]["memory_bytes"], 1 << 30);
  absl::StatusOr<SandboxSpec> back = SandboxSpecFromJson(json::parse(DumpJson(j)));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, spec.name);
  EXPECT_EQ(back->image, spec.image);
  EXPECT_EQ(back->command, spec.command);
  EXPECT_EQ(back->env, spec.env);
  EXPECT_EQ(back->labels, spec.labels);
  EXPECT_EQ(back->working_dir, spec.working_dir);
  EXPECT_EQ(back->network_mode, spec.network_mode);
  EXPECT_EQ(back->nano_cpus, spec.nano_cpus);
  EXPECT_EQ(back->memory_bytes, spec.memory_bytes);
  EXPECT_EQ(back->pids_limit, spec.pids_limit);
  EXPECT_EQ(back->disk_bytes, spec.disk_bytes);
  EXPECT_EQ(back->timeout_ms, spec.timeout_ms);
}

TEST(SandboxTypesTest, UnknownFieldsIgnoredWrongTypesRefused) {
  absl::StatusOr<SandboxSpec> spec =
      SandboxSpecFromJson(json{{"schema", 1}, {"image", "x"}, {"future_field", {1, 2}}});
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->image, "x");

  absl::StatusOr<SandboxSpec> bad = SandboxSpecFromJson(json{{"command", "not-a-list"}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("command"));

  bad = SandboxSpecFromJson(json{{"env", {{"A", 1}}}});
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("env.A"));

  EXPECT_FALSE(SandboxSpecFromJson(json::array()).ok());
  EXPECT_FALSE(LogOptionsFromJson(json{{"tail", -1}}).ok());
}

TEST(SandboxTypesTest, InfoWaitLogsListRoundTrip) {
  SandboxInfo info{"abc", "n", "exited", {{"k", "v"}}, 7};
  absl::StatusOr<SandboxInfo> info_back = SandboxInfoFromJson(SandboxInfoToJson(info));
  ASSERT_TRUE(info_back.ok());
  EXPECT_EQ(info_back->exit_code, 7);
  EXPECT_EQ(info_back->labels, info.labels);
  EXPECT_TRUE(SandboxInfoToJson(SandboxInfo{"x", "", "running", {}, {}})["exit_code"].is_null());
  EXPECT_FALSE(SandboxInfoFromJson(json{{"state", "running"}}).ok());  // id is required

  absl::StatusOr<WaitResult> wait = WaitResultFromJson(WaitResultToJson(WaitResult{true, 3}));
  ASSERT_TRUE(wait.ok());
  EXPECT_TRUE(wait->exited);
  EXPECT_EQ(wait->exit_code, 3);

  LogOptions options;
  options.follow = true;
  options.tail = 10;
  options.include_stderr = false;
  absl::StatusOr<LogOptions> options_back = LogOptionsFromJson(LogOptionsToJson(options));
  ASSERT_TRUE(options_back.ok());
  EXPECT_TRUE(options_back->follow);
  EXPECT_EQ(options_back->tail, 10);
  EXPECT_TRUE(options_back->include_stdout);
  EXPECT_FALSE(options_back->include_stderr);

  absl::StatusOr<std::vector<SandboxInfo>> list =
      SandboxListFromJson(SandboxListToJson({info, SandboxInfo{"y", "", "running", {}, {}}}));
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].id, "y");

  absl::StatusOr<std::map<std::string, std::string>> selector =
      LabelSelectorFromJson(LabelSelectorToJson({{"a", "1"}}));
  ASSERT_TRUE(selector.ok());
  EXPECT_TRUE(LabelsMatch({{"a", "1"}, {"b", "2"}}, *selector));
  EXPECT_FALSE(LabelsMatch({{"a", "2"}}, *selector));
  EXPECT_TRUE(LabelsMatch({}, {}));
}

TEST(SandboxTypesTest, ParseAndDumpNeverThrow) {
  EXPECT_EQ(ParseJsonObject("{not json", "config").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJsonObject("[1]", "config").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ParseJsonObject("{\"a\":1}", "config").ok());
  std::string dumped = DumpJson(json{{"bad", std::string("\xff\xfe")}});
  EXPECT_THAT(dumped, HasSubstr("bad"));
}

}  // namespace
}  // namespace fastest::core
