#include "tests/testing/server_process.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/http/http_client.h"
#include "core/status/status_macros.h"
#include "tests/testing/runfiles.h"

namespace fastest::testing {

ServerProcess::ServerProcess(ServerProcessOptions options) : options_(std::move(options)) {
  if (options_.log_path.empty()) options_.log_path = options_.data_dir + ".server.log";
  port_ = options_.port;
}

ServerProcess::~ServerProcess() { Stop(); }

std::string ServerProcess::url(absl::string_view path) const {
  return absl::StrCat("http://127.0.0.1:", port_, path);
}

std::string ServerProcess::Log() const {
  std::ifstream in(options_.log_path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status ServerProcess::Start() {
  std::error_code ec;
  std::filesystem::create_directories(options_.data_dir, ec);
  const std::string port_file = absl::StrCat(options_.data_dir, ".port.", ++starts_);
  unlink(port_file.c_str());
  SpawnOptions spawn;
  spawn.binary = RunfilePath("server/fastest-server");
  spawn.args = {"--host=127.0.0.1", absl::StrCat("--port=", port_),
                absl::StrCat("--port_file=", port_file),
                absl::StrCat("--data_dir=", options_.data_dir)};
  spawn.args.insert(spawn.args.end(), options_.args.begin(), options_.args.end());
  spawn.env = options_.env;
  spawn.log_path = options_.log_path;
  spawn.append = true;
  spawn.die_with_parent = options_.die_with_parent;
  FASTEST_ASSIGN_OR_RETURN(child_, ChildProcess::Spawn(spawn));
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  absl::StatusOr<int> port = child_.WaitForPortFile(port_file, options_.start_timeout);
  if (!port.ok()) {
    return absl::Status(port.status().code(),
                        absl::StrCat(port.status().message(), "; log:\n", Log()));
  }
  port_ = *port;
  core::HttpClient http;
  while (absl::Now() < deadline) {
    if (child_.Exited()) {
      return absl::InternalError(absl::StrCat("fastest-server exited during start-up; log:\n", Log()));
    }
    core::HttpRequest req;
    req.url = url("/health");
    req.timeout = std::chrono::milliseconds(1000);
    auto resp = http.Send(req);
    if (resp.ok() && resp->status == 200) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("fastest-server did not become healthy; log:\n", Log()));
}

void ServerProcess::Kill() { child_.Kill(); }

int ServerProcess::Stop(int sig) { return child_.Stop(options_.stop_grace, sig); }

}  // namespace fastest::testing
