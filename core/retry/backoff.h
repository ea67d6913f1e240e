// File: core/retry/backoff.h
//
// Exponential backoff with jitter, the one retry schedule of fastest's clients (the /v1 API client,
// the Cloudflare bridge client). Try k (1-based) is followed by a wait of
//   min(initial * multiplier^(k-1), max) * uniform(min_factor, max_factor)
// (never shorter than a server's Retry-After, never longer than max), until max_attempts tries
// were made or the next wait would end past max_elapsed since the first try.
//
// Example:
//   Backoff backoff(policy);
//   while (true) {
//     ... try; return on success or on a permanent failure ...
//     std::optional<absl::Duration> wait = backoff.NextWait();
//     if (!wait) return last_error;
//     absl::SleepFor(*wait);
//   }
#ifndef FASTEST_CORE_RETRY_BACKOFF_H_
#define FASTEST_CORE_RETRY_BACKOFF_H_

#include <optional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fastest::core {

struct BackoffPolicy {
  int max_attempts = 8;  // tries in all, the first included
  absl::Duration initial = absl::Milliseconds(100);
  absl::Duration max = absl::Seconds(5);
  double multiplier = 2.0;
  // The wait is scaled by a random factor in [min_factor, max_factor].
  double min_factor = 0.8;
  double max_factor = 1.2;
  absl::Duration max_elapsed = absl::InfiniteDuration();
};

// BackoffWait: the wait after try `retry_index` + 1 (0-based: 0 = after the first try), raised
// to `at_least` (capped at max). For loops that count their own tries.
absl::Duration BackoffWait(const BackoffPolicy& policy, int retry_index,
                           absl::Duration at_least = absl::ZeroDuration());

// Counts tries and elapsed time for one retried call. Not thread-safe: one Backoff per call.
class Backoff {
 public:
  explicit Backoff(const BackoffPolicy& policy, absl::Time start = absl::Now());

  // The wait before the next try, or nullopt when no try is left. `at_least` raises the wait
  // (a server's Retry-After), still capped at the policy's max.
  std::optional<absl::Duration> NextWait(absl::Duration at_least = absl::ZeroDuration());

  // Tries made so far (NextWait counts the try it follows).
  int attempts() const { return attempts_; }

 private:
  BackoffPolicy policy_;
  absl::Time start_;
  int attempts_ = 0;
};

}  // namespace fastest::core

#endif  // FASTEST_CORE_RETRY_BACKOFF_H_
