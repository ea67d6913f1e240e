#include "tests/cloudflare/emulator_process.h"

#include <unistd.h>

#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/crypto/secure_random.h"
#include "core/http/http_client.h"

namespace fastest::tests::cloudflare {
namespace {

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir == nullptr ? "/tmp" : dir;
}

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

absl::StatusOr<std::unique_ptr<EmulatorProcess>> EmulatorProcess::Start(
    const std::vector<std::string>& extra_args) {
  if (absl::Status docker = RequireDocker(); !docker.ok()) return docker;
  absl::StatusOr<std::string> image = TestImage();
  if (!image.ok()) return image.status();
  std::string tag = absl::StrCat(getpid(), "-", core::SecureRandomHex(8));
  std::string port_file = absl::StrCat(TempDir(), "/emulator-", tag, ".port");
  std::string log_file = absl::StrCat(TempDir(), "/emulator-", tag, ".log");
  std::vector<std::string> args = {"tools/cf_bridge_emulator/cf-bridge-emulator", "--port", "0",
                                   "--port-file", port_file, "--image", *image};
  args.insert(args.end(), extra_args.begin(), extra_args.end());

  // The emulator inherits the test's environment, plus the API key.
  fastest::testing::SpawnOptions options;
  options.binary = args.front();
  options.args.assign(args.begin() + 1, args.end());
  options.env = fastest::testing::CurrentEnvironment();
  options.env["SANDBOX_API_KEY"] = kTestApiKey;
  options.log_path = log_file;
  options.name = "cf-bridge-emulator";
  std::unique_ptr<EmulatorProcess> process(new EmulatorProcess());
  absl::StatusOr<fastest::testing::ChildProcess> child =
      fastest::testing::ChildProcess::Spawn(options);
  if (!child.ok()) return child.status();
  process->child_ = std::move(*child);
  absl::StatusOr<int> port = process->child_.WaitForPortFile(port_file, absl::Seconds(20));
  if (!port.ok()) return port.status();
  process->port_ = *port;
  process->url_ = absl::StrCat("http://127.0.0.1:", *port);
  return process;
}

// Up to 30 s: it removes its containers first.
void EmulatorProcess::Stop() { child_.Stop(absl::Seconds(30)); }

EmulatorProcess::~EmulatorProcess() { Stop(); }

}  // namespace fastest::tests::cloudflare
