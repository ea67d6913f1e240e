#include "core/concurrency/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace fastest::core {

absl::Status ParallelFor(size_t n, int parallelism,
                         const std::function<absl::Status(size_t)>& fn) {
  if (n == 0) return absl::OkStatus();
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  absl::Status first;
  auto worker = [&]() {
    while (!failed.load()) {
      size_t i = next.fetch_add(1);
      if (i >= n) return;
      absl::Status status = fn(i);
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok()) first = status;
        failed = true;
        return;
      }
    }
  };
  const int threads = std::max(1, std::min<int>(parallelism, static_cast<int>(n)));
  if (threads == 1) {
    worker();
    return first;
  }
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  return first;
}

}  // namespace fastest::core
