// File: server/dispatch/dispatcher.h
//
// Dispatcher: claims pending jobs and runs each in a sandbox through the loaded backend plugin.
//
//   - Claims are atomic in the store (UPDATE ... WHERE status='pending' AND claimed_by IS NULL),
//     so a job is dispatched exactly once however many /run-next calls race.
//   - At most `max_instances` sandboxes run at once; further claimed jobs wait in a FIFO queue.
//   - auto_dispatch: a feeder thread claims pending jobs whenever there is a free slot. It sleeps
//     on a condition variable and wakes on NotifyJobCreated() / a finished job (plus a slow
//     30 s safety tick for jobs inserted by another process; 2 s in remote mode, where the
//     external API cannot notify us) — no tight polling.
//   - Each job: mint a token limited to the job's project (deleted when the job ends), create
//     the sandbox (image, runner command, env API_URL/API_TOKEN/JOB_ID + pass-through provider
//     keys, labels fastest.server_id/fastest.job_id, resources of the instance type), wait with
//     the per-job timeout (one Wait up to the deadline; cancel and Stop() end it by killing the
//     sandbox), then always remove the sandbox.
//   - Output: captured through the backend into the JobLogHub. A live follow (ReadLogs
//     follow=true) runs only once someone reads the job's log (the hub's demand handler: it
//     reads what exists so far, then follows, skipping those bytes); at the sandbox's exit the
//     log is read once, skipping what was captured (the whole log when nobody read; backends
//     without "log_streaming" are only read then). The hub (`<data_dir>/logs/<job_id>.log`, the
//     job's token and *_API_KEY values redacted) serves GET /v1/jobs/:jobId/logs. The log
//     is complete and its writer closed only after the job's final status is stored.
//   - Outcomes: the runner's terminal status wins. Timeout -> failed "Job timed out after <d>";
//     cancel (NotifyJobCancelled after the API cancelled the job) -> sandbox killed, job stays
//     cancelled; sandbox exit without a terminal status -> failed
//     "Sandbox exited with code N: <last log lines>"; the backend's Wait failing (3 times in a
//     row, or NotFound) -> failed "Lost contact with the sandbox: <backend error>: <last log
//     lines>"; Stop() -> failed "server stopped while the job was running"; queued jobs are
//     released (back to unclaimed pending).
//   - A log follow that does not end within 5 s of the sandbox's exit is abandoned (the log is
//     read once instead); if it still hangs after the sandbox was removed its thread is detached
//     (it shares only reference-counted state), so the job always reaches its final state.
//   - Warm pool (options.warm_pool > 0, warm_pool.h): sandboxes started ahead of demand whose
//     runner stands by with the agent booted. A job takes a ready one when there is one (its
//     sandbox id is recorded, then the job and its token are handed over), otherwise the cold
//     path above; either way one sandbox serves one job and is removed after it. Warm sandboxes
//     count toward max_instances; a cold job with no free slot evicts an idle one first, and
//     the pool refills only while no job waits. Stop() drains it.
//   - Recover() (before the server answers HTTP; Start() calls it otherwise) re-adopts the
//     sandboxes labelled with this server id whose job is still active: waiting, timeout (from the
//     job's started_at), cancel, log capture (resumed at the log's recorded position) and clean-up
//     go on as if the server had not stopped; sealed sandboxes get their channel re-bound in
//     place (a warm sandbox that had been given a job is found through the job's recorded sandbox
//     id). Other sandboxes, idle warm ones included, are removed. Claimed jobs without a sandbox: running -> failed "The
//     job's sandbox was gone when the server restarted ..."; never started -> released.
//
// Backend calls block, so they run only on the dispatcher's own threads (max_instances workers, a
// feeder and a control thread for kills), never on HTTP io threads. All public methods are
// thread-safe and non-blocking except Start()/Stop().
#ifndef FASTEST_SERVER_DISPATCH_DISPATCHER_H_
#define FASTEST_SERVER_DISPATCH_DISPATCHER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/plugin/sandbox_backend.h"
#include "server/channel/sandbox_channel.h"
#include "server/dispatch/instance_types.h"
#include "server/dispatch/job_log_hub.h"
#include "server/dispatch/job_outcome.h"
#include "server/dispatch/stragglers.h"
#include "server/dispatch/warm_pool.h"
#include "server/metrics/metrics.h"
#include "server/dispatch/job_source.h"
#include "server/store/store.h"

