#include "backends/cloudflare/bridge_protocol.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace fastest::backends::cloudflare {
namespace {

TEST(BridgeProtocolTest, SandboxIds) {
  EXPECT_TRUE(IsValidSandboxId("abcxyz234567"));
  EXPECT_FALSE(IsValidSandboxId(""));
  EXPECT_FALSE(IsValidSandboxId("ABC"));
  EXPECT_FALSE(IsValidSandboxId("abc1"));  // 1 is not in the base32 alphabet
  EXPECT_FALSE(IsValidSandboxId("abc8"));
  EXPECT_FALSE(IsValidSandboxId(std::string(129, 'a')));
  EXPECT_TRUE(IsValidSandboxId(std::string(128, 'a')));
  for (int i = 0; i < 20; ++i) {
    std::string id = NewSandboxId();
    EXPECT_EQ(id.size(), 26u);
    EXPECT_TRUE(IsValidSandboxId(id)) << id;
  }
  EXPECT_NE(NewSandboxId(), NewSandboxId());
}

TEST(BridgeProtocolTest, SessionIds) {
  EXPECT_TRUE(IsValidSessionId("job-1.a_b"));
  EXPECT_FALSE(IsValidSessionId("a..b"));
  EXPECT_FALSE(IsValidSessionId("a/b"));
  EXPECT_FALSE(IsValidSessionId(""));
}

TEST(BridgeProtocolTest, QuotesArgvLikeTheBridge) {
  EXPECT_EQ(QuoteArgvForBridge({"sh", "-lc", "echo hello"}), "sh -lc $'echo hello'");
  EXPECT_EQ(QuoteArgElement("a@b%c+d=e:f,g./-"), "a@b%c+d=e:f,g./-");
  EXPECT_EQ(QuoteArgElement(""), "$''");
  EXPECT_EQ(QuoteArgElement("it's\n\t\\"), "$'it\\'s\\n\\t\\\\'");
  EXPECT_EQ(QuoteArgElement("$HOME"), "$'$HOME'");
}

TEST(BridgeProtocolTest, ShellQuote) {
  EXPECT_EQ(ShellQuote("a b"), "'a b'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
}

TEST(BridgeProtocolTest, WorkspaceConfinement) {
  EXPECT_EQ(*ResolveWorkspacePath("workspace/a/../b.txt"), "/workspace/b.txt");
  EXPECT_EQ(*ResolveWorkspacePath("workspace"), "/workspace");
  EXPECT_EQ(*ResolveWorkspacePath("workspace/./x//y/"), "/workspace/x/y");
  EXPECT_TRUE(absl::IsPermissionDenied(ResolveWorkspacePath("etc/passwd").status()));
  EXPECT_TRUE(absl::IsPermissionDenied(ResolveWorkspacePath("workspace/../etc").status()));
  EXPECT_TRUE(absl::IsPermissionDenied(ResolveWorkspacePath("workspacex/a").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveWorkspacePath("").status()));
  EXPECT_EQ(*ResolveCwd("src"), "/workspace/src");
  EXPECT_EQ(*ResolveCwd("/workspace/src/.."), "/workspace");
  EXPECT_TRUE(absl::IsPermissionDenied(ResolveCwd("/tmp").status()));
  EXPECT_TRUE(absl::IsPermissionDenied(ResolveCwd("../etc").status()));
}

TEST(BridgeProtocolTest, DecodeUriKeepsReservedEscapes) {
  EXPECT_EQ(DecodeUriPath("a%20b"), "a b");
  EXPECT_EQ(DecodeUriPath("%C3%A9"), "\xC3\xA9");
  EXPECT_EQ(DecodeUriPath("a%2Fb%3F%23%25"), "a%2Fb%3F%23%25");
  EXPECT_EQ(DecodeUriPath("bad%zz%"), "bad%zz%");
  EXPECT_EQ(EncodeUriPath("workspace/a b/é"), "workspace/a%20b/%C3%A9");
  EXPECT_EQ(DecodeUriPath(EncodeUriPath("workspace/x y.txt")), "workspace/x y.txt");
}

TEST(BridgeProtocolTest, ErrorJsonAndSseEvent) {
  EXPECT_EQ(BridgeErrorJson("Unauthorized", "unauthorized"),
            "{\"error\":\"Unauthorized\",\"code\":\"unauthorized\"}");
  EXPECT_EQ(SseEvent("stdout", "aGk="), "event: stdout\ndata: aGk=\n\n");
}

TEST(SseParserTest, ParsesSplitChunksAndLineEndings) {
  std::vector<std::pair<std::string, std::string>> events;
  SseParser parser([&](absl::string_view e, absl::string_view d) {
    events.emplace_back(std::string(e), std::string(d));
    return true;
  });
  std::string stream =
      "event: stdout\r\ndata: aGVsbG8K\r\n\r\n: comment\n\nevent: exit\ndata: {\"exit_code\":0}\n\n"
      "data: a\ndata: b\n\n";
  for (char c : stream) ASSERT_TRUE(parser.Feed(std::string(1, c)));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0], std::make_pair(std::string("stdout"), std::string("aGVsbG8K")));
  EXPECT_EQ(events[1].first, "exit");
  EXPECT_EQ(events[1].second, "{\"exit_code\":0}");
  EXPECT_EQ(events[2].first, "message");
  EXPECT_EQ(events[2].second, "a\nb");
  EXPECT_FALSE(parser.pending());
}

TEST(SseParserTest, StopsWhenCallbackSaysSoAndReportsPending) {
  int calls = 0;
  SseParser parser([&](absl::string_view, absl::string_view) { return ++calls < 1; });
  EXPECT_FALSE(parser.Feed("event: a\ndata: 1\n\nevent: b\ndata: 2\n\n"));
  EXPECT_EQ(calls, 1);
  SseParser partial([](absl::string_view, absl::string_view) { return true; });
  partial.Feed("event: exit\ndata: {");
  EXPECT_TRUE(partial.pending());
}

TEST(Utf8SanitizerTest, ReplacesInvalidAndHoldsSplitSequences) {
  Utf8Sanitizer s;
  EXPECT_EQ(s.Feed("ok\xC3"), "ok");
  EXPECT_EQ(s.Feed("\xA9!"), "\xC3\xA9!");
  EXPECT_EQ(s.Feed("\xFF"), "\xEF\xBF\xBD");
  EXPECT_EQ(s.Feed("\xE2\x82x"), "\xEF\xBF\xBDx");
  EXPECT_EQ(s.Feed("\xF0\x9F"), "");
  EXPECT_EQ(s.Flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(s.Feed("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

}  // namespace
}  // namespace fastest::backends::cloudflare
