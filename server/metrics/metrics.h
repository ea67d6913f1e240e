// File: server/metrics/metrics.h
//
// Metrics: the counters behind GET /metrics, rendered in the Prometheus text format (0.0.4):
//   fastest_jobs{status="..."}                  gauge, from the store at scrape time
//   fastest_dispatch_latency_seconds            histogram, claim -> sandbox started
//   fastest_sandboxes_running                   gauge
//   fastest_dispatch_queue_length               gauge
//   fastest_backend_errors_total{op="..."}      counter (create, wait, kill, remove, list, logs)
//   fastest_jobs_dispatched_total               counter
//   fastest_http_requests_total{code="..."}     counter
//   fastest_warm_pool_sandboxes{state="ready|booting"}  gauge, idle warm sandboxes
//   fastest_warm_pool_takes_total / _misses_total       counters: jobs given a warm sandbox / not
//   fastest_warm_pool_retired_total{reason="ttl|evicted|dead|drain"}  counter
//   fastest_warm_pool_boot_seconds              histogram, sandbox start -> runner standing by
// Thread-safe.
#ifndef FASTEST_SERVER_METRICS_METRICS_H_
#define FASTEST_SERVER_METRICS_METRICS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fastest::server {

class Metrics {
 public:
  Metrics();
  void ObserveDispatchLatency(absl::Duration d);
  void AddSandboxesRunning(int delta);
  void SetQueueLength(int n);
  void IncBackendError(absl::string_view op);
  void IncDispatched();
  void IncHttpRequest(int code);
  // One request relayed by the sandbox model gateway (server/channel/model_gateway.h).
  void AddModelGatewayRequest(int64_t bytes_up, int64_t bytes_down);
  // The warm pool (server/dispatch/warm_pool.h).
  void SetWarmPool(int ready, int booting);
  void IncWarmTake();
  void IncWarmMiss();
  void IncWarmRetired(absl::string_view reason);
  void ObserveWarmBoot(absl::Duration d);

  int sandboxes_running() const;
  int64_t backend_errors() const;

  std::string Render(const std::map<std::string, int64_t>& jobs_by_status) const;

 private:
  mutable absl::Mutex mu_;
  std::vector<double> bounds_;
  std::vector<int64_t> buckets_ ABSL_GUARDED_BY(mu_);
  double latency_sum_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t latency_count_ ABSL_GUARDED_BY(mu_) = 0;
  int sandboxes_running_ ABSL_GUARDED_BY(mu_) = 0;
  int queue_length_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dispatched_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> backend_errors_ ABSL_GUARDED_BY(mu_);
  std::map<int, int64_t> http_requests_ ABSL_GUARDED_BY(mu_);
  int64_t gateway_requests_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t gateway_bytes_up_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t gateway_bytes_down_ ABSL_GUARDED_BY(mu_) = 0;
  bool warm_pool_ ABSL_GUARDED_BY(mu_) = false;  // rendered once a pool reported
  int warm_ready_ ABSL_GUARDED_BY(mu_) = 0;
  int warm_booting_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t warm_takes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t warm_misses_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> warm_retired_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> boot_buckets_ ABSL_GUARDED_BY(mu_);
  double boot_sum_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t boot_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_METRICS_METRICS_H_
