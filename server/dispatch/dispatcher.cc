#include "server/dispatch/dispatcher.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <regex>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/status/status_macros.h"
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

// Keeps the last `max` bytes of `s`.
void KeepTail(std::string* s, size_t max) {
  if (s->size() > max) s->erase(0, s->size() - max);
}

std::string DurationText(absl::Duration d) { return absl::FormatDuration(d); }

// The last `max_lines` lines of `text`.
std::string LastLines(absl::string_view text, int max_lines) {
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  size_t pos = text.size();
  for (int i = 0; i < max_lines && pos != 0; ++i) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == absl::string_view::npos) return std::string(text);
    pos = nl;
  }
  return std::string(pos == 0 ? text : text.substr(pos + 1));
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

// Log follows that were let go (detached) and have not ended yet. Shared with those threads, so
// it outlives the dispatcher; Stop() waits a little for them.
struct Dispatcher::Stragglers {
  std::mutex mu;
  std::condition_variable cv;
  int count = 0;

  void Add() {
    std::lock_guard<std::mutex> lock(mu);
    ++count;
  }
  void Done() {
    std::lock_guard<std::mutex> lock(mu);
    --count;
    cv.notify_all();
  }
  // True when none is left within `timeout`.
  bool WaitNone(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
                       [&] { return count == 0; });
  }
  int Count() {
    std::lock_guard<std::mutex> lock(mu);
    return count;
  }
};

// Collects one sandbox's output: into the job's log file (through the hub) and, kept to a tail,
// into the RunResult. A follow thread feeds it while the sandbox runs; CatchUp() reads whatever
// the follow missed (or everything, for backends without log streaming), skipping the bytes per
// stream already seen, so nothing is written twice.
//
// A follow may never end (a backend whose log stream hangs after the sandbox is gone). So the
// follow thread touches only `State`, which it co-owns through a shared_ptr: Release() can then
// detach it instead of joining forever. Once let go its sink refuses data, and the log writer
// (which points into the hub) is destroyed by CloseLog() on the dispatcher's thread, never by a
// straggler.
class Dispatcher::OutputCapture {
 public:
  OutputCapture(std::unique_ptr<JobLogWriter> writer, std::vector<std::string> secrets,
                size_t max_output, std::shared_ptr<Stragglers> stragglers)
      : state_(std::make_shared<State>()) {
    state_->writer = std::move(writer);
    state_->secrets = std::move(secrets);
    state_->max_output = max_output;
    state_->stragglers = std::move(stragglers);
  }
  ~OutputCapture() {
    SandboxEnded();
    CloseLog();
    Release(absl::ZeroDuration());
  }

