// dispatch_bench: cold-dispatch latency and throughput of fastest-server against the raw engine,
// measured in the same run on the same image.
//
//   bazel run //tools/bench:dispatch_bench -- --backend=docker|podman
//       [--jobs=30] [--throughput_jobs=48] [--concurrency=8] [--image=fastest/sandbox:0.1.0]
//
// Cold dispatch: POST /run-job {"wait":false} -> the runner's first log line. The first line's
// time is the ENGINE's log timestamp (Docker: GET /containers/{id}/logs?timestamps=1; Podman, whose
// API rounds those to seconds: conmon's log file), i.e. when the engine read the line from the
// container's stdout. The same clock point is used for the raw baseline
// (create + start of the same image with the same runner command, env, limits, labels, network
// and init as the plugin uses -> its first log line), so both sides are measured identically and
// without polling bias; the container is found by label only to read its log. The job turning
// `running` on the API (started_at) is printed too, but it comes after the runner's first API
// round trips, so it measures the runner as much as the dispatch path.
// Raw baseline: the Engine API (Docker, or Podman's compat API) and, for podman, also libpod's own
// create/start (/libpod/containers/create with a SpecGenerator).
//
// Throughput: trivial jobs (agent `true`: restore, agent, snapshot, status) via POST /run-job
// {"wait":true} from `concurrency` client threads against a server with max_instances=concurrency,
// vs raw create/start/wait/remove of a trivial container (`true`) at the same concurrency.
// Rounds alternate raw/fastest twice; the mean of the two rounds is reported.
//
// Everything is real: the server binary with the backend plugin, the sandbox image built by
// tools/build_sandbox_image.sh, the engine socket.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/engine_api/engine_backend.h"
#include "backends/engine_api/engine_client.h"
#include "core/api/api_client.h"
#include "core/http/http_client.h"
#include "core/plugin/sandbox_types.h"
#include "tests/e2e/e2e_harness.h"
#include "tools/bench/engine_bench_common.h"

ABSL_FLAG(std::string, backend, "docker", "docker or podman");
ABSL_FLAG(int, jobs, 30, "cold dispatch samples per side (>= 30 for the issue's figures)");
ABSL_FLAG(int, throughput_jobs, 48, "jobs (and raw containers) per throughput round");
ABSL_FLAG(int, concurrency, 8, "client threads = server max_instances for throughput");
ABSL_FLAG(std::string, image, "", "sandbox image (default: $FASTEST_E2E_IMAGE or fastest/sandbox:0.1.0)");
ABSL_FLAG(bool, keep, false, "keep the temp dir (server log) for inspection");
ABSL_FLAG(bool, skip_cold, false, "only measure throughput");
ABSL_FLAG(bool, skip_throughput, false, "only measure cold dispatch");
ABSL_FLAG(std::string, throughput_side, "both",
          "both, raw or fastest: run only one side's throughput rounds (to profile it alone)");

namespace fastest::bench {
namespace {

using backends::engine_api::EngineBackendOptions;
using backends::engine_api::EngineClient;
using e2e::BackendKind;


// --- CPU accounting ----------------------------------------------------------------------------

// Busy CPU time of the whole machine (all cores), from /proc/stat.
absl::Duration MachineBusy() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  const long hz = sysconf(_SC_CLK_TCK);
  return absl::Milliseconds((user + nice + system + irq + softirq + steal) * 1000 / hz);
}

// CPU time (user+system, + reaped children) of one process, from /proc/<pid>/stat.
absl::Duration ProcessCpu(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos) return absl::ZeroDuration();
  std::vector<std::string> f = absl::StrSplit(text.substr(close + 2), ' ');
  // After the comm: state(0) ... utime(11) stime(12) cutime(13) cstime(14).
  if (f.size() < 15) return absl::ZeroDuration();
  long long t = 0;
  for (int i = 11; i <= 14; ++i) {
    long long v = 0;
    absl::SimpleAtoi(f[i], &v);
    t += v;
  }
  return absl::Milliseconds(t * 1000 / sysconf(_SC_CLK_TCK));
}

// --- server log breakdown ----------------------------------------------------------------------

// "sandbox started" times per job from the server log (ms precision).
std::map<std::string, absl::Time> SandboxStartedTimes(const std::string& log) {
  std::map<std::string, absl::Time> out;
  static const std::regex kLine(
      "ts=(\\S+) level=info msg=\"sandbox started\" job_id=(\\S+)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), kLine); it != std::sregex_iterator();
       ++it) {
    absl::Time t;
    std::string err;
    if (absl::ParseTime(absl::RFC3339_full, (*it)[1].str(), &t, &err)) out[(*it)[2].str()] = t;
  }
  return out;
}

