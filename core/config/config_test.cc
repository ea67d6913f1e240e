#include "core/config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "core/config/config_absl.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, api_url, "http://flag-default", "test flag");
ABSL_FLAG(int, port, 1, "test flag");
ABSL_FLAG(absl::Duration, job_timeout, absl::Minutes(30), "test flag");

namespace fastest::core {
namespace {

using Env = std::map<std::string, std::string>;

EnvLookup FakeEnv(Env env) {
  return [env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

std::string WriteTemp(const std::string& name, const std::string& text) {
  const char* base = getenv("TEST_TMPDIR");
  std::string path = std::string(base ? base : "/tmp") + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

const ConfigKey kTimeout{"timeout", "timeout", "FASTEST_TIMEOUT", "runner.timeout", "30s", false};
const ConfigKey kRetries{"retries", "retries", "FASTEST_RETRIES", "retries", "3", false};
const ConfigKey kVerbose{"verbose", "verbose", "FASTEST_VERBOSE", "verbose", "false", false};

TEST(ConfigTest, PrecedenceAllFourLevels) {
  std::string file = WriteTemp("prec.json", R"({"api_url":"http://file","model":"file-model",
      "provider":"file-provider","runner":{"timeout":"5m"}})");
  ConfigKey url = config_keys::kApiUrl;
  url.default_value = "http://default";
  ConfigKey model = config_keys::kModel;
  model.default_value = "default-model";
  ConfigKey provider = config_keys::kProvider;
  ConfigKey base = config_keys::kModelBaseUrl;
  base.default_value = "http://default-base";

  auto r = ConfigResolver::Create({{"config", file}, {"api_url", "http://flag"}},
                                  FakeEnv({{"API_URL", "http://env"}, {"MODEL", "env-model"}}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->config_path(), file);

  ConfigValue v = r->Resolve(url);  // flag beats env, file and default
  EXPECT_EQ(v.value, "http://flag");
  EXPECT_EQ(v.source, ConfigSource::kFlag);
  v = r->Resolve(model);  // env beats file and default
  EXPECT_EQ(v.value, "env-model");
  EXPECT_EQ(v.source, ConfigSource::kEnv);
  v = r->Resolve(provider);  // file
  EXPECT_EQ(v.value, "file-provider");
  EXPECT_EQ(v.source, ConfigSource::kFile);
  EXPECT_TRUE(absl::StrContains(v.origin, file));
  v = r->Resolve(base);  // default
  EXPECT_EQ(v.value, "http://default-base");
  EXPECT_EQ(v.source, ConfigSource::kDefault);
  v = r->Resolve(config_keys::kOpenAiApiKey);
  EXPECT_FALSE(v.value.has_value());
  EXPECT_EQ(v.source, ConfigSource::kUnset);
  EXPECT_EQ(ConfigSourceName(ConfigSource::kFile), "file");
  // Nested key in the file.
  auto t = r->GetDuration(kTimeout);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, absl::Minutes(5));
}

TEST(ConfigTest, ConfigFileFromEnvAndFlagWins) {
  std::string a = WriteTemp("a.json", R"({"model":"from-a"})");
  std::string b = WriteTemp("b.json", R"({"model":"from-b"})");
  auto via_env = ConfigResolver::Create({}, FakeEnv({{"FASTEST_CONFIG", a}}));
  ASSERT_TRUE(via_env.ok());
  EXPECT_EQ(via_env->Resolve(config_keys::kModel).value, "from-a");
  auto via_flag = ConfigResolver::Create({{"config", b}}, FakeEnv({{"FASTEST_CONFIG", a}}));
  ASSERT_TRUE(via_flag.ok());
  EXPECT_EQ(via_flag->Resolve(config_keys::kModel).value, "from-b");
  auto none = ConfigResolver::Create({}, FakeEnv({}));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->config_path(), "");
}

TEST(ConfigTest, EmptyEnvIsUnsetButExplicitEmptyFlagCounts) {
  auto r = ConfigResolver::FromJson({{"provider", ""}}, FakeEnv({{"MODEL", ""}, {"PROVIDER", "env"}}),
                                    nlohmann::json{{"model", "file"}}, "inline");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Resolve(config_keys::kModel).value, "file");
  EXPECT_EQ(r->Resolve(config_keys::kProvider).value, "");
  EXPECT_EQ(r->Resolve(config_keys::kProvider).source, ConfigSource::kFlag);
}

TEST(ConfigTest, MalformedOrMissingFileIsAClearError) {
  std::string bad = WriteTemp("bad.json", "{\"api_url\": \"x\",, }");
  auto r = ConfigResolver::Create({{"config", bad}}, FakeEnv({}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), bad)) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "malformed JSON")) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "at byte")) << r.status();

  std::string arr = WriteTemp("arr.json", "[1,2]");
  auto r2 = ConfigResolver::Create({}, FakeEnv({{"FASTEST_CONFIG", arr}}));
  ASSERT_FALSE(r2.ok());
  EXPECT_TRUE(absl::StrContains(r2.status().message(), arr));

  auto r3 = ConfigResolver::Create({{"config", "/nonexistent/fastest.json"}}, FakeEnv({}));
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(r3.status().message(), "/nonexistent/fastest.json"));
}