  // Starts following on a thread of its own. `lazy`: the thread reads nothing until someone
  // reads the job's log (Demand()); then it reads what exists so far (readers waiting in Demand
  // get it), and follows from there, skipping those bytes. If nobody asks before the sandbox
  // ends (SandboxEnded()) it reads nothing: CatchUp() then reads the log once.
  void StartFollow(core::SandboxBackend* backend, const std::string& sandbox_id, bool lazy) {
    std::shared_ptr<State> state = state_;
    follow_ = std::thread([state, backend, sandbox_id, lazy] {
      auto sink = [&state](int stream, absl::string_view d) {
        return state->Sink(stream, d, /*from_follow=*/true);
      };
      bool run = true;
      if (lazy) {
        std::unique_lock<std::mutex> lock(state->demand_mu);
        state->demand_cv.wait(lock, [&] { return state->demand || state->ended; });
        run = state->demand && !state->ended;
      }
      absl::Status s;
      if (run && lazy) {
        s = backend->ReadLogs(sandbox_id, core::LogOptions{}, sink);
        {
          std::lock_guard<std::mutex> lock(state->mu);
          state->skip[0] = state->seen[0];
          state->skip[1] = state->seen[1];
        }
        state->SetCaughtUp();
      }
      if (run && s.ok()) {
        core::LogOptions opts;
        opts.follow = true;
        s = backend->ReadLogs(sandbox_id, opts, sink);
      }
      state->SetCaughtUp();
      bool detached;
      {
        std::lock_guard<std::mutex> lock(state->mu);
        state->follow_status = s;
        state->follow_done = true;
        detached = state->detached;
        state->cv.notify_all();
      }
      if (detached && state->stragglers) state->stragglers->Done();
    });
  }
  // Someone reads the job's log: start a lazy follow. wait: until the output so far is captured
  // (bounded). Never takes `mu` (callers may hold locks a Sink's listeners need).
  void Demand(bool wait) { state_->Demand(wait); }
  // The sandbox exited: a lazy follow nobody asked for ends without reading.
  void SandboxEnded() {
    {
      std::lock_guard<std::mutex> lock(state_->demand_mu);
      state_->ended = true;
    }
    state_->demand_cv.notify_all();
  }
  // Lets readers of the log ask for the output (see Demand). Cleared by CloseLog().
  void EnableDemand(JobLogHub* hub, const std::string& job_id) {
    std::shared_ptr<State> state = state_;
    hub_ = hub;
    job_id_ = job_id;
    hub->SetDemandHandler(job_id, [state](bool wait) { state->Demand(wait); });
  }
  bool following() const { return follow_.joinable(); }
  bool FollowDone() {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->follow_done;
  }
  // Waits for the follow to end (it does when the sandbox exits). False on timeout.
  bool WaitFollow(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(state_->mu);
    return state_->cv.wait_for(lock,
                               std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
                               [&] { return state_->follow_done; });
  }
  absl::Status follow_status() {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->follow_status;
  }
  // One non-following read, skipping what was already captured. Call only when the follow has
  // ended or was abandoned (its sink refuses data then, so the two never interleave).
  absl::Status CatchUp(core::SandboxBackend* backend, const std::string& sandbox_id) {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->skip[0] = state_->seen[0];
      state_->skip[1] = state_->seen[1];
    }
    std::shared_ptr<State> state = state_;
    absl::Status s = backend->ReadLogs(sandbox_id, core::LogOptions{},
                                       [&state](int stream, absl::string_view d) {
                                         return state->Sink(stream, d, /*from_follow=*/false);
                                       });
    state->SetCaughtUp();
    return s;
  }
  // From now on the follow's sink refuses data (a follow that did not end lets go at its next
  // chunk, if it ever delivers one).
  void Abandon() {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->follow_abandoned = true;
  }
  // Joins the follow if it ends within `grace`; otherwise lets it go (detached, counted as a
  // straggler until it ends). Returns false when it was let go.
  bool Release(absl::Duration grace) {
    if (!follow_.joinable()) return true;
    if (grace > absl::ZeroDuration()) WaitFollow(grace);
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->follow_abandoned = true;
      if (!state_->follow_done) {
        state_->detached = true;
        if (state_->stragglers) state_->stragglers->Add();
      }
      if (state_->detached) {
        follow_.detach();
        return false;
      }
    }
    follow_.join();
    return true;
  }

  // Output for the RunResult and the last lines (both streams, in order, secrets redacted).
  void TakeOutput(RunResult* r, int tail_lines, std::string* tail) {
    std::lock_guard<std::mutex> lock(state_->mu);
    r->stdout_text = state_->out[0];
    r->stderr_text = state_->out[1];
    KeepTail(&r->stdout_text, state_->max_output);
    KeepTail(&r->stderr_text, state_->max_output);
    *tail = RedactSecrets(LastLines(state_->combined, tail_lines), state_->secrets);
  }
  // Lines of the server's own about the job (the sandbox channel's gateway and egress notes).
  void AppendLines(const std::vector<std::string>& lines) {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->writer == nullptr) return;
    for (const std::string& line : lines) {
      state_->writer->Append(core::kStdoutStream, line + "\n").IgnoreError();
    }
  }
  // Completes the log file and tells its followers. Call once the job's final status is stored.
  // Idempotent.
  void CloseLog() {
    if (hub_ != nullptr) {
      hub_->SetDemandHandler(job_id_, nullptr);
      hub_ = nullptr;
    }
    state_->SetCaughtUp();
    std::unique_ptr<JobLogWriter> writer;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->closed = true;
      writer = std::move(state_->writer);
    }
    if (writer) writer->Close();
  }

 private:
  static constexpr size_t kCombinedTail = 8 * 1024;
  // How long a reader waits for a lazy follow's first read.
  static constexpr absl::Duration kDemandWait = absl::Seconds(1);

  struct State {
    // Demand signalling: a leaf lock, never held while taking another.
    std::mutex demand_mu;
    std::condition_variable demand_cv;
    bool demand = false;     // someone reads the log
    bool ended = false;      // the sandbox exited
    bool caught_up = false;  // the output so far is in the log file

    void Demand(bool wait) {
      std::unique_lock<std::mutex> lock(demand_mu);
      if (!demand) {
        demand = true;
        demand_cv.notify_all();
      }
      if (wait && !caught_up) {
        demand_cv.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(kDemandWait)),
                           [&] { return caught_up; });
      }
    }
    void SetCaughtUp() {
      {
        std::lock_guard<std::mutex> lock(demand_mu);
        caught_up = true;
      }
      demand_cv.notify_all();
    }

    std::mutex mu;
    std::condition_variable cv;
    std::unique_ptr<JobLogWriter> writer;
    std::vector<std::string> secrets;
    size_t max_output = 0;
    std::shared_ptr<Stragglers> stragglers;
    bool follow_done = false;
    absl::Status follow_status;
    bool follow_abandoned = false;  // the follow's data is refused
    bool detached = false;          // the follow thread was let go
    bool closed = false;            // the log is complete: all data is refused
    bool write_failed = false;
    uint64_t seen[2] = {0, 0};
    uint64_t skip[2] = {0, 0};
    std::string out[2];
    std::string combined;

    bool Sink(int stream, absl::string_view data, bool from_follow) {
      std::lock_guard<std::mutex> lock(mu);
      if (closed || (from_follow && follow_abandoned)) return false;
      const int s = stream == 2 ? 1 : 0;
      if (skip[s] > 0) {
        size_t n = std::min<size_t>(skip[s], data.size());
        skip[s] -= n;
        data.remove_prefix(n);
        if (data.empty()) return true;
      }
      seen[s] += data.size();
      out[s].append(data.data(), data.size());
      if (out[s].size() > 2 * max_output) KeepTail(&out[s], max_output);
      combined.append(data.data(), data.size());
      if (combined.size() > 2 * kCombinedTail) KeepTail(&combined, kCombinedTail);
      if (writer && !write_failed) {
        absl::Status st = writer->Append(stream, data);
        if (!st.ok()) {
          write_failed = true;  // keep running the job; the log is just incomplete
          LogWarn("cannot write job log", {{"error", std::string(st.message())}});
        }
      }
      return true;
    }
  };

  std::shared_ptr<State> state_;
  std::thread follow_;
  JobLogHub* hub_ = nullptr;  // where the demand handler is registered
  std::string job_id_;
};

