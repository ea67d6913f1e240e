#include "core/retry/backoff.h"

#include "gtest/gtest.h"

namespace fastest::core {
namespace {

BackoffPolicy Exact() {
  BackoffPolicy p;
  p.initial = absl::Milliseconds(100);
  p.max = absl::Milliseconds(700);
  p.multiplier = 2.0;
  p.min_factor = 1.0;
  p.max_factor = 1.0;
  p.max_attempts = 10;
  return p;
}

TEST(BackoffTest, GrowsExponentiallyUpToTheCap) {
  const BackoffPolicy p = Exact();
  EXPECT_EQ(BackoffWait(p, 0), absl::Milliseconds(100));
  EXPECT_EQ(BackoffWait(p, 1), absl::Milliseconds(200));
  EXPECT_EQ(BackoffWait(p, 2), absl::Milliseconds(400));
  EXPECT_EQ(BackoffWait(p, 3), absl::Milliseconds(700));
  EXPECT_EQ(BackoffWait(p, 1000), absl::Milliseconds(700));
}

TEST(BackoffTest, JitterStaysInItsRange) {
  BackoffPolicy p = Exact();
  p.min_factor = 0.5;
  p.max_factor = 1.0;
  for (int i = 0; i < 200; ++i) {
    absl::Duration w = BackoffWait(p, 1);
    EXPECT_GE(w, absl::Milliseconds(100));
    EXPECT_LE(w, absl::Milliseconds(200));
  }
}

TEST(BackoffTest, AtLeastRaisesTheWaitButNotPastTheCap) {
  const BackoffPolicy p = Exact();
  EXPECT_EQ(BackoffWait(p, 0, absl::Milliseconds(300)), absl::Milliseconds(300));
  EXPECT_EQ(BackoffWait(p, 0, absl::Seconds(30)), absl::Milliseconds(700));
  EXPECT_EQ(BackoffWait(p, 2, absl::Milliseconds(1)), absl::Milliseconds(400));
}

TEST(BackoffTest, StopsAfterMaxAttempts) {
  BackoffPolicy p = Exact();
  p.max_attempts = 3;
  Backoff backoff(p);
  EXPECT_EQ(backoff.NextWait(), absl::Milliseconds(100));  // after try 1
  EXPECT_EQ(backoff.NextWait(), absl::Milliseconds(200));  // after try 2
  EXPECT_EQ(backoff.NextWait(), std::nullopt);             // try 3 was the last
  EXPECT_EQ(backoff.attempts(), 3);
}

TEST(BackoffTest, StopsWhenTheNextWaitWouldPassMaxElapsed) {
  BackoffPolicy p = Exact();
  p.max_elapsed = absl::Milliseconds(250);
  Backoff backoff(p, absl::Now() - absl::Milliseconds(100));
  EXPECT_TRUE(backoff.NextWait().has_value());   // 100 ms elapsed + 100 ms wait: inside
  EXPECT_FALSE(backoff.NextWait().has_value());  // 100 ms elapsed + 200 ms wait > 250 ms
}

TEST(BackoffTest, OneAttemptMeansNoRetry) {
  BackoffPolicy p = Exact();
  p.max_attempts = 1;
  Backoff backoff(p);
  EXPECT_FALSE(backoff.NextWait().has_value());
}

}  // namespace
}  // namespace fastest::core
