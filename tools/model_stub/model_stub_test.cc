#include "tools/model_stub/model_stub.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/http/http_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "core/net/http_server.h"
#include "tools/model_stub/scenario.h"

namespace fastest::tools::model_stub {
namespace {

using core::HttpClient;
using core::HttpRequest;
using core::HttpResponse;

nlohmann::json AgentRequest(bool stream) {
  return {{"model", "stub-model"},
          {"stream", stream},
          {"stream_options", {{"include_usage", true}}},
          {"messages", {{{"role", "user"}, {"content", "do it"}}}},
          {"tools", {{{"type", "function"}, {"function", {{"name", "write"}}}}}}};
}

nlohmann::json TitleRequest() {
  return {{"model", "stub-model"},
          {"stream", true},
          {"messages", {{{"role", "system"}, {"content", "You are a title generator."}},
                        {{"role", "user"}, {"content", "hi"}}}}};
}

Scenario MustParse(const std::string& text) {
  absl::StatusOr<Scenario> s = ParseScenario(nlohmann::json::parse(text));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : Scenario();
}

// The data payloads of an SSE body; fails the test on any framing error.
std::vector<std::string> ParseSse(const std::string& body) {
  std::vector<std::string> out;
  EXPECT_TRUE(body.size() >= 2 && body.substr(body.size() - 2) == "\n\n") << body;
  for (absl::string_view event : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    EXPECT_TRUE(absl::StartsWith(event, "data: ")) << "bad event: " << event;
    EXPECT_EQ(event.find('\n'), absl::string_view::npos) << "multi-line event: " << event;
    out.push_back(std::string(event.substr(6)));
  }
  return out;
}

class ModelStubTest : public ::testing::Test {
 protected:
  void Start(Scenario scenario) {
    stub_ = std::make_unique<ModelStub>(std::move(scenario), /*log_to_stderr=*/true);
    server_ = std::make_unique<net::HttpServer>(net::HttpServerOptions());
    stub_->Register(server_->router());
    ASSERT_TRUE(server_->Start().ok());
    base_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    // The stub first: it wakes stalled answers, so the server does not wait for them to drain.
    stub_.reset();
    if (server_) server_->Stop();
    server_.reset();
  }

