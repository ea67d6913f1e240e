#include "runner/runner.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <limits>
#include <condition_variable>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"
#include "core/config/secrets.h"
#include "core/status/status_macros.h"
#include "core/snapshot/sha256.h"
#include "runner/agent_launch.h"
#include "runner/agent_process.h"
#include "runner/opencode_serve.h"
#include "runner/workspace_restore.h"
#include "runner/workspace_snapshot.h"
#include "server/channel/relay_io.h"

namespace fastest::runner {
namespace {

const std::string kRule(60, '=');
constexpr size_t kMaxErrorChars = 4000;

std::string Shorten(const std::string& s, size_t n) {
  return s.size() > n ? s.substr(0, n) + "..." : s;
}

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.2fs", absl::ToDoubleSeconds(d));
}

std::string MiB(uint64_t bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

bool IsTransport(const absl::Status& s) {
  auto info = core::GetApiErrorInfo(s);
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded || (info && info->http_status == 0) ||
         (info && info->http_status >= 500);
}

}  // namespace

Logger::Logger(FILE* out, FILE* err, std::vector<std::string> secrets)
    : out_(out), err_(err), secrets_(std::move(secrets)), flusher_([this] { FlushLoop(); }) {}

std::string Logger::Redact(std::string text) const {
  std::lock_guard<std::mutex> lock(secrets_mu_);
  return core::RedactSecrets(std::move(text), secrets_);
}

void Logger::AddSecret(const std::string& secret) {
  if (secret.size() < core::kMinSecretLength) return;
  std::lock_guard<std::mutex> lock(secrets_mu_);
  secrets_.push_back(secret);
}

void Logger::Info(const std::string& line) {
  std::string text = Redact(line);
  std::lock_guard<std::mutex> lock(mu_);
  fprintf(out_, "%s\n", text.c_str());
  if (pending_) return;  // the flusher writes it with the rest of the burst
  const auto now = std::chrono::steady_clock::now();
  if (now - last_flush_ >= kFlushInterval) {
    // The first line after a quiet spell goes out at once.
    fflush(out_);
    last_flush_ = now;
  } else {
    pending_ = true;
    cv_.notify_one();
  }
}

void Logger::FlushLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return pending_ || stop_; });
    // Lines of a burst: written together, kFlushInterval after the previous write.
    cv_.wait_until(lock, last_flush_ + kFlushInterval, [&] { return stop_; });
    fflush(out_);
    last_flush_ = std::chrono::steady_clock::now();
    pending_ = false;
    if (stop_) return;
  }
}

Logger::~Logger() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  flusher_.join();
  fflush(out_);
  fflush(err_);
}

void Logger::Error(const std::string& line) {
  std::string text = Redact(line);
  std::lock_guard<std::mutex> lock(mu_);
  fflush(out_);
  fprintf(err_, "%s\n", text.c_str());
  fflush(err_);
}

std::vector<std::string> SecretValues(const RunnerConfig& config) {
  std::vector<std::string> out;
  for (absl::string_view k : core::SecretEnvNames()) {
    auto it = config.env.find(std::string(k));
    if (it != config.env.end() && it->second.size() >= core::kMinSecretLength) {
      out.push_back(it->second);
    }
  }
  if (config.api_token.size() >= core::kMinSecretLength) out.push_back(config.api_token);
  return out;
}

namespace {

// Sends every request over one unix socket (the sandbox's API channel).
class UnixSocketTransport : public core::HttpTransport {
 public:
  explicit UnixSocketTransport(std::string socket) : socket_(std::move(socket)) {}
  absl::StatusOr<core::HttpResponse> Send(const core::HttpRequest& request) override {
    core::HttpRequest over_socket = request;
    over_socket.unix_socket = socket_;
    return http_.Send(over_socket);
  }

