// Contract tests: the cf-bridge-emulator binary against PROTOCOLS.md §4.1-§4.4, over real HTTP.
// Each endpoint and each documented error is pinned here; if the emulator drifts from the
// contract, this fails. Needs Docker (tag requires-docker): fails, never skips, without it.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/http/http_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/emulator_process.h"

namespace fastest::tests::cloudflare {
namespace {

using ::fastest::testing::EmulatorProcess;
constexpr const char* kTestApiKey = ::fastest::testing::kEmulatorTestApiKey;

using Headers = std::vector<std::pair<std::string, std::string>>;
using Events = std::vector<std::pair<std::string, std::string>>;

class BridgeContractTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<EmulatorProcess>> started = EmulatorProcess::Start();
    if (!started.ok()) {
      start_error_ = new std::string(started.status().ToString());
      return;
    }
    emulator_ = started->release();
  }
  static void TearDownTestSuite() {
    delete emulator_;
    emulator_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(emulator_, nullptr) << (start_error_ ? *start_error_ : "emulator not started");
  }

  core::HttpResponse Call(const std::string& method, const std::string& path,
                          const std::string& body = "", Headers headers = {},
                          const std::string& auth = absl::StrCat("Bearer ", kTestApiKey)) {
    core::HttpRequest request;
    request.method = method;
    request.url = emulator_->url() + path;
    request.body = body;
    request.headers = std::move(headers);
    if (!auth.empty()) request.headers.emplace_back("Authorization", auth);
    request.timeout = std::chrono::milliseconds(60000);
    absl::StatusOr<core::HttpResponse> response = http_.Send(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : core::HttpResponse{};
  }

  std::string NewSandbox() {
    core::HttpResponse r = Call("POST", "/v1/sandbox");
    nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
    if (r.status != 200 || body.is_discarded()) return "";
    return body.value("id", "");
  }

  core::HttpResponse Exec(const std::string& id, const nlohmann::json& body, Headers headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    return Call("POST", absl::StrCat("/v1/sandbox/", id, "/exec"), body.dump(), headers);
  }

  // Strict SSE framing: the body is exactly a sequence of "event: X\ndata: Y\n\n".
  static Events ParseStrict(const std::string& body) {
    Events events;
    size_t pos = 0;
    while (pos < body.size()) {
      size_t end = body.find("\n\n", pos);
      EXPECT_NE(end, std::string::npos) << "unterminated event at " << pos;
      if (end == std::string::npos) break;
      std::vector<std::string> lines = absl::StrSplit(body.substr(pos, end - pos), '\n');
      EXPECT_EQ(lines.size(), 2u) << body.substr(pos, end - pos);
      if (lines.size() == 2) {
        EXPECT_TRUE(absl::StartsWith(lines[0], "event: ")) << lines[0];
        EXPECT_TRUE(absl::StartsWith(lines[1], "data: ")) << lines[1];
        events.emplace_back(lines[0].substr(7), lines[1].substr(6));
      }
      pos = end + 2;
    }
    return events;
  }

  static std::string Decoded(const Events& events, const std::string& name) {
    std::string out;
    for (const auto& [event, data] : events) {
      if (event != name) continue;
      std::string bytes;
      EXPECT_TRUE(absl::Base64Unescape(data, &bytes)) << data;
      out += bytes;
    }
    return out;
  }

  static void ExpectError(const core::HttpResponse& r, int status, const std::string& code,
                          const std::string& message = "") {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_TRUE(absl::StartsWith(r.Header("content-type"), "application/json")) << r.Header("content-type");
    nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << r.body;
    EXPECT_EQ(body.value("code", ""), code) << r.body;
    ASSERT_TRUE(body.contains("error") && body["error"].is_string()) << r.body;
    if (!message.empty()) {
      EXPECT_EQ(body["error"].get<std::string>(), message);
    }
  }

  static EmulatorProcess* emulator_;
  static std::string* start_error_;
  core::HttpClient http_;
};

EmulatorProcess* BridgeContractTest::emulator_ = nullptr;
std::string* BridgeContractTest::start_error_ = nullptr;

TEST_F(BridgeContractTest, HealthIsOpenAndOtherPathsFollowTheWorker) {
  core::HttpResponse health = Call("GET", "/health", "", {}, "");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(nlohmann::json::parse(health.body, nullptr, false), nlohmann::json({{"ok", true}}));
  core::HttpResponse other = Call("GET", "/anything/else", "", {}, "");
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(other.body, "OK");
  core::HttpResponse unknown = Call("GET", "/v1/nothing-here");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body, "404 Not Found");
  EXPECT_TRUE(absl::StartsWith(unknown.Header("content-type"), "text/plain"));
}