  HttpResponse Post(const nlohmann::json& body, const std::string& session = "ses_1",
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    HttpRequest req;
    req.method = "POST";
    req.url = base_ + "/v1/chat/completions";
    req.headers = {{"Content-Type", "application/json"}, {"x-session-id", session}};
    req.body = body.dump();
    req.timeout = timeout;
    auto resp = http_.Send(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? *resp : HttpResponse{};
  }

  HttpClient http_;
  std::unique_ptr<ModelStub> stub_;
  std::unique_ptr<net::HttpServer> server_;
  std::string base_;
};

constexpr char kTwoTurns[] = R"({
  "title": "My title",
  "turns": [
    {"tool_calls": [{"name": "write", "arguments": {"filePath": "a.txt", "content": "x\n"}},
                    {"name": "bash", "arguments": "{\"command\":\"true\"}", "id": "c9"}]},
    {"text": "All done."}
  ]
})";

// Unknown routes are answered in OpenAI's error shape, not the HTTP server's default.
TEST_F(ModelStubTest, UnknownRouteGivesOpenAiStyleError) {
  Start(MustParse(kTwoTurns));
  HttpRequest req;
  req.method = "GET";
  req.url = base_ + "/v1/nope";
  auto resp = http_.Send(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 404);
  nlohmann::json body = nlohmann::json::parse(resp->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << resp->body;
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["code"], "not_found");
}

TEST_F(ModelStubTest, StreamsToolCallsThenTextWithSseFraming) {
  Start(MustParse(kTwoTurns));
  HttpResponse r = Post(AgentRequest(true));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  std::vector<std::string> data = ParseSse(r.body);
  ASSERT_GE(data.size(), 4u);
  EXPECT_EQ(data.back(), "[DONE]");

  // Reassemble the streamed tool calls the way an OpenAI client does.
  std::vector<nlohmann::json> calls(2);
  std::string finish;
  bool saw_usage = false;
  for (size_t i = 0; i + 1 < data.size(); ++i) {
    nlohmann::json c = nlohmann::json::parse(data[i], nullptr, false);
    ASSERT_FALSE(c.is_discarded()) << data[i];
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    if (c["choices"].empty()) {
      saw_usage = c.contains("usage");
      continue;
    }
    const nlohmann::json& choice = c["choices"][0];
    if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
    if (!choice["delta"].contains("tool_calls")) continue;
    for (const auto& d : choice["delta"]["tool_calls"]) {
      size_t idx = d["index"];
      ASSERT_LT(idx, 2u);
      if (d.contains("id")) calls[idx]["id"] = d["id"];
      if (d["function"].contains("name")) calls[idx]["name"] = d["function"]["name"];
      calls[idx]["arguments"] = calls[idx].value("arguments", "") +
                                d["function"].value("arguments", "");
    }
  }
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_TRUE(saw_usage);
  EXPECT_EQ(calls[0]["name"], "write");
  EXPECT_EQ(nlohmann::json::parse(calls[0]["arguments"].get<std::string>()),
            nlohmann::json({{"filePath", "a.txt"}, {"content", "x\n"}}));
  EXPECT_EQ(calls[1]["id"], "c9");
  EXPECT_EQ(calls[1]["name"], "bash");
  EXPECT_EQ(calls[1]["arguments"], "{\"command\":\"true\"}");

  // A title request in between does not consume a turn.
  HttpResponse t = Post(TitleRequest());
  std::string title;
  for (const std::string& d : ParseSse(t.body)) {
    if (d == "[DONE]") continue;
    nlohmann::json c = nlohmann::json::parse(d);
    if (!c["choices"].empty()) title += c["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(title, "My title");

  // Next agent turn: the final text.
  std::string text;
  std::string finish2;
  for (const std::string& d : ParseSse(Post(AgentRequest(true)).body)) {
    if (d == "[DONE]") continue;
    nlohmann::json c = nlohmann::json::parse(d);
    if (c["choices"].empty()) continue;
    text += c["choices"][0]["delta"].value("content", "");
    if (!c["choices"][0]["finish_reason"].is_null()) finish2 = c["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, "All done.");
  EXPECT_EQ(finish2, "stop");

  nlohmann::json state = stub_->State();
  EXPECT_EQ(state["agent_requests"], 2);
  EXPECT_EQ(state["title_requests"], 1);
  EXPECT_EQ(state["sessions"]["ses_1"]["next_turn"], 2);
}

TEST_F(ModelStubTest, SessionsProgressIndependentlyAndNonStreamingWorks) {
  Start(MustParse(kTwoTurns));
  HttpResponse a = Post(AgentRequest(false), "ses_a");
  ASSERT_EQ(a.status, 200);
  nlohmann::json ja = nlohmann::json::parse(a.body);
  EXPECT_EQ(ja["object"], "chat.completion");
  EXPECT_EQ(ja["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(ja["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "write");
  // A second session starts from turn 1 too.
  nlohmann::json jb = nlohmann::json::parse(Post(AgentRequest(false), "ses_b").body);
  EXPECT_EQ(jb["choices"][0]["finish_reason"], "tool_calls");
  nlohmann::json ja2 = nlohmann::json::parse(Post(AgentRequest(false), "ses_a").body);
  EXPECT_EQ(ja2["choices"][0]["message"]["content"], "All done.");
  // Past the end: a stop answer, never an error.
  nlohmann::json ja3 = nlohmann::json::parse(Post(AgentRequest(false), "ses_a").body);
  EXPECT_EQ(ja3["choices"][0]["finish_reason"], "stop");
}

TEST_F(ModelStubTest, ErrorTurnIsStickyAndCarriesRetryAfter) {
  Start(MustParse(R"({"turns":[{"error":500,"message":"boom","retry_after_ms":100},
                               {"text":"never"}]})"));
  for (int i = 0; i < 3; ++i) {
    HttpResponse r = Post(AgentRequest(true));
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(r.Header("retry-after-ms"), "100");
    EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["message"], "boom");
  }
}

TEST_F(ModelStubTest, ErrorTurnWithTimesMovesOn) {
  Start(MustParse(R"({"turns":[{"error":503,"times":1},{"text":"recovered"}]})"));
  EXPECT_EQ(Post(AgentRequest(false)).status, 503);
  nlohmann::json j = nlohmann::json::parse(Post(AgentRequest(false)).body);
  EXPECT_EQ(j["choices"][0]["message"]["content"], "recovered");
}

TEST_F(ModelStubTest, StallHoldsTheAnswer) {
  Start(MustParse(R"({"turns":[{"stall_ms":60000}]})"));
  HttpRequest req;
  req.method = "POST";
  req.url = base_ + "/v1/chat/completions";
  req.body = AgentRequest(true).dump();
  req.timeout = std::chrono::milliseconds(500);
  absl::Time start = absl::Now();
  auto resp = http_.Send(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kDeadlineExceeded) << resp.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(450));
  // Title requests are still answered while an agent request stalls.
  EXPECT_EQ(Post(TitleRequest()).status, 200);
  // The destructor (TearDown) wakes the stalled answer instead of waiting a minute.
}

TEST_F(ModelStubTest, ShortStallDelaysThenAnswers) {
  Start(MustParse(R"({"turns":[{"stall_ms":300}]})"));
  absl::Time start = absl::Now();
  HttpResponse r = Post(AgentRequest(false));
  EXPECT_EQ(r.status, 504);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(280));
}

// Every completion request is recorded with its arrival and answer time, in arrival order,
// through the accessor and GET /stub/requests alike; a delayed answer shows its delay.
TEST_F(ModelStubTest, RecordsRequestTimes) {
  Start(MustParse(R"({"turns":[{"stall_ms":200,"text":"slow"},{"text":"fast"}]})"));
  const absl::Time before = absl::Now();
  ASSERT_EQ(Post(TitleRequest(), "ses_t").status, 200);
  ASSERT_EQ(Post(AgentRequest(true), "ses_a").status, 200);
  ASSERT_EQ(Post(AgentRequest(false), "ses_a").status, 200);
  const absl::Time after = absl::Now();
  std::vector<ModelStub::RequestRecord> records = stub_->Requests();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].seq, 1);
  EXPECT_FALSE(records[0].agent);
  EXPECT_EQ(records[0].session, "ses_t");
  EXPECT_TRUE(records[1].agent);
  EXPECT_EQ(records[1].label, "turn 1/2");
  EXPECT_EQ(records[2].label, "turn 2/2");
  for (const auto& r : records) {
    EXPECT_GE(r.received, before);
    EXPECT_LE(r.answered, after);
    EXPECT_LE(r.received, r.answered);
  }
  EXPECT_GE(records[1].answered - records[1].received, absl::Milliseconds(190));
  EXPECT_LE(records[1].answered, records[2].received);

