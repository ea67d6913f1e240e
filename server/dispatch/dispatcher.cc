#include "server/dispatch/dispatcher.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"
#include "server/dispatch/job_outcome.h"
#include "server/dispatch/output_capture.h"
#include "server/util/log.h"

namespace fastest::server {
namespace {

using core::JobStatus;

constexpr char kLabelServer[] = "fastest.server_id";
constexpr char kLabelJob[] = "fastest.job_id";
// Backend Wait errors in a row before the dispatcher gives the sandbox up.
constexpr int kMaxWaitErrors = 3;
// How long a log follow may take to end after its sandbox exited (then it is abandoned and the
// log is read once), and after the sandbox was removed (then its thread is detached).
constexpr absl::Duration kFollowGrace = absl::Seconds(5);
constexpr absl::Duration kFollowReleaseGrace = absl::Seconds(1);
// How long Stop() waits for detached follows to end.
constexpr absl::Duration kStragglerWait = absl::Seconds(3);

std::string DurationText(absl::Duration d) { return absl::FormatDuration(d); }

// The sandbox's name, also its channel's key.
std::string SandboxName(const std::string& job_id) {
  return absl::StrCat("fastest-job-", absl::AsciiStrToLower(job_id));
}

// Secrets to keep out of a job's log: its token and provider keys passed through.
std::vector<std::string> SecretsOf(const std::map<std::string, std::string>& env) {
  std::vector<std::string> secrets;
  for (const auto& [name, value] : env) {
    if (name == "API_TOKEN" || absl::EndsWith(name, "_KEY") || absl::EndsWith(name, "_TOKEN")) {
      secrets.push_back(value);
    }
  }
  return secrets;
}

}  // namespace

Dispatcher::Dispatcher(JobSource* source, std::string server_id, core::SandboxBackend* backend,
                       Metrics* metrics, DispatcherOptions options)
    : source_(source),
      backend_(backend),
      metrics_(metrics),
      options_(std::move(options)),
      server_id_(std::move(server_id)),
      stragglers_(std::make_shared<Stragglers>()) {
  if (options_.max_instances < 1) options_.max_instances = 1;
}

Dispatcher::~Dispatcher() { Stop(); }

absl::Status Dispatcher::Start() {
  if (!recovered_) FASTEST_RETURN_IF_ERROR(Recover());
  if (options_.warm_pool > 0) {
    auto caps = backend_->Capabilities();
    if (caps.ok() && caps->warm_pool) {
      // Its sandboxes already start from the platform's own pre-warmed pool (the Cloudflare
      // bridge's /v1/pool/*); a second pool of ours on top would hold instances twice.
      LogWarn("--warm_pool ignored: the backend keeps its own warm pool",
              {{"backend", backend_->name()}, {"warm_pool", std::to_string(options_.warm_pool)}});
    } else {
      WarmPoolOptions wo = options_.warm_pool_options.value_or(WarmPoolOptions{});
      wo.size = std::min(options_.warm_pool, max_running_);
      wo.ttl = options_.warm_pool_ttl;
      wo.refill_delay = options_.warm_pool_refill_delay;
      wo.key = PoolKey();
      pool_ = std::make_unique<WarmPool>(
          backend_, metrics_, static_cast<WarmSlots*>(this), wo,
          [this](const std::string& name, const std::string& credential,
                 std::unique_ptr<SandboxChannel>* channel) {
            return SpecFor(name, "", credential, channel);
          });
    }
  }
  StartLocked();
  if (pool_ != nullptr) pool_->Start();
  return absl::OkStatus();
}

void Dispatcher::StartLocked() {
  std::lock_guard<std::mutex> lock(mu_);
  started_ = true;
  for (int i = 0; i < max_running_; ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
  threads_.emplace_back([this] { ControlLoop(); });
  // Re-adopted sandboxes hold slots (running_ counts them) until they end.
  for (Supervised& adopted : adopted_) {
    auto run = std::make_shared<Supervised>(std::move(adopted));
    threads_.emplace_back([this, run] {
      RunResult result;
      result.job_id = run->job_id;
      const absl::Time t0 = absl::Now();
      FinishTask(SuperviseSandbox(std::move(*run), std::move(result)), t0);
      std::lock_guard<std::mutex> lock(mu_);
      --running_;
      feeder_wake_ = true;
      feeder_cv_.notify_all();
      work_cv_.notify_all();
      control_cv_.notify_all();
    });
  }
  adopted_.clear();
  if (options_.auto_dispatch) {
    feeder_wake_ = true;  // pick up jobs that were pending before start
    threads_.emplace_back([this] { FeederLoop(); });
  }
  LogInfo("dispatcher started",
          {{"server_id", server_id_},
           {"backend", backend_->name()},
           {"max_instances", std::to_string(max_running_)},
           {"auto_dispatch", options_.auto_dispatch ? "true" : "false"},
           {"instance_type", options_.instance_type.name},
           {"log_streaming", log_streaming_ ? "true" : "false"},
           {"warm_pool", std::to_string(pool_ ? pool_->options().size : 0)},
           {"job_timeout", DurationText(options_.job_timeout)}});
}

absl::Status Dispatcher::Recover() {
  if (recovered_) return absl::OkStatus();
  // Backends without log streaming are read once, when the sandbox has exited. A backend that
  // cannot describe itself is treated as streaming and unlimited (its calls will tell).
  max_running_ = options_.max_instances;
  auto caps = backend_->Capabilities();
  if (caps.ok()) {
    log_streaming_ = caps->log_streaming;
    if (caps->max_parallel_sandboxes > 0 && caps->max_parallel_sandboxes < max_running_) {
      max_running_ = static_cast<int>(caps->max_parallel_sandboxes);
    }
  } else {
    LogWarn("backend capabilities unknown", {{"error", caps.status().ToString()}});
  }
  // Sealed-sandbox channels are a server-side notion outside BackendCapabilities.
  auto doc = backend_->Describe();
  channel_mount_ = doc.ok() && doc->is_object() && doc->value("channel_mount", false) == true;

  // Jobs this server had claimed when it went away, and the sandboxes it left.
  FASTEST_ASSIGN_OR_RETURN(std::vector<JobClaim> claim_list, source_->ActiveClaims());
  std::map<std::string, JobClaim> claims;
  for (JobClaim& c : claim_list) claims.emplace(c.job.id, std::move(c));
  auto sandboxes = backend_->List({{kLabelServer, server_id_}});
  if (!sandboxes.ok()) {
    // Without the list nothing can be adopted: treat every sandbox as gone.
    metrics_->IncBackendError("list");
    LogWarn("recover: cannot list sandboxes", {{"error", sandboxes.status().ToString()}});
    sandboxes = std::vector<core::SandboxInfo>();
  }
  std::set<std::string> adopted_jobs;
  for (const core::SandboxInfo& sb : *sandboxes) {
    auto label = sb.labels.find(kLabelJob);
    std::string job_id = label == sb.labels.end() ? "" : label->second;
    std::string channel_key = SandboxName(job_id);
    bool warm_never_started = false;
    if (auto warm = sb.labels.find(kWarmLabel); warm != sb.labels.end()) {
      // A warm sandbox has no job label: the job it was given recorded its id. An idle one
      // (no job) is removed below.
      channel_key = warm->second;
      for (const auto& [id, c] : claims) {
        if (c.sandbox_id && *c.sandbox_id == sb.id) job_id = id;
      }
      // Handed a job its runner never started (still pending): its standby credential died with
      // the server, so it is removed and the job queued again below, for a cold sandbox.
      auto claim = claims.find(job_id);
      warm_never_started =
          claim != claims.end() && claim->second.job.status == JobStatus::kPending;
    }
    auto claim = claims.find(job_id);
    // A sandbox of a job still active is adopted, also one that exited meanwhile: its exit code
    // and output then say why the job failed.
    if (claim != claims.end() && sb.state != "unknown" && !warm_never_started &&
        adopted_jobs.insert(job_id).second) {
      absl::StatusOr<Supervised> run = Adopt(claim->second.job, sb, channel_key);
      if (run.ok()) {
        LogInfo("recover: re-adopted sandbox",
                {{"sandbox", sb.id}, {"job_id", job_id}, {"state", sb.state}});
        adopted_.push_back(std::move(*run));
        continue;
      }
      adopted_jobs.erase(job_id);
      LogWarn("recover: cannot re-adopt sandbox",
              {{"sandbox", sb.id}, {"job_id", job_id}, {"error", run.status().ToString()}});
    }
    absl::Status s = backend_->Remove(sb.id);
    if (!s.ok() && !absl::IsNotFound(s)) metrics_->IncBackendError("remove");
    LogInfo(warm_never_started ? "recover: removed warm sandbox whose job never started"
            : job_id.empty() && sb.labels.count(kWarmLabel) ? "recover: removed idle warm sandbox"
                                                              : "recover: removed orphan sandbox",
            {{"sandbox", sb.id}, {"job_id", job_id}});
  }
  for (const auto& [job_id, c] : claims) {
    if (adopted_jobs.count(job_id)) continue;
    if (c.job.status == JobStatus::kRunning) {
      // The runner started (the agent may have had side effects): not run twice.
      FASTEST_RETURN_IF_ERROR(
          source_
              ->FinishIfActive(job_id, JobStatus::kFailed,
                               "The job's sandbox was gone when the server restarted (it ended "
                               "or was removed while the server was down)")
              .status());
      LogInfo("recover: failed job whose sandbox is gone", {{"job_id", job_id}});
    } else {
      // The runner never started: run it again.
      FASTEST_RETURN_IF_ERROR(source_->Release(job_id));
      LogInfo("recover: re-queued claimed job", {{"job_id", job_id}});
    }
    source_->JobEnded(job_id);
  }
  if (options_.channels != nullptr) {
    std::set<std::string> keep;
    for (const Supervised& run : adopted_) keep.insert(run.channel_key);
    options_.channels->RemoveStale(keep);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const Supervised& run : adopted_) {
    active_[run.job_id].sandbox_id = run.sandbox_id;
    ++running_;
  }
  recovered_ = true;
  return absl::OkStatus();
}

absl::StatusOr<Dispatcher::Supervised> Dispatcher::Adopt(const core::Job& job,
                                                         const core::SandboxInfo& sandbox,
                                                         const std::string& channel_key) {
  Supervised run;
  run.job_id = job.id;
  run.channel_key = channel_key;
  run.sandbox_id = sandbox.id;
  run.adopted = true;
  // The timeout counts from the job's real start, not from this server's.
  absl::Time started = absl::Now();
  std::string parse_error;
  if (job.started_at &&
      !absl::ParseTime(absl::RFC3339_full, *job.started_at, &started, &parse_error)) {
    started = absl::Now();
  }
  run.deadline = started + options_.job_timeout;
  // The job's token is only stored hashed now; token-shaped strings are redacted by the log hub.
  run.secrets = SecretsOf(options_.passthrough_env);
  if (options_.log_hub != nullptr) {
    LogPosition at = options_.log_hub->CapturedPosition(job.id);
    run.captured_stdout = at.stdout_bytes;
    run.captured_stderr = at.stderr_bytes;
  }
  if (options_.channels != nullptr && channel_mount_) {
    // A sealed sandbox reaches the API only through its channel, whose sockets died with the
    // previous server: bound anew in the same (mounted) directory.
    FASTEST_ASSIGN_OR_RETURN(run.channel,
                             options_.channels->Reopen(channel_key, job.id));
  }
  return run;
}

void Dispatcher::Stop() {
  std::deque<Task> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
    dropped.swap(queue_);
    // Kill what runs; workers then see the exit and finish their jobs.
    for (auto& [job_id, active] : active_) {
      if (!active.sandbox_id.empty()) {
        std::string id = active.sandbox_id;
        control_.push_back([this, id] { backend_->Kill(id, SIGKILL).IgnoreError(); });
      }
    }
  }
  work_cv_.notify_all();
  feeder_cv_.notify_all();
  control_cv_.notify_all();
  capacity_cv_.notify_all();
  // Drain: idle warm sandboxes are removed (taken ones were killed above with their jobs).
  if (pool_ != nullptr) pool_->Stop();
  for (Task& t : dropped) {
    source_->Release(t.job_id).IgnoreError();
    if (t.done) {
      RunResult r;
      r.job_id = t.job_id;
      r.error = "server stopping; job returned to the queue";
      r.status = "pending";
      t.done(r);
    }
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
  metrics_->SetQueueLength(0);
  // Detached log follows still run inside the backend, which the caller destroys next.
  if (!stragglers_->WaitNone(kStragglerWait)) {
    LogWarn("log follows still hang in the backend at stop",
            {{"count", std::to_string(stragglers_->Count())}});
  }
}

bool Dispatcher::stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

bool Dispatcher::accepting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return started_ && !stopping_;
}

absl::StatusOr<std::optional<std::string>> Dispatcher::RunNext(
    std::optional<std::string> owner_user_id, DoneCallback done) {
  if (!accepting()) return absl::UnavailableError("dispatcher is not running");
  FASTEST_ASSIGN_OR_RETURN(std::optional<core::Job> job, source_->ClaimNext(owner_user_id));
  if (!job) return std::optional<std::string>();
  Enqueue(Task{job->id, absl::Now(), std::move(done)});
  return std::optional<std::string>(job->id);
}

absl::Status Dispatcher::RunJob(const std::string& job_id, DoneCallback done) {
  if (!accepting()) return absl::UnavailableError("dispatcher is not running");
  FASTEST_RETURN_IF_ERROR(source_->Claim(job_id));
  Enqueue(Task{job_id, absl::Now(), std::move(done)});
  return absl::OkStatus();
}

void Dispatcher::Enqueue(Task task) {
  int n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(task));
    n = static_cast<int>(queue_.size());
  }
  metrics_->SetQueueLength(n);
  work_cv_.notify_one();
}

