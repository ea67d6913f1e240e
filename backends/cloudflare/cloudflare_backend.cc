#include "backends/cloudflare/cloudflare_backend.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "backends/cloudflare/bridge_protocol.h"
#include "core/json/config_fields.h"
#include "core/plugin/sandbox_types.h"
#include "core/status/status_macros.h"

namespace fastest::backends::cloudflare {
namespace {

// Job files inside the sandbox. Outside /workspace on purpose (see the header).
constexpr char kRunDir[] = "/tmp/fastest";
// Staging directory for file uploads: the bridge's file route only reaches /workspace.
constexpr char kStageDir[] = "/workspace/.fastest";
// ReadLogs fetches the log in pieces of this many bytes.
constexpr int64_t kLogChunkBytes = 1 << 20;
// A probe inside Wait gets at least this long, even when the Wait's timeout is shorter.
constexpr absl::Duration kMinProbeTime = absl::Seconds(1);

std::string GetEnv(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

std::string DefaultStateFile() {
  std::string dir = GetEnv("FASTEST_STATE_DIR");
  if (!dir.empty()) return absl::StrCat(dir, "/cloudflare-sandboxes.json");
  std::string home = GetEnv("HOME");
  if (home.empty()) home = "/tmp";
  return absl::StrCat(home, "/.local/state/fastest/cloudflare-sandboxes.json");
}

bool IsShellName(absl::string_view key) {
  if (key.empty() || absl::ascii_isdigit(static_cast<unsigned char>(key[0]))) return false;
  for (char c : key) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

constexpr char kWhat[] = "cloudflare config";

absl::StatusOr<int64_t> IntField(const nlohmann::json& config, const char* key, int64_t fallback) {
  return core::OptionalInt(config, key, fallback, kWhat);
}

absl::StatusOr<std::string> StringField(const nlohmann::json& config, const char* key,
                                        const std::string& fallback) {
  return core::OptionalString(config, key, fallback, kWhat);
}

std::string StripWhitespace(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) out.push_back(c);
  }
  return out;
}

int64_t NowUnixMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace

absl::StatusOr<CloudflareConfig> ParseCloudflareConfig(const nlohmann::json& config_in) {
  nlohmann::json config = config_in.is_object() ? config_in : nlohmann::json::object();
  CloudflareConfig out;
  FASTEST_ASSIGN_OR_RETURN(out.bridge.base_url,
                           StringField(config, "bridge_url", GetEnv("FASTEST_CLOUDFLARE_BRIDGE_URL")));
  if (out.bridge.base_url.empty()) {
    return absl::InvalidArgumentError(
        "cloudflare config: \"bridge_url\" is required (or FASTEST_CLOUDFLARE_BRIDGE_URL), e.g. "
        "https://fastest-sandbox-bridge.<account>.workers.dev");
  }
  if (!absl::StartsWith(out.bridge.base_url, "http://") &&
      !absl::StartsWith(out.bridge.base_url, "https://")) {
    return absl::InvalidArgumentError("cloudflare config: \"bridge_url\" must start with https:// or http://");
  }
  FASTEST_ASSIGN_OR_RETURN(out.bridge.api_key, StringField(config, "api_key", GetEnv("SANDBOX_API_KEY")));
  FASTEST_ASSIGN_OR_RETURN(std::string type_name, StringField(config, "instance_type", "standard-1"));
  absl::StatusOr<core::InstanceType> type = core::LookupInstanceType(type_name);
  if (!type.ok()) return core::Annotate(type.status(), kWhat);
  out.instance_type = *std::move(type);
  FASTEST_ASSIGN_OR_RETURN(int64_t max_instances, IntField(config, "max_instances", 0));
  if (max_instances < 0) return absl::InvalidArgumentError("cloudflare config: max_instances < 0");
  out.max_instances = static_cast<int>(max_instances);
  FASTEST_ASSIGN_OR_RETURN(int64_t request_timeout_ms, IntField(config, "request_timeout_ms", 30000));
  FASTEST_ASSIGN_OR_RETURN(int64_t max_attempts, IntField(config, "max_attempts", 5));
  FASTEST_ASSIGN_OR_RETURN(int64_t backoff_initial_ms, IntField(config, "backoff_initial_ms", 200));
  FASTEST_ASSIGN_OR_RETURN(int64_t backoff_cap_ms, IntField(config, "backoff_cap_ms", 5000));
  FASTEST_ASSIGN_OR_RETURN(int64_t poll_interval_ms, IntField(config, "poll_interval_ms", 2000));
  FASTEST_ASSIGN_OR_RETURN(int64_t stall_timeout_ms, IntField(config, "stall_timeout_ms", 60000));
  if (request_timeout_ms <= 0 || max_attempts < 1 || backoff_initial_ms < 0 || backoff_cap_ms < 0 ||
      poll_interval_ms <= 0 || stall_timeout_ms <= 0) {
    return absl::InvalidArgumentError(
        "cloudflare config: request_timeout_ms, max_attempts, poll_interval_ms and "
        "stall_timeout_ms must be positive");
  }
  out.bridge.request_timeout = absl::Milliseconds(request_timeout_ms);
  out.bridge.max_attempts = static_cast<int>(max_attempts);
  out.bridge.backoff_initial = absl::Milliseconds(backoff_initial_ms);
  out.bridge.backoff_cap = absl::Milliseconds(backoff_cap_ms);
  out.poll_interval = absl::Milliseconds(poll_interval_ms);
  out.stall_timeout = absl::Milliseconds(stall_timeout_ms);
  FASTEST_ASSIGN_OR_RETURN(out.state_file, StringField(config, "state_file", DefaultStateFile()));
  FASTEST_ASSIGN_OR_RETURN(out.image, StringField(config, "image", "fastest/sandbox:0.1.0"));
  return out;
}

absl::StatusOr<std::string> EnvFileContents(const std::map<std::string, std::string>& env) {
  std::string out;
  for (const auto& [key, value] : env) {
    if (!IsShellName(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("env name \"", key, "\" is not a valid shell variable name"));
    }
    absl::StrAppend(&out, "export ", key, "=", ShellQuote(value), "\n");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<CloudflareBackend>> CloudflareBackend::Create(
    const nlohmann::json& config) {
  FASTEST_ASSIGN_OR_RETURN(CloudflareConfig parsed, ParseCloudflareConfig(config));
  auto backend = std::make_unique<CloudflareBackend>(std::move(parsed));
  FASTEST_RETURN_IF_ERROR(backend->LoadState());
  return backend;
}

CloudflareBackend::CloudflareBackend(CloudflareConfig config)
    : config_(std::move(config)), bridge_(config_.bridge) {}

absl::Status CloudflareBackend::LoadState() {
  std::ifstream in(config_.state_file, std::ios::binary);
  if (!in) return absl::OkStatus();  // first run
  std::stringstream buffer;
  buffer << in.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(buffer.str(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("sandboxes") ||
      !doc["sandboxes"].is_array()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cloudflare: state file ", config_.state_file,
                     " is not valid JSON; fix or delete it (it lists live sandboxes)"));
  }
  absl::MutexLock lock(&mu_);
  for (const auto& item : doc["sandboxes"]) {
    if (!item.is_object() || !item.contains("id") || !item["id"].is_string()) continue;
    Record record;
    record.name = item.value("name", "");
    record.created_at = item.value("created_at", "");
    record.deadline_unix_ms = item.value("deadline_unix_ms", int64_t{0});
    record.killed_signal = item.value("killed_signal", 0);
    record.timed_out = item.value("timed_out", false);
    if (item.contains("labels") && item["labels"].is_object()) {
      for (const auto& [k, v] : item["labels"].items()) {
        if (v.is_string()) record.labels[k] = v.get<std::string>();
      }
    }
    records_[item["id"].get<std::string>()] = std::move(record);
  }
  return absl::OkStatus();
}

absl::Status CloudflareBackend::SaveStateLocked() {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [id, record] : records_) {
    list.push_back({{"id", id},
                    {"name", record.name},
                    {"labels", record.labels},
                    {"created_at", record.created_at},
                    {"deadline_unix_ms", record.deadline_unix_ms},
                    {"killed_signal", record.killed_signal},
                    {"timed_out", record.timed_out}});
  }
  nlohmann::json doc = {{"schema", 1}, {"bridge_url", config_.bridge.base_url}, {"sandboxes", list}};
  std::string dir = config_.state_file.substr(0, config_.state_file.rfind('/'));
  if (!dir.empty()) {
    std::string cmd;  // mkdir -p without a shell: create each component
    for (absl::string_view part : absl::StrSplit(dir, '/', absl::SkipEmpty())) {
      absl::StrAppend(&cmd, "/", part);
      ::mkdir(cmd.c_str(), 0700);
    }
  }
  std::string tmp = absl::StrCat(config_.state_file, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << core::DumpJson(doc) << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cloudflare: cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), config_.state_file.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cloudflare: cannot replace ", config_.state_file));
  }
  return absl::OkStatus();
}

void CloudflareBackend::UpdateRecord(const std::string& id, const std::function<void(Record&)>& fn) {
  absl::MutexLock lock(&mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return;
  fn(it->second);
  SaveStateLocked().IgnoreError();
}

absl::StatusOr<CloudflareBackend::Record> CloudflareBackend::FindRecord(const std::string& id) {
  if (!IsValidSandboxId(id)) {
    return absl::NotFoundError(absl::StrCat("cloudflare: \"", id, "\" is not a sandbox id"));
  }
  absl::MutexLock lock(&mu_);
  auto it = records_.find(id);
  if (it == records_.end()) {
    return absl::NotFoundError(absl::StrCat("cloudflare: unknown sandbox ", id,
                                            " (not in the state file ", config_.state_file, ")"));
  }
  return it->second;
}

absl::StatusOr<nlohmann::json> CloudflareBackend::Describe() {
  std::string health = "ok";
  absl::StatusOr<nlohmann::json> h = bridge_.Health();
  if (!h.ok()) {
    health = std::string(h.status().message());
  } else if (h->is_object() && h->contains("ok") && (*h)["ok"] == false) {
    health = absl::StrCat("bridge unhealthy: ", core::DumpJson(*h));
  } else if (config_.bridge.api_key.empty()) {
    health = "no api_key (SANDBOX_API_KEY) configured";
  }
  size_t live = 0;
  {
    absl::MutexLock lock(&mu_);
    live = records_.size();
  }
  const core::InstanceType& type = config_.instance_type;
  return nlohmann::json{
      {"schema", 1},
      {"name", name_},
      {"version", "0.1.0"},
      {"log_streaming", true},
      {"warm_pool", true},
      {"network_modes", {"bridge"}},
      {"default_network_mode", "bridge"},
      {"max_parallel_sandboxes", config_.max_instances},
      {"health", health},
      {"bridge_url", config_.bridge.base_url},
      {"image", config_.image},
      {"instance_type", type.name},
      {"resources",
       {{"vcpu", type.vcpu()},
        {"memory_mib", type.memory_mib()},
        {"disk_mb", type.disk_mb()},
        {"nano_cpus", type.nano_cpus},
        {"memory_bytes", type.memory_bytes},
        {"disk_bytes", type.disk_bytes}}},
      {"sandboxes", live},
      {"state_file", config_.state_file},
  };
}

absl::Status CloudflareBackend::Launch(const std::string& id, const core::SandboxSpec& spec) {
  FASTEST_ASSIGN_OR_RETURN(std::string env_file, EnvFileContents(spec.env));
  std::string workdir = spec.working_dir.empty() ? std::string(kWorkspaceRoot) : spec.working_dir;
  std::vector<std::string> quoted;
  for (const auto& arg : spec.command) quoted.push_back(ShellQuote(arg));
  std::string run_sh = absl::StrCat(
      "#!/bin/sh\n",
      "# fastest job launcher (written by the cloudflare backend)\n",
      ". ", kRunDir, "/env\n",
      "rm -f ", kRunDir, "/env\n",
      "mkdir -p ", ShellQuote(workdir), " && cd ", ShellQuote(workdir), " || exit 127\n",
      "exec ", absl::StrJoin(quoted, " "), "\n");
  nlohmann::json labels = spec.labels;

  FASTEST_RETURN_IF_ERROR(bridge_.PutFile(id, absl::StrCat(kStageDir, "/env"), env_file));
  FASTEST_RETURN_IF_ERROR(bridge_.PutFile(id, absl::StrCat(kStageDir, "/labels.json"),
                                          core::DumpJson(labels)));
  FASTEST_RETURN_IF_ERROR(bridge_.PutFile(id, absl::StrCat(kStageDir, "/run.sh"), run_sh));

  // Idempotent: a retry after a broken stream finds R/pid and does not start a second job.
  std::string r = kRunDir;
  std::string s = kStageDir;
  std::string launcher = absl::StrCat(
      "R=", r, "; S=", s, "; umask 077\n",
      "if [ -f $R/pid ]; then echo already-started; exit 0; fi\n",
      "mkdir -p $R || exit 1\n",
      "for f in env labels.json run.sh; do if [ -f $S/$f ]; then chmod 600 $S/$f && mv -f $S/$f "
      "$R/$f || exit 1; fi; done\n",
      "rmdir $S 2>/dev/null\n",
      "[ -f $R/run.sh ] || { echo 'run.sh is missing' >&2; exit 1; }\n",
      "rm -f $R/exit $R/exit.tmp\n",
      "setsid sh -c 'sh ", r, "/run.sh; echo $? > ", r, "/exit.tmp && mv ", r, "/exit.tmp ", r,
      "/exit' > $R/log 2>&1 < /dev/null &\n",
      "echo $! > $R/pid\n",
      "echo started\n");
  ExecRequest exec;
  exec.argv = {"sh", "-c", launcher};
  FASTEST_ASSIGN_OR_RETURN(ExecResult result, bridge_.Exec(id, exec, /*idempotent=*/true));
  if (result.exit_code != 0 || result.stdout_data.find("started") == std::string::npos) {
    return absl::InternalError(absl::StrCat("cloudflare: starting the job failed (exit ",
                                            result.exit_code, "): ",
                                            result.stderr_data.substr(0, 500)));
  }
  return absl::OkStatus();
}

absl::StatusOr<core::SandboxInfo> CloudflareBackend::CreateSandbox(const core::SandboxSpec& spec) {
  if (spec.command.empty()) return absl::InvalidArgumentError("cloudflare: spec.command is empty");
  FASTEST_RETURN_IF_ERROR(EnvFileContents(spec.env).status());
  {
    absl::MutexLock lock(&mu_);
    if (config_.max_instances > 0 && static_cast<int>(records_.size()) >= config_.max_instances) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cloudflare: max_instances reached (", records_.size(), "/",
                       config_.max_instances, " sandboxes live); remove finished sandboxes first"));
    }
  }
  FASTEST_ASSIGN_OR_RETURN(std::string id, bridge_.CreateSandbox());
  {
    // Recorded before anything runs, so a crash from here on leaves a findable orphan.
    absl::MutexLock lock(&mu_);
    Record record;
    record.name = spec.name;
    record.labels = spec.labels;
    record.created_at = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
    if (spec.timeout_ms > 0) record.deadline_unix_ms = NowUnixMs() + spec.timeout_ms;
    records_[id] = record;
    last_contact_[id] = absl::Now();
    FASTEST_RETURN_IF_ERROR(SaveStateLocked());
  }
  absl::Status launched = Launch(id, spec);
  if (!launched.ok()) {
    bridge_.DeleteSandbox(id).IgnoreError();  // never leave a half-made sandbox behind
    absl::MutexLock lock(&mu_);
    records_.erase(id);
    SaveStateLocked().IgnoreError();
    return core::Annotate(launched, absl::StrCat("cloudflare: create sandbox ", id));
  }
  core::SandboxInfo info;
  info.id = id;
  info.name = spec.name;
  info.state = "running";
  info.labels = spec.labels;
  return info;
}

