#include "core/retry/backoff.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <thread>

namespace fastest::core {

absl::Duration BackoffWait(const BackoffPolicy& policy, int retry_index, absl::Duration at_least) {
  // Seeded per thread: clients retrying in parallel must not wait in lockstep.
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   std::hash<std::thread::id>()(std::this_thread::get_id()));
  const double growth = std::pow(policy.multiplier, std::min(std::max(retry_index, 0), 60));
  const absl::Duration base = std::min(policy.initial * growth, policy.max);
  std::uniform_real_distribution<double> factor(policy.min_factor, policy.max_factor);
  absl::Duration wait = base * factor(rng);
  if (at_least > wait) wait = std::min(at_least, policy.max);
  return wait;
}

Backoff::Backoff(const BackoffPolicy& policy, absl::Time start) : policy_(policy), start_(start) {}

std::optional<absl::Duration> Backoff::NextWait(absl::Duration at_least) {
  ++attempts_;
  if (attempts_ >= policy_.max_attempts) return std::nullopt;
  const absl::Duration wait = BackoffWait(policy_, attempts_ - 1, at_least);
  if (absl::Now() + wait - start_ > policy_.max_elapsed) return std::nullopt;
  return wait;
}

}  // namespace fastest::core
