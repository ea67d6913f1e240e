#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runner/agent_launch.h"
#include "runner/agent_process.h"
#include "runner/opencode_serve.h"
#include "runner/runner_config.h"

namespace fastest::runner {
namespace {

using ::testing::HasSubstr;

std::string TempDir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/" + name;
  mkdir(d.c_str(), 0755);
  return d;
}

std::string ReadAll(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Environment BaseEnv(const std::string& name) {
  return {{"API_TOKEN", "tok-secret-123"},
          {"API_URL", "http://127.0.0.1:1"},
          {"PATH", "/usr/bin:/bin"},
          {"WORK_DIR", TempDir(name + "_ws")},
          {"FASTEST_AGENT_HOME", TempDir(name + "_home")}};
}

TEST(RunnerConfigTest, DefaultsAndErrors) {
  auto c = RunnerConfigFromEnv({{"API_TOKEN", "x"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->work_dir, "/workspace");
  EXPECT_EQ(c->agent_timeout, absl::Minutes(30));
  EXPECT_EQ(c->download_parallelism, 8);
  EXPECT_FALSE(RunnerConfigFromEnv({}).ok());
  EXPECT_FALSE(RunnerConfigFromEnv({{"API_TOKEN", "x"}, {"WORK_DIR", "rel"}}).ok());
  EXPECT_FALSE(RunnerConfigFromEnv({{"API_TOKEN", "x"},
                                    {"WORK_DIR", "/w"},
                                    {"FASTEST_AGENT_HOME", "/w/home"}})
                   .ok());
  auto t = RunnerConfigFromEnv({{"API_TOKEN", "x"}, {"FASTEST_AGENT_TIMEOUT", "90"},
                                {"FASTEST_WORKSPACE_DIR", "/ws/"}});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->agent_timeout, absl::Seconds(90));
  EXPECT_EQ(t->work_dir, "/ws");
  EXPECT_EQ(*ParseTimeout("1m30s"), absl::Seconds(90));
}

TEST(AgentLaunchTest, OpenCodeAnthropicFromKey) {
  Environment env = BaseEnv("anth");
  env["ANTHROPIC_API_KEY"] = "sk-ant-secret";
  auto c = RunnerConfigFromEnv(env);
  ASSERT_TRUE(c.ok());
  auto l = PrepareAgentLaunch(*c, "fix the bug");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->argv, (std::vector<std::string>{"opencode", "serve", "--hostname", "127.0.0.1",
                                               "--port", "0"}));
  EXPECT_TRUE(l->serve);
  EXPECT_EQ(l->provider_id, "anthropic");
  EXPECT_EQ(l->model_id, "claude-sonnet-4-20250514");
  EXPECT_EQ(l->env.count("API_TOKEN"), 0u);
  EXPECT_EQ(l->env.count("API_URL"), 0u);
  EXPECT_EQ(l->env.at("ANTHROPIC_API_KEY"), "sk-ant-secret");
  EXPECT_EQ(l->env.at("XDG_CONFIG_HOME"), c->agent_home + "/config");
  nlohmann::json cfg = nlohmann::json::parse(ReadAll(l->config_path));
  EXPECT_EQ(cfg["permission"], "allow");
  EXPECT_EQ(cfg["model"], "anthropic/claude-sonnet-4-20250514");
  EXPECT_FALSE(absl::StrContains(ReadAll(l->config_path), "sk-ant-secret"));
  // The workspace's own opencode.json must not override ours; no models.dev fetch.
  EXPECT_EQ(l->env.at("OPENCODE_DISABLE_PROJECT_CONFIG"), "1");
  EXPECT_EQ(l->env.at("OPENCODE_DISABLE_MODELS_FETCH"), "1");
  // No per-step git snapshot of the workspace, no file watcher.
  EXPECT_EQ(cfg["snapshot"], false);
  EXPECT_EQ(l->env.at("OPENCODE_EXPERIMENTAL_DISABLE_FILEWATCHER"), "1");
  // Even if the sandbox environment tried to turn them off.
  env["OPENCODE_DISABLE_PROJECT_CONFIG"] = "0";
  c = RunnerConfigFromEnv(env);
  l = PrepareAgentLaunch(*c, "fix the bug");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->env.at("OPENCODE_DISABLE_PROJECT_CONFIG"), "1");
}

TEST(AgentLaunchTest, ProviderOverridesAndBaseUrl) {
  Environment env = BaseEnv("base");
  env["OPENAI_API_KEY"] = "sk-openai";
  env["MODEL"] = "gpt-4.1";
  auto c = RunnerConfigFromEnv(env);
  auto l = PrepareAgentLaunch(*c, "p");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->provider_id + "/" + l->model_id, "openai/gpt-4.1");

