#include "backends/engine_api/log_demuxer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fastest::backends::engine_api {
namespace {

std::string Frame(int stream, const std::string& payload) {
  std::string out(8, '\0');
  out[0] = static_cast<char>(stream);
  uint32_t n = static_cast<uint32_t>(payload.size());
  out[4] = static_cast<char>((n >> 24) & 0xff);
  out[5] = static_cast<char>((n >> 16) & 0xff);
  out[6] = static_cast<char>((n >> 8) & 0xff);
  out[7] = static_cast<char>(n & 0xff);
  return out + payload;
}

struct Collected {
  std::string out, err, order;  // order: "1"/"2" per delivered piece, merged per run
};

Collected Demux(const std::vector<std::string>& chunks, bool* boundary) {
  Collected c;
  LogDemuxer demux([&](int stream, absl::string_view data) {
    EXPECT_FALSE(data.empty());
    (stream == 2 ? c.err : c.out).append(data.data(), data.size());
    char tag = stream == 2 ? 'E' : 'O';
    if (c.order.empty() || c.order.back() != tag) c.order.push_back(tag);
    return true;
  });
  for (const std::string& chunk : chunks) EXPECT_TRUE(demux.Feed(chunk));
  *boundary = demux.AtFrameBoundary();
  return c;
}

TEST(LogDemuxerTest, WholeStreamInOneChunk) {
  std::string stream = Frame(1, "hello\n") + Frame(2, "oops\n") + Frame(1, "bye\n");
  bool boundary = false;
  Collected c = Demux({stream}, &boundary);
  EXPECT_EQ(c.out, "hello\nbye\n");
  EXPECT_EQ(c.err, "oops\n");
  EXPECT_EQ(c.order, "OEO");
  EXPECT_TRUE(boundary);
}

TEST(LogDemuxerTest, SplitAtEveryByteBoundary) {
  // Two splits anywhere: covers split headers, split payloads and empty frames.
  std::string big(300, 'x');
  std::string stream = Frame(1, "out-1\n") + Frame(2, "err-1\n") + Frame(1, "") +
                       Frame(2, big) + Frame(0, "in\n") + Frame(1, "z");
  for (size_t i = 0; i <= stream.size(); ++i) {
    for (size_t j = i; j <= stream.size(); j += 7) {
      bool boundary = false;
      Collected c = Demux({stream.substr(0, i), stream.substr(i, j - i), stream.substr(j)},
                          &boundary);
      ASSERT_EQ(c.out, "out-1\nin\nz") << "split at " << i << "," << j;
      ASSERT_EQ(c.err, "err-1\n" + big) << "split at " << i << "," << j;
      ASSERT_EQ(c.order, "OEO");
      ASSERT_TRUE(boundary);
    }
  }
}

TEST(LogDemuxerTest, OneByteAtATime) {
  std::string stream = Frame(2, "a") + Frame(1, "bc") + Frame(2, "def");
  std::vector<std::string> chunks;
  for (char ch : stream) chunks.push_back(std::string(1, ch));
  bool boundary = false;
  Collected c = Demux(chunks, &boundary);
  EXPECT_EQ(c.out, "bc");
  EXPECT_EQ(c.err, "adef");
  EXPECT_TRUE(boundary);
}

TEST(LogDemuxerTest, TruncatedStreamIsNotAtBoundary) {
  std::string stream = Frame(1, "hello");
  bool boundary = true;
  Demux({stream.substr(0, 10)}, &boundary);
  EXPECT_FALSE(boundary);
  Demux({stream.substr(0, 3)}, &boundary);
  EXPECT_FALSE(boundary);
}

TEST(LogDemuxerTest, SinkStopsTheStream) {
  int calls = 0;
  LogDemuxer demux([&](int, absl::string_view) { return ++calls < 2; });
  std::string stream = Frame(1, "a") + Frame(1, "b") + Frame(1, "c");
  EXPECT_FALSE(demux.Feed(stream));
  EXPECT_TRUE(demux.stopped());
  EXPECT_FALSE(demux.Feed(Frame(1, "d")));
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace fastest::backends::engine_api