void Dispatcher::NotifyJobCreated() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    feeder_wake_ = true;
  }
  feeder_cv_.notify_all();
}

void Dispatcher::NotifyJobCancelled(const std::string& job_id) {
  std::string sandbox;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(job_id);
    if (it == active_.end()) return;  // queued jobs notice when they start
    it->second.cancelled = true;
    sandbox = it->second.sandbox_id;
  }
  if (!sandbox.empty()) {
    PostControl([this, sandbox] {
      absl::Status s = backend_->Kill(sandbox, SIGKILL);
      if (!s.ok()) metrics_->IncBackendError("kill");
    });
  }
}

int Dispatcher::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

int Dispatcher::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(queue_.size());
}

void Dispatcher::PostControl(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    control_.push_back(std::move(fn));
  }
  control_cv_.notify_one();
}

void Dispatcher::ControlLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    control_cv_.wait(lock, [&] { return stopping_ || !control_.empty(); });
    if (control_.empty() && stopping_ && running_ == 0) return;
    if (control_.empty()) {
      // Stopping with jobs still running: keep serving kills until they are done.
      control_cv_.wait_for(lock, std::chrono::milliseconds(50));
      if (control_.empty() && running_ == 0) return;
      continue;
    }
    auto fn = std::move(control_.front());
    control_.pop_front();
    lock.unlock();
    fn();
    lock.lock();
  }
}