absl::StatusOr<CloudflareBackend::Probe> CloudflareBackend::ProbeJob(const std::string& id,
                                                                    absl::Time deadline) {
  std::string r = kRunDir;
  ExecRequest exec;
  exec.deadline = deadline;
  exec.argv = {
      "sh", "-c",
      absl::StrCat(
          "R=", r, "\n",
          "if [ -f $R/exit ]; then echo \"exit $(cat $R/exit)\"\n",
          "elif [ -f $R/pid ]; then p=$(cat $R/pid)\n",
          "  s=$(sed -n 's/^State:[[:space:]]*\\([A-Za-z]\\).*/\\1/p' /proc/$p/status 2>/dev/null)\n",
          "  if [ -n \"$s\" ] && [ \"$s\" != Z ]; then echo running\n",
          "  elif [ -f $R/exit ]; then echo \"exit $(cat $R/exit)\"\n",
          "  else echo gone; fi\n",
          "else echo missing; fi\n")};
  FASTEST_ASSIGN_OR_RETURN(ExecResult result, bridge_.Exec(id, exec, /*idempotent=*/true));
  NoteContact(id);
  std::string out(absl::StripAsciiWhitespace(result.stdout_data));
  Probe probe;
  if (out == "running") {
    probe.state = "running";
    return probe;
  }
  probe.state = "exited";
  int code = 0;
  if (absl::StartsWith(out, "exit ") && absl::SimpleAtoi(out.substr(5), &code)) {
    probe.exit_code = code;
    return Finish(id, probe);
  }
  if (out != "gone" && out != "missing") {
    return absl::InternalError(absl::StrCat("cloudflare: unexpected probe output: ", out.substr(0, 200)));
  }
  // No exit file: killed (by us or the OOM killer), or the container was replaced after sleeping.
  absl::StatusOr<Record> record = FindRecord(id);
  if (record.ok()) {
    if (record->timed_out) {
      probe.exit_code = 124;
    } else if (record->killed_signal > 0) {
      probe.exit_code = 128 + record->killed_signal;
    } else if (out == "gone") {
      probe.exit_code = 137;
    }
  }
  return Finish(id, probe);
}

