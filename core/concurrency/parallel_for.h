// File: core/concurrency/parallel_for.h
//
// ParallelFor: runs fn(i) for every i in [0, n) on up to `parallelism` threads (the calling thread
// alone when that is 1). The first error wins: no new items start after it, and it is returned.
// Used for bounded parallel blob transfers and file writes.
#ifndef FASTEST_CORE_CONCURRENCY_PARALLEL_FOR_H_
#define FASTEST_CORE_CONCURRENCY_PARALLEL_FOR_H_

#include <cstddef>
#include <functional>

#include "absl/status/status.h"

namespace fastest::core {

absl::Status ParallelFor(size_t n, int parallelism,
                         const std::function<absl::Status(size_t)>& fn);

}  // namespace fastest::core

#endif  // FASTEST_CORE_CONCURRENCY_PARALLEL_FOR_H_