void Dispatcher::FeederLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    feeder_cv_.wait_for(lock, std::chrono::seconds(source_->NeedsPolling() ? 2 : 30),
                        [&] { return stopping_ || feeder_wake_; });
    if (stopping_) return;
    feeder_wake_ = false;
    // Claim only while a slot is free, so unstarted jobs stay visible (unclaimed) to others.
    while (!stopping_ && running_ + static_cast<int>(queue_.size()) < max_running_) {
      lock.unlock();
      auto job = source_->ClaimNext(std::nullopt);
      lock.lock();
      if (!job.ok()) {
        LogError("auto-dispatch claim failed", {{"error", job.status().ToString()}});
        break;
      }
      if (!job->has_value()) break;
      queue_.push_back(Task{(*job)->id, absl::Now(), nullptr});
      metrics_->SetQueueLength(static_cast<int>(queue_.size()));
      work_cv_.notify_one();
    }
  }
}

void Dispatcher::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    // Re-adopted sandboxes hold slots too.
    work_cv_.wait(lock,
                  [&] { return stopping_ || (!queue_.empty() && running_ < max_running_); });
    if (stopping_) return;
    Task task = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    metrics_->SetQueueLength(static_cast<int>(queue_.size()));
    lock.unlock();
    RunResult result = RunTask(task);
    if (task.done) task.done(result);
    if (pool_ != nullptr) pool_->Kick();  // a slot came free
    lock.lock();
    --running_;
    feeder_wake_ = true;  // a slot is free
    feeder_cv_.notify_all();
    work_cv_.notify_one();
    control_cv_.notify_all();
  }
}

