// File: server/dispatch/stragglers.h
//
// Stragglers: a count of log-follow threads that were let go (detached) and have not ended yet.
// Shared with those threads through a shared_ptr, so it outlives the dispatcher; Dispatcher::Stop()
// waits a little for them before the backend is destroyed.
#ifndef FASTEST_SERVER_DISPATCH_STRAGGLERS_H_
#define FASTEST_SERVER_DISPATCH_STRAGGLERS_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/time/time.h"

namespace fastest::server {

class Stragglers {
 public:
  void Add() {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
  }
  void Done() {
    std::lock_guard<std::mutex> lock(mu_);
    --count_;
    cv_.notify_all();
  }
  // True when none is left within `timeout`.
  bool WaitNone(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
                        [&] { return count_ == 0; });
  }
  int Count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_DISPATCH_STRAGGLERS_H_
