#include "tests/server/server_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace fastest::testing {

std::string FreshDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base ? base : "/tmp", "/", name);
  std::string cmd = absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'");
  if (std::system(cmd.c_str()) != 0) return dir;
  return dir;
}

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", ws ? ws : "fastest", "/", path);
}

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

std::vector<std::string> BuildEnv(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  env["FASTEST_API_TOKEN"] = kTestToken;
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            const std::string& stdout_path, const std::string& stderr_path) {
  std::vector<char*> a, e;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  for (const auto& s : env) e.push_back(const_cast<char*>(s.c_str()));
  e.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out >= 0) dup2(out, 1);
    if (err >= 0) dup2(err, 2);
    execve(a[0], a.data(), e.data());
    _exit(127);
  }
  return pid;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::string& data_dir, const std::vector<std::string>& args,
    const std::map<std::string, std::string>& env) {
  static int counter = 0;
  auto server = std::unique_ptr<ServerProcess>(new ServerProcess());
  const std::string port_file = absl::StrCat(data_dir, ".port.", ++counter);
  unlink(port_file.c_str());
  server->log_path_ = absl::StrCat(data_dir, ".log.", counter);
  std::vector<std::string> argv = {ServerBinaryPath(), "--port=0", "--port_file=" + port_file,
                                   "--data_dir=" + data_dir, "--host=127.0.0.1"};
  argv.insert(argv.end(), args.begin(), args.end());
  server->pid_ = Spawn(argv, BuildEnv(env), server->log_path_, server->log_path_);
  if (server->pid_ < 0) return absl::InternalError("fork failed");
  for (int i = 0; i < 200; ++i) {
    std::string text = ReadFile(port_file);
    if (!text.empty() && text.back() == '\n') {
      server->port_ = std::atoi(text.c_str());
      return server;
    }
    int status;
    if (waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
      server->pid_ = -1;
      return absl::InternalError(absl::StrCat("server exited at start: ", server->Log()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return absl::DeadlineExceededError(absl::StrCat("server did not start: ", server->Log()));
}

ServerProcess::~ServerProcess() { Stop(SIGTERM); }

std::string ServerProcess::url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", port_, path);
}

std::string ServerProcess::Log() const { return ReadFile(log_path_); }

int ServerProcess::Stop(int sig) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  int status = -1;
  // Bounded wait, then SIGKILL so a hung server cannot hang the test.
  for (int i = 0; i < 400; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

absl::StatusOr<std::string> RunServerCommand(const std::vector<std::string>& args) {
  const std::string dir = FreshDir(absl::StrCat("cmd", getpid(), "_", rand()));
  std::vector<std::string> argv = {ServerBinaryPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = Spawn(argv, BuildEnv({}), dir + "/out", dir + "/err");
  int status = 0;
  waitpid(pid, &status, 0);
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

}  // namespace fastest::testing