nlohmann::json RunResult::ToJson() const {
  nlohmann::json j;
  j["success"] = success;
  j["job_id"] = job_id;
  if (output_snapshot_id) j["output_snapshot_id"] = *output_snapshot_id;
  if (error) j["error"] = *error;
  j["duration_ms"] = duration_ms;
  j["stdout"] = stdout_text;
  j["stderr"] = stderr_text;
  if (!status.empty()) j["status"] = status;
  if (exit_code) j["exit_code"] = *exit_code;
  return j;
}

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
  FASTEST_RETURN_IF_ERROR(Reconcile());
  // Backends without log streaming are read once, when the sandbox has exited.
  auto caps = backend_->Describe();
  log_streaming_ = !caps.ok() || !caps->is_object() || caps->value("log_streaming", true) != false;
  channel_mount_ = caps.ok() && caps->is_object() && caps->value("channel_mount", false) == true;
  std::lock_guard<std::mutex> lock(mu_);
  started_ = true;
  for (int i = 0; i < options_.max_instances; ++i) {
    threads_.emplace_back([this] { WorkerLoop(); });
  }
  threads_.emplace_back([this] { ControlLoop(); });
  if (options_.auto_dispatch) {
    feeder_wake_ = true;  // pick up jobs that were pending before start
    threads_.emplace_back([this] { FeederLoop(); });
  }
  LogInfo("dispatcher started",
          {{"server_id", server_id_},
           {"backend", backend_->name()},
           {"max_instances", std::to_string(options_.max_instances)},
           {"auto_dispatch", options_.auto_dispatch ? "true" : "false"},
           {"instance_type", options_.instance_type.name},
           {"log_streaming", log_streaming_ ? "true" : "false"},
           {"job_timeout", DurationText(options_.job_timeout)}});
  return absl::OkStatus();
}