  env["FASTEST_MODEL_BASE_URL"] = "http://127.0.0.1:9999/v1";
  env["MODEL"] = "stub";
  c = RunnerConfigFromEnv(env);
  l = PrepareAgentLaunch(*c, "p");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->provider_id + "/" + l->model_id, "fastest/stub");
  nlohmann::json cfg = nlohmann::json::parse(ReadAll(l->config_path));
  EXPECT_EQ(cfg["provider"]["fastest"]["npm"], "@ai-sdk/openai-compatible");
  EXPECT_EQ(cfg["provider"]["fastest"]["options"]["baseURL"], "http://127.0.0.1:9999/v1");
  EXPECT_TRUE(cfg["provider"]["fastest"]["models"].contains("stub"));
  // The scripted warm-up model of OpenCodeServer::Warm, its URL from the server's environment.
  EXPECT_EQ(cfg["provider"][kWarmupProvider]["options"]["baseURL"],
            std::string("{env:") + kWarmupUrlEnv + "}");
  EXPECT_TRUE(cfg["provider"][kWarmupProvider]["models"].contains(kWarmupModel));
  // The one-shot `opencode run` has no warm-up.
  env["FASTEST_OPENCODE_MODE"] = "run";
  c = RunnerConfigFromEnv(env);
  l = PrepareAgentLaunch(*c, "p");
  ASSERT_TRUE(l.ok());
  cfg = nlohmann::json::parse(ReadAll(l->config_path));
  EXPECT_FALSE(cfg["provider"].contains(kWarmupProvider));
  EXPECT_TRUE(cfg["provider"].contains("fastest"));

  Environment none = BaseEnv("none");
  c = RunnerConfigFromEnv(none);
  EXPECT_THAT(std::string(PrepareAgentLaunch(*c, "p").status().message()),
              HasSubstr("No model configured"));
  none["PROVIDER"] = "openai";
  c = RunnerConfigFromEnv(none);
  EXPECT_THAT(std::string(PrepareAgentLaunch(*c, "p").status().message()),
              HasSubstr("No API key provided for provider: openai"));
}

TEST(AgentProcessTest, StreamsLinesEnvAndExitCode) {
  Environment env = BaseEnv("proc");
  env["FASTEST_AGENT_COMMAND"] =
      "echo \"prompt=$1\"; echo \"env=$FASTEST_PROMPT\"; echo \"tok=${API_TOKEN:-none}\"; "
      "echo oops >&2; pwd; exit 7";
  auto c = RunnerConfigFromEnv(env);
  auto l = PrepareAgentLaunch(*c, "do it");
  ASSERT_TRUE(l.ok());
  std::vector<std::string> out, err;
  auto r = RunAgentProcess(*l, c->work_dir, AgentProcessOptions(),
                           [&](bool is_err, const std::string& line) {
                             (is_err ? err : out).push_back(line);
                           });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 7);
  EXPECT_FALSE(r->timed_out);
  char real[4096];
  ASSERT_NE(realpath(c->work_dir.c_str(), real), nullptr);
  EXPECT_EQ(out, (std::vector<std::string>{"prompt=do it", "env=do it", "tok=none", real}));
  EXPECT_EQ(err, (std::vector<std::string>{"oops"}));
  EXPECT_THAT(r->tail, HasSubstr("oops"));
}

