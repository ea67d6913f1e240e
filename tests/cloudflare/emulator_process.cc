#include "tests/cloudflare/emulator_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
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
  std::random_device rd;
  std::string tag = absl::StrCat(getpid(), "-", rd());
  std::string port_file = absl::StrCat(TempDir(), "/emulator-", tag, ".port");
  std::string log_file = absl::StrCat(TempDir(), "/emulator-", tag, ".log");
  std::vector<std::string> args = {"tools/cf_bridge_emulator/cf-bridge-emulator", "--port", "0",
                                   "--port-file", port_file, "--image", *image};
  args.insert(args.end(), extra_args.begin(), extra_args.end());

  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    setenv("SANDBOX_API_KEY", kTestApiKey, 1);
    FILE* log = std::fopen(log_file.c_str(), "w");
    if (log != nullptr) {
      dup2(fileno(log), 1);
      dup2(fileno(log), 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  std::unique_ptr<EmulatorProcess> process(new EmulatorProcess());
  process->pid_ = pid;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    std::ifstream in(port_file);
    int port = 0;
    std::string text;
    if (in >> text && absl::SimpleAtoi(text, &port) && port > 0) {
      process->port_ = port;
      process->url_ = absl::StrCat("http://127.0.0.1:", port);
      return process;
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      process->pid_ = -1;
      std::ifstream log(log_file);
      std::string out((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      return absl::InternalError(absl::StrCat("cf-bridge-emulator exited at start: ", out));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("cf-bridge-emulator did not write its port file in 20s");
}

void EmulatorProcess::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 300; ++i) {  // up to 30 s: it removes its containers first
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

EmulatorProcess::~EmulatorProcess() { Stop(); }

}  // namespace fastest::tests::cloudflare
