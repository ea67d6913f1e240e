#include "server/dispatch/job_log_hub.h"

#include <stdlib.h>

#include <atomic>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fastest::server {
namespace {

std::string TempDir(const std::string& name) {
  const char* t = getenv("TEST_TMPDIR");
  return std::string(t ? t : "/tmp") + "/" + name + "/logs";
}

TEST(JobLogHubTest, WritesWholeLinesPerStreamAndReadsFromOffsets) {
  JobLogHub hub(TempDir("lines"));
  ASSERT_TRUE(hub.Init().ok());
  auto w = hub.OpenWriter("JOB1", {});
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE(hub.IsWriting("JOB1"));
  ASSERT_TRUE((*w)->Append(1, "out-a").ok());
  ASSERT_TRUE((*w)->Append(2, "err line\n").ok());  // does not cut the stdout line
  ASSERT_TRUE((*w)->Append(1, "-b\nout-c").ok());
  auto c = hub.Read("JOB1", 0, 1 << 20);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data, "err line\nout-a-b\n");
  EXPECT_EQ(c->next_offset, 17);
  (*w)->Close();  // the partial line is flushed
  EXPECT_FALSE(hub.IsWriting("JOB1"));
  c = hub.Read("JOB1", 9, 4);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data, "out-");
  EXPECT_EQ(c->next_offset, 13);
  EXPECT_EQ(c->size, 22);
  c = hub.Read("JOB1", 13, 100);
  EXPECT_EQ(c->data, "a-b\nout-c");
  // Past the end: nothing, the offset stays.
  c = hub.Read("JOB1", 500, 100);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data, "");
  EXPECT_EQ(c->next_offset, 500);
  EXPECT_FALSE(hub.Read("JOB1", -1, 10).ok());
}

TEST(JobLogHubTest, NoFileIsEmptyAndBadIdsAreRefused) {
  JobLogHub hub(TempDir("nofile"));
  ASSERT_TRUE(hub.Init().ok());
  auto c = hub.Read("NOPE", 0, 100);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data, "");
  EXPECT_EQ(c->size, 0);
  EXPECT_FALSE(hub.PathFor("../etc/passwd").ok());
  EXPECT_FALSE(hub.PathFor("").ok());
  EXPECT_FALSE(hub.OpenWriter("a/b", {}).ok());
}

TEST(JobLogHubTest, RedactsSecretsAndNotifiesSubscribers) {
  JobLogHub hub(TempDir("secrets"));
  ASSERT_TRUE(hub.Init().ok());
  std::atomic<int> calls{0};
  int64_t sub = hub.Subscribe("JOB2", [&] { ++calls; });
  int64_t other = hub.Subscribe("OTHER", [&] { calls += 100; });
  auto w = hub.OpenWriter("JOB2", {"fst_secret_token_value", "abc"});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(calls.load(), 1);  // writer opened
  // The token arrives split over two chunks: still redacted (lines are written whole).
  ASSERT_TRUE((*w)->Append(1, "token=fst_secret_").ok());
  EXPECT_EQ(calls.load(), 1);  // nothing written yet
  ASSERT_TRUE((*w)->Append(1, "token_value ok abc\n").ok());
  EXPECT_EQ(calls.load(), 2);
  hub.Unsubscribe(sub);
  (*w)->Close();
  EXPECT_EQ(calls.load(), 2);
  hub.Unsubscribe(other);
  auto c = hub.Read("JOB2", 0, 1000);
  ASSERT_TRUE(c.ok());
  // Too-short "secrets" are not redacted (they would shred ordinary text).
  EXPECT_EQ(c->data, "token=[redacted] ok abc\n");
  EXPECT_EQ(RedactSecrets("a-KEY123-b", {"KEY123"}), "a-[redacted]-b");
}

TEST(JobLogHubTest, DemandHandlerHearsReadersAndSubscribers) {
  JobLogHub hub(TempDir("demand"));
  ASSERT_TRUE(hub.Init().ok());
  std::vector<bool> calls;  // the `wait` argument of each call
  // A subscriber from before the handler existed is reported when the handler is set.
  int64_t early = hub.Subscribe("JOB3", [] {});
  hub.SetDemandHandler("JOB3", [&calls](bool wait) { calls.push_back(wait); });
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0]);
  int64_t late = hub.Subscribe("JOB3", [] {});
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_FALSE(calls[1]);
  ASSERT_TRUE(hub.Read("JOB3", 0, 100).ok());
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_TRUE(calls[2]);  // a read may wait for the capture
  // Other jobs do not trigger it; a cleared handler is not called.
  ASSERT_TRUE(hub.Read("JOB4", 0, 100).ok());
  hub.SetDemandHandler("JOB3", nullptr);
  ASSERT_TRUE(hub.Read("JOB3", 0, 100).ok());
  hub.Subscribe("JOB3", [] {});
  EXPECT_EQ(calls.size(), 3u);
  hub.Unsubscribe(early);
  hub.Unsubscribe(late);
}

TEST(JobLogHubTest, RedactsTokenShapedStrings) {
  const std::string token = "fst_0123456789abcdef0123456789abcdef0123456789abcdef";
  EXPECT_EQ(RedactApiTokens("a " + token + " b " + token + "\n"),
            "a [redacted] b [redacted]\n");
  // Too short, or not hex: left alone.
  EXPECT_EQ(RedactApiTokens("fst_0123 fst_zz"), "fst_0123 fst_zz");
}

TEST(JobLogHubTest, PositionCountsRawBytesPerStreamInTheFileUntilClosed) {
  JobLogHub hub(std::string(getenv("TEST_TMPDIR")) + "/position-logs");
  ASSERT_TRUE(hub.Init().ok());
  EXPECT_EQ(hub.CapturedPosition("JOB9").stdout_bytes, 0u);
  auto w = hub.OpenWriter("JOB9", {"secret-value"});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(1, "one secret-value\ntwo").ok());  // "two" is a partial line
  ASSERT_TRUE((*w)->Append(2, "err\n").ok());
  LogPosition at = hub.CapturedPosition("JOB9");
  EXPECT_EQ(at.stdout_bytes, 17u);  // raw bytes, before redaction
  EXPECT_EQ(at.stderr_bytes, 4u);
  (*w)->Close();
  EXPECT_EQ(hub.CapturedPosition("JOB9").stdout_bytes, 0u);  // complete: nothing to resume
}

}  // namespace
}  // namespace fastest::server