absl::StatusOr<CloudflareBackend::Probe> CloudflareBackend::Finish(const std::string& id, Probe probe) {
  UpdateRecord(id, [&](Record& r) { r.exit_code = probe.exit_code; });
  return probe;
}

absl::Time CloudflareBackend::LastContact(const std::string& id, absl::Time fallback) {
  absl::MutexLock lock(&mu_);
  return last_contact_.emplace(id, fallback).first->second;
}

void CloudflareBackend::NoteContact(const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (records_.count(id) > 0) last_contact_[id] = absl::Now();
}

absl::StatusOr<core::WaitResult> CloudflareBackend::Wait(const std::string& id, absl::Duration timeout) {
  FASTEST_ASSIGN_OR_RETURN(Record record, FindRecord(id));
  const absl::Time start = absl::Now();
  absl::Time end = timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : start + timeout;
  while (true) {
    const absl::Time probe_start = absl::Now();
    // Bounded by what is left of this Wait (at least kMinProbeTime, so even a zero timeout asks
    // once): a stalled bridge must not hold the caller for request_timeout x max_attempts.
    absl::StatusOr<Probe> probe = ProbeJob(id, std::max(end, probe_start + kMinProbeTime));
    if (!probe.ok()) {
      // An HTTP answer (even a 500 after retries) is a real error: report it. Silence
      // (timeouts, refused connections) is tolerated until stall_timeout.
      const bool silent = (absl::IsDeadlineExceeded(probe.status()) ||
                           absl::IsUnavailable(probe.status())) &&
                          bridge_.last_answer() < probe_start;
      if (!silent) return probe.status();
      const absl::Time now = absl::Now();
      const absl::Duration quiet = now - LastContact(id, start);
      if (quiet >= config_.stall_timeout) {
        return absl::UnavailableError(absl::StrCat(
            "cloudflare: bridge not answering for ", absl::ToInt64Seconds(quiet), "s (sandbox ", id,
            "; stall_timeout_ms ", absl::ToInt64Milliseconds(config_.stall_timeout),
            "): ", probe.status().message()));
      }
      if (now >= end) return core::WaitResult{};
      absl::SleepFor(std::min(config_.poll_interval, end - now));
      continue;
    }
    if (probe->state == "exited") {
      core::WaitResult result;
      result.exited = true;
      result.exit_code = probe->exit_code;
      return result;
    }
    absl::Time now = absl::Now();
    absl::Time job_deadline = record.deadline_unix_ms > 0
                                  ? absl::FromUnixMillis(record.deadline_unix_ms)
                                  : absl::InfiniteFuture();
    if (now >= job_deadline) {
      // Per-job deadline (spec.timeout_ms): the backend enforces it itself.
      UpdateRecord(id, [](Record& r) { r.timed_out = true; });
      FASTEST_RETURN_IF_ERROR(Kill(id, 9));
      record.deadline_unix_ms = 0;
      absl::SleepFor(absl::Milliseconds(100));
      continue;
    }
    if (now >= end) return core::WaitResult{};
    absl::SleepFor(std::min({config_.poll_interval, end - now, job_deadline - now}));
  }
}