 private:
  std::string socket_;
  core::AsioHttpClient http_;
};

// A listener on 127.0.0.1 whose connections are relayed to a channel socket.
absl::StatusOr<std::unique_ptr<server::SocketListener>> StartSocketRelay(const std::string& socket,
                                                                         int* port) {
  return server::SocketListener::StartLoopback(
      0,
      [socket](int fd) {
        absl::StatusOr<int> upstream = server::channel_io::ConnectUnix(socket);
        if (!upstream.ok()) return;
        server::channel_io::Pump(fd, *upstream);
        close(*upstream);
      },
      port);
}

std::unique_ptr<core::HttpTransport> ApiTransport(const RunnerConfig& config) {
  if (!config.api_socket.empty()) return std::make_unique<UnixSocketTransport>(config.api_socket);
  return std::make_unique<core::AsioHttpClient>();
}

}  // namespace

Runner::Runner(RunnerConfig config, Logger& log)
    : config_(std::move(config)), log_(log), http_(ApiTransport(config_)) {
  api_ = std::make_unique<core::ApiClient>(*http_, config_.api_url, config_.api_token,
                                           config_.retry);
}

Runner::~Runner() {
  // A job that ended before the agent ran: the early server goes, which also ends a warm-up.
  if (opencode_ != nullptr) opencode_->Stop();
  if (warm_thread_.joinable()) warm_thread_.join();
}