absl::Time ParseApiTime(const std::string& s) {
  absl::Time t = absl::InfinitePast();
  std::string err;
  absl::ParseTime(absl::RFC3339_full, s, &t, &err);
  return t;
}

int Main() {
  const std::string backend_name = absl::GetFlag(FLAGS_backend);
  BackendKind kind = Check(e2e::ParseBackendKind(backend_name), "--backend");
  if (kind == BackendKind::kCloudflare) Die("--backend=cloudflare is not benchmarked (emulated)");
  const int n = absl::GetFlag(FLAGS_jobs);
  const int m = absl::GetFlag(FLAGS_throughput_jobs);
  const int conc = absl::GetFlag(FLAGS_concurrency);
  const std::string image =
      absl::GetFlag(FLAGS_image).empty() ? e2e::SandboxImage() : absl::GetFlag(FLAGS_image);

  std::unique_ptr<EngineClient> probe = Check(e2e::ConnectEngine(kind), "engine");
  Check(e2e::CheckImagePresent(kind, image), "image");

  // The plugin's own engine options -> the same engine client and container spec for raw runs.
  EngineBackendOptions backend_options =
      Check(EngineBackendOptionsFor(backend_name), "engine options");
  std::unique_ptr<EngineClient> engine =
      Check(EngineClient::Create(backend_options.engine), "engine client");
  backends::engine_api::EngineVersion version = Check(engine->Version(), "engine version");
  RawEngine raw;
  raw.endpoint = Check(core::ParseEndpoint(backend_options.engine.endpoint), "endpoint");
  raw.libpod_version = version.libpod_api_version.empty() ? version.version : version.libpod_api_version;
  raw.podman = kind == BackendKind::kPodman;

  ContainerSpec runner_spec = Check(
      backends::engine_api::ContainerSpecFor(DispatcherLikeSpec(image, {"fastest-runner"}),
                                             backend_options),
      "container spec");
  ContainerSpec trivial_spec = Check(
      backends::engine_api::ContainerSpecFor(DispatcherLikeSpec(image, {"true"}), backend_options),
      "container spec");

  // The server.
  const std::string work = e2e::MakeTempDir("dispatch_bench_");
  const std::string token = "bench-token-0123456789abcdef";
  e2e::ServerOptions so;
  so.backend = kind;
  so.image = image;
  so.max_instances = conc;
  so.job_timeout = "2m";
  e2e::BackendServer server(work + "/data", token, so);
  Check(server.Start(), "start fastest-server");
  core::HttpClient http;
  core::ApiClient api(http, server.url(), token);
  e2e::WriteFile(work + "/tree", "README.md", "bench\n");
  e2e::WriteFile(work + "/tree", "src/a.txt", "a\n");
  e2e::WriteFile(work + "/tree", "src/run.sh", "#!/bin/sh\n", 0755);
  e2e::Fixture fixture = Check(e2e::SeedWorkspace(api, work + "/tree", "bench"), "seed");

  printf("dispatch_bench: backend=%s engine=%s %s (API %s) image=%s server_id=%s\n",
         backend_name.c_str(), backend_options.engine.engine_name.c_str(), version.version.c_str(),
         version.negotiated.c_str(), image.c_str(), server.server_id().c_str());
  fflush(stdout);

  auto run_fastest_cold = [&](Series* first_line, Series* accepted, Series* sandbox_started,
                              Series* running, bool record) {
    std::string job_id = Check(api.CreateJob(fixture.workspace_id, "sleep 1"), "create job").id;
    const absl::Time t0 = absl::Now();
    Check(e2e::RunJob(server.url(), token, job_id, /*wait=*/false).status(), "run-job");
    const absl::Time t_ack = absl::Now();
    auto container = Check(e2e::WaitForContainer(*engine, {{"fastest.job_id", job_id}},
                                                 absl::Seconds(20), absl::Milliseconds(2)),
                           "find the job's container");
    absl::Time first = Check(FirstLogLineTime(raw, container.id, absl::Seconds(20)), "first line");
    core::Job job = Check(e2e::WaitForTerminal(api, job_id, absl::Seconds(60)), "job end");
    if (job.status != core::JobStatus::kCompleted) {
      Die(absl::StrCat("job ", job_id, " ended ", core::JobStatusName(job.status), ": ",
                       job.error.value_or("")));
    }
    Check(e2e::WaitNoContainers(*engine, {{"fastest.job_id", job_id}}, absl::Seconds(20)),
          "container removal");
    if (!record) return;
    first_line->Add(first - t0);
    accepted->Add(t_ack - t0);
    auto started = SandboxStartedTimes(server.Log());
    if (auto it = started.find(job_id); it != started.end()) sandbox_started->Add(it->second - t0);
    if (job.started_at) running->Add(ParseApiTime(*job.started_at) - t0);
  };

  auto run_raw_cold = [&](Series* first_line, Series* create_start, bool libpod, bool record) {
    RawColdSample sample = RawColdStart(raw, *engine, runner_spec, libpod);
    if (!record) return;
    first_line->Add(sample.first_line);
    create_start->Add(sample.create_start);
  };

  // ---- cold dispatch ----
  Series f_first{"fastest: POST /run-job -> runner's first log line"};
  Series f_ack{"fastest: POST /run-job -> 202 accepted"};
  Series f_started{"fastest: POST /run-job -> 'sandbox started' (server log)"};
  Series f_running{"fastest: POST /run-job -> job running (started_at)"};
  Series r_first{"raw engine: create+start -> first log line"};
  Series r_cs{"raw engine: create+start (API calls return)"};
  Series l_first{"raw libpod: create+start -> first log line"};
  Series l_cs{"raw libpod: create+start (API calls return)"};
  const bool with_libpod = kind == BackendKind::kPodman;

  const bool cold = !absl::GetFlag(FLAGS_skip_cold);
  const bool throughput = !absl::GetFlag(FLAGS_skip_throughput);
  printf("warm-up...\n");
  fflush(stdout);
  for (int i = 0; i < 2; ++i) {
    run_raw_cold(&r_first, &r_cs, false, false);
    if (with_libpod) run_raw_cold(&l_first, &l_cs, true, false);
    run_fastest_cold(&f_first, &f_ack, &f_started, &f_running, false);
  }
  printf("cold dispatch: %d samples per side, interleaved...\n", n);
  fflush(stdout);
  for (int i = 0; cold && i < n; ++i) {
    run_raw_cold(&r_first, &r_cs, false, true);
    if (with_libpod) run_raw_cold(&l_first, &l_cs, true, true);
    run_fastest_cold(&f_first, &f_ack, &f_started, &f_running, true);
  }

  // ---- throughput ----
  auto fastest_round = [&]() -> double {
    std::vector<std::string> ids;
    for (int i = 0; i < m; ++i) {
      ids.push_back(Check(api.CreateJob(fixture.workspace_id, "true"), "create job").id);
    }
    std::atomic<int> next{0};
    std::atomic<int> failed{0};
    std::mutex err_mu;
    std::string first_error;
    const absl::Time t0 = absl::Now();
    std::vector<std::thread> threads;
    for (int c = 0; c < conc; ++c) {
      threads.emplace_back([&] {
        for (int i = next++; i < m; i = next++) {
          auto r = e2e::RunJob(server.url(), token, ids[i], /*wait=*/true);
          if (!r.ok() || !r->value("success", false)) {
            ++failed;
            std::lock_guard<std::mutex> lock(err_mu);
            if (first_error.empty()) first_error = r.ok() ? r->dump() : r.status().ToString();
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    const absl::Duration took = absl::Now() - t0;
    if (failed > 0) Die(absl::StrCat(failed.load(), " throughput jobs failed; first: ", first_error));
    return m / absl::ToDoubleSeconds(took);
  };
  auto raw_round = [&]() -> double {
    std::atomic<int> next{0};
    std::atomic<int> failed{0};
    const absl::Time t0 = absl::Now();
    std::vector<std::thread> threads;
    for (int c = 0; c < conc; ++c) {
      threads.emplace_back([&] {
        for (int i = next++; i < m; i = next++) {
          auto id = engine->CreateContainer(trivial_spec);
          if (!id.ok()) {
            ++failed;
            continue;
          }
          bool ok = engine->StartContainer(*id).ok();
          auto waited = ok ? engine->WaitContainer(*id, absl::Seconds(60))
                           : absl::StatusOr<backends::engine_api::WaitOutcome>(
                                 absl::InternalError("start"));
          ok = ok && waited.ok() && waited->exited;
          ok = engine->RemoveContainer(*id).ok() && ok;
          if (!ok) ++failed;
        }
      });
    }
    for (auto& t : threads) t.join();
    const absl::Duration took = absl::Now() - t0;
    if (failed > 0) Die(absl::StrCat(failed.load(), " raw throughput runs failed"));
    return m / absl::ToDoubleSeconds(took);
  };
  printf("throughput: %d per round, concurrency %d, 2 rounds each (raw, fastest, raw, fastest)...\n",
         m, conc);
  fflush(stdout);
  std::vector<double> raw_rates, fastest_rates;
  // CPU per job/container: the machine's busy time (all processes, both cores) and the server's.
  absl::Duration raw_busy, fastest_busy, server_cpu;
  for (int round = 0; throughput && round < 2; ++round) {
    const std::string side = absl::GetFlag(FLAGS_throughput_side);
    absl::Duration b0 = MachineBusy();
    raw_rates.push_back(side == "fastest" ? NAN : raw_round());
    absl::Duration b1 = MachineBusy();
    absl::Duration s0 = ProcessCpu(server.pid());
    fastest_rates.push_back(side == "raw" ? NAN : fastest_round());
    server_cpu += ProcessCpu(server.pid()) - s0;
    fastest_busy += MachineBusy() - b1;
    raw_busy += b1 - b0;
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / v.size();
  };

  // ---- report ----
  if (cold) {
  printf("\n=== cold dispatch (%s, image %s) ===\n", backend_name.c_str(), image.c_str());
  PrintSeries(f_first);
  PrintSeries(r_first);
  if (with_libpod) PrintSeries(l_first);
  PrintSeries(r_cs);
  if (with_libpod) PrintSeries(l_cs);
  printf("  breakdown of the fastest path:\n");
  PrintSeries(f_ack);
  PrintSeries(f_started);
  PrintSeries(f_running);
  auto ratio_line = [](const char* what, const Series& a, const Series& b, double target) {
    double r50 = a.p50() / b.p50(), r90 = a.p90() / b.p90();
    printf("  ratio %-44s p50 %.2fx  p90 %.2fx  (target <= %.2fx: %s)\n", what, r50, r90, target,
           r50 <= target ? "MET" : "MISSED");
  };
  ratio_line("first line: fastest / raw engine", f_first, r_first, 1.15);
  if (with_libpod) ratio_line("first line: fastest / raw libpod", f_first, l_first, 1.15);
  ratio_line("fastest first line / raw create+start calls", f_first, r_cs, 1.15);
  if (with_libpod) ratio_line("fastest first line / libpod create+start", f_first, l_cs, 1.15);

  }
  if (throughput) {
  printf("\n=== throughput (%s, concurrency %d, %d per round) ===\n", backend_name.c_str(), conc, m);
  printf("  fastest trivial jobs        %s  -> mean %.1f jobs/s\n",
         absl::StrFormat("%.1f / %.1f", fastest_rates[0], fastest_rates[1]).c_str(),
         mean(fastest_rates));
  printf("  raw create/start/wait/rm    %s  -> mean %.1f containers/s\n",
         absl::StrFormat("%.1f / %.1f", raw_rates[0], raw_rates[1]).c_str(), mean(raw_rates));
  double tr = mean(fastest_rates) / mean(raw_rates);
  printf("  ratio fastest / raw  %.2fx  (target >= 1.00x: %s)\n", tr, tr >= 1.0 ? "MET" : "MISSED");
  printf("  CPU per unit (machine busy time, all processes): fastest job %.0f ms, raw container %.0f ms;"
         " of that fastest-server itself %.1f ms/job\n",
         Ms(fastest_busy) / (2 * m), Ms(raw_busy) / (2 * m), Ms(server_cpu) / (2 * m));
  }

  server.Stop();
  Check(e2e::WaitNoContainers(*engine, {{"fastest.server_id", server.server_id()}}, absl::Seconds(20)),
        "leftover sandboxes");
  Check(e2e::WaitNoContainers(*engine, {{"fastest.bench", "1"}}, absl::Seconds(20)),
        "leftover raw containers");
  printf("\nno containers left (fastest.server_id=%s, fastest.bench=1)\n", server.server_id().c_str());
  if (absl::GetFlag(FLAGS_keep)) {
    printf("server log: %s\n", (work + "/data.server.log").c_str());
  } else {
    std::error_code ec;
    std::filesystem::remove_all(work, ec);
  }
  return 0;
}

}  // namespace
}  // namespace fastest::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return fastest::bench::Main();
}