RunResult Dispatcher::RunTask(const Task& task) {
  const absl::Time t0 = absl::Now();
  RunResult result;
  result.job_id = task.job_id;
  auto fail = [&](const std::string& msg) {
    source_->FinishIfActive(task.job_id, JobStatus::kFailed, msg).IgnoreError();
    result.error = msg;
    return FinishTask(std::move(result), t0);
  };

  auto job = source_->GetJob(task.job_id);
  if (!job.ok()) {
    result.error = job.status().ToString();
    return FinishTask(std::move(result), t0);
  }
  if (job->status != JobStatus::kPending) {
    result.error = absl::StrCat("Job ", core::JobStatusName(job->status), " before it started");
    return FinishTask(std::move(result), t0);
  }
  // The sandbox runs untrusted code: it gets a token bound to this job, never the server's own.
  auto minted = source_->TokenForJob(*job);
  if (!minted.ok() || minted->empty()) {
    std::string msg = absl::StrCat(
        "Cannot mint a per-job API token: ",
        minted.ok() ? "empty token" : std::string(minted.status().message()));
    LogError("per-job token not minted", {{"job_id", job->id}, {"error", msg}});
    return fail(msg);
  }
  const std::string token = *minted;

  bool dispatched_warm = false;  // counted once: a job that falls back to cold is not counted again
  if (pool_ != nullptr) {
    if (std::optional<WarmSandbox> warm = pool_->Take(PoolKey())) {
      std::optional<RunResult> done = RunOnWarmSandbox(task, *job, token, std::move(*warm), t0,
                                                       &dispatched_warm);
      if (done) return std::move(*done);
      // Its runner never started the job: a cold sandbox runs it, unless it ended meanwhile.
      job = source_->GetJob(task.job_id);
      if (!job.ok() || job->status != JobStatus::kPending) {
        result.error = job.ok() ? absl::StrCat("Job ", core::JobStatusName(job->status),
                                               " before it started")
                                : job.status().ToString();
        return FinishTask(std::move(result), t0);
      }
    }
  }

  std::unique_ptr<SandboxChannel> channel;
  auto spec = BuildSandboxSpec(*job, token, &channel);
  if (!spec.ok()) {
    std::string msg(spec.status().message());
    LogError("sandbox spec failed", {{"job_id", job->id}, {"error", msg}});
    return fail(msg);
  }

  {
    std::lock_guard<std::mutex> lock(mu_);
    active_[job->id] = Active{};
  }
  if (pool_ != nullptr) MakeRoomForColdSandbox();
  auto sandbox = StartSandboxForJob(*spec);
  if (!sandbox.ok()) {
    metrics_->IncBackendError("create");
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_.erase(job->id);
    }
    LogError("sandbox create failed",
             {{"job_id", job->id}, {"error", std::string(sandbox.status().message())}});
    return fail(absl::StrCat("Failed to start sandbox: ", sandbox.status().message()));
  }
  if (!dispatched_warm) {
    metrics_->IncDispatched();
    metrics_->ObserveDispatchLatency(absl::Now() - task.claimed_at);
  }
  LogInfo("sandbox started", {{"job_id", job->id},
                              {"sandbox", sandbox->id},
                              {"image", spec->image},
                              {"instance_type", options_.instance_type.name}});

  // The real provider keys too: a sealed sandbox holds only placeholders, but nothing the
  // server knows must reach a log.
  std::vector<std::string> secrets = SecretsOf(spec->env);
  for (std::string& key : SecretsOf(options_.passthrough_env)) secrets.push_back(std::move(key));
  secrets.push_back(token);

  Supervised run;
  run.job_id = job->id;
  run.sandbox_id = sandbox->id;
  run.deadline = t0 + options_.job_timeout;
  run.secrets = std::move(secrets);
  run.channel = std::move(channel);
  run.channel_key = spec->name;
  return FinishTask(SuperviseSandbox(std::move(run), std::move(result)), t0);
}