TEST_F(BridgeContractTest, AuthOnCreate) {
  ExpectError(Call("POST", "/v1/sandbox", "", {}, ""), 401, "unauthorized", "Unauthorized");
  ExpectError(Call("POST", "/v1/sandbox", "", {}, "Bearer wrong"), 401, "unauthorized");
  ExpectError(Call("POST", "/v1/sandbox", "", {}, kTestApiKey), 401, "unauthorized");
  ExpectError(Call("POST", "/v1/sandbox", "", {}, absl::StrCat("Basic ", kTestApiKey)), 401,
              "unauthorized");
  // The scheme word is case-insensitive for /v1/sandbox.
  for (const char* scheme : {"Bearer ", "bearer ", "BEARER "}) {
    core::HttpResponse r = Call("POST", "/v1/sandbox", "", {}, absl::StrCat(scheme, kTestApiKey));
    ASSERT_EQ(r.status, 200) << scheme << r.body;
    nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
    std::string id = body.value("id", "");
    EXPECT_EQ(id.size(), 26u);
    EXPECT_EQ(id.find_first_not_of("abcdefghijklmnopqrstuvwxyz234567"), std::string::npos) << id;
  }
  EXPECT_NE(NewSandbox(), NewSandbox());
}

TEST_F(BridgeContractTest, PoolRoutesNeedTheExactScheme) {
  ExpectError(Call("GET", "/v1/pool/stats", "", {}, absl::StrCat("bearer ", kTestApiKey)), 401,
              "unauthorized");
  core::HttpResponse stats = Call("GET", "/v1/pool/stats");
  ASSERT_EQ(stats.status, 200);
  nlohmann::json body = nlohmann::json::parse(stats.body, nullptr, false);
  for (const char* key : {"warm", "assigned", "total", "config", "maxInstances"}) {
    EXPECT_TRUE(body.contains(key)) << key;
  }
}

TEST_F(BridgeContractTest, SandboxIdIsCheckedBeforeAuth) {
  ExpectError(Call("POST", "/v1/sandbox/NotValid1/exec", "{}", {}, ""), 400, "invalid_request",
              "Invalid sandbox ID format");
  ExpectError(Call("DELETE", "/v1/sandbox/abc_def", "", {}, ""), 400, "invalid_request",
              "Invalid sandbox ID format");
  ExpectError(Call("POST", "/v1/sandbox/abcdef/exec", "{\"argv\":[\"true\"]}", {}, ""), 401,
              "unauthorized", "Unauthorized");
  ExpectError(Call("GET", "/v1/sandbox/abcdef/file/workspace/x", "", {}, "Bearer nope"), 401,
              "unauthorized");
}