namespace fastest::server {

// The worker's RunResult (PROTOCOLS §3.1) plus the job's final status.
struct RunResult {
  bool success = false;
  std::string job_id;
  std::optional<std::string> output_snapshot_id;
  std::optional<std::string> error;
  int64_t duration_ms = 0;
  std::string stdout_text;
  std::string stderr_text;
  std::string status;  // final job status name
  std::optional<int> exit_code;
};

struct DispatcherOptions {
  std::string image = "fastest/sandbox:0.1.0";
  std::vector<std::string> runner_command = {"fastest-runner"};
  std::string sandbox_api_url;  // API_URL given to the sandbox
  std::string network_mode;     // "" = backend default
  InstanceType instance_type = *FindInstanceType("standard-1");
  int max_instances = 10;
  absl::Duration job_timeout = absl::Minutes(30);
  bool auto_dispatch = false;
  // Extra env for every sandbox (provider keys, PROVIDER, MODEL, ...). Values never logged.
  std::map<std::string, std::string> passthrough_env;
  // Cap of stdout/stderr kept in a RunResult (tail).
  size_t max_output_bytes = 256 * 1024;
  // Where sandbox output is captured (not owned; null = not captured, only the RunResult keeps
  // a tail).
  JobLogHub* log_hub = nullptr;
  // Per-sandbox channels (not owned). Set, and the backend describes "channel_mount": the runner
  // reaches the API through the sandbox's api.sock and reads its token from a file there; no
  // token in any environment. Null: API_URL/API_TOKEN in the environment as before.
  ChannelHub* channels = nullptr;
  // passthrough_env for sandboxes with a channel: provider keys replaced by a placeholder (the
  // channel's model gateway adds the real one).
  std::map<std::string, std::string> channel_passthrough_env;
  // Warm sandboxes kept ready (0 = none: every job starts its sandbox cold) and how long one may
  // wait for a job before it is recycled. Not for the cloudflare backend (its bridge keeps its
  // own warm pool): refused there with a log line.
  int warm_pool = 0;
  absl::Duration warm_pool_ttl = absl::Minutes(10);
  absl::Duration warm_pool_refill_delay = absl::ZeroDuration();
  // Tests: the pool's timings (size and ttl above win).
  std::optional<WarmPoolOptions> warm_pool_options;
};

class Dispatcher : private WarmSlots {
 public:
  using DoneCallback = std::function<void(const RunResult&)>;

  // `server_id` labels sandboxes (Store::server_id() in embedded mode).
  Dispatcher(JobSource* source, std::string server_id, core::SandboxBackend* backend,
             Metrics* metrics, DispatcherOptions options);
  ~Dispatcher();  // Stop()

  // API_URL for sandboxes; call before Start() (e.g. once the HTTP port is known).
  void SetSandboxApiUrl(std::string url) { options_.sandbox_api_url = std::move(url); }

  // Re-adopts the sandboxes a previous run of this server left (see file comment), fails jobs
  // whose sandbox is gone and re-queues claimed jobs that never started. Starts nothing: call it
  // before serving HTTP, so no runner reaches the API before its job is known again. Start()
  // calls it when it was not called.
  absl::Status Recover();
  // Recovers (if not done) and starts the threads, supervising re-adopted sandboxes. Until then
  // RunNext/RunJob answer Unavailable.
  absl::Status Start();
  // Kills running sandboxes, fails their jobs, releases queued claims, joins threads.
  void Stop();

  // Claims the oldest pending job (of `owner_user_id`'s projects if set) and queues it; `done`
  // runs when it finished. Returns the job id, or nullopt when nothing is pending.
  absl::StatusOr<std::optional<std::string>> RunNext(std::optional<std::string> owner_user_id,
                                                     DoneCallback done);
  // Claims one job. FailedPrecondition if it is not pending or already claimed; NotFound.
  absl::Status RunJob(const std::string& job_id, DoneCallback done);

  // Wakes the auto-dispatch feeder.
  void NotifyJobCreated();
  // The API cancelled this job: kill its sandbox if it runs (asynchronously).
  void NotifyJobCancelled(const std::string& job_id);

  // One standby poll of a warm sandbox's runner (GET /v1/standby/assignment): kUnknown
  // without a pool.
  void AwaitStandbyAssignment(absl::string_view credential, absl::Duration wait,
                              StandbyCallback done);
  // Ready and booting warm sandboxes (0 without a pool).
  int warm_ready() const;
  int warm_booting() const;

  int running() const;
  int queued() const;
  const std::string& server_id() const { return server_id_; }