TEST(AgentProcessTest, TimeoutKillsWholeGroup) {
  Environment env = BaseEnv("timeout");
  std::string marker = ::testing::TempDir() + "/grandchild_alive";
  unlink(marker.c_str());
  // A background grandchild that would create the marker after 2 s if it survived.
  env["FASTEST_AGENT_COMMAND"] = "(sleep 2; touch " + marker + ") & echo started; sleep 30";
  auto c = RunnerConfigFromEnv(env);
  auto l = PrepareAgentLaunch(*c, "p");
  AgentProcessOptions o;
  o.timeout = absl::Milliseconds(300);
  o.kill_grace = absl::Milliseconds(200);
  absl::Time start = absl::Now();
  auto r = RunAgentProcess(*l, c->work_dir, o, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_THAT(r->tail, HasSubstr("started"));
  absl::SleepFor(absl::Milliseconds(2500));
  EXPECT_NE(access(marker.c_str(), F_OK), 0) << "grandchild survived the group kill";
}

TEST(AgentProcessTest, MissingBinaryIsAnError) {
  AgentLaunch l;
  l.argv = {"definitely-not-a-binary-xyz"};
  l.env = {{"PATH", "/usr/bin:/bin"}};
  auto r = RunAgentProcess(l, "/tmp", AgentProcessOptions(), nullptr);
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace fastest::runner

namespace fastest::runner {
namespace {

TEST(OpenCodeServeTest, ParsesTheListeningLine) {
  EXPECT_EQ(ParseListeningPort("opencode server listening on http://127.0.0.1:41233"), 41233);
  EXPECT_EQ(ParseListeningPort("opencode server listening on http://127.0.0.1:0"), 0);
  EXPECT_EQ(ParseListeningPort("opencode server listening on http://0.0.0.0:4096"), 0);
  EXPECT_EQ(ParseListeningPort("listening on http://127.0.0.1:99999"), 0);
  EXPECT_EQ(ParseListeningPort("some other line"), 0);
}

TEST(OpenCodeServeTest, DescribesToolsTextAndErrorsOfItsSessionOnly) {
  auto part = [](const std::string& session, nlohmann::json part) {
    part["sessionID"] = session;
    return nlohmann::json{{"type", "message.part.updated"}, {"properties", {{"part", part}}}};
  };
  nlohmann::json tool = {{"type", "tool"},
                         {"tool", "write"},
                         {"state", {{"status", "completed"}, {"title", "src/farewell.sh"}}}};
  EXPECT_EQ(DescribeEvent(part("ses_a", tool), "ses_a"), "tool write: src/farewell.sh");
  EXPECT_EQ(DescribeEvent(part("ses_b", tool), "ses_a"), "");
  tool["state"] = {{"status", "running"}};
  EXPECT_EQ(DescribeEvent(part("ses_a", tool), "ses_a"), "");
  tool["state"] = {{"status", "error"}, {"error", "no such file"}};
  EXPECT_EQ(DescribeEvent(part("ses_a", tool), "ses_a"), "tool write failed: no such file");
  nlohmann::json text = {{"type", "text"}, {"text", "Done:\nall"}, {"time", {{"start", 1}}}};
  EXPECT_EQ(DescribeEvent(part("ses_a", text), "ses_a"), "");  // still streaming
  text["time"]["end"] = 2;
  EXPECT_EQ(DescribeEvent(part("ses_a", text), "ses_a"), "text: Done: all");
  nlohmann::json error = {
      {"type", "session.error"},
      {"properties",
       {{"sessionID", "ses_a"},
        {"error", {{"name", "APIError"}, {"data", {{"message", "upstream failure"}}}}}}}};
  EXPECT_EQ(DescribeEvent(error, "ses_a"), "error: APIError: upstream failure");
  EXPECT_EQ(DescribeEvent(nlohmann::json::parse("[1]"), "ses_a"), "");
  EXPECT_EQ(DescribeEvent({{"type", "server.heartbeat"}}, "ses_a"), "");
}

}  // namespace
}  // namespace fastest::runner
