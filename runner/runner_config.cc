#include "runner/runner_config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace fastest::runner {
namespace {

std::string Get(const Environment& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

absl::StatusOr<int> GetPositiveInt(const Environment& env, const std::string& key, int fallback) {
  std::string v = Get(env, key);
  if (v.empty()) return fallback;
  int n = 0;
  if (!absl::SimpleAtoi(v, &n) || n <= 0 || n > 256) {
    return absl::InvalidArgumentError(absl::StrCat(key, " must be an integer in 1..256"));
  }
  return n;
}

std::string StripSlash(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("API_TOKEN_FILE ", path, " cannot be read: ", strerror(errno)));
  }
  std::string token;
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0 && token.size() < 4096) token.append(buf, n);
  close(fd);
  return std::string(absl::StripAsciiWhitespace(token));
}

}  // namespace

absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text) {
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {
    if (seconds <= 0) return absl::InvalidArgumentError("timeout must be positive");
    return absl::Seconds(seconds);
  }
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("bad duration \"", text, "\""));
  }
  return d;
}

absl::StatusOr<RunnerConfig> RunnerConfigFromEnv(const Environment& env) {
  RunnerConfig c;
  c.env = env;
  c.job_id = Get(env, "JOB_ID");
  if (!Get(env, "API_URL").empty()) c.api_url = std::string(absl::StripSuffix(Get(env, "API_URL"), "/"));
  if (absl::StartsWith(c.api_url, "unix://")) {
    // The sandbox's API channel: HTTP over this socket; the host name only feeds Host.
    c.api_socket = c.api_url.substr(7);
    c.api_url = "http://fastest";
    if (c.api_socket.empty() || c.api_socket[0] != '/') {
      return absl::InvalidArgumentError("API_URL unix:// needs an absolute socket path");
    }
  }
  const std::string standby = Get(env, "FASTEST_STANDBY");
  if (!standby.empty() && standby != "0") {
    if (standby != "1") return absl::InvalidArgumentError("FASTEST_STANDBY must be 0 or 1");
    if (!c.job_id.empty()) {
      return absl::InvalidArgumentError("FASTEST_STANDBY: JOB_ID comes with the assignment");
    }
    c.standby = true;
  }
  c.api_token = Get(env, "API_TOKEN");
  if (c.api_token.empty() && !Get(env, "API_TOKEN_FILE").empty()) {
    auto token = ReadTokenFile(Get(env, "API_TOKEN_FILE"));
    if (!token.ok()) return token.status();
    c.api_token = *token;
  }
  if (c.api_token.empty()) return absl::InvalidArgumentError("API_TOKEN (or API_TOKEN_FILE) is required");
  if (!Get(env, "WORK_DIR").empty()) c.work_dir = Get(env, "WORK_DIR");
  if (!Get(env, "FASTEST_WORKSPACE_DIR").empty()) c.work_dir = Get(env, "FASTEST_WORKSPACE_DIR");
  c.work_dir = StripSlash(c.work_dir);
  if (c.work_dir.empty() || c.work_dir[0] != '/' || c.work_dir == "/") {
    return absl::InvalidArgumentError(
        absl::StrCat("work dir must be an absolute path other than /: \"", c.work_dir, "\""));
  }
  if (!Get(env, "FASTEST_AGENT_HOME").empty()) c.agent_home = StripSlash(Get(env, "FASTEST_AGENT_HOME"));
  if (c.agent_home.empty() || c.agent_home[0] != '/') {
    return absl::InvalidArgumentError("FASTEST_AGENT_HOME must be an absolute path");
  }
  if (c.agent_home == c.work_dir || absl::StartsWith(c.agent_home, c.work_dir + "/")) {
    return absl::InvalidArgumentError("FASTEST_AGENT_HOME must be outside the workspace");
  }
  c.agent_command = Get(env, "FASTEST_AGENT_COMMAND");
  if (!Get(env, "FASTEST_AGENT_TIMEOUT").empty()) {
    auto t = ParseTimeout(Get(env, "FASTEST_AGENT_TIMEOUT"));
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("FASTEST_AGENT_TIMEOUT: ", t.status().message()));
    c.agent_timeout = *t;
  }
  if (!Get(env, "FASTEST_OPENCODE_BIN").empty()) c.opencode_bin = Get(env, "FASTEST_OPENCODE_BIN");
  auto down = GetPositiveInt(env, "FASTEST_DOWNLOAD_PARALLELISM", 8);
  if (!down.ok()) return down.status();
  c.download_parallelism = *down;
  auto up = GetPositiveInt(env, "FASTEST_UPLOAD_PARALLELISM", 8);
  if (!up.ok()) return up.status();
  c.upload_parallelism = *up;
  // Retry budget: time-capped rather than count-capped so an API restart of a few seconds is
  // ridden out.
  c.retry.max_attempts = 1000;
  c.retry.initial_backoff = absl::Milliseconds(200);
  c.retry.max_backoff = absl::Seconds(5);
  c.retry.max_elapsed = absl::Seconds(120);
  if (!Get(env, "FASTEST_API_RETRY_SECONDS").empty()) {
    auto t = ParseTimeout(Get(env, "FASTEST_API_RETRY_SECONDS"));
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("FASTEST_API_RETRY_SECONDS: ", t.status().message()));
    c.retry.max_elapsed = *t;
  }
  if (const std::string user = Get(env, "FASTEST_AGENT_USER"); !user.empty() && geteuid() == 0) {
    struct passwd* pw = getpwnam(user.c_str());
    if (pw == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("FASTEST_AGENT_USER: no user \"", user, "\" in /etc/passwd"));
    }
    if (pw->pw_uid == 0) {
      return absl::InvalidArgumentError("FASTEST_AGENT_USER must not be root");
    }
    c.agent_uid = static_cast<int>(pw->pw_uid);
    c.agent_gid = static_cast<int>(pw->pw_gid);
  }
  return c;
}

Environment CurrentEnvironment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv(*e);
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

}  // namespace fastest::runner
