// The hostile-agent suite: a real fastest-server runs a real job in a real container (docker or
// podman: one source, one cc_test per backend, -DFASTEST_SECURITY_BACKEND=<name>) whose "agent" is
// tests/security/hostile_agent. It tries every way out of the sandbox and writes what it got into
// the workspace; this test asserts each attempt failed, that the same job still did its work, that
// no API token shows up in any blob of the output snapshot or in the job's log, and that the
// engine reports the sealed container settings (network none, CapDrop ALL plus the runner's few,
// no-new-privileges, read-only root, no swap, pids limit) while the job runs.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/crypto/secure_random.h"
#include "core/http/http_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/e2e_harness.h"
#include "tests/runner/e2e_harness.h"
#include "tests/testing/child_process.h"

#ifndef FASTEST_SECURITY_BACKEND
#error "compile with -DFASTEST_SECURITY_BACKEND=docker|podman"
#endif
#define FASTEST_SECURITY_STR2(x) #x
#define FASTEST_SECURITY_STR(x) FASTEST_SECURITY_STR2(x)

namespace fastest::e2e {
namespace {

// The capabilities the runner keeps: CHOWN(0) DAC_OVERRIDE(1) FOWNER(3) KILL(5) SETGID(6)
// SETUID(7) — backends/engine_api/engine_backend.h kRunnerCapabilities.
constexpr char kRunnerCapEff[] = "00000000000000eb";
// Instance type "basic": 1 GiB memory, 256 pids, 4 GB disk.
constexpr int kPidsLimit = 256;
constexpr int64_t kMemoryBytes = 1LL << 30;

// A TCP service on the host's 127.0.0.1 holding a secret: the sandbox must not reach it.
class Decoy {
 public:
  explicit Decoy(std::string secret) : secret_(std::move(secret)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] {
      while (true) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        ++accepted_;
        (void)!write(c, secret_.data(), secret_.size());
        close(c);
      }
    });
  }
  ~Decoy() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }

 private:
  std::string secret_;
  int fd_;
  int port_;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// GET <path> on the engine socket (Docker and Podman's compat API).
absl::StatusOr<nlohmann::json> EngineGet(BackendKind kind, const std::string& path) {
  auto endpoint = core::ParseEndpoint(EngineFor(kind).endpoint);
  if (!endpoint.ok()) return endpoint.status();
  core::HttpClient http;
  core::HttpRequest req;
  req.url = absl::StrCat("http://localhost", path);
  req.unix_socket = endpoint->unix_socket;
  auto resp = http.Send(req);
  if (!resp.ok()) return resp.status();
  if (resp->status != 200) return absl::InternalError(resp->body);
  return nlohmann::json::parse(resp->body);
}

std::string StatusField(const std::string& status, const std::string& field) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, field + ":")) return std::string(absl::StripAsciiWhitespace(line));
  }
  return "";
}

// The fastest-runner process below the container's init (host pid), or 0.
int FindRunner(int init_pid) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    std::string children =
        ReadFile(absl::StrCat("/proc/", init_pid, "/task/", init_pid, "/children"));
    for (absl::string_view pid : absl::StrSplit(children, ' ', absl::SkipEmpty())) {
      std::string comm = ReadFile(absl::StrCat("/proc/", pid, "/comm"));
      int n = 0;
      if (absl::StartsWith(comm, "fastest-runner") && absl::SimpleAtoi(pid, &n)) return n;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return 0;
}

bool Failed(const nlohmann::json& report, const std::string& key) {
  return absl::StartsWith(report.value(key, std::string("missing")), "error: ");
}