absl::Status CloudflareBackend::ReadLogs(const std::string& id, const core::LogOptions& options,
                                         std::function<bool(int, absl::string_view)> sink) {
  FASTEST_ASSIGN_OR_RETURN(Record record, FindRecord(id));
  const std::string log = absl::StrCat(kRunDir, "/log");
  const bool deliver = options.include_stdout;  // stdout and stderr share the log: stream 1
  int64_t offset = 0;
  if (options.tail > 0) {
    ExecRequest exec;
    exec.argv = {"sh", "-c",
                 absl::StrCat("f=", log, "; [ -f $f ] || { echo 0; exit 0; }; sz=$(wc -c < $f); ",
                              "echo $sz; head -c $sz $f | tail -n ", options.tail, " | base64")};
    FASTEST_ASSIGN_OR_RETURN(ExecResult result, bridge_.Exec(id, exec, /*idempotent=*/true));
    size_t nl = result.stdout_data.find('\n');
    std::string first = result.stdout_data.substr(0, nl);
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(first), &offset)) {
      return absl::InternalError("cloudflare: unexpected log size answer");
    }
    std::string decoded;
    if (nl != std::string::npos &&
        !absl::Base64Unescape(StripWhitespace(result.stdout_data.substr(nl + 1)), &decoded)) {
      return absl::InternalError("cloudflare: log chunk is not base64");
    }
    if (deliver && !decoded.empty() && !sink(core::kStdoutStream, decoded)) return absl::OkStatus();
  }
  bool final_pass = false;
  while (true) {
    ExecRequest exec;
    exec.argv = {"sh", "-c",
                 absl::StrCat("f=", log, "; [ -f $f ] && tail -c +", offset + 1, " $f | head -c ",
                              kLogChunkBytes, " | base64; true")};
    FASTEST_ASSIGN_OR_RETURN(ExecResult result, bridge_.Exec(id, exec, /*idempotent=*/true));
    std::string decoded;
    if (!absl::Base64Unescape(StripWhitespace(result.stdout_data), &decoded)) {
      return absl::InternalError("cloudflare: log chunk is not base64");
    }
    offset += static_cast<int64_t>(decoded.size());
    if (deliver && !decoded.empty() && !sink(core::kStdoutStream, decoded)) return absl::OkStatus();
    if (static_cast<int64_t>(decoded.size()) == kLogChunkBytes) continue;  // more is waiting
    if (!options.follow || final_pass) return absl::OkStatus();
    FASTEST_ASSIGN_OR_RETURN(Probe probe, ProbeJob(id));
    if (probe.state == "exited") {
      final_pass = true;  // read what was written between the last read and the exit
      continue;
    }
    absl::SleepFor(std::min(config_.poll_interval, absl::Seconds(1)));
  }
}

