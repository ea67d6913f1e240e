#include "tools/cli/local_server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/crypto/secure_random.h"
#include "core/http/http_client.h"
#include "core/snapshot/safe_fs.h"
#include "core/snapshot/sha256.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace fastest::cli {
namespace {

std::string Env(const char* name) {
  const char* v = getenv(name);
  return v ? v : "";
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& data, mode_t mode) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", strerror(errno)));
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  fchmod(fd, mode);
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool PidAlive(int pid) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0) return errno == EPERM;
  // A zombie child of ours counts as dead.
  int status = 0;
  return waitpid(pid, &status, WNOHANG) == 0 || errno == ECHILD;
}

std::string Tail(const std::string& path, size_t lines) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return "";
  std::vector<std::string> all = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  size_t from = all.size() > lines ? all.size() - lines : 0;
  std::vector<std::string> tail(all.begin() + from, all.end());
  return absl::StrJoin(tail, "\n");
}

}  // namespace

std::string DefaultDataDir() {
  if (!Env("FASTEST_DATA_DIR").empty()) return Env("FASTEST_DATA_DIR");
  std::string home = Env("HOME");
  return home.empty() ? ".fastest" : home + "/.fastest";
}

std::string SelfDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, n);
  return path.substr(0, path.rfind('/'));
}

LocalServer::LocalServer(core::HttpClient& http, LocalServerOptions options)
    : http_(http), options_(std::move(options)) {
  if (options_.data_dir.empty()) options_.data_dir = DefaultDataDir();
}

std::string LocalServer::LogPath() const { return options_.data_dir + "/server.log"; }

absl::StatusOr<std::string> LocalServer::Token() {
  std::string path = options_.data_dir + "/token";
  absl::StatusOr<std::string> existing = ReadFile(path);
  if (existing.ok()) {
    std::string t(absl::StripAsciiWhitespace(*existing));
    if (!t.empty()) return t;
  }
  if (absl::Status s = core::MakeDirs(options_.data_dir, 0700); !s.ok()) return s;
  const std::string token = "fst_local_" + core::SecureRandomHex(24);
  if (absl::Status s = WriteFileAtomic(path, token + "\n", 0600); !s.ok()) return s;
  return token;
}

std::string LocalServer::Fingerprint() const {
  // Values are hashed, never stored: the fingerprint only tells whether they changed.
  std::string material = absl::StrCat("backend=", options_.backend, "\nimage=", options_.image,
                                      "\ninstance_type=", options_.instance_type);
  for (const char* name : {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GOOGLE_GENERATIVE_AI_API_KEY",
                           "PROVIDER", "MODEL", "FASTEST_MODEL_BASE_URL", "FASTEST_MODEL_API_KEY",
                           "FASTEST_PLUGIN_PATH"}) {
    absl::StrAppend(&material, "\n", name, "=", Env(name));
  }
  absl::StatusOr<std::string> bin = FindServerBinary();
  if (bin.ok()) {
    struct stat st;
    if (stat(bin->c_str(), &st) == 0) absl::StrAppend(&material, "\nbin_mtime=", st.st_mtime);
  }
  return core::Sha256Hex(material);
}

absl::StatusOr<std::string> LocalServer::FindServerBinary() const {
  std::vector<std::string> candidates;
  if (!options_.server_bin.empty()) return options_.server_bin;
  if (!Env("FASTEST_SERVER_BIN").empty()) return Env("FASTEST_SERVER_BIN");
  std::string self = SelfDir();
  candidates.push_back(self + "/fastest-server");
  candidates.push_back(self + "/../../server/fastest-server");  // bazel-bin/tools/cli -> server
  for (absl::string_view dir : absl::StrSplit(Env("PATH"), ':', absl::SkipEmpty())) {
    candidates.push_back(absl::StrCat(dir, "/fastest-server"));
  }
  for (const std::string& c : candidates) {
    if (access(c.c_str(), X_OK) == 0) return c;
  }
  return absl::NotFoundError(
      "fastest-server not found (next to the CLI, in bazel-bin/server or on PATH): build it with "
      "`bazel build //server:fastest-server` or pass --server_bin");
}

bool LocalServer::Healthy(const std::string& url, const std::string& token) {
  core::HttpRequest req;
  req.url = url + "/v1/jobs?limit=1";
  req.bearer_token = token;
  req.timeout = std::chrono::milliseconds(3000);
  req.connect_timeout = std::chrono::milliseconds(1000);
  absl::StatusOr<core::HttpResponse> r = http_.Send(req);
  return r.ok() && r->status == 200;
}

absl::StatusOr<ServerTarget> LocalServer::Find() {
  absl::StatusOr<std::string> text = ReadFile(options_.data_dir + "/server.json");
  if (!text.ok()) return absl::NotFoundError("no local server has been started");
  nlohmann::json st = nlohmann::json::parse(*text, nullptr, false);
  if (st.is_discarded() || !st.is_object()) return absl::NotFoundError("bad server.json");
  int pid = st.value("pid", 0);
  if (!PidAlive(pid)) return absl::NotFoundError("the local server is not running");
  absl::StatusOr<std::string> token = Token();
  if (!token.ok()) return token.status();
  ServerTarget t{st.value("url", ""), *token, false};
  if (!Healthy(t.url, t.token)) {
    return absl::UnavailableError(
        absl::StrCat("the local server (pid ", pid, ") does not answer at ", t.url));
  }
  return t;
}

