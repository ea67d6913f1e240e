// File: server/dispatch/dispatch_fakes.h
//
// In-process fakes for dispatcher and warm-pool tests: a job source with jobs in memory and a
// backend whose sandboxes are scripted threads, so every path runs without an engine.
#ifndef FASTEST_SERVER_DISPATCH_DISPATCH_FAKES_H_
#define FASTEST_SERVER_DISPATCH_DISPATCH_FAKES_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "server/dispatch/dispatcher.h"
#include "server/dispatch/job_source.h"

namespace fastest::server::dispatch_fakes {

using core::JobStatus;

// ---------------------------------------------------------------- fake job source

class FakeJobSource : public JobSource {
 public:
  void AddJob(const std::string& id, JobStatus status = JobStatus::kPending) {
    std::lock_guard<std::mutex> lock(mu_);
    core::Job job;
    job.id = id;
    job.project_id = "p1";
    job.status = status;
    jobs_[id] = Entry{job, false, std::nullopt};
  }
  void SetStatus(const std::string& id, JobStatus status,
                 std::optional<std::string> snapshot = std::nullopt,
                 std::optional<std::string> error = std::nullopt) {
    std::lock_guard<std::mutex> lock(mu_);
    core::Job& job = jobs_.at(id).job;
    if (core::IsTerminal(job.status)) return;  // like the store: terminal is final
    job.status = status;
    if (snapshot) job.output_snapshot_id = snapshot;
    if (error) job.error = error;
  }
  JobStatus Status(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return jobs_.at(id).job.status;
  }
  std::optional<std::string> Error(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return jobs_.at(id).job.error;
  }
  void SetStartedAt(const std::string& id, absl::Time t) {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.at(id).job.started_at = absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
  }
  bool Claimed(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return jobs_.at(id).claimed;
  }
  void SetClaim(const std::string& id, std::optional<std::string> sandbox) {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.at(id).claimed = true;
    jobs_.at(id).sandbox_id = std::move(sandbox);
  }
  int ended() {
    std::lock_guard<std::mutex> lock(mu_);
    return ended_;
  }

  absl::StatusOr<std::optional<core::Job>> ClaimNext(
      const std::optional<std::string>&) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, e] : jobs_) {
      if (e.job.status == JobStatus::kPending && !e.claimed) {
        e.claimed = true;
        return std::optional<core::Job>(e.job);
      }
    }
    return std::optional<core::Job>();
  }
  absl::Status Claim(const std::string& job_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return absl::NotFoundError("no such job");
    if (it->second.job.status != JobStatus::kPending || it->second.claimed) {
      return absl::FailedPreconditionError("not pending");
    }
    it->second.claimed = true;
    return absl::OkStatus();
  }
  absl::Status Release(const std::string& job_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.at(job_id).claimed = false;
    jobs_.at(job_id).sandbox_id.reset();
    return absl::OkStatus();
  }
  absl::StatusOr<core::Job> GetJob(const std::string& job_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return absl::NotFoundError("no such job");
    return it->second.job;
  }
  void SetSandbox(const std::string& job_id, const std::string& sandbox_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.at(job_id).sandbox_id = sandbox_id;
  }
  absl::StatusOr<std::string> TokenForJob(const core::Job& job) override {
    if (!mint_error.ok()) return mint_error;
    return absl::StrCat("tok-", job.id, "-secretvalue");
  }
  // Set before Start(): every TokenForJob fails with it (a store that cannot mint).
  absl::Status mint_error;
  void JobEnded(const std::string& job_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.at(job_id).claimed = false;
    ++ended_;
  }
  absl::StatusOr<bool> FinishIfActive(const std::string& job_id, JobStatus to,
                                      const std::string& error) override {
    std::lock_guard<std::mutex> lock(mu_);
    core::Job& job = jobs_.at(job_id).job;
    if (core::IsTerminal(job.status)) return false;
    job.status = to;
    if (!error.empty()) job.error = error;
    return true;
  }
  absl::StatusOr<std::vector<JobClaim>> ActiveClaims() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<JobClaim> claims;
    for (auto& [id, e] : jobs_) {
      if (e.claimed && !core::IsTerminal(e.job.status)) {
        claims.push_back(JobClaim{e.job, std::string("server-1"), e.sandbox_id});
      }
    }
    return claims;
  }
  bool NeedsPolling() const override { return false; }

 private:
  struct Entry {
    core::Job job;
    bool claimed = false;
    std::optional<std::string> sandbox_id;
  };
  std::mutex mu_;
  std::map<std::string, Entry> jobs_;
  int ended_ = 0;
};