absl::Status Runner::PrepareAgent(const std::string& prompt) {
  // The channel's model gateway and egress proxy, exposed to the agent on 127.0.0.1: the sandbox
  // has no other network.
  RunnerConfig agent_config = config_;
  const std::string channel_dir =
      config_.api_socket.substr(0, config_.api_socket.rfind('/') + 1);
  if (auto gw = config_.env.find("FASTEST_MODEL_GATEWAY");
      gw != config_.env.end() && !config_.api_socket.empty()) {
    int port = 0;
    auto relay = StartSocketRelay(channel_dir + "model.sock", &port);
    if (!relay.ok()) return absl::InternalError(absl::StrCat("Model gateway relay: ", relay.status().message()));
    model_relay_ = std::move(*relay);
    agent_config.env["FASTEST_MODEL_GATEWAY_URL"] =
        absl::StrCat("http://127.0.0.1:", port, gw->second == "/" ? "" : gw->second);
    log_.Info(absl::StrCat("[agent] Model gateway on 127.0.0.1:", port));
  }
  if (config_.env.count("FASTEST_EGRESS_PROXY") && !config_.api_socket.empty()) {
    int port = 0;
    auto relay = StartSocketRelay(channel_dir + "egress.sock", &port);
    if (!relay.ok()) return absl::InternalError(absl::StrCat("Egress proxy relay: ", relay.status().message()));
    egress_relay_ = std::move(*relay);
    const std::string proxy = absl::StrCat("http://127.0.0.1:", port);
    for (const char* name : {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"}) {
      agent_config.env[name] = proxy;
    }
    agent_config.env["NO_PROXY"] = agent_config.env["no_proxy"] = "127.0.0.1,localhost";
    log_.Info(absl::StrCat("[agent] Egress proxy (allow-list) on 127.0.0.1:", port));
  }
  absl::StatusOr<AgentLaunch> launch = PrepareAgentLaunch(agent_config, prompt);
  if (!launch.ok()) {
    return absl::Status(launch.status().code(),
                        absl::StrCat("Agent setup failed: ", launch.status().message()));
  }
  launch_ = std::move(*launch);
  return absl::OkStatus();
}

void Runner::StartOpenCodeEarly() {
  if (!config_.agent_command.empty()) return;
  early_status_ = PrepareAgent("");
  if (!early_status_.ok() || !launch_->serve) return;
  std::error_code ec;
  std::filesystem::create_directories(config_.work_dir, ec);  // the server's working directory
  AgentProcessOptions options;
  options.timeout = config_.agent_timeout;
  options.stop = &cancelled_;
  opencode_ = std::make_unique<OpenCodeServer>(
      *launch_, config_.work_dir, options, [this](bool is_stderr, const std::string& line) {
        log_.Info(absl::StrCat(is_stderr ? "[agent:stderr] " : "[agent] ", line));
      });
  // The first request for a directory bootstraps OpenCode's instance for it (seconds): done now,
  // while the job is fetched and the workspace restored. A failure shows again at the prompt.
  // A standby sandbox has time before its job, so it also runs the full warm-up (a scripted
  // session that loads the prompt pipeline, provider SDK and tools); a cold job would wait for it.
  if (config_.standby) {
    warm_thread_ = std::thread([this] { (void)opencode_->Warm(config_.work_dir); });
  } else {
    warm_thread_ = std::thread([this] { (void)opencode_->BootInstance(config_.work_dir); });
  }
}

int Runner::Fail(const std::string& raw_message) {
  std::string message = log_.Redact(Shorten(raw_message, kMaxErrorChars));
  log_.Error(absl::StrCat("Job failed: ", message));
  // Never overwrite a cancellation.
  absl::StatusOr<core::Job> current = api_->GetJob(job_id_);
  if (current.ok() && current->status == core::JobStatus::kCancelled) {
    log_.Info("Job was cancelled meanwhile; leaving it cancelled");
    return kExitCancelled;
  }
  absl::StatusOr<core::Job> updated =
      api_->UpdateJobStatus(job_id_, core::JobStatus::kFailed, std::nullopt, message);
  if (!updated.ok()) {
    log_.Error(absl::StrCat("Failed to update job status: ", updated.status().message()));
    return kExitApiUnreachable;
  }
  return kExitJobFailed;
}

int Runner::Run() {
  log_.Info(kRule);
  log_.Info("Fastest Sandbox Runner");
  log_.Info(absl::StrCat("Job ID: ", config_.standby          ? "(standby: assigned later)"
                                     : config_.job_id.empty() ? "(next pending)"
                                                              : config_.job_id));
  log_.Info(kRule);
  log_.Info("");
  StartOpenCodeEarly();
  if (config_.standby) {
    if (std::optional<int> stop = AwaitAssignment()) return *stop;
  }

  core::Job job;
  if (config_.job_id.empty()) {
    log_.Info("Polling for next pending job...");
    absl::StatusOr<std::optional<core::Job>> next = api_->NextJob();
    if (!next.ok()) {
      log_.Error(absl::StrCat("Failed to fetch next job: ", next.status().message()));
      return IsTransport(next.status()) ? kExitApiUnreachable : kExitNotRunnable;
    }
    if (!next->has_value()) {
      log_.Info("No pending jobs found");
      return kExitCompleted;
    }
    job = std::move(**next);
  } else {
    log_.Info(absl::StrCat("Fetching job ", config_.job_id, "..."));
    absl::StatusOr<core::Job> got = api_->GetJob(config_.job_id);
    if (!got.ok()) {
      log_.Error(absl::StrCat("Failed to fetch job: ", got.status().message()));
      return IsTransport(got.status()) ? kExitApiUnreachable : kExitNotRunnable;
    }
    job = std::move(*got);
  }
  job_id_ = job.id;
  if (core::IsTerminal(job.status)) {
    log_.Error(absl::StrCat("Job ", job.id, " is ", core::JobStatusName(job.status),
                            "; refusing to run it"));
    return kExitNotRunnable;
  }
  log_.Info(absl::StrCat("Job: ", job.id));
  log_.Info(absl::StrCat("  Workspace: ", job.workspace_id));
  log_.Info(absl::StrCat("  Prompt: ", Shorten(job.prompt, 100)));
  log_.Info("Marking job as running...");
  absl::StatusOr<core::Job> running = api_->UpdateJobStatus(job.id, core::JobStatus::kRunning);
  if (!running.ok()) {
    log_.Error(absl::StrCat("Failed to mark job as running: ", running.status().message()));
    return IsTransport(running.status()) ? kExitApiUnreachable : kExitNotRunnable;
  }
  return RunJob(job);
}

std::optional<int> Runner::AwaitAssignment() {
  const std::string B = "[standby] ";
  const absl::Time boot_start = absl::Now();
  // Standing by means ready (the pool counts a sandbox ready from its first poll): the agent
  // server listens and has run its warm-up, so the job's prompt goes straight to it.
  if (warm_thread_.joinable()) {
    warm_thread_.join();
    log_.Info(absl::StrCat(B, "Agent server booted in ", Seconds(absl::Now() - boot_start)));
  } else if (!config_.agent_command.empty()) {
    log_.Info(absl::StrCat(B, "Scripted agent: nothing to boot"));
  }
  log_.Info(absl::StrCat(B, "Waiting for a job..."));
  // While the API fails: retried on the client's schedule, for max_elapsed (not a try count).
  core::BackoffPolicy failing_policy = config_.retry.Backoff();
  failing_policy.max_attempts = std::numeric_limits<int>::max();
  std::optional<core::Backoff> failing;
  while (true) {
    core::HttpRequest req;
    req.method = "GET";
    req.url = absl::StrCat(config_.api_url, "/v1/standby/assignment?wait=20");
    req.bearer_token = config_.api_token;
    req.timeout = std::chrono::milliseconds(60000);
    absl::StatusOr<core::HttpResponse> resp = http_->Send(req);
    const int code = resp.ok() ? resp->status : 0;
    if (code == 200) {
      nlohmann::json body = nlohmann::json::parse(resp->body, nullptr, false);
      const std::string job_id = body.is_object() ? body.value("job_id", "") : "";
      const std::string token = body.is_object() ? body.value("api_token", "") : "";
      if (job_id.empty() || token.empty()) {
        log_.Error(absl::StrCat(B, "Malformed assignment"));
        return kExitNotRunnable;
      }
      log_.AddSecret(token);
      config_.job_id = job_id;
      config_.api_token = token;
      api_ = std::make_unique<core::ApiClient>(*http_, config_.api_url, config_.api_token,
                                               config_.retry);
      log_.Info(absl::StrCat(B, "Assigned job ", job_id, " after ",
                             Seconds(absl::Now() - boot_start)));
      return std::nullopt;
    }
    if (code == 204) {
      failing.reset();
      continue;
    }
    if (code == 410) {
      log_.Info(absl::StrCat(B, "Retired without a job"));
      return kExitCompleted;
    }
    if (code == 401 || code == 403 || code == 404) {
      log_.Error(absl::StrCat(B, "The API refused the standby credential (HTTP ", code, ")"));
      return kExitNotRunnable;
    }
    // Unreachable or 5xx: a restarting server; ride it out within the retry budget.
    if (!failing) failing.emplace(failing_policy);
    std::optional<absl::Duration> wait = failing->NextWait();
    if (!wait) {
      log_.Error(absl::StrCat(B, "API unreachable while waiting for a job: ",
                              resp.ok() ? absl::StrCat("HTTP ", code)
                                        : std::string(resp.status().message())));
      return kExitApiUnreachable;
    }
    absl::SleepFor(*wait);
  }
}

int Runner::RunJob(const core::Job& job) {
  const absl::Time start = absl::Now();
  const std::string R = "[restoring] ";
  // ---- restoring ----
  log_.Info("");
  log_.Info(absl::StrCat(R, "Fetching workspace..."));
  absl::StatusOr<core::Workspace> ws = api_->GetWorkspace(job.workspace_id);
  if (!ws.ok()) return Fail(absl::StrCat("Fetching workspace failed: ", ws.status().message()));
  core::Manifest base;
  std::optional<core::Snapshot> base_snapshot;
  std::optional<std::string> base_id = ws->base_snapshot_id;
  if (!base_id) {
    log_.Info(absl::StrCat(R, "No base snapshot - starting with empty workspace"));
  } else {
    log_.Info(absl::StrCat(R, "Fetching snapshot ", *base_id, "..."));
    absl::StatusOr<core::Snapshot> snap = api_->GetSnapshot(*base_id);
    if (!snap.ok()) return Fail(absl::StrCat("Fetching snapshot failed: ", snap.status().message()));
    log_.Info(absl::StrCat(R, "Downloading manifest..."));
    log_.Info(absl::StrCat(R, "  Manifest hash: ", snap->manifest_hash.substr(0, 16), "..."));
    absl::StatusOr<std::string> text = api_->GetManifest(snap->manifest_hash);
    if (!text.ok()) return Fail(absl::StrCat("Downloading manifest failed: ", text.status().message()));
    if (core::Sha256Hex(*text) != snap->manifest_hash) {
      return Fail("Downloading manifest failed: hash mismatch");
    }
    absl::StatusOr<core::Manifest> parsed = core::ParseManifest(*text);
    if (!parsed.ok()) {
      return Fail(absl::StrCat("Invalid manifest (refusing to restore): ", parsed.status().message()));
    }
    base = std::move(*parsed);
    base_snapshot = std::move(*snap);
  }
  log_.Info(absl::StrCat(R, "Files in manifest: ", base.files.size()));
  log_.Info(absl::StrCat(R, "Restoring workspace files into ", config_.work_dir, "..."));
  core::HashCache cache;
  absl::StatusOr<RestoreStats> restored = RestoreWorkspace(
      *api_, base, config_.work_dir, &cache, config_.download_parallelism,
      [&](uint64_t done, uint64_t total) {
        log_.Info(absl::StrCat(R, "  Downloaded ", done, "/", total, " files"));
      });
  if (!restored.ok()) {
    return Fail(absl::StrCat("Restore failed: ", restored.status().message()));
  }
  log_.Info(absl::StrCat(R, "Restored ", restored->files, " files (", restored->downloaded,
                         " downloaded, ", restored->reused, " reused, ", restored->deleted,
                         " deleted, ", MiB(restored->bytes_downloaded), ") in ",
                         Seconds(restored->duration)));

  if (config_.agent_uid >= 0) {
    if (absl::Status s = ChownTree(config_.work_dir, config_.agent_uid, config_.agent_gid);
        !s.ok()) {
      return Fail(absl::StrCat("Cannot hand the workspace to the agent user: ", s.message()));
    }
  }

  // ---- agent ----
  const std::string A = "[agent] ";
  log_.Info("");
  if (!launch_ && early_status_.ok()) early_status_ = PrepareAgent(job.prompt);
  if (!early_status_.ok()) return Fail(std::string(early_status_.message()));
  const AgentLaunch* launch = &*launch_;
  log_.Info(absl::StrCat(A, "Running ", launch->description, "..."));
  log_.Info(absl::StrCat(A, "  Working directory: ", config_.work_dir));
  log_.Info(absl::StrCat(A, "  Timeout: ", absl::FormatDuration(config_.agent_timeout)));

  // Watch for a cancellation while the agent runs (the API does not notify us).
  std::atomic<bool>& cancelled = cancelled_;
  std::atomic<bool> agent_done{false};
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  std::thread watcher([&] {
    core::ApiClient poll(*http_, config_.api_url, config_.api_token, core::RetryPolicy::NoRetry());
    std::unique_lock<std::mutex> lock(watch_mu);
    while (!agent_done) {
      watch_cv.wait_for(lock, std::chrono::seconds(2));
      if (agent_done) break;
      lock.unlock();
      absl::StatusOr<core::Job> j = poll.GetJob(job.id);
      if (j.ok() && j->status == core::JobStatus::kCancelled) cancelled = true;
      lock.lock();
    }
  });
  AgentProcessOptions options;
  options.timeout = config_.agent_timeout;
  options.stop = &cancelled;
  const AgentLineSink agent_sink = [&](bool is_stderr, const std::string& line) {
    log_.Info(absl::StrCat(is_stderr ? "[agent:stderr] " : "[agent] ", line));
  };
  absl::StatusOr<AgentResult> agent;
  if (opencode_ != nullptr) {
    if (warm_thread_.joinable()) warm_thread_.join();
    agent = opencode_->RunPrompt(config_.work_dir, launch->provider_id, launch->model_id,
                                 job.prompt);
    opencode_.reset();
  } else {
    agent = RunAgentProcess(*launch, config_.work_dir, options, agent_sink);
  }
  {
    std::lock_guard<std::mutex> lock(watch_mu);
    agent_done = true;
  }
  watch_cv.notify_all();
  watcher.join();
  model_relay_.reset();
  egress_relay_.reset();
  if (!agent.ok()) return Fail(absl::StrCat("Agent failed to start: ", agent.status().message()));
  if (agent->stopped) {
    log_.Info(absl::StrCat(A, "Job was cancelled; agent stopped"));
    return kExitCancelled;
  }
  if (agent->timed_out) {
    log_.Info(absl::StrCat(A, "Agent timed out after ", absl::FormatDuration(config_.agent_timeout)));
    return Fail(absl::StrCat("Agent timed out after ", absl::FormatDuration(config_.agent_timeout),
                             "; last output:\n", agent->tail));
  }
  log_.Info(absl::StrCat(A, "Agent exit code: ", agent->exit_code, " (", Seconds(agent->duration), ")"));
  if (agent->exit_code != 0) {
    std::string how = agent->term_signal != 0
                          ? absl::StrCat("Agent killed by signal ", agent->term_signal)
                          : absl::StrCat("Agent exited with code ", agent->exit_code);
    return Fail(absl::StrCat(how, "; last output:\n", agent->tail));
  }

  // ---- snapshotting ----
  const std::string S = "[snapshotting] ";
  log_.Info("");
  log_.Info(absl::StrCat(S, "Collecting modified files..."));
  SnapshotRequest req;
  req.root = config_.work_dir;
  req.project_id = job.project_id;
  req.parent_snapshot_id = base_id;
  req.source = "agent";
  req.base_manifest = &base;
  req.base_snapshot = base_snapshot ? &*base_snapshot : nullptr;
  req.cache = &cache;
  req.upload_parallelism = config_.upload_parallelism;
  absl::StatusOr<SnapshotResult> snap = SnapshotWorkspace(*api_, req);
  if (!snap.ok()) return Fail(absl::StrCat("Snapshot failed: ", snap.status().message()));
  log_.Info(absl::StrCat(S, "Collected ", snap->files, " files (", snap->hashed, " hashed, ",
                         snap->files - snap->hashed, " unchanged) in ", Seconds(snap->scan_duration)));
  log_.Info(absl::StrCat(S, "Manifest order: ", snap->order_note));
  log_.Info(absl::StrCat(S, "Manifest hash: ", snap->manifest_hash.substr(0, 16), "..."));
  log_.Info(absl::StrCat(S, "Changes: +", snap->diff.added.size(), " ~", snap->diff.modified.size(),
                         " -", snap->diff.deleted.size()));
  log_.Info(absl::StrCat(S, "Blobs to upload: ", snap->blobs_uploaded, " / ", snap->unique_blobs,
                         " (", MiB(snap->bytes_uploaded), ")"));
  log_.Info(absl::StrCat(S, snap->manifest_uploaded ? "Manifest uploaded"
                                                    : "Manifest unchanged (already stored)"));
  log_.Info(absl::StrCat(S, snap->created ? "Snapshot created: " : "Snapshot already existed: ",
                         snap->snapshot.id));

  absl::StatusOr<core::Job> current = api_->GetJob(job.id);
  if (current.ok() && current->status == core::JobStatus::kCancelled) {
    log_.Info("Job was cancelled while running; leaving it cancelled");
    return kExitCancelled;
  }
  log_.Info("");
  log_.Info("Marking job as completed...");
  absl::StatusOr<core::Job> done = api_->UpdateJobStatus(job.id, core::JobStatus::kCompleted,
                                                         snap->snapshot.id, std::nullopt);
  if (!done.ok()) {
    log_.Error(absl::StrCat("Failed to update job status: ", done.status().message()));
    return IsTransport(done.status()) ? kExitApiUnreachable : Fail(absl::StrCat(
        "Marking job completed failed: ", done.status().message()));
  }
  log_.Info("");
  log_.Info(kRule);
  log_.Info("Job completed successfully!");
  log_.Info(absl::StrCat("  Duration: ", Seconds(absl::Now() - start)));
  log_.Info(absl::StrCat("  Output snapshot: ", snap->snapshot.id));
  log_.Info(absl::StrCat("  Changes: +", snap->diff.added.size(), " ~", snap->diff.modified.size(),
                         " -", snap->diff.deleted.size()));
  log_.Info(absl::StrCat("  Blobs uploaded: ", snap->blobs_uploaded));
  log_.Info(kRule);
  log_.Info(absl::StrCat("Output snapshot: ", snap->snapshot.id));
  return kExitCompleted;
}

}  // namespace fastest::runner
