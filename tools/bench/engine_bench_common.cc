#include "tools/bench/engine_bench_common.h"

#include <errno.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "backends/docker/docker_backend.h"
#include "backends/engine_api/log_demuxer.h"
#include "backends/podman/podman_backend.h"
#include "nlohmann/json.hpp"

namespace fastest::bench {

[[noreturn]] void Die(const std::string& msg) {
  fprintf(stderr, "%s: %s\n", program_invocation_short_name, msg.c_str());
  std::exit(1);
}

void Check(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Die(absl::StrCat(what, ": ", s.ToString()));
}

// Nearest-rank percentile.
double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p * v.size()));
  if (rank < 1) rank = 1;
  return v[std::min(rank, v.size()) - 1];
}

void PrintSeries(const Series& s) {
  printf("  %-52s n=%-3zu p50 %8.1f ms   p90 %8.1f ms\n", s.name.c_str(), s.ms.size(), s.p50(),
         s.p90());
}

absl::StatusOr<absl::Time> FirstLogLineOnce(RawEngine& raw, const std::string& id,
                                            absl::Duration timeout, absl::Time since) {
  core::HttpRequest req;
  req.url = absl::StrCat(raw.endpoint.base_url, "/containers/", id,
                         "/logs?stdout=1&stderr=1&follow=1&timestamps=1");
  // The engine's `since` takes whole seconds: ask from a second early, filter here to the
  // nanosecond.
  if (since != absl::InfinitePast()) {
    absl::StrAppend(&req.url, "&since=", absl::ToInt64Seconds(since - absl::UnixEpoch()) - 1);
  }
  req.unix_socket = raw.endpoint.unix_socket;
  req.timeout = std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout));
  // Every line starts with the engine's RFC 3339 timestamp and a space (timestamps=1).
  struct LineStart {
    std::string timestamp;
    bool in_text = false;  // past the timestamp: skip to the end of the line
  } lines[2];
  std::optional<absl::Time> first;
  absl::Status bad;
  backends::engine_api::LogDemuxer demux([&](int stream, absl::string_view data) {
    LineStart& line = lines[stream == 2 ? 1 : 0];
    for (char c : data) {
      if (line.in_text) {
        line.in_text = c != '\n';
        continue;
      }
      if (c != ' ') {
        line.timestamp.push_back(c);
        continue;
      }
      absl::Time t;
      std::string err;
      if (!absl::ParseTime(absl::RFC3339_full, line.timestamp, &t, &err)) {
        bad = absl::InternalError(
            absl::StrCat("bad log timestamp '", line.timestamp, "': ", err));
        return false;
      }
      line.timestamp.clear();
      line.in_text = true;
      if (t >= since) {
        first = t;
        return false;
      }
    }
    return true;
  });
  req.on_body_chunk = [&demux](absl::string_view chunk) { return demux.Feed(chunk); };
  absl::StatusOr<core::HttpResponse> resp = raw.http.Send(req);
  if (first) return *first;
  if (!bad.ok()) return bad;
  if (!resp.ok()) return resp.status();
  return absl::NotFoundError(absl::StrCat("no log line from ", id, " (HTTP ", resp->status, ")"));
}

// The sandbox spec the dispatcher builds for a job (server/dispatch/dispatcher.cc), so the raw
// containers are the same containers minus fastest.
core::SandboxSpec DispatcherLikeSpec(const std::string& image, std::vector<std::string> command) {
  core::SandboxSpec spec;
  spec.image = image;
  spec.command = std::move(command);
  // A closed port: the runner prints its banner, then fails to reach the API (retries 1 s).
  spec.env = {{"API_URL", "http://127.0.0.1:9"},
              {"API_TOKEN", "bench-token-not-secret"},
              {"JOB_ID", "BENCHRAW"},
              {"FASTEST_API_RETRY_SECONDS", "1"}};
  spec.labels = {{"fastest.bench", "1"}};
  // standard-1 (server/dispatch/instance_types.cc), the server's default instance type.
  spec.nano_cpus = 1000000000LL / 2;
  spec.memory_bytes = 4LL * 1024 * 1024 * 1024;
  spec.pids_limit = 1024;
  spec.disk_bytes = 8LL * 1000 * 1000 * 1000;  // the /workspace tmpfs size
  return spec;
}

// Podman: its logs API rounds timestamps to whole seconds, so read conmon's k8s-file log
// (inspect's LogPath; lines "2026-11-26T15:48:24.993403422+00:00 stdout F text") directly - the
// bench runs as root next to the service. Same clock point: when conmon read the line.
absl::StatusOr<absl::Time> FirstLogLineFromConmonFile(RawEngine& raw, const std::string& id,
                                                      absl::Time since) {
  core::HttpRequest req;
  req.url = absl::StrCat(raw.endpoint.base_url, "/containers/", id, "/json");
  req.unix_socket = raw.endpoint.unix_socket;
  absl::StatusOr<core::HttpResponse> resp = raw.http.Send(req);
  if (!resp.ok()) return resp.status();
  nlohmann::json j = nlohmann::json::parse(resp->body, nullptr, false);
  if (resp->status != 200 || j.is_discarded() || !j.contains("LogPath") || !j["LogPath"].is_string()) {
    return absl::NotFoundError(absl::StrCat("inspect ", id, ": HTTP ", resp->status));
  }
  std::ifstream in(j["LogPath"].get<std::string>());
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::string ts = line.substr(0, line.find(' '));
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, ts, &t, &err)) {
      return absl::InternalError(absl::StrCat("bad conmon timestamp '", ts, "': ", err));
    }
    if (t >= since) return t;
  }
  return absl::NotFoundError("no log line yet");
}

