// agent_bench: where a coding-agent job's time goes with the REAL OpenCode binary against the
// offline model stub (examples/scenarios/basic.json: 3 tool steps, then the final text), cold and
// warm interleaved in one run.
//
//   bazel run -c opt //tools/bench:agent_bench -- [--backend=docker|podman] [--rounds=10]
//                                                  [--cold_only] [--image=...]
//   bazel run -c opt //tools/bench:agent_bench -- --agent_only [--rounds=10]
//
// Container mode (default): fastest-server (--backend=docker or podman, the sandbox image with
// runner and OpenCode) runs each job; "cold" is a server without a pool, "warm" one started with
// --warm_pool=1 (a sandbox with the agent booted and warmed waits for the job). Per job:
//   dispatch       POST /run-job -> the runner's first log line for the job (the engine's log
//                  timestamp, podman's from conmon's log file; warm: the first line the waiting
//                  sandbox printed after the POST)
//   first request  job created -> the agent's first model request (stub receive time)
//   step overhead  stub answer fully sent -> the agent's next model request, per tool step
//   job            job created -> completed (polled every 10 ms)
// beside the cold raw-engine baseline (create + start of the same image -> first log line,
// tools/bench/engine_bench_common.h) and the targets.
//
// --agent_only: no container, no API server: OpenCodeServer on the host as the runner drives it
// (tests/agent/host_agent.h). cold = boot + prompt (the clock starts when the server is started);
// warm = boot + Warm first, the clock starts at the prompt. Measures the agent-side targets.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/engine_api/engine_backend.h"
#include "backends/engine_api/engine_client.h"
#include "core/api/api_client.h"
#include "core/http/http_client.h"
#include "core/net/http_server.h"
#include "tests/agent/host_agent.h"
#include "tests/e2e/e2e_harness.h"
#include "tools/bench/engine_bench_common.h"
#include "tools/model_stub/model_stub.h"
#include "tools/model_stub/scenario.h"

ABSL_FLAG(int, rounds, 10, "jobs per column (cold and warm alternate)");
ABSL_FLAG(bool, agent_only, false, "host OpenCode only (no container, no server)");
ABSL_FLAG(std::string, backend, "docker", "container mode: docker or podman");
ABSL_FLAG(bool, cold_only, false, "container mode: no warm column (no --warm_pool server)");
ABSL_FLAG(std::string, refill_delay, "",
          "container mode: the warm server's --warm_pool_refill_delay (default: the server's)");
ABSL_FLAG(std::string, image, "", "sandbox image (default: $FASTEST_E2E_IMAGE or fastest/sandbox:0.1.0)");
ABSL_FLAG(std::string, scenario, "examples/scenarios/basic.json", "model stub scenario");
ABSL_FLAG(std::string, workspace, "examples/hello", "the job's workspace");
ABSL_FLAG(std::string, instance_type, "standard-3",
          "container mode: the sandboxes' instance type (OpenCode is CPU-bound at start; the "
          "server's default standard-1 has half a CPU)");
ABSL_FLAG(absl::Duration, warm_settle, absl::Seconds(1),
          "container mode: before each job the bench waits until the last job's sandbox is "
          "removed and the warm pool reports a ready sandbox (/metrics), then this much longer");