absl::Status Dispatcher::Reconcile() {
  // 1. Sandboxes of this server: nothing runs yet, so every one is an orphan.
  auto sandboxes = backend_->List({{kLabelServer, server_id_}});
  if (!sandboxes.ok()) {
    metrics_->IncBackendError("list");
    LogWarn("reconcile: cannot list sandboxes", {{"error", sandboxes.status().ToString()}});
  } else {
    for (const auto& sb : *sandboxes) {
      absl::Status s = backend_->Remove(sb.id);
      if (!s.ok() && !absl::IsNotFound(s)) metrics_->IncBackendError("remove");
      auto it = sb.labels.find(kLabelJob);
      LogInfo("reconcile: removed orphan sandbox",
              {{"sandbox", sb.id}, {"job_id", it == sb.labels.end() ? "" : it->second}});
    }
  }
  // 2. Jobs this server had claimed when it went away.
  FASTEST_ASSIGN_OR_RETURN(std::vector<JobClaim> claims, source_->ActiveClaims());
  for (const JobClaim& c : claims) {
    if (c.job.status == JobStatus::kRunning || c.sandbox_id) {
      FASTEST_RETURN_IF_ERROR(source_
                                  ->FinishIfActive(c.job.id, JobStatus::kFailed,
                                                   "server restarted while the job was running")
                                  .status());
      LogInfo("reconcile: failed interrupted job", {{"job_id", c.job.id}});
    } else {
      FASTEST_RETURN_IF_ERROR(source_->Release(c.job.id));
      LogInfo("reconcile: re-queued claimed job", {{"job_id", c.job.id}});
    }
    source_->JobEnded(c.job.id);
  }
  return absl::OkStatus();
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
    while (!stopping_ && running_ + static_cast<int>(queue_.size()) < options_.max_instances) {
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
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Task task = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    metrics_->SetQueueLength(static_cast<int>(queue_.size()));
    lock.unlock();
    RunResult result = RunTask(task);
    if (task.done) task.done(result);
    lock.lock();
    --running_;
    feeder_wake_ = true;  // a slot is free
    feeder_cv_.notify_all();
    control_cv_.notify_all();
  }
}

