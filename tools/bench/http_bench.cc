// http_bench: requests per second of fastest-server's HTTP layer against nginx on the same machine,
// in one run.
//
//   bazel run -c opt //tools/bench:http_bench [-- --rounds=5 --duration=5s --connections=32
//       --wrk_threads=2 --server_threads=2 --nginx=/usr/sbin/nginx --wrk=/usr/bin/wrk]
//
// Starts the built fastest-server in API-only mode (--backend=none, port 0 read back through
// --port_file, a fresh data directory) and nginx (a minimal configuration in a temporary
// directory, listening on 127.0.0.1, `location = /health` returning a small JSON body, as many
// workers as the server has io threads). Then runs `wrk -t2 -c32 -d5s` against GET /health of
// each, interleaved (fastest, nginx | nginx, fastest | ...) so machine noise hits both alike, and
// prints every round with its own ratio, the median req/s of each, the median of the per-round ratios
// (the figure that counts: each compares two runs seconds apart), the machine's load average
// before the run, and fastest-server's resident memory when idle (after start, before any
// load) and after the load. Other work on the machine skews a run: compare runs on a quiet one.
//
// Needs the Debian packages wrk and nginx-light (tools/setup.sh installs them). Only loopback
// traffic; both servers are children of this process and stopped at the end.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/http/http_client.h"
#include "tests/testing/child_process.h"
#include "tests/testing/runfiles.h"

ABSL_FLAG(int, rounds, 5, "Interleaved rounds per server.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "wrk duration of one round.");
ABSL_FLAG(int, connections, 32, "wrk connections (-c).");
ABSL_FLAG(int, wrk_threads, 2, "wrk threads (-t).");
ABSL_FLAG(int, server_threads, 2, "fastest-server --threads and nginx worker_processes.");
ABSL_FLAG(std::string, nginx, "/usr/sbin/nginx", "nginx binary.");
ABSL_FLAG(std::string, wrk, "/usr/bin/wrk", "wrk binary.");

namespace fastest::bench {
namespace {

using testing::ChildProcess;
using testing::SpawnOptions;

struct Server {
  std::string name;
  std::string url;  // http://127.0.0.1:<port>/health
  ChildProcess process;
};

absl::Status Check(bool ok, absl::string_view what) {
  return ok ? absl::OkStatus() : absl::FailedPreconditionError(what);
}

// A free loopback port for nginx, which cannot report one it picked itself.
absl::StatusOr<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError("bind 127.0.0.1:0");
  }
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

// Polls GET url until it answers 200 (or 10 s pass).
absl::Status WaitHealthy(const std::string& url) {
  core::HttpClient http;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    core::HttpRequest request;
    request.url = url;
    request.timeout = std::chrono::milliseconds(1000);
    absl::StatusOr<core::HttpResponse> response = http.Send(request);
    if (response.ok() && response->status == 200) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat(url, " did not answer 200 within 10 s"));
}

// VmRSS of `pid` in KiB, or -1.
int64_t RssKib(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    int64_t kib = 0;
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream in(line.substr(6));
      in >> kib;
      return kib;
    }
  }
  return -1;
}

absl::StatusOr<Server> StartFastest(const std::string& dir) {
  const std::string port_file = dir + "/fastest.port";
  SpawnOptions options;
  options.binary = testing::RunfilePath("server/fastest-server");
  options.args = {"--backend=none",
                  "--port=0",
                  absl::StrCat("--port_file=", port_file),
                  absl::StrCat("--data_dir=", dir, "/fastest-data"),
                  absl::StrCat("--threads=", absl::GetFlag(FLAGS_server_threads))};
  // A clean environment: no FASTEST_* setting of the caller leaks into the measurement.
  options.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", dir}};
  options.log_path = dir + "/fastest.log";
  options.die_with_parent = true;
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(options);
  if (!child.ok()) return child.status();
  absl::StatusOr<int> port = child->WaitForPortFile(port_file, absl::Seconds(20));
  if (!port.ok()) return port.status();
  Server server{"fastest-server", absl::StrCat("http://127.0.0.1:", *port, "/health"),
                std::move(*child)};
  if (absl::Status s = WaitHealthy(server.url); !s.ok()) return s;
  return server;
}