  HttpRequest get;
  get.url = base_ + "/stub/requests";
  auto resp = http_.Send(get);
  ASSERT_TRUE(resp.ok()) << resp.status();
  nlohmann::json j = nlohmann::json::parse(resp->body);
  ASSERT_EQ(j["requests"].size(), 3u);
  EXPECT_EQ(j["requests"][1]["label"], "turn 1/2");
  EXPECT_EQ(j["requests"][1]["agent"], true);
  double received = j["requests"][1]["received_ms"].get<double>();
  double answered = j["requests"][1]["answered_ms"].get<double>();
  EXPECT_NEAR(received, absl::ToDoubleMilliseconds(records[1].received - absl::UnixEpoch()), 1.0);
  EXPECT_GE(answered - received, 190.0);

  stub_->ClearRequests();
  EXPECT_TRUE(stub_->Requests().empty());
  // Scenario progress is kept: the session is past its last turn.
  nlohmann::json done = nlohmann::json::parse(Post(AgentRequest(false), "ses_a").body);
  EXPECT_EQ(done["choices"][0]["message"]["content"], "Scenario finished.");
  EXPECT_EQ(stub_->Requests().size(), 1u);
}

TEST_F(ModelStubTest, ModelsAndBadBody) {
  Start(MustParse(kTwoTurns));
  HttpRequest req;
  req.url = base_ + "/v1/models";
  auto models = http_.Send(req);
  ASSERT_TRUE(models.ok());
  EXPECT_EQ(nlohmann::json::parse(models->body)["data"][0]["id"], "stub-model");
  req.method = "POST";
  req.url = base_ + "/v1/chat/completions";
  req.body = "{nope";
  auto bad = http_.Send(req);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
}

TEST(ScenarioTest, RejectsBadScenarios) {
  EXPECT_FALSE(ParseScenario(nlohmann::json::parse(R"({"turns":{}})")).ok());
  EXPECT_FALSE(ParseScenario(nlohmann::json::parse(R"({"turns":[{}]})")).ok());
  EXPECT_FALSE(ParseScenario(nlohmann::json::parse(R"({"turns":[{"error":200}]})")).ok());
  EXPECT_FALSE(ParseScenario(nlohmann::json::parse(R"({"turns":[{"tool_calls":[]}]})")).ok());
  EXPECT_FALSE(
      ParseScenario(nlohmann::json::parse(R"({"turns":[{"tool_calls":[{"arguments":{}}]}]})"))
          .ok());
  EXPECT_FALSE(ParseScenario(nlohmann::json::parse(R"({"turns":[],"after_last":"x"})")).ok());
}

TEST(ScenarioTest, BundledScenariosParse) {
  for (const char* name : {"basic", "error", "stall"}) {
    absl::StatusOr<Scenario> s =
        LoadScenarioFile(std::string("examples/scenarios/") + name + ".json");
    ASSERT_TRUE(s.ok()) << name << ": " << s.status();
    EXPECT_FALSE(s->turns.empty());
  }
  absl::StatusOr<Scenario> basic = LoadScenarioFile("examples/scenarios/basic.json");
  ASSERT_TRUE(basic.ok());
  EXPECT_EQ(basic->turns.back().kind, Turn::Kind::kText);
}

}  // namespace
}  // namespace fastest::tools::model_stub