std::optional<RunResult> Dispatcher::RunOnWarmSandbox(const Task& task, const core::Job& job,
                                                      const std::string& token, WarmSandbox warm,
                                                      absl::Time t0, bool* dispatched) {
  RunResult result;
  result.job_id = job.id;
  {
    // Registered before the hand-over, so a cancel or Stop() from now on kills it.
    std::lock_guard<std::mutex> lock(mu_);
    active_[job.id] = Active{warm.sandbox_id, false};
  }
  // Recorded before the runner learns its job: after a crash the sandbox is found by this id.
  source_->SetSandbox(job.id, warm.sandbox_id);
  if (absl::Status assigned = pool_->Assign(warm, job.id, token); !assigned.ok()) {
    LogWarn("warm sandbox hand-over failed; the job runs on a cold sandbox",
            {{"job_id", job.id}, {"sandbox", warm.name}, {"error", assigned.ToString()}});
    backend_->Kill(warm.sandbox_id, SIGKILL).IgnoreError();
    backend_->Remove(warm.sandbox_id).IgnoreError();
    pool_->Forget(warm.name);
    metrics_->IncWarmRetired("lost");
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(job.id);
    return std::nullopt;
  }
  metrics_->IncDispatched();
  metrics_->ObserveDispatchLatency(absl::Now() - task.claimed_at);
  *dispatched = true;
  LogInfo("job given a warm sandbox",
          {{"job_id", job.id},
           {"sandbox", warm.sandbox_id},
           {"name", warm.name},
           {"warm_for_ms", std::to_string(absl::ToInt64Milliseconds(absl::Now() - warm.created))}});
  std::vector<std::string> secrets = SecretsOf(options_.passthrough_env);
  for (std::string& key : SecretsOf(options_.channel_passthrough_env)) secrets.push_back(std::move(key));
  secrets.push_back(token);
  secrets.push_back(warm.credential);

  Supervised run;
  run.job_id = job.id;
  run.sandbox_id = warm.sandbox_id;
  run.deadline = t0 + options_.job_timeout;
  run.secrets = std::move(secrets);
  run.channel = std::move(warm.channel);
  run.channel_key = warm.name;
  run.warm = true;
  bool run_cold = false;
  RunResult supervised = SuperviseSandbox(std::move(run), std::move(result), &run_cold);
  pool_->Forget(warm.name);
  if (run_cold) {
    metrics_->IncWarmRetired("lost");
    LogWarn("warm sandbox ended before its runner started the job; the job runs on a cold sandbox",
            {{"job_id", job.id},
             {"sandbox", warm.name},
             {"exit_code", supervised.exit_code ? std::to_string(*supervised.exit_code) : "none"}});
    return std::nullopt;
  }
  return FinishTask(std::move(supervised), t0);
}