RunResult Dispatcher::RunTask(const Task& task) {
  const absl::Time t0 = absl::Now();
  RunResult result;
  result.job_id = task.job_id;
  auto finish = [&](RunResult r) {
    r.duration_ms = absl::ToInt64Milliseconds(absl::Now() - t0);
    auto job = source_->GetJob(task.job_id);
    if (job.ok()) r.status = std::string(core::JobStatusName(job->status));
    source_->JobEnded(task.job_id);
    LogInfo("job finished", {{"job_id", r.job_id},
                             {"status", r.status},
                             {"success", r.success ? "true" : "false"},
                             {"duration_ms", std::to_string(r.duration_ms)}});
    return r;
  };

  auto job = source_->GetJob(task.job_id);
  if (!job.ok()) {
    result.error = job.status().ToString();
    return finish(result);
  }
  if (job->status != JobStatus::kPending) {
    result.error = absl::StrCat("Job ", core::JobStatusName(job->status), " before it started");
    return finish(result);
  }
  // The sandbox runs untrusted code: it gets a token bound to this job, never the server's own.
  auto minted = source_->TokenForJob(*job);
  if (!minted.ok() || minted->empty()) {
    std::string msg = absl::StrCat(
        "Cannot mint a per-job API token: ",
        minted.ok() ? "empty token" : std::string(minted.status().message()));
    LogError("per-job token not minted", {{"job_id", job->id}, {"error", msg}});
    source_->FinishIfActive(job->id, JobStatus::kFailed, msg).IgnoreError();
    result.error = msg;
    return finish(result);
  }
  const std::string token = *minted;

  core::SandboxSpec spec;
  spec.name = absl::StrCat("fastest-job-", absl::AsciiStrToLower(job->id));
  spec.image = options_.image;
  spec.command = options_.runner_command;
  spec.env = options_.passthrough_env;
  spec.env["JOB_ID"] = job->id;
  std::unique_ptr<SandboxChannel> channel;
  if (options_.channels != nullptr && channel_mount_) {
    auto opened = options_.channels->Open(spec.name, job->id, token);
    if (!opened.ok()) {
      std::string msg = absl::StrCat("Failed to open the sandbox channel: ", opened.status().message());
      LogError("sandbox channel failed", {{"job_id", job->id}, {"error", msg}});
      source_->FinishIfActive(job->id, JobStatus::kFailed, msg).IgnoreError();
      result.error = msg;
      return finish(result);
    }
    channel = std::move(*opened);
    spec.channel_dir = channel->dir();
    spec.env = options_.channel_passthrough_env;
    spec.env["JOB_ID"] = job->id;
    spec.env["API_URL"] = absl::StrCat("unix://", kChannelMountPoint, "/", kApiSocketName);
    spec.env["API_TOKEN_FILE"] = absl::StrCat(kChannelMountPoint, "/", kTokenFileName);
  } else {
    spec.env["API_URL"] = options_.sandbox_api_url;
    spec.env["API_TOKEN"] = token;
  }
  spec.labels = {{kLabelServer, server_id_}, {kLabelJob, job->id}};
  spec.network_mode = options_.network_mode;
  spec.nano_cpus = options_.instance_type.nano_cpus;
  spec.memory_bytes = options_.instance_type.memory_bytes;
  spec.disk_bytes = options_.instance_type.disk_bytes;
  spec.pids_limit = options_.instance_type.pids_limit;
  // The backend's own hard cap is a safety net behind our timeout.
  spec.timeout_ms = absl::ToInt64Milliseconds(options_.job_timeout + absl::Seconds(60));

  {
    std::lock_guard<std::mutex> lock(mu_);
    active_[job->id] = Active{};
  }
  auto sandbox = backend_->CreateSandbox(spec);
  if (!sandbox.ok()) {
    metrics_->IncBackendError("create");
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_.erase(job->id);
    }
    std::string msg = absl::StrCat("Failed to start sandbox: ", sandbox.status().message());
    LogError("sandbox create failed",
             {{"job_id", job->id}, {"error", std::string(sandbox.status().message())}});
    source_->FinishIfActive(job->id, JobStatus::kFailed, msg).IgnoreError();
    result.error = msg;
    return finish(result);
  }
  const std::string sandbox_id = sandbox->id;
  bool cancelled_early = false;
  bool stopping_early = false;
  {
    // Stop() kills the sandboxes it finds here; one registered after that sees stopping_.
    std::lock_guard<std::mutex> lock(mu_);
    active_[job->id].sandbox_id = sandbox_id;
    cancelled_early = active_[job->id].cancelled;
    stopping_early = stopping_;
  }
  source_->SetSandbox(job->id, sandbox_id);
  metrics_->AddSandboxesRunning(1);
  metrics_->IncDispatched();
  metrics_->ObserveDispatchLatency(absl::Now() - task.claimed_at);
  LogInfo("sandbox started", {{"job_id", job->id},
                              {"sandbox", sandbox_id},
                              {"image", spec.image},
                              {"instance_type", options_.instance_type.name}});
  // The job may have been cancelled (or the server stopped) while the sandbox was being created.
  if (cancelled_early || stopping_early) backend_->Kill(sandbox_id, SIGKILL).IgnoreError();

  // Capture the output. A live follow costs the engine CPU for every job, so it starts only when
  // someone reads the job's log; otherwise the log is read once when the sandbox has exited.
  std::unique_ptr<JobLogWriter> log_writer;
  // The real provider keys too: a sealed sandbox holds only placeholders, but nothing the
  // server knows must reach a log.
  std::vector<std::string> secrets = SecretsOf(spec.env);
  for (std::string& key : SecretsOf(options_.passthrough_env)) secrets.push_back(std::move(key));
  if (!token.empty()) secrets.push_back(token);
  if (options_.log_hub != nullptr) {
    auto w = options_.log_hub->OpenWriter(job->id, secrets);
    if (w.ok()) {
      log_writer = std::move(*w);
    } else {
      LogWarn("cannot open job log", {{"job_id", job->id}, {"error", w.status().ToString()}});
    }
  }
  const bool have_log = log_writer != nullptr;
  OutputCapture capture(std::move(log_writer), std::move(secrets), options_.max_output_bytes,
                        stragglers_);
  if (log_streaming_ && have_log) {
    capture.StartFollow(backend_, sandbox_id, /*lazy=*/true);
    capture.EnableDemand(options_.log_hub, job->id);
  }

  // One Wait up to the deadline: cancel and Stop() kill the sandbox from the control thread,
  // which ends it. After a kill of our own, wait in short slices for the exit to show.
  const absl::Time deadline = t0 + options_.job_timeout;
  bool timed_out = false;
  bool stopped = false;
  std::optional<int> exit_code;
  // The backend's last Wait error: the job's failure reason when we lose the sandbox.
  absl::Status wait_error;
  int wait_errors_in_a_row = 0;
  while (true) {
    absl::Duration slice = deadline - absl::Now();
    if (timed_out || stopped) slice = absl::Seconds(1);
    if (slice < absl::ZeroDuration()) slice = absl::ZeroDuration();
    auto waited = backend_->Wait(sandbox_id, slice);
    if (!waited.ok()) {
      metrics_->IncBackendError("wait");
      wait_error = waited.status();
      ++wait_errors_in_a_row;
      LogError("sandbox wait failed", {{"job_id", job->id},
                                       {"attempt", std::to_string(wait_errors_in_a_row)},
                                       {"error", std::string(waited.status().message())}});
      // A backend retries transient failures itself; a few more tries here cover a blip
      // between its retries. NotFound: the sandbox is gone, nothing to wait for.
      if (absl::IsNotFound(wait_error) || wait_errors_in_a_row >= kMaxWaitErrors) break;
      absl::SleepFor(std::max(std::min(slice, absl::Seconds(1)), absl::Milliseconds(200)));
      continue;
    }
    wait_errors_in_a_row = 0;
    wait_error = absl::OkStatus();
    if (waited->exited) {
      exit_code = waited->exit_code;
      break;
    }
    if (stopping() && !stopped) {
      stopped = true;
      backend_->Kill(sandbox_id, SIGKILL).IgnoreError();
      continue;
    }
    if (absl::Now() >= deadline && !timed_out) {
      timed_out = true;
      if (!backend_->Kill(sandbox_id, SIGKILL).ok()) metrics_->IncBackendError("kill");
      continue;
    }
    if (timed_out || stopped) {
      // Killed but not reported exited within a slice: give up waiting.
      if (absl::Now() > deadline + absl::Seconds(10)) break;
    }
  }
  result.exit_code = exit_code;
  capture.SandboxEnded();

  // A follow ends with the sandbox. The log is then read once, skipping what a follow already
  // captured: that is the whole log when nobody followed, or what a broken follow missed. A
  // follow that does not end within the grace period is abandoned (its data is refused from
  // then on) first.
  if (capture.following()) {
    if (!capture.WaitFollow(kFollowGrace)) {
      LogWarn("log follow did not end with the sandbox; reading the log once instead",
              {{"job_id", job->id}});
      capture.Abandon();
    } else if (!capture.follow_status().ok()) {
      metrics_->IncBackendError("logs");
    }
  }
  if (!capture.CatchUp(backend_, sandbox_id).ok()) metrics_->IncBackendError("logs");
  std::string tail;
  capture.TakeOutput(&result, 20, &tail);
  KeepTail(&tail, 4000);

  bool cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled = active_[job->id].cancelled;
  }
  auto final_job = source_->GetJob(job->id);
  if (final_job.ok() && final_job->status == JobStatus::kCancelled) cancelled = true;

  if (cancelled) {
    source_->FinishIfActive(job->id, JobStatus::kCancelled, "").IgnoreError();
    result.error = "Job cancelled";
  } else if (timed_out) {
    std::string msg = absl::StrCat("Job timed out after ", DurationText(options_.job_timeout));
    source_->FinishIfActive(job->id, JobStatus::kFailed, msg).IgnoreError();
    result.error = msg;
  } else if (final_job.ok() && core::IsTerminal(final_job->status)) {
    result.success = final_job->status == JobStatus::kCompleted;
    result.output_snapshot_id = final_job->output_snapshot_id;
    if (!result.success) result.error = final_job->error.value_or("Job failed");
  } else if (stopped || stopping()) {
    // Stop() may have killed the sandbox before this thread noticed.
    std::string msg = "server stopped while the job was running";
    source_->FinishIfActive(job->id, JobStatus::kFailed, msg).IgnoreError();
    result.error = msg;
  } else {
    std::string msg;
    if (exit_code) {
      msg = absl::StrCat("Sandbox exited with code ", *exit_code);
    } else if (!wait_error.ok()) {
      msg = absl::StrCat("Lost contact with the sandbox: ", wait_error.message());
    } else {
      msg = "Sandbox ended without an exit code";
    }
    std::string trimmed(absl::StripTrailingAsciiWhitespace(tail));
    if (!trimmed.empty()) absl::StrAppend(&msg, ": ", trimmed);
    source_->FinishIfActive(job->id, JobStatus::kFailed, msg).IgnoreError();
    result.error = msg;
  }
  if (!result.output_snapshot_id) {
    // Like the original worker: the runner prints "Output snapshot: <id>".
    static const std::regex kOutput("Output snapshot: (\\S+)");
    std::smatch m;
    if (result.success && std::regex_search(result.stdout_text, m, kOutput)) {
      result.output_snapshot_id = m[1].str();
    }
  }

  // The final status is stored: complete the log (its followers then end).
  if (channel != nullptr) capture.AppendLines(channel->TakeNotes());
  capture.CloseLog();

  // Always remove the sandbox.
  absl::Status removed = backend_->Remove(sandbox_id);
  if (!removed.ok() && !absl::IsNotFound(removed)) {
    metrics_->IncBackendError("remove");
    LogWarn("sandbox remove failed",
            {{"sandbox", sandbox_id}, {"error", std::string(removed.message())}});
  }
  // A follow let go usually ends once its sandbox is gone; one that still hangs is detached, so
  // the job ends regardless.
  if (!capture.Release(kFollowReleaseGrace)) {
    LogWarn("log follow still hangs after the sandbox was removed; detached",
            {{"job_id", job->id}, {"sandbox", sandbox_id}});
  }
  metrics_->AddSandboxesRunning(-1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(job->id);
  }
  return finish(result);
}

}  // namespace fastest::server