absl::StatusOr<Server> StartNginx(const std::string& dir) {
  const std::string nginx = absl::GetFlag(FLAGS_nginx);
  if (access(nginx.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(nginx, " not found: install nginx-light (tools/setup.sh) or pass --nginx"));
  }
  absl::StatusOr<int> port = FreePort();
  if (!port.ok()) return port.status();
  const std::string prefix = dir + "/nginx";
  std::filesystem::create_directories(prefix + "/logs");
  const std::string conf = prefix + "/nginx.conf";
  std::ofstream(conf) << "daemon off;\n"
                      << "worker_processes " << absl::GetFlag(FLAGS_server_threads) << ";\n"
                      << "pid " << prefix << "/nginx.pid;\n"
                      << "error_log " << prefix << "/logs/error.log warn;\n"
                      << "events { worker_connections 1024; }\n"
                      << "http {\n"
                      << "  access_log off;\n"
                      << "  client_body_temp_path " << prefix << "/body;\n"
                      << "  proxy_temp_path " << prefix << "/proxy;\n"
                      << "  fastcgi_temp_path " << prefix << "/fastcgi;\n"
                      << "  uwsgi_temp_path " << prefix << "/uwsgi;\n"
                      << "  scgi_temp_path " << prefix << "/scgi;\n"
                      << "  server {\n"
                      << "    listen 127.0.0.1:" << *port << ";\n"
                      << "    location = /health {\n"
                      << "      default_type application/json;\n"
                      << "      return 200 '{\"service\":\"nginx\",\"status\":\"ok\"}';\n"
                      << "    }\n"
                      << "  }\n"
                      << "}\n";
  SpawnOptions options;
  options.binary = nginx;
  options.args = {"-p", prefix, "-c", conf};
  options.env = {{"PATH", "/usr/bin:/bin:/usr/sbin"}};
  options.log_path = prefix + "/logs/stderr.log";
  options.die_with_parent = true;
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(options);
  if (!child.ok()) return child.status();
  Server server{"nginx", absl::StrCat("http://127.0.0.1:", *port, "/health"), std::move(*child)};
  if (absl::Status s = WaitHealthy(server.url); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(s.message(), "; nginx log: ",
                                               server.process.LogTail(2000)));
  }
  return server;
}

// One wrk run; its Requests/sec.
absl::StatusOr<double> RunWrk(const std::string& url, const std::string& dir, int round) {
  const std::string out = absl::StrCat(dir, "/wrk-", round, ".txt");
  SpawnOptions options;
  options.binary = absl::GetFlag(FLAGS_wrk);
  options.args = {absl::StrCat("-t", absl::GetFlag(FLAGS_wrk_threads)),
                  absl::StrCat("-c", absl::GetFlag(FLAGS_connections)),
                  absl::StrCat("-d", absl::ToInt64Seconds(absl::GetFlag(FLAGS_duration)), "s"),
                  url};
  options.env = {{"PATH", "/usr/bin:/bin"}};
  options.log_path = out;
  options.die_with_parent = true;
  absl::StatusOr<ChildProcess> wrk = ChildProcess::Spawn(options);
  if (!wrk.ok()) return wrk.status();
  absl::StatusOr<int> status =
      wrk->Wait(absl::GetFlag(FLAGS_duration) + absl::Seconds(30));
  if (!status.ok()) return status.status();
  const std::string text = testing::ReadFileTail(out, 0);
  if (testing::ExitCode(*status) != 0) {
    return absl::InternalError(absl::StrCat("wrk failed: ", text));
  }
  std::smatch match;
  if (!std::regex_search(text, match, std::regex(R"(Requests/sec:\s+([0-9.]+))"))) {
    return absl::InternalError(absl::StrCat("no Requests/sec in wrk's output: ", text));
  }
  double rps = 0;
  if (!absl::SimpleAtod(match[1].str(), &rps)) return absl::InternalError("bad Requests/sec");
  // Non-2xx answers would make a fast server look faster than it is.
  if (text.find("Non-2xx") != std::string::npos || text.find("Socket errors") != std::string::npos) {
    fprintf(stderr, "warning: wrk reported errors for %s:\n%s\n", url.c_str(), text.c_str());
  }
  return rps;
}

