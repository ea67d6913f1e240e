// Device login against the real server binary: the RFC 8628 flow of the original CLI, with the
// difference that approving a code needs a user token.
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/store/store.h"
#include "tests/server/server_harness.h"

namespace fastest::testing {
namespace {

using nlohmann::json;

constexpr char kGrant[] = "urn:ietf:params:oauth:grant-type:device_code";

class DeviceLoginE2eTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra = {}) {
    data_dir_ = FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "/data";
    std::vector<std::string> args = {"--backend=none"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto s = LaunchServer(data_dir_, args);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    api_ = std::make_unique<Api>(server_.get());
  }
  json NewCode() {
    auto r = api_->Call("POST", "/v1/oauth/device", "", &no_token_);
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  }
  core::HttpResponse Poll(const std::string& device_code) {
    return api_->Call("POST", "/v1/oauth/token",
                      json{{"grant_type", kGrant}, {"device_code", device_code}}.dump(),
                      &no_token_);
  }
  void ExpectOAuthError(const core::HttpResponse& r, const std::string& error) {
    EXPECT_EQ(r.status, 400) << r.body;
    json j = json::parse(r.body, nullptr, false);
    EXPECT_EQ(j["error"], error) << r.body;
    EXPECT_TRUE(j["error_description"].is_string()) << r.body;
  }
  core::HttpResponse Authorize(const std::string& user_code, const std::string* token) {
    return api_->Call("POST", "/v1/oauth/device/authorize",
                      json{{"user_code", user_code}, {"email", "ignored@example.test"}}.dump(),
                      token);
  }

  std::string data_dir_;
  std::string no_token_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Api> api_;
};

TEST_F(DeviceLoginE2eTest, WholeFlow) {
  Start();
  json code = NewCode();
  const std::string device_code = code["device_code"];
  const std::string user_code = code["user_code"];
  EXPECT_EQ(device_code.size(), 32u);
  EXPECT_EQ(user_code.size(), 9u);
  EXPECT_EQ(code["expires_in"], 900);
  EXPECT_EQ(code["interval"], 5);
  EXPECT_TRUE(code["verification_uri"].is_string());
  EXPECT_TRUE(code["verification_uri_complete"].is_string());

  ExpectOAuthError(Poll(device_code), "authorization_pending");

  // Approving needs a user token: none -> 401, a per-job token -> 403.
  EXPECT_EQ(Authorize(user_code, &no_token_).status, 401);
  {
    auto store = fastest::server::Store::Open(data_dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    auto user = (*store)->EnsureUser("admin@localhost");
    ASSERT_TRUE(user.ok());
    auto job_token = (*store)->CreateToken(*user, std::string("PROJECT"), std::string("JOB"));
    ASSERT_TRUE(job_token.ok());
    EXPECT_EQ(Authorize(user_code, &*job_token).status, 403);
  }
  // Missing user_code -> 422.
  std::string token = kTestToken;
  auto missing = api_->Call("POST", "/v1/oauth/device/authorize", "{}", &token);
  EXPECT_EQ(missing.status, 422) << missing.body;
  EXPECT_EQ(json::parse(missing.body)["error"]["code"], "VALIDATION_ERROR");
  auto bad = Authorize("ZZZZ-ZZZZ", &token);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body)["error"]["code"], "INVALID_CODE");

  // Lower case, no dash: still the same code.
  std::string typed = user_code.substr(0, 4) + user_code.substr(5);
  for (char& c : typed) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto ok = Authorize(typed, &token);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["success"], true);

  auto granted = Poll(device_code);
  ASSERT_EQ(granted.status, 200) << granted.body;
  json g = json::parse(granted.body);
  EXPECT_EQ(g["token_type"], "Bearer");
  EXPECT_EQ(g["expires_in"], 2592000);
  EXPECT_EQ(g["user"]["email"], "admin@localhost");
  const std::string access = g["access_token"];
  EXPECT_EQ(api_->Call("GET", "/v1/projects", "", &access).status, 200);
  auto me = api_->Call("GET", "/v1/auth/me", "", &access);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(json::parse(me.body)["user"]["email"], "admin@localhost");
  EXPECT_EQ(json::parse(me.body)["user"]["id"], g["user"]["id"]);
  EXPECT_EQ(api_->Call("GET", "/v1/auth/me", "", &no_token_).status, 401);

  ExpectOAuthError(Poll(device_code), "invalid_grant");
  auto again = Authorize(user_code, &token);
  EXPECT_EQ(again.status, 400);
  EXPECT_EQ(json::parse(again.body)["error"]["code"], "ALREADY_USED");
}

TEST_F(DeviceLoginE2eTest, GrantErrorsDenialAndCommandLineApproval) {
  Start();
  ExpectOAuthError(api_->Call("POST", "/v1/oauth/token",
                              json{{"grant_type", "password"}, {"device_code", "x"}}.dump(),
                              &no_token_),
                   "unsupported_grant_type");
  ExpectOAuthError(api_->Call("POST", "/v1/oauth/token", json{{"grant_type", kGrant}}.dump(),
                              &no_token_),
                   "invalid_request");
  ExpectOAuthError(Poll("unknown-device-code"), "invalid_grant");
  // The unauthenticated routes take small bodies only.
  auto big = api_->Call("POST", "/v1/oauth/token", std::string(8192, ' '), &no_token_);
  EXPECT_EQ(big.status, 401) << big.body;

  json denied = NewCode();
  std::string token = kTestToken;
  auto deny = api_->Call("POST", "/v1/oauth/device/deny",
                         json{{"user_code", denied["user_code"]}}.dump(), &token);
  EXPECT_EQ(deny.status, 200) << deny.body;
  ExpectOAuthError(Poll(denied["device_code"]), "access_denied");

  json code = NewCode();
  auto approved = RunServerCommand({"token", "approve", code["user_code"].get<std::string>(),
                                    "--email=cli@example.test", "--data_dir=" + data_dir_,
                                    "--backend=none"});
  ASSERT_TRUE(approved.ok()) << approved.status();
  auto granted = Poll(code["device_code"]);
  ASSERT_EQ(granted.status, 200) << granted.body;
  EXPECT_EQ(json::parse(granted.body)["user"]["email"], "cli@example.test");
}

TEST_F(DeviceLoginE2eTest, ExpiredCode) {
  Start({"--device_code_ttl=1s"});
  json code = NewCode();
  EXPECT_EQ(code["expires_in"], 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ExpectOAuthError(Poll(code["device_code"]), "expired_token");
  std::string token = kTestToken;
  auto r = Authorize(code["user_code"], &token);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "EXPIRED_CODE");
}

}  // namespace
}  // namespace fastest::testing
