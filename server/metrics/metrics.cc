#include "server/metrics/metrics.h"

#include "absl/strings/str_cat.h"

namespace fastest::server {

Metrics::Metrics()
    : bounds_({0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      buckets_(bounds_.size(), 0),
      boot_buckets_(bounds_.size(), 0) {}

void Metrics::ObserveDispatchLatency(absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (s <= bounds_[i]) ++buckets_[i];
  }
  latency_sum_ += s;
  ++latency_count_;
}

void Metrics::AddSandboxesRunning(int delta) {
  absl::MutexLock lock(&mu_);
  sandboxes_running_ += delta;
}

void Metrics::SetQueueLength(int n) {
  absl::MutexLock lock(&mu_);
  queue_length_ = n;
}

void Metrics::IncBackendError(absl::string_view op) {
  absl::MutexLock lock(&mu_);
  ++backend_errors_[std::string(op)];
}

void Metrics::IncDispatched() {
  absl::MutexLock lock(&mu_);
  ++dispatched_;
}

void Metrics::IncHttpRequest(int code) {
  absl::MutexLock lock(&mu_);
  ++http_requests_[code];
}

int Metrics::sandboxes_running() const {
  absl::MutexLock lock(&mu_);
  return sandboxes_running_;
}

int64_t Metrics::backend_errors() const {
  absl::MutexLock lock(&mu_);
  int64_t n = 0;
  for (const auto& [op, c] : backend_errors_) n += c;
  return n;
}

std::string Metrics::Render(const std::map<std::string, int64_t>& jobs_by_status) const {
  absl::MutexLock lock(&mu_);
  std::string out;
  out += "# HELP fastest_jobs Jobs in the store by status.\n# TYPE fastest_jobs gauge\n";
  for (const auto& [status, n] : jobs_by_status) {
    absl::StrAppend(&out, "fastest_jobs{status=\"", status, "\"} ", n, "\n");
  }
  out +=
      "# HELP fastest_dispatch_latency_seconds Time from claiming a job to its sandbox running.\n"
      "# TYPE fastest_dispatch_latency_seconds histogram\n";
  for (size_t i = 0; i < bounds_.size(); ++i) {
    absl::StrAppend(&out, "fastest_dispatch_latency_seconds_bucket{le=\"", bounds_[i], "\"} ",
                    buckets_[i], "\n");
  }
  absl::StrAppend(&out, "fastest_dispatch_latency_seconds_bucket{le=\"+Inf\"} ", latency_count_,
                  "\n");
  absl::StrAppend(&out, "fastest_dispatch_latency_seconds_sum ", latency_sum_, "\n");
  absl::StrAppend(&out, "fastest_dispatch_latency_seconds_count ", latency_count_, "\n");
  absl::StrAppend(&out,
                  "# HELP fastest_sandboxes_running Sandboxes started and not yet removed.\n"
                  "# TYPE fastest_sandboxes_running gauge\nfastest_sandboxes_running ",
                  sandboxes_running_, "\n");
  absl::StrAppend(&out,
                  "# HELP fastest_dispatch_queue_length Claimed jobs waiting for a slot.\n"
                  "# TYPE fastest_dispatch_queue_length gauge\nfastest_dispatch_queue_length ",
                  queue_length_, "\n");
  absl::StrAppend(&out,
                  "# HELP fastest_jobs_dispatched_total Jobs whose sandbox was started.\n"
                  "# TYPE fastest_jobs_dispatched_total counter\nfastest_jobs_dispatched_total ",
                  dispatched_, "\n");
  out +=
      "# HELP fastest_backend_errors_total Failed sandbox backend calls by operation.\n"
      "# TYPE fastest_backend_errors_total counter\n";
  int64_t total = 0;
  for (const auto& [op, n] : backend_errors_) {
    absl::StrAppend(&out, "fastest_backend_errors_total{op=\"", op, "\"} ", n, "\n");
    total += n;
  }
  if (backend_errors_.empty()) out += "fastest_backend_errors_total{op=\"create\"} 0\n";
  out +=
      "# HELP fastest_http_requests_total HTTP requests by status code.\n"
      "# TYPE fastest_http_requests_total counter\n";
  for (const auto& [code, n] : http_requests_) {
    absl::StrAppend(&out, "fastest_http_requests_total{code=\"", code, "\"} ", n, "\n");
  }
  absl::StrAppend(
      &out,
      "# HELP fastest_model_gateway_requests_total Model requests relayed for sandboxes.\n"
      "# TYPE fastest_model_gateway_requests_total counter\nfastest_model_gateway_requests_total ",
      gateway_requests_,
      "\n# HELP fastest_model_gateway_bytes_total Bytes relayed by the model gateway.\n"
      "# TYPE fastest_model_gateway_bytes_total counter\n"
      "fastest_model_gateway_bytes_total{direction=\"up\"} ",
      gateway_bytes_up_, "\nfastest_model_gateway_bytes_total{direction=\"down\"} ",
      gateway_bytes_down_, "\n");
  (void)total;
  if (warm_pool_) {
    absl::StrAppend(
        &out,
        "# HELP fastest_warm_pool_sandboxes Idle warm sandboxes: ready (runner standing by) or "
        "booting.\n# TYPE fastest_warm_pool_sandboxes gauge\n"
        "fastest_warm_pool_sandboxes{state=\"ready\"} ",
        warm_ready_, "\nfastest_warm_pool_sandboxes{state=\"booting\"} ", warm_booting_,
        "\n# HELP fastest_warm_pool_takes_total Jobs that got a warm sandbox.\n"
        "# TYPE fastest_warm_pool_takes_total counter\nfastest_warm_pool_takes_total ",
        warm_takes_,
        "\n# HELP fastest_warm_pool_misses_total Jobs that found no ready warm sandbox (cold "
        "path).\n# TYPE fastest_warm_pool_misses_total counter\nfastest_warm_pool_misses_total ",
        warm_misses_, "\n");
    out +=
        "# HELP fastest_warm_pool_retired_total Warm sandboxes removed without serving a job, by "
        "reason (lost: taken, but ended before its runner started the job, which ran cold).\n"
        "# TYPE fastest_warm_pool_retired_total counter\n";
    for (const char* reason : {"ttl", "evicted", "dead", "drain", "lost"}) {
      auto it = warm_retired_.find(reason);
      absl::StrAppend(&out, "fastest_warm_pool_retired_total{reason=\"", reason, "\"} ",
                      it == warm_retired_.end() ? 0 : it->second, "\n");
    }
    out +=
        "# HELP fastest_warm_pool_boot_seconds Warm sandbox start to its runner standing by.\n"
        "# TYPE fastest_warm_pool_boot_seconds histogram\n";
    for (size_t i = 0; i < bounds_.size(); ++i) {
      absl::StrAppend(&out, "fastest_warm_pool_boot_seconds_bucket{le=\"", bounds_[i], "\"} ",
                      boot_buckets_[i], "\n");
    }
    absl::StrAppend(&out, "fastest_warm_pool_boot_seconds_bucket{le=\"+Inf\"} ", boot_count_,
                    "\nfastest_warm_pool_boot_seconds_sum ", boot_sum_,
                    "\nfastest_warm_pool_boot_seconds_count ", boot_count_, "\n");
  }
  return out;
}

void Metrics::SetWarmPool(int ready, int booting) {
  absl::MutexLock lock(&mu_);
  warm_pool_ = true;
  warm_ready_ = ready;
  warm_booting_ = booting;
}

void Metrics::IncWarmTake() {
  absl::MutexLock lock(&mu_);
  ++warm_takes_;
}

void Metrics::IncWarmMiss() {
  absl::MutexLock lock(&mu_);
  ++warm_misses_;
}

void Metrics::IncWarmRetired(absl::string_view reason) {
  absl::MutexLock lock(&mu_);
  ++warm_retired_[std::string(reason)];
}

void Metrics::ObserveWarmBoot(absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (s <= bounds_[i]) ++boot_buckets_[i];
  }
  boot_sum_ += s;
  ++boot_count_;
}

void Metrics::AddModelGatewayRequest(int64_t bytes_up, int64_t bytes_down) {
  absl::MutexLock lock(&mu_);
  ++gateway_requests_;
  gateway_bytes_up_ += bytes_up;
  gateway_bytes_down_ += bytes_down;
}

}  // namespace fastest::server