// ---------------------------------------------------------------- fake backend

class FakeBackend;

// What a scripted sandbox can do.
class SandboxControl {
 public:
  SandboxControl(FakeBackend* backend, std::string id, std::string job_id,
                 std::map<std::string, std::string> env = {})
      : backend_(backend), id_(std::move(id)), job_id_(std::move(job_id)), env_(std::move(env)) {}
  const std::string& job_id() const { return job_id_; }
  const std::string& id() const { return id_; }
  // The sandbox's environment (a warm one's runner finds its standby credential in API_TOKEN).
  const std::map<std::string, std::string>& env() const { return env_; }
  void Print(int stream, const std::string& text);
  // Sleeps up to `d`; false when the sandbox was killed meanwhile.
  bool Sleep(absl::Duration d);

 private:
  FakeBackend* backend_;
  std::string id_;
  std::string job_id_;
  std::map<std::string, std::string> env_;
};

// Runs in the sandbox's thread; returns the exit code (ignored when killed: 137).
using SandboxScript = std::function<int(SandboxControl&)>;

class FakeBackend : public core::SandboxBackend {
 public:
  explicit FakeBackend(SandboxScript script) : script_(std::move(script)) {}
  ~FakeBackend() override {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [id, sb] : sandboxes_) sb.killed = true;
      threads.swap(threads_);
    }
    cv_.notify_all();
    for (auto& t : threads) t.join();
  }

  nlohmann::json describe = {{"name", "fake"}, {"log_streaming", true}};
  std::atomic<bool> wait_fails{false};

  absl::StatusOr<nlohmann::json> Describe() override { return describe; }

  absl::StatusOr<core::SandboxInfo> CreateSandbox(const core::SandboxSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::string id = absl::StrCat("sb-", ++next_id_);
    Sandbox& sb = sandboxes_[id];
    sb.spec = spec;
    ++created_;
    ++running_;
    max_running_ = std::max(max_running_, running_);
    ++live_;
    max_live_ = std::max(max_live_, live_);
    std::string job_id = spec.env.count("JOB_ID") ? spec.env.at("JOB_ID") : "";
    threads_.emplace_back([this, id, job_id, env = spec.env] {
      SandboxControl ctl(this, id, job_id, env);
      int code = script_(ctl);
      std::lock_guard<std::mutex> lock(mu_);
      Sandbox& s = sandboxes_.at(id);
      s.exited = true;
      s.exit_code = s.killed ? 137 : code;
      --running_;
      cv_.notify_all();
    });
    return core::SandboxInfo{id, spec.name, "running", spec.labels, std::nullopt};
  }

  absl::StatusOr<core::WaitResult> Wait(const std::string& id, absl::Duration timeout) override {
    if (wait_fails) return absl::UnavailableError("engine unreachable");
    std::unique_lock<std::mutex> lock(mu_);
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end() || it->second.removed) return absl::NotFoundError("no sandbox");
    cv_.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
                 [&] { return it->second.exited; });
    core::WaitResult r;
    r.exited = it->second.exited;
    if (r.exited) r.exit_code = it->second.exit_code;
    return r;
  }

  absl::Status ReadLogs(const std::string& id, const core::LogOptions& options,
                        std::function<bool(int, absl::string_view)> sink) override {
    size_t next = 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      auto it = sandboxes_.find(id);
      if (it == sandboxes_.end()) return absl::NotFoundError("no sandbox");
      while (next < it->second.output.size()) {
        auto chunk = it->second.output[next++];
        lock.unlock();
        bool more = sink(chunk.first, chunk.second);
        lock.lock();
        if (!more) return absl::OkStatus();
      }
      if (!options.follow || it->second.exited || it->second.removed) return absl::OkStatus();
      cv_.wait(lock);
    }
  }

  absl::Status Kill(const std::string& id, int) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return absl::NotFoundError("no sandbox");
    it->second.killed = true;
    cv_.notify_all();
    return absl::OkStatus();
  }

  absl::Status Remove(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end() || it->second.removed) return absl::NotFoundError("no sandbox");
    it->second.killed = true;
    it->second.removed = true;
    ++removed_;
    --live_;
    cv_.notify_all();
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<core::SandboxInfo>> List(
      const std::map<std::string, std::string>& labels) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<core::SandboxInfo> out;
    for (auto& [id, sb] : sandboxes_) {
      if (sb.removed) continue;
      bool match = true;
      for (auto& [k, v] : labels) {
        auto l = sb.spec.labels.find(k);
        if (l == sb.spec.labels.end() || l->second != v) match = false;
      }
      if (match) {
        out.push_back(core::SandboxInfo{id, sb.spec.name, sb.exited ? "exited" : "running",
                                        sb.spec.labels, std::nullopt});
      }
    }
    return out;
  }

  const std::string& name() const override { return name_; }

  int created() {
    std::lock_guard<std::mutex> lock(mu_);
    return created_;
  }
  int removed() {
    std::lock_guard<std::mutex> lock(mu_);
    return removed_;
  }
  int max_running() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_running_;
  }
  // Sandbox threads still running.
  int running() {
    std::lock_guard<std::mutex> lock(mu_);
    return running_;
  }
  // Sandboxes created and not removed (what an engine would list), now and at most.
  int live() {
    std::lock_guard<std::mutex> lock(mu_);
    return live_;
  }
  int max_live() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_live_;
  }
  core::SandboxSpec spec_of(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return sandboxes_.at(id).spec;
  }

 private:
  friend class SandboxControl;
  struct Sandbox {
    core::SandboxSpec spec;
    std::vector<std::pair<int, std::string>> output;
    bool killed = false;
    bool exited = false;
    bool removed = false;
    int exit_code = 0;
  };

  SandboxScript script_;
  std::string name_ = "fake";
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Sandbox> sandboxes_;
  std::vector<std::thread> threads_;
  int next_id_ = 0;
  int created_ = 0;
  int removed_ = 0;
  int running_ = 0;
  int max_running_ = 0;
  int live_ = 0;
  int max_live_ = 0;
};

