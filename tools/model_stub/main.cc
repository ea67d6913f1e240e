// fastest-model-stub: an offline OpenAI-compatible model endpoint driven by a scenario file, so
// the real OpenCode agent can run without a provider key.
//
//   fastest-model-stub --scenario examples/scenarios/basic.json --port 0 --port_file /tmp/stub.port
//   # then point the runner at it: FASTEST_MODEL_BASE_URL=http://127.0.0.1:<port>/v1
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/net/http_server.h"
#include "tools/model_stub/model_stub.h"
#include "tools/model_stub/scenario.h"

ABSL_FLAG(std::string, scenario, "", "scenario JSON file (required)");
ABSL_FLAG(std::string, host, "127.0.0.1", "address to bind");
ABSL_FLAG(int, port, 0, "port to bind; 0 picks a free one (see --port_file)");
ABSL_FLAG(std::string, port_file, "", "write the bound port here once listening");
ABSL_FLAG(bool, quiet, false, "do not log each request to stderr");
ABSL_FLAG(std::string, require_key_env, "",
          "name of an environment variable holding the API key every completion must carry "
          "(Authorization: Bearer); unset = no check");

namespace {

bool WritePortFile(const std::string& path, int port) {
  // Written whole, then renamed, so a reader never sees a partial number.
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << port << "\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "offline OpenAI-compatible model stub; usage: fastest-model-stub --scenario FILE "
      "[--port N] [--port_file PATH]");
  absl::ParseCommandLine(argc, argv);
  using fastest::tools::model_stub::LoadScenarioFile;
  using fastest::tools::model_stub::ModelStub;
  using fastest::tools::model_stub::Scenario;

  std::string scenario_path = absl::GetFlag(FLAGS_scenario);
  if (scenario_path.empty()) {
    fprintf(stderr, "fastest-model-stub: --scenario FILE is required\n");
    return 2;
  }
  absl::StatusOr<Scenario> scenario = LoadScenarioFile(scenario_path);
  if (!scenario.ok()) {
    fprintf(stderr, "fastest-model-stub: %s\n", std::string(scenario.status().message()).c_str());
    return 2;
  }
  size_t turns = scenario->turns.size();

  fastest::net::HttpServerOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.threads = 2;
  options.stop_grace = absl::Seconds(1);  // stalled answers are not worth waiting for
  // A stalled answer keeps its connection open on purpose; reads still time out normally.
  ModelStub stub(std::move(*scenario), !absl::GetFlag(FLAGS_quiet));
  if (std::string var = absl::GetFlag(FLAGS_require_key_env); !var.empty()) {
    const char* key = getenv(var.c_str());
    if (key == nullptr || *key == '\0') {
      fprintf(stderr, "model-stub: --require_key_env=%s but it is not set\n", var.c_str());
      return 2;
    }
    stub.RequireKey(key);
  }
  {
    fastest::net::HttpServer server(options);
    stub.Register(server.router());
    if (absl::Status s = server.Start(); !s.ok()) {
      fprintf(stderr, "fastest-model-stub: cannot listen on %s:%d: %s\n", options.host.c_str(),
              options.port, std::string(s.message()).c_str());
      return 1;
    }
    std::string port_file = absl::GetFlag(FLAGS_port_file);
    if (!port_file.empty() && !WritePortFile(port_file, server.port())) {
      fprintf(stderr, "fastest-model-stub: cannot write --port_file %s\n", port_file.c_str());
      return 1;
    }
    fprintf(stderr, "model-stub: listening on http://%s:%d/v1 (scenario %s, %zu turns)\n",
            options.host.c_str(), server.port(), scenario_path.c_str(), turns);
    server.StopOnSignals();
    server.Wait();
  }
  fprintf(stderr, "model-stub: stopped\n");
  return 0;
}
