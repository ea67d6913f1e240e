#include "core/config/secrets.h"

#include <map>

#include "gtest/gtest.h"

namespace fastest::core {
namespace {

TEST(SecretsTest, NamesEverySecretVariableOnce) {
  for (const char* name : {"API_TOKEN", "FASTEST_API_TOKEN", "ANTHROPIC_API_KEY", "OPENAI_API_KEY",
                           "GOOGLE_GENERATIVE_AI_API_KEY", "FASTEST_MODEL_API_KEY",
                           "SANDBOX_API_KEY"}) {
    EXPECT_TRUE(IsSecretEnvName(name)) << name;
  }
  EXPECT_FALSE(IsSecretEnvName("PATH"));
  EXPECT_FALSE(IsSecretEnvName("API_URL"));
  EXPECT_TRUE(IsCredentialEnvName("API_TOKEN"));
  EXPECT_FALSE(IsCredentialEnvName("ANTHROPIC_API_KEY"));  // the agent needs it
  const auto& names = SecretEnvNames();
  for (size_t i = 0; i < names.size(); ++i) {
    for (size_t j = i + 1; j < names.size(); ++j) EXPECT_NE(names[i], names[j]);
  }
}

TEST(SecretsTest, SecretValuesSkipsUnsetAndShortValues) {
  std::map<std::string, std::string> env = {
      {"API_TOKEN", "tok-123456"}, {"OPENAI_API_KEY", "abc"}, {"PATH", "/usr/bin:/bin"}};
  auto lookup = [&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  EXPECT_EQ(SecretValues(lookup), std::vector<std::string>{"tok-123456"});
}

TEST(SecretsTest, RedactsEveryOccurrenceLongestFirst) {
  EXPECT_EQ(RedactSecrets("a-KEY123-b KEY123", {"KEY123"}), "a-[redacted]-b [redacted]");
  // "KEY123" inside "KEY123456" must not leave "456" behind.
  EXPECT_EQ(RedactSecrets("x KEY123456 y", {"KEY123", "KEY123456"}), "x [redacted] y");
  EXPECT_EQ(RedactSecrets("short abc", {"abc", ""}), "short abc");
}

}  // namespace
}  // namespace fastest::core