TEST_F(BridgeContractTest, ExecStreamsBase64EventsAndOneTerminalExit) {
  std::string id = NewSandbox();
  core::HttpResponse r =
      Exec(id, {{"argv", {"sh", "-c", "echo hello; echo oops >&2; printf 'tail'; exit 3"}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  EXPECT_EQ(r.Header("cache-control"), "no-cache");
  Events events = ParseStrict(r.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(Decoded(events, "stdout"), "hello\ntail");
  EXPECT_EQ(Decoded(events, "stderr"), "oops\n");
  EXPECT_EQ(events.back().first, "exit");
  EXPECT_EQ(nlohmann::json::parse(events.back().second), nlohmann::json({{"exit_code", 3}}));
  int terminals = 0;
  for (const auto& [event, data] : events) terminals += (event == "exit" || event == "error");
  EXPECT_EQ(terminals, 1);
  EXPECT_EQ(Call("DELETE", absl::StrCat("/v1/sandbox/", id)).status, 204);
}

TEST_F(BridgeContractTest, ExecQuotesArgvAndRunsInWorkspace) {
  std::string id = NewSandbox();
  core::HttpResponse r =
      Exec(id, {{"argv", {"printf", "%s|", "a b", "it's", "$HOME", "tab\there", "x\ny"}}});
  Events events = ParseStrict(r.body);
  EXPECT_EQ(Decoded(events, "stdout"), "a b|it's|$HOME|tab\there|x\ny|");
  EXPECT_EQ(Decoded(ParseStrict(Exec(id, {{"argv", {"pwd"}}}).body), "stdout"), "/workspace\n");
  EXPECT_EQ(Decoded(ParseStrict(Exec(id, {{"argv", {"sh", "-c", "mkdir -p sub"}}}).body), "stderr"), "");
  EXPECT_EQ(Decoded(ParseStrict(Exec(id, {{"argv", {"pwd"}}, {"cwd", "sub"}}).body), "stdout"),
            "/workspace/sub\n");
  EXPECT_EQ(Decoded(ParseStrict(Exec(id, {{"argv", {"pwd"}}, {"cwd", "/workspace/sub/.."}}).body),
                    "stdout"),
            "/workspace\n");
  // Invalid UTF-8 is re-decoded by the bridge: U+FFFD.
  EXPECT_EQ(Decoded(ParseStrict(Exec(id, {{"argv", {"printf", "a\\377b"}}}).body), "stdout"),
            "a\xEF\xBF\xBD" "b");
  Call("DELETE", absl::StrCat("/v1/sandbox/", id));
}

TEST_F(BridgeContractTest, ExecRejectsBadRequests) {
  std::string id = NewSandbox();
  std::string path = absl::StrCat("/v1/sandbox/", id, "/exec");
  Headers json = {{"Content-Type", "application/json"}};
  ExpectError(Call("POST", path, "{not json", json), 400, "invalid_request");
  ExpectError(Exec(id, {{"argv", nlohmann::json::array()}}), 400, "invalid_request",
              "argv must be a non-empty array");
  ExpectError(Exec(id, {{"argv", "echo hi"}}), 400, "invalid_request", "argv must be a non-empty array");
  ExpectError(Exec(id, {{"argv", {"echo", 1}}}), 400, "invalid_request");
  ExpectError(Exec(id, {{"timeout", 1}}), 400, "invalid_request", "argv must be a non-empty array");
  ExpectError(Exec(id, {{"argv", {"pwd"}}, {"cwd", "/tmp"}}), 403, "invalid_request",
              "cwd must resolve to a location within /workspace");
  ExpectError(Exec(id, {{"argv", {"pwd"}}, {"cwd", "../etc"}}), 403, "invalid_request",
              "cwd must resolve to a location within /workspace");
  ExpectError(Exec(id, {{"argv", {"pwd"}}}, {{"Session-Id", "a..b"}}), 400, "invalid_request",
              "Invalid session ID format");
  Call("DELETE", absl::StrCat("/v1/sandbox/", id));
}

TEST_F(BridgeContractTest, ExecTimeoutKillsAndExits124) {
  std::string id = NewSandbox();
  absl::Time start = absl::Now();
  core::HttpResponse r = Exec(id, {{"argv", {"sh", "-c", "echo started; sleep 30; echo never"}},
                                   {"timeout_ms", 400}});
  absl::Duration took = absl::Now() - start;
  Events events = ParseStrict(r.body);
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_EQ(Decoded(events, "stdout"), "started\n");
  EXPECT_TRUE(absl::EndsWith(Decoded(events, "stderr"), "Command timed out after 400ms\n"))
      << Decoded(events, "stderr");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().first, "exit");
  EXPECT_EQ(nlohmann::json::parse(events.back().second), nlohmann::json({{"exit_code", 124}}));
  Call("DELETE", absl::StrCat("/v1/sandbox/", id));
}

TEST_F(BridgeContractTest, FilesRoundTripAndConfinement) {
  std::string id = NewSandbox();
  std::string base = absl::StrCat("/v1/sandbox/", id, "/file/");
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  core::HttpResponse put = Call("PUT", base + "workspace/dir%20one/all%20bytes.bin", bytes);
  EXPECT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(nlohmann::json::parse(put.body, nullptr, false), nlohmann::json({{"ok", true}}));
  core::HttpResponse get = Call("GET", base + "workspace/dir%20one/all%20bytes.bin");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.Header("content-type"), "application/octet-stream");
  EXPECT_EQ(get.body, bytes);
  // The exec side sees the same file (decoded name).
  EXPECT_EQ(Decoded(ParseStrict(Exec(id, {{"argv", {"sh", "-c", "wc -c < 'dir one/all bytes.bin'"}}})
                                    .body),
                    "stdout"),
            "256\n");

  ExpectError(Call("GET", base + "workspace/nope.txt"), 404, "workspace_read_not_found",
              "File not found: /workspace/nope.txt");
  ExpectError(Call("GET", base + "etc/passwd"), 403, "invalid_request",
              "path must resolve to a location within /workspace");
  ExpectError(Call("GET", base + "workspace/a/%2E%2E/%2E%2E/etc/passwd"), 403, "invalid_request",
              "path must resolve to a location within /workspace");
  ExpectError(Call("PUT", base + "tmp/evil", "x"), 403, "invalid_request",
              "path must resolve to a location within /workspace");
  ExpectError(Call("GET", base + "workspace/x", "", {{"Session-Id", "bad id"}}), 400,
              "invalid_request", "Invalid session ID format");

  std::string too_big(32u * 1024 * 1024 + 1, 'x');
  ExpectError(Call("PUT", base + "workspace/big.bin", too_big), 413, "payload_too_large");
  std::string at_limit(32u * 1024 * 1024, 'y');
  EXPECT_EQ(Call("PUT", base + "workspace/limit.bin", at_limit).status, 200);
  Call("DELETE", absl::StrCat("/v1/sandbox/", id));
}

TEST_F(BridgeContractTest, RunningAndDeleteGiveAFreshContainer) {
  std::string id = NewSandbox();
  core::HttpResponse running = Call("GET", absl::StrCat("/v1/sandbox/", id, "/running"));
  EXPECT_EQ(running.status, 200);
  EXPECT_EQ(nlohmann::json::parse(running.body, nullptr, false), nlohmann::json({{"running", true}}));
  std::string file = absl::StrCat("/v1/sandbox/", id, "/file/workspace/keep.txt");
  EXPECT_EQ(Call("PUT", file, "1").status, 200);
  core::HttpResponse del = Call("DELETE", absl::StrCat("/v1/sandbox/", id));
  EXPECT_EQ(del.status, 204);
  EXPECT_EQ(del.body, "");
  // The next call on the id gets a brand-new container with an empty /workspace.
  ExpectError(Call("GET", file), 404, "workspace_read_not_found");
  EXPECT_EQ(Call("DELETE", absl::StrCat("/v1/sandbox/", id)).status, 204);
  // DELETE of an id that never had a container: 204 too.
  EXPECT_EQ(Call("DELETE", "/v1/sandbox/neverusedid").status, 204);
  ExpectError(Call("DELETE", "/v1/sandbox/neverusedid", "", {}, ""), 401, "unauthorized");
}

TEST_F(BridgeContractTest, SessionsCarryEnvAndCwd) {
  std::string id = NewSandbox();
  Exec(id, {{"argv", {"mkdir", "-p", "/workspace/s"}}});
  core::HttpResponse created =
      Call("POST", absl::StrCat("/v1/sandbox/", id, "/session"),
           nlohmann::json({{"id", "job-1"}, {"cwd", "/workspace/s"}, {"env", {{"FOO", "bar baz"}}}}).dump(),
           {{"Content-Type", "application/json"}});
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(nlohmann::json::parse(created.body), nlohmann::json({{"id", "job-1"}}));
  core::HttpResponse r =
      Exec(id, {{"argv", {"sh", "-c", "echo \"$FOO\"; pwd; printf partial"}}}, {{"Session-Id", "job-1"}});
  Events events = ParseStrict(r.body);
  EXPECT_EQ(Decoded(events, "stdout"), "bar baz\n/workspace/s\npartial");
  // Session output is line based: one line per chunk.
  int stdout_events = 0;
  for (const auto& [event, data] : events) stdout_events += event == "stdout";
  EXPECT_EQ(stdout_events, 3);
  // Without the header the env is not there.
  EXPECT_EQ(Decoded(ParseStrict(Exec(id, {{"argv", {"sh", "-c", "echo \"[$FOO]\""}}}).body), "stdout"),
            "[]\n");
  core::HttpResponse anonymous = Call("POST", absl::StrCat("/v1/sandbox/", id, "/session"));
  EXPECT_EQ(anonymous.status, 200);
  EXPECT_FALSE(nlohmann::json::parse(anonymous.body, nullptr, false).value("id", "").empty());

  core::HttpResponse deleted = Call("DELETE", absl::StrCat("/v1/sandbox/", id, "/session/job-1"));
  EXPECT_EQ(deleted.status, 200);
  EXPECT_EQ(nlohmann::json::parse(deleted.body, nullptr, false),
            nlohmann::json({{"success", true}, {"sessionId", "job-1"}}));
  ExpectError(Call("DELETE", absl::StrCat("/v1/sandbox/", id, "/session/default")), 502, "session_error");
  Call("DELETE", absl::StrCat("/v1/sandbox/", id));
}

TEST_F(BridgeContractTest, InjectedFaultsAnswerFirst) {
  std::string id = NewSandbox();
  core::HttpResponse set = Call(
      "POST", "/_emulator/faults",
      nlohmann::json({{"fail_next", {{{"status", 429}, {"count", 2}, {"path", "/exec"}, {"code", "rate_limited"}}}}})
          .dump());
  ASSERT_EQ(set.status, 200);
  ExpectError(Exec(id, {{"argv", {"true"}}}), 429, "rate_limited");
  ExpectError(Exec(id, {{"argv", {"true"}}}), 429, "rate_limited");
  EXPECT_EQ(Exec(id, {{"argv", {"true"}}}).status, 200);

  Call("POST", "/_emulator/faults", nlohmann::json({{"cut_exec_count", 1}}).dump());
  Events cut = ParseStrict(Exec(id, {{"argv", {"echo", "x"}}}).body);
  EXPECT_EQ(Decoded(cut, "stdout"), "x\n");
  for (const auto& [event, data] : cut) EXPECT_NE(event, "exit");
  Call("DELETE", "/_emulator/faults");
  Call("DELETE", absl::StrCat("/v1/sandbox/", id));
}

TEST(BridgeCapacityTest, MaxInstancesGives503CapacityExceeded) {
  ::fastest::testing::EmulatorOptions options;
  options.extra_args = {"--max-instances", "1"};
  auto emulator = EmulatorProcess::Start(options);
  ASSERT_TRUE(emulator.ok()) << emulator.status();
  core::HttpClient http;
  auto call = [&](const std::string& method, const std::string& path, const std::string& body) {
    core::HttpRequest request;
    request.method = method;
    request.url = (*emulator)->url() + path;
    request.body = body;
    request.bearer_token = kTestApiKey;
    request.headers.emplace_back("Content-Type", "application/json");
    absl::StatusOr<core::HttpResponse> response = http.Send(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : core::HttpResponse{};
  };
  std::string exec = nlohmann::json({{"argv", {"true"}}}).dump();
  EXPECT_EQ(call("POST", "/v1/sandbox/aaaa/exec", exec).status, 200);
  core::HttpResponse full = call("POST", "/v1/sandbox/bbbb/exec", exec);
  EXPECT_EQ(full.status, 503);
  nlohmann::json body = nlohmann::json::parse(full.body, nullptr, false);
  EXPECT_EQ(body.value("code", ""), "capacity_exceeded");
  EXPECT_TRUE(absl::StrContains(body.value("error", ""), "instance limit reached (1/1)")) << full.body;
  EXPECT_EQ(call("DELETE", "/v1/sandbox/aaaa", "").status, 204);
  EXPECT_EQ(call("POST", "/v1/sandbox/bbbb/exec", exec).status, 200);
  EXPECT_EQ(call("DELETE", "/v1/sandbox/bbbb", "").status, 204);
}

}  // namespace
}  // namespace fastest::tests::cloudflare