namespace fastest::bench {
namespace {

using tools::model_stub::ModelStub;

// Runfiles-relative paths work under `bazel run` (cwd = the runfiles tree).
std::string Runfile(const std::string& rel) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::canonical(rel, ec);
  return ec ? rel : p.string();
}

struct Column {
  Series dispatch{"dispatch: POST /run-job -> runner's first line"};
  Series first_request{"job created -> agent's first model request"};
  Series step{"per tool step overhead (stub answer -> next request)"};
  Series job{"job created -> completed"};
  Series boot{"(agent only) boot + warm-up before the job"};
  std::vector<Series> step_by_index;  // overhead after the 1st, 2nd, ... answer
};

// Adds the stub's agent requests received at or after t0 to the column; false when none.
bool AddModelTimes(const std::vector<ModelStub::RequestRecord>& records, absl::Time t0,
                   Column* col) {
  std::vector<const ModelStub::RequestRecord*> agent;
  for (const auto& r : records) {
    if (r.agent && r.received >= t0) agent.push_back(&r);
  }
  if (agent.empty()) return false;
  col->first_request.Add(agent.front()->received - t0);
  for (size_t i = 1; i < agent.size(); ++i) {
    col->step.Add(agent[i]->received - agent[i - 1]->answered);
    if (col->step_by_index.size() < i) {
      col->step_by_index.push_back(Series{absl::StrCat("  after answer ", i, " (", agent[i - 1]->label, ")")});
    }
    col->step_by_index[i - 1].Add(agent[i]->received - agent[i - 1]->answered);
  }
  return true;
}

struct Target {
  const char* what;
  double ms;
};

void PrintTable(const Column& cold, const Column* warm, const Series* raw,
                const std::vector<std::pair<const Series Column::*, Target>>& rows) {
  printf("\n  %-54s %-22s %-22s %s\n", "", "cold p50 / p90", warm ? "warm p50 / p90" : "",
         "target (warm)");
  auto cell = [](const Series& s) {
    if (s.ms.empty()) return std::string("-");
    return absl::StrFormat("%7.0f / %-7.0f ms", s.p50(), s.p90());
  };
  for (const auto& [member, target] : rows) {
    const Series& c = cold.*member;
    std::string target_text = target.ms > 0 ? absl::StrFormat("<= %.0f ms", target.ms) : "";
    if (warm != nullptr && target.ms > 0 && !((*warm).*member).ms.empty()) {
      target_text += ((*warm).*member).p50() <= target.ms ? "  MET (p50)" : "  MISSED (p50)";
    }
    printf("  %-54s %-22s %-22s %s\n", c.name.c_str(), cell(c).c_str(),
           warm ? cell((*warm).*member).c_str() : "", target_text.c_str());
  }
  if (raw != nullptr && !raw->ms.empty()) {
    printf("  %-54s %-22s %-22s %s\n", raw->name.c_str(), cell(*raw).c_str(), "",
           "cold dispatch <= 1.15x raw");
    if (!cold.dispatch.ms.empty()) {
      double r = cold.dispatch.p50() / raw->p50();
      printf("  cold dispatch / raw engine (p50): %.2fx  %s\n", r, r <= 1.15 ? "MET" : "MISSED");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// --agent_only

int AgentOnly(int rounds, const tools::model_stub::Scenario& scenario) {
  tests::HostAgentRig rig(scenario);
  Check(rig.status(), "host agent rig");
  printf("agent_bench --agent_only: %s, %d rounds per column, cold/warm interleaved\n",
         rig.opencode_bin().c_str(), rounds);
  fflush(stdout);
  const std::string source = Runfile(absl::GetFlag(FLAGS_workspace));
  const std::string prompt = "Add a farewell script, document it and record a greeting";
  Column cold, warm;
  auto one = [&](bool is_warm, bool record) {
    std::string ws = Check(rig.NewWorkspace(source), "workspace");
    const absl::Time boot0 = absl::Now();
    std::unique_ptr<runner::OpenCodeServer> server = Check(rig.StartServer(ws), "start OpenCode");
    absl::Time t0 = boot0;
    if (is_warm) {
      Check(server->WaitListening(), "listening");
      Check(server->Warm(ws), "warm-up");
      t0 = absl::Now();
    }
    rig.stub().ClearRequests();
    runner::AgentResult result = rig.Prompt(*server, ws, prompt);
    const absl::Time done = absl::Now();
    if (result.exit_code != 0) Die(absl::StrCat("prompt failed: ", result.tail));
    if (!record) return;
    Column& col = is_warm ? warm : cold;
    if (!AddModelTimes(rig.stub().Requests(), t0, &col)) Die("no model request seen");
    col.job.Add(done - t0);
    if (is_warm) col.boot.Add(t0 - boot0);
  };
  printf("warm-up round (not recorded)...\n");
  fflush(stdout);
  one(false, false);
  for (int i = 0; i < rounds; ++i) {
    one(false, true);
    one(true, true);
    printf("  round %d/%d done\n", i + 1, rounds);
    fflush(stdout);
  }
  printf("\n=== agent only (host, real OpenCode, model stub; basic scenario: 3 tool steps) ===");
  PrintTable(cold, &warm, nullptr,
             {{&Column::first_request, {"", 500}},
              {&Column::step, {"", 150}},
              {&Column::job, {"", 2000}},
              {&Column::boot, {"", 0}}});
  printf("  per step (warm):\n");
  for (const Series& s : warm.step_by_index) PrintSeries(s);
  printf("  (cold: the clock starts when `opencode serve` is started; warm: at the prompt)\n");
  return 0;
}

// ---------------------------------------------------------------------------------------------
// container mode

struct ServerSide {
  std::unique_ptr<e2e::BackendServer> server;
  std::unique_ptr<core::ApiClient> api;
};

int Containers(int rounds, const tools::model_stub::Scenario& scenario) {
  const bool cold_only = absl::GetFlag(FLAGS_cold_only);
  const std::string image =
      absl::GetFlag(FLAGS_image).empty() ? e2e::SandboxImage() : absl::GetFlag(FLAGS_image);
  const std::string backend_name = absl::GetFlag(FLAGS_backend);
  const e2e::BackendKind kind = Check(e2e::ParseBackendKind(backend_name), "--backend");
  std::unique_ptr<backends::engine_api::EngineClient> probe =
      Check(e2e::ConnectEngine(kind), "engine");
  Check(e2e::CheckImagePresent(kind, image), "image");
  EngineBackendOptions backend_options =
      Check(EngineBackendOptionsFor(backend_name), "engine options");
  std::unique_ptr<backends::engine_api::EngineClient> engine =
      Check(backends::engine_api::EngineClient::Create(backend_options.engine), "engine client");
  RawEngine raw;
  raw.endpoint = Check(core::ParseEndpoint(backend_options.engine.endpoint), "endpoint");
  raw.podman = kind == e2e::BackendKind::kPodman;
  ContainerSpec runner_spec = Check(
      backends::engine_api::ContainerSpecFor(DispatcherLikeSpec(image, {"fastest-runner"}),
                                             backend_options),
      "container spec");

  // The model stub, in process, on the host's loopback: the server's model gateway reaches it.
  ModelStub stub(scenario, /*log_to_stderr=*/false);
  net::HttpServerOptions stub_options;
  stub_options.host = "127.0.0.1";
  stub_options.port = 0;
  stub_options.threads = 2;
  net::HttpServer stub_http(stub_options);
  stub.Register(stub_http.router());
  Check(stub_http.Start(), "model stub");

  const std::string work = e2e::MakeTempDir("agent_bench_");
  const std::string token = "agent-bench-token-0123456789abcdef";
  auto start_server = [&](const std::string& name, bool warm_pool) {
    e2e::ServerOptions so;
    so.backend = kind;
    so.image = image;
    so.max_instances = 2;
    so.job_timeout = "3m";
    so.agent_command = "";  // the real OpenCode
    so.extra_env = {{"FASTEST_MODEL_BASE_URL",
                     absl::StrCat("http://127.0.0.1:", stub_http.port(), "/v1")},
                    {"FASTEST_MODEL_API_KEY", "agent-bench-model-key"},
                    {"ANTHROPIC_API_KEY", ""},
                    {"OPENAI_API_KEY", ""}};
    so.extra_flags = {absl::StrCat("--instance_type=", absl::GetFlag(FLAGS_instance_type))};
    if (warm_pool) so.extra_flags.push_back("--warm_pool=1");
    if (warm_pool && !absl::GetFlag(FLAGS_refill_delay).empty()) {
      so.extra_flags.push_back(
          absl::StrCat("--warm_pool_refill_delay=", absl::GetFlag(FLAGS_refill_delay)));
    }
    ServerSide side;
    side.server = std::make_unique<e2e::BackendServer>(work + "/" + name, token, so);
    Check(side.server->Start(), absl::StrCat("start fastest-server (", name, ")"));
    return side;
  };
  core::HttpClient http;
  ServerSide cold_side = start_server("cold", false);
  cold_side.api = std::make_unique<core::ApiClient>(http, cold_side.server->url(), token);
  ServerSide warm_side;
  if (!cold_only) {
    warm_side = start_server("warm", true);
    warm_side.api = std::make_unique<core::ApiClient>(http, warm_side.server->url(), token);
  }
  // Runfiles are symlinks (the scanner skips those): seed from a real copy.
  const std::string source = work + "/tree";
  {
    std::error_code ec;
    std::filesystem::copy(Runfile(absl::GetFlag(FLAGS_workspace)), source,
                          std::filesystem::copy_options::recursive, ec);
    if (ec) Die(absl::StrCat("copy the workspace: ", ec.message()));
  }
  printf("agent_bench: %s, image %s, instance type %s, %d rounds per column%s\n",
         backend_name.c_str(), image.c_str(), absl::GetFlag(FLAGS_instance_type).c_str(), rounds,
         cold_only ? " (cold only)" : ", cold/warm interleaved");
  fflush(stdout);

  Column cold, warm;
  Series raw_first{"raw engine: create+start -> first log line (cold)"};
  int seq = 0;
  auto one = [&](bool is_warm, bool record) {
    ServerSide& side = is_warm ? warm_side : cold_side;
    core::ApiClient& api = *side.api;
    // A fresh workspace per job: every job starts from the example as it is.
    e2e::Fixture fixture =
        Check(e2e::SeedWorkspace(api, source, absl::StrCat("bench", ++seq)), "seed");
    // Warm: the sandboxes waiting before the POST; the job's is one of them.
    std::vector<backends::engine_api::ContainerSummary> waiting;
    // Every job, cold ones too, starts on a quiet machine: the last job's sandbox is removed and
    // the warm server's replacement has booted (the pool reports it ready), then settled.
    {
      auto containers = [&](const ServerSide& s) {
        return Check(e2e::ListLabelled(*engine, {{"fastest.server_id", s.server->server_id()}}),
                     "list sandboxes")
            .size();
      };
      const absl::Time give_up = absl::Now() + absl::Minutes(2);
      while (containers(cold_side) > 0 ||
             (warm_side.server != nullptr &&
              (containers(warm_side) != 1 ||
               e2e::MetricSample(http, warm_side.server->url(), token,
                                 "fastest_warm_pool_sandboxes{state=\"ready\"}") < 1))) {
        if (absl::Now() > give_up) Die("no quiet moment within 2 min (sandboxes still going)");
        absl::SleepFor(absl::Milliseconds(100));
      }
      absl::SleepFor(absl::GetFlag(FLAGS_warm_settle));
    }
    if (is_warm) {
      waiting = Check(e2e::ListLabelled(*engine, {{"fastest.server_id", side.server->server_id()}}),
                      "list warm sandboxes");
    }
    const std::string job_id =
        Check(api.CreateJob(fixture.workspace_id,
                            "Add a farewell script, document it and record a greeting"),
              "create job")
            .id;
    const absl::Time t_created = absl::Now();
    stub.ClearRequests();
    const absl::Time t0 = absl::Now();
    Check(e2e::RunJob(side.server->url(), token, job_id, /*wait=*/false).status(), "run-job");
    std::optional<absl::Time> first_line;
    if (!is_warm) {
      auto container = Check(e2e::WaitForContainer(*engine, {{"fastest.job_id", job_id}},
                                                   absl::Seconds(20), absl::Milliseconds(2)),
                             "find the job's container");
      first_line = Check(FirstLogLineTime(raw, container.id, absl::Seconds(30), t0), "first line");
    } else {
      for (const auto& c : waiting) {
        absl::StatusOr<absl::Time> t = FirstLogLineTime(raw, c.id, absl::Seconds(10), t0);
        if (t.ok() && (!first_line || *t < *first_line)) first_line = *t;
      }
    }
    core::Job job;
    const absl::Time deadline = absl::Now() + absl::Minutes(4);
    while (true) {
      absl::StatusOr<core::Job> j = api.GetJob(job_id);
      if (j.ok() && core::IsTerminal(j->status)) {
        job = *j;
        break;
      }
      if (absl::Now() > deadline) Die(absl::StrCat("job ", job_id, " did not end"));
      absl::SleepFor(absl::Milliseconds(10));
    }
    const absl::Time done = absl::Now();
    if (job.status != core::JobStatus::kCompleted) {
      Die(absl::StrCat("job ", job_id, " ended ", core::JobStatusName(job.status), ": ",
                       job.error.value_or(""), "\nserver log tail:\n",
                       side.server->Log().substr(side.server->Log().size() > 4000
                                                     ? side.server->Log().size() - 4000
                                                     : 0)));
    }
    if (!record) return;
    Column& col = is_warm ? warm : cold;
    if (first_line) col.dispatch.Add(*first_line - t0);
    if (!AddModelTimes(stub.Requests(), t_created, &col)) Die("no model request seen");
    col.job.Add(done - t_created);
  };
  printf("warm-up round (not recorded)...\n");
  fflush(stdout);
  one(false, false);
  if (!cold_only) one(true, false);
  for (int i = 0; i < rounds; ++i) {
    raw_first.Add(RawColdStart(raw, *engine, runner_spec, /*libpod=*/false).first_line);
    one(false, true);
    if (!cold_only) one(true, true);
    printf("  round %d/%d done\n", i + 1, rounds);
    fflush(stdout);
  }
  printf("\n=== agent jobs in containers (%s, %s; basic scenario: 3 tool steps) ===",
         backend_name.c_str(), image.c_str());
  PrintTable(cold, cold_only ? nullptr : &warm, &raw_first,
             {{&Column::dispatch, {"", 25}},
              {&Column::first_request, {"", 500}},
              {&Column::step, {"", 150}},
              {&Column::job, {"", 2000}}});
  printf("  per step (%s):\n", cold_only ? "cold" : "warm");
  for (const Series& s : (cold_only ? cold : warm).step_by_index) PrintSeries(s);
  if (!cold_only && warm.dispatch.ms.size() < warm.job.ms.size()) {
    printf("  (warm dispatch: %zu of %zu jobs had a log line after the POST in a sandbox that was "
           "waiting before it)\n",
           warm.dispatch.ms.size(), warm.job.ms.size());
  }
  std::vector<std::string> ids = {cold_side.server->server_id()};
  cold_side.server->Stop();
  if (warm_side.server) {
    ids.push_back(warm_side.server->server_id());
    warm_side.server->Stop();
  }
  for (const std::string& id : ids) {
    Check(e2e::WaitNoContainers(*engine, {{"fastest.server_id", id}}, absl::Seconds(30)),
          "leftover sandboxes");
  }
  Check(e2e::WaitNoContainers(*engine, {{"fastest.bench", "1"}}, absl::Seconds(20)),
        "leftover raw containers");
  stub_http.Stop();
  std::error_code ec;
  std::filesystem::remove_all(work, ec);
  return 0;
}

int Main() {
  const int rounds = absl::GetFlag(FLAGS_rounds);
  tools::model_stub::Scenario scenario =
      Check(tools::model_stub::LoadScenarioFile(Runfile(absl::GetFlag(FLAGS_scenario))),
            "scenario");
  return absl::GetFlag(FLAGS_agent_only) ? AgentOnly(rounds, scenario)
                                         : Containers(rounds, scenario);
}

}  // namespace
}  // namespace fastest::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return fastest::bench::Main();
}
