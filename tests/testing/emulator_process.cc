#include "tests/testing/emulator_process.h"

#include <chrono>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/testing/runfiles.h"

namespace fastest::testing {
namespace {

absl::StatusOr<core::HttpResponse> DockerGet(const std::string& path) {
  core::HttpClient http;
  core::HttpRequest request;
  request.url = absl::StrCat("http://localhost", path);
  request.unix_socket = "/var/run/docker.sock";
  request.timeout = std::chrono::milliseconds(3000);
  return http.Send(request);
}

}  // namespace

absl::Status RequireDocker() {
  absl::StatusOr<core::HttpResponse> ping = DockerGet("/_ping");
  if (!ping.ok() || ping->status != 200) {
    return absl::UnavailableError(absl::StrCat(
        "this test needs Docker: /var/run/docker.sock does not answer /_ping (",
        ping.ok() ? absl::StrCat("HTTP ", ping->status) : std::string(ping.status().message()),
        "). Start it with tools/start_dockerd.sh"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> TestImage() {
  const char* env = std::getenv("FASTEST_CF_TEST_IMAGE");
  std::vector<std::string> candidates;
  if (env != nullptr && *env != '\0') candidates.push_back(env);
  candidates.push_back("fastest/sandbox:0.1.0");
  candidates.push_back("fastest/test-busybox:latest");
  for (const std::string& image : candidates) {
    absl::StatusOr<core::HttpResponse> inspect = DockerGet(absl::StrCat("/images/", image, "/json"));
    if (inspect.ok() && inspect->status == 200) return image;
  }
  return absl::FailedPreconditionError(
      "no sandbox image in Docker (tried $FASTEST_CF_TEST_IMAGE, fastest/sandbox:0.1.0, "
      "fastest/test-busybox:latest): build one with tools/build_sandbox_image.sh, e.g. "
      "tools/build_sandbox_image.sh --tag fastest/test-busybox:latest --no-runner --no-opencode");
}

absl::StatusOr<std::unique_ptr<EmulatorProcess>> EmulatorProcess::Start(EmulatorOptions options) {
  if (absl::Status docker = RequireDocker(); !docker.ok()) return docker;
  if (options.image.empty()) {
    absl::StatusOr<std::string> image = TestImage();
    if (!image.ok()) return image.status();
    options.image = *image;
  }
  if (options.work_dir.empty()) options.work_dir = MakeTempDir("emulator_");
  std::error_code ec;
  std::filesystem::create_directories(options.work_dir, ec);
  const std::string port_file = options.work_dir + "/emulator.port";
  std::filesystem::remove(port_file, ec);

  std::unique_ptr<EmulatorProcess> process(new EmulatorProcess(std::move(options)));
  const EmulatorOptions& o = process->options_;
  process->log_path_ = o.work_dir + "/emulator.log";
  SpawnOptions spawn;
  spawn.binary = RunfilePath("tools/cf_bridge_emulator/cf-bridge-emulator");
  spawn.args = {"--port", "0", "--port-file", port_file, "--image", o.image};
  spawn.args.insert(spawn.args.end(), o.extra_args.begin(), o.extra_args.end());
  spawn.env = o.inherit_environment ? CurrentEnvironment()
                                    : std::map<std::string, std::string>{{"PATH", "/usr/bin:/bin"}};
  spawn.env["SANDBOX_API_KEY"] = o.api_key;
  spawn.log_path = process->log_path_;
  spawn.append = true;
  spawn.die_with_parent = true;
  spawn.name = "cf-bridge-emulator";
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(spawn);
  if (!child.ok()) return child.status();
  process->child_ = std::move(*child);
  absl::StatusOr<int> port = process->child_.WaitForPortFile(port_file, absl::Seconds(20));
  if (!port.ok()) return port.status();
  process->port_ = *port;
  process->url_ = absl::StrCat("http://127.0.0.1:", *port);
  return process;
}

EmulatorProcess::~EmulatorProcess() { Stop(); }

void EmulatorProcess::Stop() { child_.Stop(absl::Seconds(30)); }

std::string EmulatorProcess::Log() const { return ReadFileTail(log_path_, 1 << 20); }

absl::Status EmulatorProcess::SetFaults(const nlohmann::json& faults) {
  core::HttpRequest req;
  req.method = "POST";
  req.url = url_ + "/_emulator/faults";
  req.body = faults.dump();
  req.headers = {{"Content-Type", "application/json"}};
  absl::StatusOr<core::HttpResponse> resp = http_.Send(req);
  if (!resp.ok()) return resp.status();
  if (resp->status / 100 != 2) {
    return absl::InternalError(absl::StrCat("emulator faults: HTTP ", resp->status, " ", resp->body));
  }
  return absl::OkStatus();
}

absl::Status EmulatorProcess::ClearFaults() {
  core::HttpRequest req;
  req.method = "DELETE";
  req.url = url_ + "/_emulator/faults";
  absl::StatusOr<core::HttpResponse> resp = http_.Send(req);
  if (!resp.ok()) return resp.status();
  if (resp->status / 100 != 2) {
    return absl::InternalError(absl::StrCat("emulator faults: HTTP ", resp->status, " ", resp->body));
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> EmulatorProcess::State() {
  core::HttpRequest req;
  req.url = url_ + "/_emulator/state";
  absl::StatusOr<core::HttpResponse> resp = http_.Send(req);
  if (!resp.ok()) return resp.status();
  nlohmann::json j = nlohmann::json::parse(resp->body, nullptr, false);
  if (resp->status != 200 || j.is_discarded()) {
    return absl::InternalError(absl::StrCat("emulator state: HTTP ", resp->status, " ", resp->body));
  }
  return j;
}

}  // namespace fastest::testing
