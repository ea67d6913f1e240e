// cf-bridge-emulator: the Cloudflare Sandbox bridge HTTP API (PROTOCOLS.md §4) on local Docker.
//
//   SANDBOX_API_KEY=secret cf-bridge-emulator [--host 127.0.0.1] [--port 0] [--port-file PATH]
//       [--image fastest/sandbox:0.1.0] [--max-instances N] [--docker unix:///var/run/docker.sock]
//       [--fail-next STATUS:COUNT[:PATH]]... [--stall-exec-ms MS] [--cut-exec-count N] [--verbose]
//
// Prints "cf-bridge-emulator listening on http://HOST:PORT" once ready (and writes PORT to
// --port-file). SIGINT/SIGTERM stop it and remove every container it created. The API key comes
// from the environment only, so it never shows in `ps`.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/net/http_server.h"
#include "tools/cf_bridge_emulator/bridge_emulator.h"
#include "tools/cf_bridge_emulator/docker_sandboxes.h"

namespace {

using fastest::tools::cf_bridge_emulator::BridgeEmulator;
using fastest::tools::cf_bridge_emulator::DockerSandboxes;
using fastest::tools::cf_bridge_emulator::DockerSandboxesOptions;
using fastest::tools::cf_bridge_emulator::EmulatorOptions;
using fastest::tools::cf_bridge_emulator::FaultRule;
using fastest::tools::cf_bridge_emulator::ParseFailNextFlag;

int Usage(const char* why) {
  std::fprintf(stderr,
               "cf-bridge-emulator: %s\nusage: cf-bridge-emulator [--host H] [--port P] "
               "[--port-file F] [--image I] [--max-instances N] [--docker ENDPOINT] "
               "[--fail-next STATUS:COUNT[:PATH]] [--stall-exec-ms MS] [--cut-exec-count N] "
               "[--verbose]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string port_file;
  DockerSandboxesOptions docker;
  std::vector<FaultRule> faults;
  int64_t stall_ms = 0;
  int cut_count = 0;
  bool verbose = false;

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string name = arg;
    std::string value;
    bool has_value = false;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (name == "--verbose") {
      verbose = true;
      continue;
    }
    if (name == "--help" || name == "-h") return Usage("help");
    if (!has_value) {
      if (i + 1 >= argc) return Usage(absl::StrCat("missing value for ", name).c_str());
      value = argv[++i];
    }
    if (name == "--host") {
      host = value;
    } else if (name == "--port") {
      if (!absl::SimpleAtoi(value, &port)) return Usage("--port: not a number");
    } else if (name == "--port-file") {
      port_file = value;
    } else if (name == "--image") {
      docker.image = value;
    } else if (name == "--max-instances") {
      if (!absl::SimpleAtoi(value, &docker.max_instances)) return Usage("--max-instances: not a number");
    } else if (name == "--docker") {
      docker.endpoint = value;
    } else if (name == "--fail-next") {
      absl::StatusOr<FaultRule> rule = ParseFailNextFlag(value);
      if (!rule.ok()) return Usage(std::string(rule.status().message()).c_str());
      faults.push_back(*rule);
    } else if (name == "--stall-exec-ms") {
      if (!absl::SimpleAtoi(value, &stall_ms)) return Usage("--stall-exec-ms: not a number");
    } else if (name == "--cut-exec-count") {
      if (!absl::SimpleAtoi(value, &cut_count)) return Usage("--cut-exec-count: not a number");
    } else {
      return Usage(absl::StrCat("unknown flag ", name).c_str());
    }
  }

  absl::StatusOr<std::unique_ptr<DockerSandboxes>> sandboxes = DockerSandboxes::Create(docker);
  if (!sandboxes.ok()) {
    std::fprintf(stderr, "cf-bridge-emulator: %s\n", std::string(sandboxes.status().message()).c_str());
    return 1;
  }
  absl::Status ping = (*sandboxes)->Ping();
  if (!ping.ok()) {
    // Keep serving: /health reports 503 with the reason, like a bridge with broken bindings.
    std::fprintf(stderr, "cf-bridge-emulator: warning: %s\n", std::string(ping.message()).c_str());
  }
  const char* key = std::getenv("SANDBOX_API_KEY");
  EmulatorOptions options;
  options.api_key = key == nullptr ? "" : key;
  if (options.api_key.empty()) {
    std::fprintf(stderr, "cf-bridge-emulator: warning: SANDBOX_API_KEY is not set; auth is disabled\n");
  }
  BridgeEmulator emulator(options, std::move(*sandboxes));
  for (const FaultRule& rule : faults) emulator.AddFault(rule);
  if (stall_ms > 0) emulator.SetStall(stall_ms, 1 << 30);
  if (cut_count > 0) emulator.SetCut(cut_count);

  fastest::net::HttpServerOptions server_options;
  server_options.host = host;
  server_options.port = port;
  server_options.threads = 2;
  // Above the bridge's 32 MiB so the emulator itself answers 413 payload_too_large.
  server_options.max_body_bytes = 100u * 1024 * 1024;
  server_options.read_timeout = absl::Seconds(120);
  server_options.cors_origin = "";  // no CORS (the default)
  if (verbose) {
    server_options.access_log = [](const fastest::net::Request& req, int status,
                                   absl::Duration d) {
      std::fprintf(stderr, "cf-bridge-emulator: %s %s -> %d (%lld ms)\n", req.method.c_str(),
                   req.path.c_str(), status, static_cast<long long>(absl::ToInt64Milliseconds(d)));
    };
  }
  fastest::net::HttpServer server(server_options);
  emulator.Register(server.router());
  absl::Status started = server.Start();
  if (!started.ok()) {
    std::fprintf(stderr, "cf-bridge-emulator: %s\n", std::string(started.message()).c_str());
    return 1;
  }
  if (!port_file.empty()) {
    std::ofstream out(port_file + ".tmp");
    out << server.port() << "\n";
    out.close();
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  std::printf("cf-bridge-emulator listening on http://%s:%d\n", host.c_str(), server.port());
  std::fflush(stdout);
  server.StopOnSignals();
  server.Wait();
  emulator.Shutdown();
  return 0;
}
