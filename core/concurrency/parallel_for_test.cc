#include "core/concurrency/parallel_for.h"

#include <atomic>
#include <vector>

#include "gtest/gtest.h"

namespace fastest::core {
namespace {

TEST(ParallelForTest, RunsEveryIndexOnce) {
  std::vector<std::atomic<int>> seen(1000);
  ASSERT_TRUE(ParallelFor(seen.size(), 4, [&](size_t i) {
                seen[i]++;
                return absl::OkStatus();
              }).ok());
  for (auto& count : seen) EXPECT_EQ(count.load(), 1);
}

TEST(ParallelForTest, FirstErrorWinsAndStopsNewItems) {
  std::atomic<int> started{0};
  absl::Status status = ParallelFor(10000, 2, [&](size_t i) {
    started++;
    if (i == 3) return absl::DataLossError("hash mismatch");
    return absl::OkStatus();
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_LT(started.load(), 10000);
}

TEST(ParallelForTest, ZeroItemsIsOk) {
  EXPECT_TRUE(ParallelFor(0, 8, [](size_t) { return absl::InternalError("never"); }).ok());
}

}  // namespace
}  // namespace fastest::core
