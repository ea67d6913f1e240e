#include "tests/server/server_harness.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/crypto/secure_random.h"
#include "core/status/status_macros.h"
#include "tests/testing/runfiles.h"

namespace fastest::testing {

std::string FreshDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base ? base : "/tmp", "/", name);
  std::string cmd = absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'");
  if (std::system(cmd.c_str()) != 0) return dir;
  return dir;
}

std::string Runfile(const std::string& path) { return RunfilePath(path); }

std::string ProcessBackendPath() {
  return Runfile("tests/plugins/process_backend/libfastest_backend_process.so");
}

std::string ServerBinaryPath() { return Runfile("server/fastest-server"); }

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The test's own environment plus the token and `extra`.
std::map<std::string, std::string> BuildEnv(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env = CurrentEnvironment();
  env["FASTEST_API_TOKEN"] = kTestToken;
  for (const auto& [k, v] : extra) env[k] = v;
  return env;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerProcess>> LaunchServer(
    const std::string& data_dir, const std::vector<std::string>& args,
    const std::map<std::string, std::string>& env) {
  ServerProcessOptions options;
  options.data_dir = data_dir;
  options.args = args;
  options.env = BuildEnv(env);
  auto server = std::make_unique<ServerProcess>(std::move(options));
  FASTEST_RETURN_IF_ERROR(server->Start());
  return server;
}

absl::StatusOr<std::string> RunServerCommand(const std::vector<std::string>& args) {
  const std::string dir = FreshDir(absl::StrCat("cmd", getpid(), "_", core::SecureRandomHex(8)));
  SpawnOptions options;
  options.binary = ServerBinaryPath();
  options.args = args;
  options.env = BuildEnv({});
  options.stdout_path = dir + "/out";
  options.stderr_path = dir + "/err";
  FASTEST_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(options));
  FASTEST_ASSIGN_OR_RETURN(int status, child.Wait(absl::InfiniteDuration()));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("command failed: ", ReadFile(dir + "/err")));
  }
  return ReadFile(dir + "/out");
}

core::HttpResponse Api::Call(const std::string& method, const std::string& path,
                             const std::string& body, const std::string* token,
                             std::chrono::milliseconds timeout) {
  core::HttpRequest req;
  req.method = method;
  req.url = server_->url(path);
  req.body = body;
  req.bearer_token = token ? *token : token_;
  req.timeout = timeout;
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
  auto resp = http_.Send(req);
  if (!resp.ok()) {
    core::HttpResponse r;
    r.status = -1;
    r.body = resp.status().ToString();
    return r;
  }
  return *resp;
}

nlohmann::json Api::Json(const std::string& method, const std::string& path,
                         const std::string& body, long* status) {
  auto r = Call(method, path, body);
  if (status) *status = r.status;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

std::string WithMakeOutput(const std::string& script_template) {
  static constexpr char kMakeOutput[] = R"SH(make_output() {
  M='{"files":[]}'
  MH=$(printf '%s' "$M" | sha256sum | cut -d' ' -f1)
  PID=$(echo "$JOB" | sed 's/.*"project_id":"\([0-9A-Z]*\)".*/\1/')
  curl -sf -X PUT -H "$H" --data-binary "$M" "$API_URL/v1/blobs/manifests/$MH" >/dev/null || exit 23
  curl -sf -X POST -H "$H" -d "{\"manifest_hash\":\"$MH\"}" \
    "$API_URL/v1/projects/$PID/snapshots" >/dev/null || exit 24
})SH";
  std::string out = script_template;
  const size_t at = out.find("@MAKE_OUTPUT@");
  if (at != std::string::npos) out.replace(at, 13, kMakeOutput);
  return out;
}

int CountEntries(const std::string& dir) {
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
    }
    closedir(d);
  }
  return n;
}

}  // namespace fastest::testing