absl::StatusOr<ServerTarget> LocalServer::Ensure() {
  absl::StatusOr<std::string> token = Token();
  if (!token.ok()) return token.status();
  absl::StatusOr<std::string> text = ReadFile(options_.data_dir + "/server.json");
  if (text.ok()) {
    nlohmann::json st = nlohmann::json::parse(*text, nullptr, false);
    int pid = st.is_object() ? st.value("pid", 0) : 0;
    if (PidAlive(pid)) {
      std::string url = st.value("url", "");
      bool healthy = Healthy(url, *token);
      if (healthy && st.value("fingerprint", "") == Fingerprint()) {
        return ServerTarget{url, *token, false};
      }
      if (healthy) {
        // Different model/backend settings: restart, unless a job is active.
        core::HttpRequest req;
        req.url = url + "/v1/jobs?status=running&limit=1";
        req.bearer_token = *token;
        absl::StatusOr<core::HttpResponse> r = http_.Send(req);
        if (r.ok() && r->status == 200) {
          nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
          if (!j.is_discarded() && j.contains("jobs") && j["jobs"].is_array() && !j["jobs"].empty()) {
            return absl::FailedPreconditionError(absl::StrCat(
                "the local server (pid ", pid, ") runs with other model/backend settings and has a "
                "running job; wait for it or `fastest server stop`"));
          }
        }
        if (!options_.quiet) {
          fprintf(stderr, "fastest: model/backend settings changed: restarting the local server\n");
        }
      }
      if (absl::Status s = Stop(); !s.ok()) return s;
    }
  }
  return Start(*token);
}

absl::StatusOr<ServerTarget> LocalServer::Start(const std::string& token) {
  absl::StatusOr<std::string> bin = FindServerBinary();
  if (!bin.ok()) return bin.status();
  std::string store_dir = options_.data_dir + "/store";
  if (absl::Status s = core::MakeDirs(store_dir, 0700); !s.ok()) return s;
  std::string port_file = options_.data_dir + "/server.port";
  unlink(port_file.c_str());

  std::vector<std::string> args = {*bin,
                                   absl::StrCat("--backend=", options_.backend),
                                   "--host=127.0.0.1",
                                   "--port=0",
                                   absl::StrCat("--port_file=", port_file),
                                   absl::StrCat("--data_dir=", store_dir),
                                   absl::StrCat("--image=", options_.image),
                                   absl::StrCat("--instance_type=", options_.instance_type)};
  // Environment: ours (provider keys, model settings pass through to sandboxes) + the token.
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (strncmp(*e, "FASTEST_API_TOKEN=", 18) != 0) env.push_back(*e);
  }
  env.push_back("FASTEST_API_TOKEN=" + token);
  std::string plugin_dir = SelfDir() + "/../../backends/" + options_.backend;
  if (FileExists(plugin_dir)) {
    std::string pp = Env("FASTEST_PLUGIN_PATH");
    env.erase(std::remove_if(env.begin(), env.end(),
                             [](const std::string& s) {
                               return s.rfind("FASTEST_PLUGIN_PATH=", 0) == 0;
                             }),
              env.end());
    env.push_back(absl::StrCat("FASTEST_PLUGIN_PATH=", pp.empty() ? "" : pp + ":", plugin_dir));
  }

  std::string log_path = LogPath();
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (log_fd < 0) return absl::InternalError(absl::StrCat("cannot open ", log_path));
  if (!options_.quiet) fprintf(stderr, "fastest: starting the local server (%s backend)...\n",
                               options_.backend.c_str());
  pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return absl::InternalError("fork failed");
  }
  if (pid == 0) {
    setsid();  // outlive the CLI, no terminal signals
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    std::vector<char*> argv, envp;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(log_fd);

  absl::Time deadline = absl::Now() + absl::Seconds(20);
  std::string url;
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return absl::UnavailableError(absl::StrCat(
          "the local server exited at start (", WIFEXITED(status) ? "code " : "signal ",
          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), "); last lines of ",
          log_path, ":\n", Tail(log_path, 15)));
    }
    absl::StatusOr<std::string> port = ReadFile(port_file);
    if (port.ok() && !std::string(absl::StripAsciiWhitespace(*port)).empty()) {
      url = absl::StrCat("http://127.0.0.1:", absl::StripAsciiWhitespace(*port));
      if (Healthy(url, token)) break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  if (url.empty() || !Healthy(url, token)) {
    kill(pid, SIGTERM);
    return absl::DeadlineExceededError(absl::StrCat(
        "the local server did not become ready in 20 s; last lines of ", log_path, ":\n",
        Tail(log_path, 15)));
  }
  nlohmann::json st = {{"pid", pid},
                       {"url", url},
                       {"backend", options_.backend},
                       {"image", options_.image},
                       {"fingerprint", Fingerprint()},
                       {"started_at", absl::FormatTime(absl::Now())}};
  if (absl::Status s = WriteFileAtomic(options_.data_dir + "/server.json", st.dump(2), 0600);
      !s.ok()) {
    return s;
  }
  if (!options_.quiet) {
    fprintf(stderr, "fastest: local server ready at %s (pid %d, log %s)\n", url.c_str(), pid,
            log_path.c_str());
  }
  return ServerTarget{url, token, true};
}

absl::Status LocalServer::Stop() {
  absl::StatusOr<std::string> text = ReadFile(options_.data_dir + "/server.json");
  if (!text.ok()) return absl::OkStatus();
  nlohmann::json st = nlohmann::json::parse(*text, nullptr, false);
  int pid = st.is_object() ? st.value("pid", 0) : 0;
  if (PidAlive(pid)) {
    kill(pid, SIGTERM);
    absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (PidAlive(pid) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
    if (PidAlive(pid)) {
      kill(pid, SIGKILL);
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
  unlink((options_.data_dir + "/server.json").c_str());
  return absl::OkStatus();
}

}  // namespace fastest::cli