TEST(ConfigTest, TypedGettersAndParseErrors) {
  auto r = ConfigResolver::FromJson({{"retries", "7"}, {"verbose", "YES"}},
                                    FakeEnv({{"FASTEST_TIMEOUT", "250ms"}}),
                                    nlohmann::json{{"port", 8080}, {"flag_on", true}, {"ratio", 1.5}}, "f.json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->GetInt(kRetries), 7);
  EXPECT_TRUE(*r->GetBool(kVerbose));
  EXPECT_EQ(*r->GetDuration(kTimeout), absl::Milliseconds(250));
  ConfigKey port{"port", "port", "PORT", "port", std::nullopt, false};
  EXPECT_EQ(*r->GetInt(port), 8080);  // JSON numbers become strings, then parse
  ConfigKey flag_on{"flag_on", "", "", "flag_on", std::nullopt, false};
  EXPECT_TRUE(*r->GetBool(flag_on));
  ConfigKey plain_seconds{"grace", "", "GRACE", "", "90", false};
  EXPECT_EQ(*r->GetDuration(plain_seconds), absl::Seconds(90));

  auto bad = ConfigResolver::FromJson({{"retries", "many"}},
                                      FakeEnv({{"FASTEST_VERBOSE", "maybe"}, {"FASTEST_TIMEOUT", "soon"}}),
                                      nlohmann::json::object(), "");
  ASSERT_TRUE(bad.ok());
  auto i = bad->GetInt(kRetries);
  ASSERT_FALSE(i.ok());
  EXPECT_EQ(i.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(i.status().message(), "retries")) << i.status();
  EXPECT_TRUE(absl::StrContains(i.status().message(), "flag --retries")) << i.status();
  EXPECT_TRUE(absl::StrContains(i.status().message(), "'many'")) << i.status();
  auto b = bad->GetBool(kVerbose);
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(absl::StrContains(b.status().message(), "env FASTEST_VERBOSE")) << b.status();
  EXPECT_FALSE(bad->GetDuration(kTimeout).ok());

  auto missing = bad->GetString(config_keys::kApiToken);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "$API_TOKEN")) << missing.status();
}

TEST(ConfigTest, SecretsNeverShown) {
  const std::string secret = "sk-ant-api03-verysecretvalue";
  EXPECT_EQ(DescribeSecret(secret), "[redacted] (28 chars)");
  EXPECT_EQ(DescribeSecret(""), "(empty)");
  EXPECT_FALSE(absl::StrContains(DescribeSecret(secret), "sk-"));
  auto r = ConfigResolver::FromJson({}, FakeEnv({{"ANTHROPIC_API_KEY", secret}, {"API_TOKEN", "tok-123"},
                                                 {"API_URL", "http://127.0.0.1:8788"}}),
                                    nlohmann::json::object(), "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->GetString(config_keys::kAnthropicApiKey), secret);
  std::string dump = r->Describe({config_keys::kApiUrl, config_keys::kApiToken, config_keys::kAnthropicApiKey,
                                  config_keys::kOpenAiApiKey});
  EXPECT_EQ(dump,
            "api_url = http://127.0.0.1:8788 (env)\n"
            "api_token = [redacted] (7 chars) (env)\n"
            "anthropic_api_key = [redacted] (28 chars) (env)\n"
            "openai_api_key = (unset) (unset)\n");
  // A secret that fails to parse is not echoed either.
  ConfigKey secret_int{"secret_int", "", "SECRET_INT", "", std::nullopt, true};
  auto r2 = ConfigResolver::FromJson({}, FakeEnv({{"SECRET_INT", "hunter2"}}), nlohmann::json::object(), "");
  auto err = r2->GetInt(secret_int);
  ASSERT_FALSE(err.ok());
  EXPECT_FALSE(absl::StrContains(err.status().message(), "hunter2")) << err.status();
}

TEST(ConfigAbslTest, OnlyExplicitFlagsArePassed) {
  // Set by main() from argv; the default of --port (not given) must not appear.
  std::map<std::string, std::string> flags = ExplicitAbslFlags();
  ASSERT_EQ(flags.count("api_url"), 1u);
  EXPECT_EQ(flags["api_url"], "http://from-argv");
  EXPECT_EQ(flags.count("port"), 0u);
  auto r = ConfigResolver::Create(flags, FakeEnv({{"API_URL", "http://env"}, {"PORT", "9"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Resolve(config_keys::kApiUrl).value, "http://from-argv");
  ConfigKey port{"port", "port", "PORT", "port", "1", false};
  EXPECT_EQ(*r->GetInt(port), 9);  // env beats the flag's default
}

}  // namespace
// A key derived from its flag: the flag's name and printed default, FASTEST_<NAME> or the given
// env; and it resolves with the usual precedence.
TEST(ConfigAbslTest, ConfigKeyFromFlagTakesNameAndDefault) {
  ConfigKey timeout = ConfigKeyFromFlag(FLAGS_job_timeout);
  EXPECT_EQ(timeout.name, "job_timeout");
  EXPECT_EQ(timeout.flag, "job_timeout");
  EXPECT_EQ(timeout.json_key, "job_timeout");
  EXPECT_EQ(timeout.env, "FASTEST_JOB_TIMEOUT");
  EXPECT_EQ(timeout.default_value, "30m");
  EXPECT_FALSE(timeout.secret);
  ConfigKey port = ConfigKeyFromFlag(FLAGS_port, "MY_PORT");
  EXPECT_EQ(port.env, "MY_PORT");
  EXPECT_EQ(port.default_value, "1");

  auto r = ConfigResolver::Create(ExplicitAbslFlags(), FakeEnv({{"FASTEST_JOB_TIMEOUT", "5s"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->GetDuration(timeout), absl::Seconds(5));  // env beats the default
  EXPECT_EQ(*r->GetInt(port), 1);                         // the flag's default
}

}  // namespace fastest::core

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::vector<char*> args = {argv[0], const_cast<char*>("--api_url=http://from-argv")};
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return RUN_ALL_TESTS();
}