// A container found by label may not be started yet: its log then ends at once (or is not there
// yet, 404). Ask again until a line arrives; the timestamp is the engine's, so retrying adds no bias.
absl::StatusOr<absl::Time> FirstLogLineTime(RawEngine& raw, const std::string& id,
                                            absl::Duration timeout, absl::Time since) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last = absl::DeadlineExceededError("no time left");
  while (absl::Now() < deadline) {
    absl::StatusOr<absl::Time> t = raw.podman
                                       ? FirstLogLineFromConmonFile(raw, id, since)
                                       : FirstLogLineOnce(raw, id, deadline - absl::Now(), since);
    if (t.ok()) return t;
    last = t.status();
    absl::SleepFor(absl::Milliseconds(2));
  }
  return last;
}

absl::StatusOr<EngineBackendOptions> EngineBackendOptionsFor(const std::string& backend) {
  if (backend == "docker") return backends::docker::DockerBackendOptions(nlohmann::json::object());
  if (backend == "podman") return backends::podman::PodmanBackendOptions(nlohmann::json::object());
  return absl::InvalidArgumentError(
      absl::StrCat("benchmarks run on docker or podman, not '", backend, "'"));
}

// --- raw podman libpod create/start ---------------------------------------------------------

absl::StatusOr<std::string> LibpodCreate(RawEngine& raw, const ContainerSpec& spec) {
  nlohmann::json body = {
      {"image", spec.image},
      {"command", spec.cmd},
      {"env", spec.env},
      {"labels", spec.labels},
      {"netns", {{"nsmode", spec.network_mode.empty() ? "host" : spec.network_mode}}},
      {"init", spec.init},
      {"oci_runtime", spec.runtime.empty() ? "runc" : spec.runtime},
  };
  nlohmann::json rl = nlohmann::json::array();
  for (const auto& u : spec.ulimits) {
    rl.push_back({{"type", u.name},  // podman adds the RLIMIT_ prefix itself
                  {"soft", u.soft},
                  {"hard", u.hard}});
  }
  if (!rl.empty()) body["r_limits"] = rl;
  // The sealed settings ContainerSpecFor gives every sandbox, so both sides start the same
  // container (the channel bind mount aside).
  if (!spec.cap_drop.empty()) body["cap_drop"] = spec.cap_drop;
  if (!spec.cap_add.empty()) body["cap_add"] = spec.cap_add;
  for (const std::string& opt : spec.security_opt) {
    if (opt == "no-new-privileges") body["no_new_privileges"] = true;
  }
  if (spec.readonly_rootfs) body["read_only_filesystem"] = true;
  nlohmann::json mounts = nlohmann::json::array();
  for (const auto& [path, options] : spec.tmpfs) {
    mounts.push_back({{"destination", path},
                      {"type", "tmpfs"},
                      {"source", "tmpfs"},
                      {"options", std::vector<std::string>(absl::StrSplit(options, ','))}});
  }
  if (!mounts.empty()) body["mounts"] = mounts;
  nlohmann::json limits = nlohmann::json::object();
  if (spec.memory_bytes > 0) {
    limits["memory"] = {{"limit", spec.memory_bytes}, {"swap", spec.memory_swap_bytes}};
  }
  if (spec.nano_cpus > 0) limits["cpu"] = {{"quota", spec.nano_cpus / 10000}, {"period", 100000}};
  if (spec.pids_limit > 0) limits["pids"] = {{"limit", spec.pids_limit}};
  if (!limits.empty()) body["resource_limits"] = limits;
  core::HttpRequest req;
  req.method = "POST";
  req.url = absl::StrCat(raw.endpoint.base_url, "/v", raw.libpod_version, "/libpod/containers/create");
  req.unix_socket = raw.endpoint.unix_socket;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = body.dump();
  absl::StatusOr<core::HttpResponse> resp = raw.http.Send(req);
  if (!resp.ok()) return resp.status();
  nlohmann::json j = nlohmann::json::parse(resp->body, nullptr, false);
  if (resp->status != 201 || j.is_discarded() || !j.contains("Id")) {
    return absl::InternalError(absl::StrCat("libpod create: HTTP ", resp->status, " ", resp->body));
  }
  return j["Id"].get<std::string>();
}

absl::Status LibpodStart(RawEngine& raw, const std::string& id) {
  core::HttpRequest req;
  req.method = "POST";
  req.url = absl::StrCat(raw.endpoint.base_url, "/v", raw.libpod_version, "/libpod/containers/", id,
                         "/start");
  req.unix_socket = raw.endpoint.unix_socket;
  absl::StatusOr<core::HttpResponse> resp = raw.http.Send(req);
  if (!resp.ok()) return resp.status();
  if (resp->status != 204 && resp->status != 304) {
    return absl::InternalError(absl::StrCat("libpod start: HTTP ", resp->status, " ", resp->body));
  }
  return absl::OkStatus();
}

RawColdSample RawColdStart(RawEngine& raw, backends::engine_api::EngineClient& engine,
                           const ContainerSpec& spec, bool libpod) {
  const absl::Time t0 = absl::Now();
  std::string id = libpod ? Check(LibpodCreate(raw, spec), "libpod create")
                          : Check(engine.CreateContainer(spec), "create");
  absl::Status started = libpod ? LibpodStart(raw, id) : engine.StartContainer(id);
  if (!started.ok()) engine.RemoveContainer(id).IgnoreError();  // leave nothing behind
  Check(started, "start");
  const absl::Time t_started = absl::Now();
  absl::Time first = Check(FirstLogLineTime(raw, id, absl::Seconds(20)), "raw first line");
  engine.RemoveContainer(id).IgnoreError();
  return {first - t0, t_started - t0};
}

}  // namespace fastest::bench