 private:
  struct Task {
    std::string job_id;
    absl::Time claimed_at;
    DoneCallback done;
  };
  struct Active {
    std::string sandbox_id;
    bool cancelled = false;
  };
  // A started sandbox the dispatcher watches until it ends.
  struct Supervised {
    std::string job_id;
    std::string sandbox_id;
    absl::Time deadline;               // the job's timeout, from its real start
    std::vector<std::string> secrets;  // kept out of the log
    std::unique_ptr<SandboxChannel> channel;
    bool adopted = false;  // found running at start-up (the store already knows the sandbox)
    bool warm = false;     // a warm sandbox handed this job (standing by before it)
    std::string channel_key;  // its channel's directory name (the sandbox's name)
    // Output per stream already in the job's log (adopted sandboxes).
    uint64_t captured_stdout = 0;
    uint64_t captured_stderr = 0;
  };
  struct SandboxExit {
    std::optional<int> exit_code;
    bool timed_out = false;
    bool stopped = false;
    absl::Status wait_error;  // the backend's last Wait error
  };

  void Enqueue(Task task);
  void WorkerLoop();
  void FeederLoop();
  void ControlLoop();
  void PostControl(std::function<void()> fn);
  RunResult RunTask(const Task& task);
  // The job on a ready warm sandbox: recorded, handed over, then supervised like a cold one.
  // nullopt when its runner never started the job (the sandbox died standing by, or the
  // hand-over failed): the caller runs it cold. *dispatched: the hand-over was counted.
  std::optional<RunResult> RunOnWarmSandbox(const Task& task, const core::Job& job,
                                            const std::string& token, WarmSandbox warm,
                                            absl::Time t0, bool* dispatched);
  void StartLocked();
  // The sandbox for a job: its spec (opening its channel when the backend mounts one).
  absl::StatusOr<core::SandboxSpec> BuildSandboxSpec(const core::Job& job,
                                                     const std::string& token,
                                                     std::unique_ptr<SandboxChannel>* channel);
  // A sandbox named `name` whose runner holds `token`: a job's (job_id set) or a standby
  // credential (job_id empty: a warm sandbox).
  absl::StatusOr<core::SandboxSpec> SpecFor(const std::string& name, const std::string& job_id,
                                            const std::string& token,
                                            std::unique_ptr<SandboxChannel>* channel);
  // What a sandbox is made of (backend, image, instance type, model settings): the pool key.
  std::string PoolKey() const;
  // Before a cold sandbox starts: removes idle warm ones until running + warm fits max_running_.
  void MakeRoomForColdSandbox();
  bool TryReserveWarmSlot() override;
  void ReleaseWarmSlot() override;
  // Gets a started sandbox for this job: the one place a sandbox comes into being.
  absl::StatusOr<core::SandboxInfo> StartSandboxForJob(const core::SandboxSpec& spec);
  // Waits until the sandbox exits, killing it at the deadline or on Stop().
  SandboxExit WaitForExit(const std::string& job_id, const std::string& sandbox_id,
                          absl::Time deadline);
  // Captures the output, waits for the exit, stores the outcome, removes the sandbox.
  // Watches the sandbox to its end and settles the job (job_outcome.h). For a warm sandbox
  // whose runner never started the job, nothing is settled and *run_cold is set.
  RunResult SuperviseSandbox(Supervised run, RunResult result, bool* run_cold = nullptr);
  JobOutcome DecideFromStore(const std::string& job_id, JobObservation* seen);
  RunResult FinishTask(RunResult r, absl::Time t0);
  // A sandbox of a still-active job found at start-up, to supervise as if never let go.
  absl::StatusOr<Supervised> Adopt(const core::Job& job, const core::SandboxInfo& sandbox,
                                   const std::string& channel_key);
  bool stopping() const;
  bool accepting() const;

  JobSource* source_;
  core::SandboxBackend* backend_;
  Metrics* metrics_;
  DispatcherOptions options_;
  std::string server_id_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable feeder_cv_;
  std::condition_variable control_cv_;
  std::condition_variable capacity_cv_;  // a warm slot was given back
  std::deque<Task> queue_;
  std::deque<std::function<void()>> control_;
  std::map<std::string, Active> active_;  // job id -> sandbox
  int running_ = 0;
  int warm_slots_ = 0;  // warm sandboxes being made or idle (they count toward max_running_)
  bool feeder_wake_ = false;
  bool stopping_ = false;
  bool started_ = false;
  bool recovered_ = false;
  std::vector<Supervised> adopted_;  // found by Recover(), supervised from Start()
  bool log_streaming_ = true;  // the backend's capabilities
  // Sandboxes at once: max_instances, or less when the backend caps max_parallel_sandboxes.
  int max_running_ = 1;
  bool channel_mount_ = false;  // the backend's Describe()["channel_mount"]
  std::vector<std::thread> threads_;
  // Log follow threads let go because they did not end (see OutputCapture).
  std::shared_ptr<Stragglers> stragglers_;
  std::unique_ptr<WarmPool> pool_;  // null: no warm pool
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_DISPATCH_DISPATCHER_H_
