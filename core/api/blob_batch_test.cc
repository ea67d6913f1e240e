#include "core/api/blob_batch.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

using ::testing::HasSubstr;

const std::string kHashA(64, 'a');
const std::string kHashB(64, 'b');
const std::string kHashC(64, 'c');

struct Seen {
  std::string hash;
  bool missing;
  std::string data;
};

absl::Status FeedAll(BlobBatchReader& reader, const std::string& body, size_t chunk,
                     std::vector<Seen>* seen) {
  for (size_t off = 0; off < body.size(); off += chunk) {
    absl::Status s = reader.Feed(absl::string_view(body).substr(off, chunk),
                                 [&](const BlobFrame& f) {
                                   seen->push_back({std::string(f.hash), f.missing,
                                                    std::string(f.data)});
                                   return absl::OkStatus();
                                 });
    if (!s.ok()) return s;
  }
  return reader.Finish();
}

TEST(BlobBatchTest, RoundTripInAnyChunking) {
  std::string body;
  AppendBlobFrame(&body, kHashA, "hello");
  AppendMissingFrame(&body, kHashB);
  AppendBlobFrame(&body, kHashC, "");
  AppendBlobFrame(&body, kHashA, std::string(100000, 'x'));
  EXPECT_EQ(body.substr(0, 72), kHashA + " 5\nhello");
  for (size_t chunk : {1u, 7u, 64u, 70u, 4096u, 1u << 20}) {
    BlobBatchReader reader(1 << 20);
    std::vector<Seen> seen;
    ASSERT_TRUE(FeedAll(reader, body, chunk, &seen).ok()) << chunk;
    ASSERT_EQ(seen.size(), 4u) << chunk;
    EXPECT_EQ(seen[0].hash, kHashA);
    EXPECT_EQ(seen[0].data, "hello");
    EXPECT_TRUE(seen[1].missing);
    EXPECT_EQ(seen[2].data, "");
    EXPECT_FALSE(seen[2].missing);
    EXPECT_EQ(seen[3].data.size(), 100000u);
    EXPECT_EQ(reader.frames(), 4u);
  }
}

TEST(BlobBatchTest, TruncatedBodyFailsAtFinish) {
  std::string body;
  AppendBlobFrame(&body, kHashA, "hello");
  body.pop_back();
  BlobBatchReader reader(1 << 20);
  std::vector<Seen> seen;
  absl::Status s = FeedAll(reader, body, 3, &seen);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("ends inside a frame"));
  EXPECT_TRUE(seen.empty());
}

TEST(BlobBatchTest, MalformedHeadersRejected) {
  const std::vector<std::string> bad = {
      "not a frame\n",
      absl::StrCat(std::string(64, 'A'), " 1\nx"),  // upper-case hex
      absl::StrCat(kHashA, " -1\n"),
      absl::StrCat(kHashA, " +1\nx"),
      absl::StrCat(kHashA, " 1x\nx"),
      absl::StrCat(kHashA, "  1\nx"),
      absl::StrCat(kHashA, " \n"),
      absl::StrCat(kHashA, " 99999999999999999999\n"),
      absl::StrCat(kHashA, std::string(200, ' ')),  // no newline within the header limit
      absl::StrCat(kHashA, " 2000000\n"),            // over max_frame_bytes
  };
  for (const std::string& body : bad) {
    BlobBatchReader reader(1 << 20);
    std::vector<Seen> seen;
    absl::Status s = FeedAll(reader, body, body.size(), &seen);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << body.substr(0, 80);
    EXPECT_THAT(std::string(s.message()), HasSubstr("malformed blob batch")) << body.substr(0, 80);
  }
}

TEST(BlobBatchTest, MissingFramesRefusedWhenNotAllowed) {
  std::string body;
  AppendMissingFrame(&body, kHashA);
  BlobBatchReader reader(1 << 20, /*allow_missing=*/false);
  std::vector<Seen> seen;
  EXPECT_TRUE(absl::IsInvalidArgument(FeedAll(reader, body, body.size(), &seen)));
}

TEST(BlobBatchTest, CallbackErrorStopsAndSticks) {
  std::string body;
  AppendBlobFrame(&body, kHashA, "1");
  AppendBlobFrame(&body, kHashB, "2");
  BlobBatchReader reader(1 << 20);
  int calls = 0;
  absl::Status s = reader.Feed(body, [&](const BlobFrame&) {
    ++calls;
    return absl::DataLossError("stop");
  });
  EXPECT_TRUE(absl::IsDataLoss(s));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(absl::IsDataLoss(reader.Feed("x", [](const BlobFrame&) { return absl::OkStatus(); })));
}

}  // namespace
}  // namespace fastest::core