std::string Dispatcher::PoolKey() const {
  // Everything a sandbox is made with that a job could notice. The model settings are the
  // pass-through environment (values hashed: they include keys).
  std::string env;
  for (const auto& [k, v] : options_.passthrough_env) absl::StrAppend(&env, k, "=", v, "\n");
  return absl::StrCat(backend_->name(), "|", options_.image, "|", options_.instance_type.name,
                      "|", options_.network_mode, "|", core::Sha256Hex(env).substr(0, 16));
}

void Dispatcher::MakeRoomForColdSandbox() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_ && running_ + warm_slots_ > max_running_) {
    lock.unlock();
    const bool evicted = pool_->EvictOne();
    lock.lock();
    // None idle yet (still being created): one comes back soon, as a sandbox to evict.
    if (!evicted) capacity_cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
}

bool Dispatcher::TryReserveWarmSlot() {
  std::lock_guard<std::mutex> lock(mu_);
  // Jobs first: none may wait for a slot a warm sandbox would hold.
  if (stopping_ || !queue_.empty() || running_ + warm_slots_ >= max_running_) return false;
  ++warm_slots_;
  return true;
}

void Dispatcher::ReleaseWarmSlot() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --warm_slots_;
  }
  capacity_cv_.notify_all();
}

void Dispatcher::AwaitStandbyAssignment(absl::string_view credential, absl::Duration wait,
                                        StandbyCallback done) {
  if (pool_ == nullptr) return done(StandbyAnswer{StandbyAnswer::Kind::kUnknown, "", ""});
  pool_->AwaitAssignment(credential, wait, std::move(done));
}

int Dispatcher::warm_ready() const { return pool_ ? pool_->ready() : 0; }
int Dispatcher::warm_booting() const { return pool_ ? pool_->booting() : 0; }

absl::StatusOr<core::SandboxSpec> Dispatcher::BuildSandboxSpec(
    const core::Job& job, const std::string& token, std::unique_ptr<SandboxChannel>* channel) {
  return SpecFor(SandboxName(job.id), job.id, token, channel);
}

absl::StatusOr<core::SandboxSpec> Dispatcher::SpecFor(const std::string& name,
                                                      const std::string& job_id,
                                                      const std::string& token,
                                                      std::unique_ptr<SandboxChannel>* channel) {
  core::SandboxSpec spec;
  spec.name = name;
  spec.image = options_.image;
  spec.command = options_.runner_command;
  if (options_.channels != nullptr && channel_mount_) {
    auto opened = options_.channels->Open(spec.name, job_id, token);
    if (!opened.ok()) {
      return absl::Status(opened.status().code(),
                          absl::StrCat("Failed to open the sandbox channel: ",
                                       opened.status().message()));
    }
    *channel = std::move(*opened);
    spec.channel_dir = (*channel)->dir();
    spec.env = options_.channel_passthrough_env;
    spec.env["API_URL"] = absl::StrCat("unix://", kChannelMountPoint, "/", kApiSocketName);
    spec.env["API_TOKEN_FILE"] = absl::StrCat(kChannelMountPoint, "/", kTokenFileName);
  } else {
    spec.env = options_.passthrough_env;
    spec.env["API_URL"] = options_.sandbox_api_url;
    spec.env["API_TOKEN"] = token;
  }
  absl::Duration lifetime = options_.job_timeout + absl::Seconds(60);
  if (job_id.empty()) {
    // A warm sandbox: its runner stands by for a job (and learns it, and its token, then).
    spec.env["FASTEST_STANDBY"] = "1";
    spec.labels = {{kLabelServer, server_id_}, {kWarmLabel, name}};
    lifetime += options_.warm_pool_ttl;
  } else {
    spec.env["JOB_ID"] = job_id;
    spec.labels = {{kLabelServer, server_id_}, {kLabelJob, job_id}};
  }
  spec.network_mode = options_.network_mode;
  spec.nano_cpus = options_.instance_type.nano_cpus;
  spec.memory_bytes = options_.instance_type.memory_bytes;
  spec.disk_bytes = options_.instance_type.disk_bytes;
  spec.pids_limit = options_.instance_type.pids_limit;
  // The backend's own hard cap is a safety net behind our timeout.
  spec.timeout_ms = absl::ToInt64Milliseconds(lifetime);
  return spec;
}

