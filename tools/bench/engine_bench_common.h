// File: tools/bench/engine_bench_common.h
//
// Shared by the benchmarks that start containers (dispatch_bench, agent_bench): failing fast,
// percentiles, and the raw-engine baseline — the sandbox spec the dispatcher builds, started
// straight through the engine API, timed to its first log line by the engine's own timestamp.
#ifndef FASTEST_TOOLS_BENCH_ENGINE_BENCH_COMMON_H_
#define FASTEST_TOOLS_BENCH_ENGINE_BENCH_COMMON_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/engine_api/engine_backend.h"
#include "backends/engine_api/engine_client.h"
#include "core/http/http_client.h"
#include "core/plugin/sandbox_types.h"

namespace fastest::bench {

using backends::engine_api::ContainerSpec;

// Prints "<program>: msg" and exits 1.
[[noreturn]] void Die(const std::string& msg);

template <typename T>
T Check(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(absl::StrCat(what, ": ", v.status().ToString()));
  return std::move(*v);
}
void Check(const absl::Status& s, const std::string& what);

inline double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// Nearest-rank percentile; NaN for no samples.
double Percentile(std::vector<double> v, double p);

struct Series {
  std::string name;
  std::vector<double> ms;
  void Add(absl::Duration d) { ms.push_back(Ms(d)); }
  double p50() const { return Percentile(ms, 0.5); }
  double p90() const { return Percentile(ms, 0.9); }
};

void PrintSeries(const Series& s);

// The engine endpoint and a raw HTTP client on it (for what EngineClient does not expose: log
// timestamps, libpod create).
struct RawEngine {
  core::Endpoint endpoint;
  core::HttpClient http;
  std::string libpod_version;  // podman only, e.g. "4.3.1"
  bool podman = false;
};

// Time at which the engine received the container's first log line (stdout or stderr) at or
// after `since`, following the log until it appears (or `timeout`).
absl::StatusOr<absl::Time> FirstLogLineOnce(RawEngine& raw, const std::string& id,
                                            absl::Duration timeout,
                                            absl::Time since = absl::InfinitePast());

// The sandbox spec the dispatcher builds for a job (server/dispatch/dispatcher.cc), so the raw
// containers are the same containers minus fastest.
core::SandboxSpec DispatcherLikeSpec(const std::string& image, std::vector<std::string> command);

// Podman's conmon log file timestamp of the first line at or after `since` (its logs API rounds
// to seconds).
absl::StatusOr<absl::Time> FirstLogLineFromConmonFile(RawEngine& raw, const std::string& id,
                                                      absl::Time since = absl::InfinitePast());

// First log line time at or after `since`, asking again until a line arrives (a container found by
// label may not be started yet); the timestamp is the engine's, so retrying adds no bias.
absl::StatusOr<absl::Time> FirstLogLineTime(RawEngine& raw, const std::string& id,
                                            absl::Duration timeout,
                                            absl::Time since = absl::InfinitePast());

// The engine options the docker or podman plugin uses by default (same client, same container
// spec for the raw runs).
using backends::engine_api::EngineBackendOptions;
absl::StatusOr<EngineBackendOptions> EngineBackendOptionsFor(const std::string& backend);

// Raw podman libpod create/start of `spec`.
absl::StatusOr<std::string> LibpodCreate(RawEngine& raw, const ContainerSpec& spec);
absl::Status LibpodStart(RawEngine& raw, const std::string& id);

// One raw cold start: create + start `spec` (Engine API, or libpod's own when `libpod`) -> its
// first log line; the container is removed. first_line / create_start are from the create call.
struct RawColdSample {
  absl::Duration first_line;
  absl::Duration create_start;
};
RawColdSample RawColdStart(RawEngine& raw, backends::engine_api::EngineClient& engine,
                           const ContainerSpec& spec, bool libpod);

}  // namespace fastest::bench

#endif  // FASTEST_TOOLS_BENCH_ENGINE_BENCH_COMMON_H_