TEST(SecurityTest, HostileAgentGetsNothingAndTheJobStillCompletes) {
  const std::string backend_name = FASTEST_SECURITY_STR(FASTEST_SECURITY_BACKEND);
  absl::StatusOr<BackendKind> kind = ParseBackendKind(backend_name);
  ASSERT_TRUE(kind.ok());
  std::string image = SandboxImage();
  absl::Status present = CheckImagePresent(*kind, image);
  ASSERT_TRUE(present.ok()) << present.message();

  const std::string work = MakeTempDir("security_");
  const std::string admin_token = "sec-" + core::SecureRandomHex(16);
  const std::string decoy_secret = "DECOY-" + core::SecureRandomHex(12);
  Decoy decoy(decoy_secret);
  const std::string allowed_greeting = "ALLOWED-" + core::SecureRandomHex(12);
  Decoy allowed(allowed_greeting);  // the one host on the egress allow-list

  // The model provider: the stub accepts completions only with the key the server holds.
  const std::string model_key = "sk-sec-" + core::SecureRandomHex(16);
  testing::SpawnOptions stub_options;
  stub_options.binary = RunfilePath("tools/model_stub/fastest-model-stub");
  stub_options.args = {absl::StrCat("--scenario=", RunfilePath("examples/scenarios/basic.json")),
                       "--port=0", absl::StrCat("--port_file=", work, "/stub.port"),
                       "--require_key_env=FASTEST_STUB_KEY"};
  stub_options.env = testing::CurrentEnvironment();
  stub_options.env["FASTEST_STUB_KEY"] = model_key;
  stub_options.log_path = work + "/stub.log";
  auto stub = testing::ChildProcess::Spawn(stub_options);
  ASSERT_TRUE(stub.ok()) << stub.status();
  auto stub_port = stub->WaitForPortFile(work + "/stub.port", absl::Seconds(10));
  ASSERT_TRUE(stub_port.ok()) << stub_port.status();

  ServerOptions options;
  options.backend = *kind;
  options.image = image;
  options.port = testing::PickFreePort();
  options.job_timeout = "3m";
  options.agent_command =
      absl::StrCat("./hostile_agent --decoy_port=", decoy.port(), " --server_port=", options.port,
                   " --allowed_port=", allowed.port(), " --limit_mib=2048");
  options.extra_flags = {"--instance_type=basic", "--egress=allowlist",
                         absl::StrCat("--egress_allow=127.0.0.1:", allowed.port())};
  options.extra_env = {
      {"FASTEST_MODEL_BASE_URL", absl::StrCat("http://127.0.0.1:", *stub_port, "/v1")},
      {"FASTEST_MODEL_API_KEY", model_key}};
  BackendServer server(work + "/data", admin_token, options);
  absl::Status started = server.Start();
  ASSERT_TRUE(started.ok()) << started.message();

  core::HttpClient http;
  core::ApiClient api(http, server.url(), admin_token);
  const std::string fixture = work + "/fixture";
  WriteFile(fixture, "README.md", "# target\n");
  WriteFile(fixture, "hostile_agent", ReadFile(RunfilePath("tests/security/hostile_agent")), 0755);
  absl::StatusOr<Fixture> seeded = SeedWorkspace(api, fixture, "security");
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  absl::StatusOr<core::Job> job = api.CreateJob(seeded->workspace_id, "break out");
  ASSERT_TRUE(job.ok()) << job.status();
  auto accepted = RunJob(server.url(), admin_token, job->id, /*wait=*/false);
  ASSERT_TRUE(accepted.ok()) << accepted.status();

  // While it runs: what the engine says about the container, and the runner's own credentials.
  auto engine = ConnectEngine(*kind);
  ASSERT_TRUE(engine.ok()) << engine.status();
  auto container = WaitForContainer(**engine, {{"fastest.job_id", job->id}}, absl::Seconds(60));
  ASSERT_TRUE(container.ok()) << container.status();
  absl::StatusOr<nlohmann::json> inspect;
  for (int attempt = 0; attempt < 400; ++attempt) {  // created -> running
    inspect = EngineGet(*kind, absl::StrCat("/containers/", container->id, "/json"));
    // A container listed while the engine is still creating it can answer "No such container"
    // for a moment under load; only a sandbox gone with its job ended is a failure.
    if (inspect.ok() && (*inspect)["State"].value("Pid", 0) > 0) break;
    if (!inspect.ok()) {
      absl::StatusOr<core::Job> now = api.GetJob(job->id);
      if (!now.ok() || core::IsTerminal(now->status)) {
        FAIL() << inspect.status() << "\njob: "
               << (now.ok() ? absl::StrCat(core::JobStatusName(now->status), " ",
                                           now->error.value_or(""))
                            : std::string(now.status().message()))
               << "\nserver log:\n" << server.Log();
      }
    }
    absl::SleepFor(absl::Milliseconds(25));
  }
  ASSERT_TRUE(inspect.ok()) << inspect.status() << "\nserver log:\n" << server.Log();
  const nlohmann::json& host = (*inspect)["HostConfig"];
  EXPECT_EQ(host.value("NetworkMode", ""), "none") << host.dump();
  ASSERT_TRUE(host["CapDrop"].is_array()) << host.dump();
  if (*kind == BackendKind::kDocker) {
    EXPECT_EQ(host["CapDrop"], nlohmann::json::array({"ALL"}));
    std::set<std::string> added;
    for (const auto& c : host["CapAdd"]) added.insert(c.get<std::string>());
    EXPECT_EQ(added, (std::set<std::string>{"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID",
                                            "KILL"}));
  }
  std::string security_opt = host["SecurityOpt"].dump();
  EXPECT_TRUE(absl::StrContains(security_opt, "no-new-privileges")) << security_opt;
  EXPECT_EQ(host.value("ReadonlyRootfs", false), true);
  EXPECT_EQ(host.value("Memory", int64_t{0}), kMemoryBytes);
  EXPECT_EQ(host.value("MemorySwap", int64_t{0}), host.value("Memory", int64_t{-1}));
  EXPECT_EQ(host.value("PidsLimit", int64_t{0}), kPidsLimit);
  std::string env = (*inspect)["Config"]["Env"].dump();
  EXPECT_FALSE(absl::StrContains(env, "API_TOKEN=")) << "token in the container's environment";
  EXPECT_FALSE(absl::StrContains(env, "fst_")) << env;

  int init_pid = (*inspect)["State"].value("Pid", 0);
  ASSERT_GT(init_pid, 0);
  int runner = FindRunner(init_pid);
  ASSERT_GT(runner, 0) << "no fastest-runner below the container's init";
  std::string runner_status = ReadFile(absl::StrCat("/proc/", runner, "/status"));
  // Whatever the engine reports, the kernel has the last word.
  EXPECT_EQ(StatusField(runner_status, "CapEff"), kRunnerCapEff) << runner_status;
  EXPECT_EQ(StatusField(runner_status, "NoNewPrivs"), "1");
  EXPECT_FALSE(absl::StrContains(ReadFile(absl::StrCat("/proc/", runner, "/environ")), "fst_"));

  auto done = WaitForTerminal(api, job->id, absl::Minutes(3));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->status, core::JobStatus::kCompleted)
      << done->error.value_or("") << "\n" << server.Log();
  ASSERT_TRUE(done->output_snapshot_id.has_value());

  // Everything the agent left behind, and the job's log.
  auto snapshot = api.GetSnapshot(*done->output_snapshot_id);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  auto manifest = FetchSnapshotManifest(api, *done->output_snapshot_id);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  std::map<std::string, std::string> files;
  for (const auto& f : manifest->files) {
    auto blob = api.DownloadBlob(f.hash);
    ASSERT_TRUE(blob.ok()) << blob.status();
    files[f.path] = *blob;
  }
  // The log is complete once the sandbox is removed (the dispatcher reads it at the exit).
  EXPECT_TRUE(WaitNoContainers(**engine, {{"fastest.job_id", job->id}}, absl::Seconds(30)).ok());
  std::string job_log = ReadFile(absl::StrCat(server.data_dir(), "/logs/", job->id, ".log"));
  ASSERT_FALSE(job_log.empty());
  files["<job log>"] = job_log;
  files["<server log>"] = server.Log();
  files["<sandbox env>"] = env;

  // The real work got done.
  EXPECT_EQ(files["done.txt"], "the agent finished its task\n");
  ASSERT_TRUE(files.count("report.json")) << job_log;
  nlohmann::json report = nlohmann::json::parse(files["report.json"], nullptr, false);
  ASSERT_TRUE(report.is_object()) << files["report.json"];
  fprintf(stderr, "hostile agent report:\n%s\n", report.dump(2).c_str());

  // The model gateway: the agent's request reached the stub (which demands the real key) and
  // got its answer; the gateway refuses anything but the provider's API below /v1.
  EXPECT_TRUE(absl::StartsWith(report.value("model.answer", ""), "HTTP/1.1 200"))
      << report.value("model.answer", "missing");
  EXPECT_TRUE(absl::StartsWith(report.value("model.escape", ""), "HTTP/1.1 400"))
      << report.value("model.escape", "missing");
  EXPECT_TRUE(absl::StartsWith(report.value("model.absolute", ""), "HTTP/1.1 400"))
      << report.value("model.absolute", "missing");
  EXPECT_TRUE(absl::StrContains(job_log, "[gateway] POST /v1/chat/completions -> 200")) << job_log;
  EXPECT_TRUE(absl::StrContains(report.value("self.environ", ""),
                                "FASTEST_MODEL_API_KEY=fastest-model-gateway"));
  // Egress: the allow-listed host answers through the proxy; the decoy is refused and logged.
  EXPECT_TRUE(absl::StrContains(report.value("egress.allowed", ""), allowed_greeting))
      << report.value("egress.allowed", "missing");
  EXPECT_EQ(allowed.accepted(), 1);
  EXPECT_TRUE(absl::StartsWith(report.value("egress.refused", ""), "HTTP/1.1 403"))
      << report.value("egress.refused", "missing");
  EXPECT_TRUE(absl::StartsWith(report.value("egress.plain_get", ""), "HTTP/1.1 405"));
  EXPECT_TRUE(absl::StrContains(job_log, absl::StrCat("[egress] refused 127.0.0.1:", decoy.port())))
      << job_log;
  // No token, no provider key, no decoy secret anywhere: blobs, logs, the sandbox's env.
  const std::regex token_shape("fst_[0-9a-f]{48}");
  for (const auto& [path, content] : files) {
    EXPECT_FALSE(std::regex_search(content, token_shape)) << "an API token in " << path;
    EXPECT_FALSE(absl::StrContains(content, decoy_secret)) << "the decoy's secret in " << path;
    EXPECT_FALSE(absl::StrContains(content, model_key)) << "the provider key in " << path;
  }

  // Identity and privileges of the agent.
  std::vector<std::string> uids = absl::StrSplit(report.value("self.Uid", "0"), '\t');
  EXPECT_NE(uids[0], "0") << "the agent runs as root";
  EXPECT_EQ(report.value("self.CapEff", ""), "0000000000000000");
  EXPECT_EQ(report.value("self.CapPrm", ""), "0000000000000000");
  EXPECT_EQ(report.value("self.NoNewPrivs", ""), "1");
  EXPECT_TRUE(Failed(report, "setuid0"));

  // Network: nothing of the host is reachable, no raw sockets.
  EXPECT_TRUE(Failed(report, "net.decoy")) << report["net.decoy"];
  EXPECT_EQ(decoy.accepted(), 0) << "the sandbox reached a service on the host's loopback";
  EXPECT_TRUE(Failed(report, "net.server")) << report["net.server"];
  EXPECT_TRUE(Failed(report, "net.packet_socket"));
  EXPECT_TRUE(Failed(report, "net.raw_ip_socket"));
  char port_hex[8];
  snprintf(port_hex, sizeof(port_hex), ":%04X", decoy.port());
  EXPECT_FALSE(absl::StrContains(report.value("net.proc_net_tcp", ""), port_hex))
      << "host listeners are visible";

  // Secrets: PID 1, the runner, the channel directory.
  EXPECT_FALSE(absl::StrContains(report.value("proc1.environ", ""), "API_TOKEN"));
  EXPECT_NE(report.value("runner.pid", "0"), "0") << "the agent did not find the runner";
  // (The runner's cmdline is world-readable like every process's; it holds no secret, which the
  // token-shape check over the whole report covers.)
  for (const char* key : {"runner.environ", "runner.mem", "runner.ptrace",
                          "channel.list", "channel.token", "channel.api_sock",
                          "channel.model_sock"}) {
    EXPECT_TRUE(Failed(report, key)) << key << ": " << report.value(key, "missing");
  }
  EXPECT_EQ(report.value("hunt.hits", "missing"), "");
  EXPECT_FALSE(absl::StrContains(report.value("self.environ", ""), "API_TOKEN"))
      << report.value("self.environ", "");

  // The image is read-only.
  EXPECT_TRUE(Failed(report, "fs.write_usr"));
  EXPECT_TRUE(Failed(report, "fs.write_root"));

  // Limits: fewer processes than the pids limit, memory and disk bombs stopped.
  int forked = 0;
  ASSERT_TRUE(absl::SimpleAtoi(report.value("limit.pids", "x"), &forked));
  EXPECT_LT(forked, kPidsLimit);
  EXPECT_GT(forked, 10);
  EXPECT_FALSE(absl::StartsWith(report.value("limit.memory", "exit 2"), "exit 2"))
      << "allocated 2 GiB in a 1 GiB sandbox";
  EXPECT_FALSE(absl::StartsWith(report.value("limit.disk", "exit 2"), "exit 2"))
      << "wrote 2 GiB without hitting a limit";

  server.Stop();
  // The channel directory went with the sandbox.
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(server.data_dir() + "/channels", ec));
}

}  // namespace
}  // namespace fastest::e2e