absl::StatusOr<core::SandboxInfo> Dispatcher::StartSandboxForJob(const core::SandboxSpec& spec) {
  return backend_->CreateSandbox(spec);
}

Dispatcher::SandboxExit Dispatcher::WaitForExit(const std::string& job_id,
                                                const std::string& sandbox_id,
                                                absl::Time deadline) {
  // One Wait up to the deadline: cancel and Stop() kill the sandbox from the control thread,
  // which ends it. After a kill of our own, wait in short slices for the exit to show.
  SandboxExit exit;
  int wait_errors_in_a_row = 0;
  while (true) {
    absl::Duration slice = deadline - absl::Now();
    if (exit.timed_out || exit.stopped) slice = absl::Seconds(1);
    if (slice < absl::ZeroDuration()) slice = absl::ZeroDuration();
    auto waited = backend_->Wait(sandbox_id, slice);
    if (!waited.ok()) {
      metrics_->IncBackendError("wait");
      exit.wait_error = waited.status();
      ++wait_errors_in_a_row;
      LogError("sandbox wait failed", {{"job_id", job_id},
                                       {"attempt", std::to_string(wait_errors_in_a_row)},
                                       {"error", std::string(waited.status().message())}});
      // A backend retries transient failures itself; a few more tries here cover a blip
      // between its retries. NotFound: the sandbox is gone, nothing to wait for.
      if (absl::IsNotFound(exit.wait_error) || wait_errors_in_a_row >= kMaxWaitErrors) break;
      absl::SleepFor(std::max(std::min(slice, absl::Seconds(1)), absl::Milliseconds(200)));
      continue;
    }
    wait_errors_in_a_row = 0;
    exit.wait_error = absl::OkStatus();
    if (waited->exited) {
      exit.exit_code = waited->exit_code;
      break;
    }
    if (stopping() && !exit.stopped) {
      exit.stopped = true;
      backend_->Kill(sandbox_id, SIGKILL).IgnoreError();
      continue;
    }
    if (absl::Now() >= deadline && !exit.timed_out) {
      exit.timed_out = true;
      if (!backend_->Kill(sandbox_id, SIGKILL).ok()) metrics_->IncBackendError("kill");
      continue;
    }
    // Killed but not reported exited within a slice: give up waiting.
    if ((exit.timed_out || exit.stopped) && absl::Now() > deadline + absl::Seconds(10)) break;
  }
  return exit;
}