// The 1-minute load average, or -1.
double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  in >> load;
  return load;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

int Main() {
  if (access(absl::GetFlag(FLAGS_wrk).c_str(), X_OK) != 0) {
    fprintf(stderr, "%s not found: install wrk (tools/setup.sh) or pass --wrk\n",
            absl::GetFlag(FLAGS_wrk).c_str());
    return 2;
  }
  const std::string dir = testing::MakeTempDir("http_bench_");
  absl::StatusOr<Server> fastest = StartFastest(dir);
  if (!fastest.ok()) {
    fprintf(stderr, "fastest-server: %s\n", std::string(fastest.status().message()).c_str());
    return 1;
  }
  absl::SleepFor(absl::Milliseconds(500));  // let start-up work settle before reading RSS
  const int64_t idle_rss = RssKib(fastest->process.pid());
  absl::StatusOr<Server> nginx = StartNginx(dir);
  if (!nginx.ok()) {
    fprintf(stderr, "nginx: %s\n", std::string(nginx.status().message()).c_str());
    return 1;
  }

  printf("http_bench: wrk -t%d -c%d -d%llds GET /health, %d interleaved rounds\n",
         absl::GetFlag(FLAGS_wrk_threads), absl::GetFlag(FLAGS_connections),
         static_cast<long long>(absl::ToInt64Seconds(absl::GetFlag(FLAGS_duration))),
         absl::GetFlag(FLAGS_rounds));
  printf("  fastest-server --threads=%d   %s\n  nginx worker_processes=%d    %s\n",
         absl::GetFlag(FLAGS_server_threads), fastest->url.c_str(),
         absl::GetFlag(FLAGS_server_threads), nginx->url.c_str());
  // The bench itself keeps both cores busy, so only the load before it says something about
  // other work on the machine.
  const double load_before = LoadAverage();
  printf("  load average before: %.2f%s\n", load_before,
         load_before > 1.0 ? "  (other work is running: expect noisy rounds)" : "");
  std::map<std::string, std::vector<double>> results;
  std::vector<double> ratios;
  int run = 0;
  for (int round = 1; round <= absl::GetFlag(FLAGS_rounds); ++round) {
    // Alternate which server goes first, so neither always follows the other's load.
    Server* order[2] = {&*fastest, &*nginx};
    if (round % 2 == 0) std::swap(order[0], order[1]);
    for (Server* server : order) {
      absl::StatusOr<double> rps = RunWrk(server->url, dir, run++);
      if (!rps.ok()) {
        fprintf(stderr, "%s: %s\n", server->name.c_str(),
                std::string(rps.status().message()).c_str());
        return 1;
      }
      results[server->name].push_back(*rps);
      printf("  round %d  %-15s %10.0f req/s\n", round, server->name.c_str(), *rps);
      fflush(stdout);
    }
    const double f = results["fastest-server"].back();
    const double n = results["nginx"].back();
    ratios.push_back(n > 0 ? f / n : 0.0);
    printf("  round %d  ratio %.2f\n", round, ratios.back());
  }
  const int64_t loaded_rss = RssKib(fastest->process.pid());
  const double fastest_rps = Median(results["fastest-server"]);
  const double nginx_rps = Median(results["nginx"]);
  printf("median  fastest-server %10.0f req/s\n", fastest_rps);
  printf("median  nginx          %10.0f req/s\n", nginx_rps);
  printf("ratio of the medians    %10.2f\n", nginx_rps > 0 ? fastest_rps / nginx_rps : 0.0);
  printf("ratio %.2f fastest/nginx, median of %zu rounds (target >= 0.8)\n", Median(ratios),
         ratios.size());
  printf("fastest-server RSS: idle %.1f MiB, after the load %.1f MiB\n", idle_rss / 1024.0,
         loaded_rss / 1024.0);
  nginx->process.Stop(absl::Seconds(5), SIGQUIT);
  fastest->process.Stop(absl::Seconds(10));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}

}  // namespace
}  // namespace fastest::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return fastest::bench::Main();
}