absl::Status CloudflareBackend::Kill(const std::string& id, int signal) {
  FASTEST_ASSIGN_OR_RETURN(Record record, FindRecord(id));
  if (signal <= 0 || signal > 64) return absl::InvalidArgumentError("cloudflare: bad signal number");
  UpdateRecord(id, [&](Record& r) { r.killed_signal = signal; });
  ExecRequest exec;
  exec.argv = {"sh", "-c",
               absl::StrCat("R=", kRunDir, "; if [ -f $R/pid ] && [ ! -f $R/exit ]; then kill -",
                            signal, " -- -$(cat $R/pid) 2>/dev/null; fi; true")};
  FASTEST_ASSIGN_OR_RETURN(ExecResult result, bridge_.Exec(id, exec, /*idempotent=*/true));
  (void)result;
  return absl::OkStatus();
}

absl::Status CloudflareBackend::Remove(const std::string& id) {
  if (!IsValidSandboxId(id)) {
    return absl::NotFoundError(absl::StrCat("cloudflare: \"", id, "\" is not a sandbox id"));
  }
  bool known = false;
  {
    absl::MutexLock lock(&mu_);
    known = records_.count(id) > 0;
  }
  // Always DELETE, even for ids we do not know: it is 204 either way and frees the container.
  FASTEST_RETURN_IF_ERROR(bridge_.DeleteSandbox(id));
  absl::MutexLock lock(&mu_);
  records_.erase(id);
  last_contact_.erase(id);
  FASTEST_RETURN_IF_ERROR(SaveStateLocked());
  if (!known) {
    return absl::NotFoundError(absl::StrCat("cloudflare: unknown sandbox ", id,
                                            " (deleted on the bridge anyway)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<core::SandboxInfo>> CloudflareBackend::List(
    const std::map<std::string, std::string>& labels) {
  std::vector<std::pair<std::string, Record>> matches;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, record] : records_) {
      if (core::LabelsMatch(record.labels, labels)) matches.emplace_back(id, record);
    }
  }
  std::vector<core::SandboxInfo> out;
  for (const auto& [id, record] : matches) {
    core::SandboxInfo info;
    info.id = id;
    info.name = record.name;
    info.labels = record.labels;
    absl::StatusOr<Probe> probe = ProbeJob(id);
    if (probe.ok()) {
      info.state = probe->state;
      info.exit_code = probe->exit_code;
    } else {
      info.state = "unknown";  // bridge unreachable: still listed so it can be removed later
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace fastest::backends::cloudflare