RunResult Dispatcher::SuperviseSandbox(Supervised run, RunResult result, bool* run_cold) {
  const std::string& job_id = run.job_id;
  const std::string& sandbox_id = run.sandbox_id;
  bool cancelled_early = false;
  bool stopping_early = false;
  {
    // Stop() kills the sandboxes it finds here; one registered after that sees stopping_.
    std::lock_guard<std::mutex> lock(mu_);
    Active& active = active_[job_id];
    active.sandbox_id = sandbox_id;
    cancelled_early = active.cancelled;
    stopping_early = stopping_;
  }
  if (!run.adopted) source_->SetSandbox(job_id, sandbox_id);
  metrics_->AddSandboxesRunning(1);
  // The job may have been cancelled (or the server stopped) while the sandbox was being created.
  if (cancelled_early || stopping_early) backend_->Kill(sandbox_id, SIGKILL).IgnoreError();

  // Capture the output. A live follow costs the engine CPU for every job, so it starts only when
  // someone reads the job's log; otherwise the log is read once when the sandbox has exited.
  std::unique_ptr<JobLogWriter> log_writer;
  if (options_.log_hub != nullptr) {
    auto w = options_.log_hub->OpenWriter(job_id, run.secrets);
    if (w.ok()) {
      log_writer = std::move(*w);
    } else {
      LogWarn("cannot open job log", {{"job_id", job_id}, {"error", w.status().ToString()}});
    }
  }
  const bool have_log = log_writer != nullptr;
  OutputCapture capture(std::move(log_writer), run.secrets, options_.max_output_bytes,
                        stragglers_);
  capture.SkipAlreadyCaptured(run.captured_stdout, run.captured_stderr);
  if (log_streaming_ && have_log) {
    capture.StartFollow(backend_, sandbox_id, /*lazy=*/true);
    capture.EnableDemand(options_.log_hub, job_id);
  }
  // Gateway and egress lines go into the log as they happen while someone follows it; the rest
  // are appended once the sandbox has ended.
  if (run.channel != nullptr) {
    run.channel->SetNoteSink(
        [&capture](absl::string_view line) { return capture.AppendLineIfLive(line); });
  }

  SandboxExit exit = WaitForExit(job_id, sandbox_id, run.deadline);
  result.exit_code = exit.exit_code;
  capture.SandboxEnded();

  // A follow ends with the sandbox. The log is then read once, skipping what a follow already
  // captured: that is the whole log when nobody followed, or what a broken follow missed. A
  // follow that does not end within the grace period is abandoned (its data is refused from
  // then on) first.
  if (capture.following()) {
    if (!capture.WaitFollow(kFollowGrace)) {
      LogWarn("log follow did not end with the sandbox; reading the log once instead",
              {{"job_id", job_id}});
      capture.Abandon();
    } else if (!capture.follow_status().ok()) {
      metrics_->IncBackendError("logs");
    }
  }
  if (!capture.CatchUp(backend_, sandbox_id).ok()) metrics_->IncBackendError("logs");

  JobObservation seen;
  std::string tail;
  capture.TakeOutput(&result.stdout_text, &result.stderr_text, 20, &tail);
  KeepTail(&tail, 4000);
  seen.output_tail = std::move(tail);
  seen.stdout_text = result.stdout_text;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seen.cancel_requested = active_[job_id].cancelled;
  }
  seen.timed_out = exit.timed_out;
  seen.timeout = options_.job_timeout;
  // Stop() may have killed the sandbox before this thread noticed.
  seen.stopping = exit.stopped || stopping();
  seen.exit_code = exit.exit_code;
  seen.wait_error = exit.wait_error;
  seen.warm_sandbox = run.warm;
  JobOutcome outcome = DecideFromStore(job_id, &seen);
  if (outcome.run_cold) {
    if (run_cold != nullptr) *run_cold = true;
    capture.AppendLines({"[fastest] The warm sandbox ended before its runner started the job; "
                         "starting a cold sandbox"});
  }
  if (outcome.write_status) {
    auto wrote = source_->FinishIfActive(job_id, *outcome.write_status, outcome.write_error);
    // The runner (or the API) ended the job in between: its status stands.
    if (wrote.ok() && !*wrote) outcome = DecideFromStore(job_id, &seen);
  }
  result.success = outcome.success;
  result.error = outcome.error;
  result.output_snapshot_id = outcome.output_snapshot_id;

  // The final status is stored: complete the log (its followers then end).
  if (run.channel != nullptr) {
    run.channel->SetNoteSink(nullptr);
    capture.AppendLines(run.channel->TakeNotes());
  }
  capture.CloseLog();

  // Always remove the sandbox.
  absl::Status removed = backend_->Remove(sandbox_id);
  if (!removed.ok() && !absl::IsNotFound(removed)) {
    metrics_->IncBackendError("remove");
    LogWarn("sandbox remove failed",
            {{"sandbox", sandbox_id}, {"error", std::string(removed.message())}});
  }
  run.channel.reset();
  // A follow let go usually ends once its sandbox is gone; one that still hangs is detached, so
  // the job ends regardless.
  if (!capture.Release(kFollowReleaseGrace)) {
    LogWarn("log follow still hangs after the sandbox was removed; detached",
            {{"job_id", job_id}, {"sandbox", sandbox_id}});
  }
  metrics_->AddSandboxesRunning(-1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(job_id);
  }
  return result;
}

JobOutcome Dispatcher::DecideFromStore(const std::string& job_id, JobObservation* seen) {
  auto stored = source_->GetJob(job_id);
  if (stored.ok()) {
    seen->stored_status = stored->status;
    seen->stored_error = stored->error;
    seen->stored_output_snapshot_id = stored->output_snapshot_id;
  }
  return DecideOutcome(*seen);
}

RunResult Dispatcher::FinishTask(RunResult r, absl::Time t0) {
  r.duration_ms = absl::ToInt64Milliseconds(absl::Now() - t0);
  auto job = source_->GetJob(r.job_id);
  if (job.ok()) r.status = std::string(core::JobStatusName(job->status));
  source_->JobEnded(r.job_id);
  LogInfo("job finished", {{"job_id", r.job_id},
                           {"status", r.status},
                           {"success", r.success ? "true" : "false"},
                           {"duration_ms", std::to_string(r.duration_ms)}});
  return r;
}

}  // namespace fastest::server