inline void SandboxControl::Print(int stream, const std::string& text) {
  std::lock_guard<std::mutex> lock(backend_->mu_);
  backend_->sandboxes_.at(id_).output.emplace_back(stream, text);
  backend_->cv_.notify_all();
}

inline bool SandboxControl::Sleep(absl::Duration d) {
  std::unique_lock<std::mutex> lock(backend_->mu_);
  auto& sb = backend_->sandboxes_.at(id_);
  backend_->cv_.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(d)),
                         [&] { return sb.killed; });
  return !sb.killed;
}

// ---------------------------------------------------------------- helpers

// Collects RunResults delivered to DoneCallbacks.
class Results {
 public:
  Dispatcher::DoneCallback Callback() {
    return [this](const RunResult& r) {
      std::lock_guard<std::mutex> lock(mu_);
      results_[r.job_id] = r;
      cv_.notify_all();
    };
  }
  // The result of `job_id`, waiting up to 10 s.
  std::optional<RunResult> Wait(const std::string& job_id) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return results_.count(job_id) > 0; });
    auto it = results_.find(job_id);
    if (it == results_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, RunResult> results_;
};

// Runs `job_id` on `d` and waits up to 10 s for its result (nullopt: refused, or no result).
inline std::optional<RunResult> RunAndWait(Dispatcher& d, const std::string& job_id) {
  auto results = std::make_shared<Results>();  // outlives a late callback
  Dispatcher::DoneCallback done = [results](const RunResult& r) { results->Callback()(r); };
  if (!d.RunJob(job_id, std::move(done)).ok()) return std::nullopt;
  return results->Wait(job_id);
}

inline DispatcherOptions Options() {
  DispatcherOptions o;
  o.max_instances = 4;
  o.job_timeout = absl::Seconds(10);
  o.sandbox_api_url = "http://127.0.0.1:1";
  return o;
}

// The runner's happy path: running, some output, completed.
inline int CompletingRunner(FakeJobSource* source, SandboxControl& ctl) {
  source->SetStatus(ctl.job_id(), JobStatus::kRunning);
  ctl.Print(1, "restoring workspace\n");
  ctl.Print(2, "agent: thinking\n");
  ctl.Print(1, "Output snapshot: snap-" + ctl.job_id() + "\n");
  source->SetStatus(ctl.job_id(), JobStatus::kCompleted);
  return 0;
}

// The runner marks the job running, then works until its sandbox is killed.
inline SandboxScript RunsUntilKilled(FakeJobSource* source, absl::Notification* started = nullptr) {
  return [source, started](SandboxControl& ctl) {
    source->SetStatus(ctl.job_id(), JobStatus::kRunning);
    if (started != nullptr && !started->HasBeenNotified()) started->Notify();
    ctl.Sleep(absl::Seconds(30));
    return 0;
  };
}

}  // namespace fastest::server::dispatch_fakes

#endif  // FASTEST_SERVER_DISPATCH_DISPATCH_FAKES_H_
