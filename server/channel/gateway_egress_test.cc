// Unit tests of the model gateway's and the egress proxy's pure parts: the request head the
// provider gets, the sandbox environment rewrite, the allow-list.
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/channel/egress_proxy.h"
#include "server/channel/model_gateway.h"

namespace fastest::server {
namespace {

TEST(GatewayRequestHead, ReplacesCredentialsAndHostAndStaysBelowTheBasePath) {
  auto head = GatewayRequestHead(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:4000\r\nAuthorization: Bearer "
      "placeholder\r\nx-api-key: placeholder\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
      "/v1", "api.example.com", "Authorization: Bearer sk-real");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(*head,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer "
            "sk-real\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");

  for (const char* target : {"/v2/files", "/v1/../admin", "/v1/%2E%2E/admin", "/v1x/chat", "http://evil/v1/chat",
                             "*"}) {
    EXPECT_FALSE(GatewayRequestHead(absl::StrCat("GET ", target, " HTTP/1.1\r\n\r\n"), "/v1", "h",
                                    "")
                     .ok())
        << target;
  }
  EXPECT_TRUE(GatewayRequestHead("GET /v1 HTTP/1.1\r\n\r\n", "/v1", "h", "").ok());
  EXPECT_FALSE(GatewayRequestHead("GET /v1/x HTTP/1.1\r\n folded\r\n\r\n", "/v1", "h", "").ok());
}

TEST(ModelGatewayFromEnvironment, TheSandboxGetsOnlyAPlaceholder) {
  std::map<std::string, std::string> env = {{"ANTHROPIC_API_KEY", "sk-ant-real"},
                                            {"OPENAI_API_KEY", "sk-oa-real"},
                                            {"MODEL", "claude"}};
  auto options = ModelGatewayFromEnvironment(&env);
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_TRUE(options->has_value());
  EXPECT_EQ((*options)->provider, "anthropic");
  EXPECT_EQ((*options)->base_url, "https://api.anthropic.com/v1");
  EXPECT_EQ((*options)->api_key, "sk-ant-real");
  EXPECT_EQ(env, (std::map<std::string, std::string>{
                     {"ANTHROPIC_API_KEY", kModelKeyPlaceholder},
                     {"FASTEST_MODEL_GATEWAY", "/v1"},
                     {"MODEL", "claude"}}));

  env = {{"FASTEST_MODEL_BASE_URL", "http://127.0.0.1:9999/v1/"},
         {"FASTEST_MODEL_API_KEY", "k"},
         {"OPENAI_API_KEY", "sk-oa-real"}};
  options = ModelGatewayFromEnvironment(&env);
  ASSERT_TRUE(options.ok() && options->has_value());
  EXPECT_EQ((*options)->provider, "openai-compatible");
  EXPECT_EQ(env.count("OPENAI_API_KEY"), 0u);
  EXPECT_EQ(env["FASTEST_MODEL_API_KEY"], kModelKeyPlaceholder);
  EXPECT_EQ(env["FASTEST_MODEL_GATEWAY"], "/v1");

  env = {{"FASTEST_MODEL_BASE_URL", "ftp://x"}};
  EXPECT_FALSE(ModelGatewayFromEnvironment(&env).ok());
  env = {{"MODEL", "x"}};
  options = ModelGatewayFromEnvironment(&env);
  ASSERT_TRUE(options.ok());
  EXPECT_FALSE(options->has_value());
}

TEST(EgressAllowList, ParsesAndMatches) {
  auto rules = ParseEgressAllowList("registry.npmjs.org:443, GitHub.com ,[::1]:8080");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 3u);
  EXPECT_TRUE(EgressAllowed(*rules, "registry.npmjs.org", 443));
  EXPECT_FALSE(EgressAllowed(*rules, "registry.npmjs.org", 80));
  EXPECT_TRUE(EgressAllowed(*rules, "github.com", 22));  // no port: any
  EXPECT_TRUE(EgressAllowed(*rules, "::1", 8080));
  EXPECT_FALSE(EgressAllowed(*rules, "evil.github.com", 443));
  EXPECT_FALSE(ParseEgressAllowList("host:0").ok());
  EXPECT_FALSE(ParseEgressAllowList(":443").ok());
  EXPECT_FALSE(ParseEgressAllowList("host:http").ok());
  EXPECT_TRUE(ParseEgressAllowList("")->empty());
}

}  // namespace
}  // namespace fastest::server
