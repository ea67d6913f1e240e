// File: server/dispatch/warm_pool.h
//
// WarmPool: sandboxes created and started ahead of demand, each waiting for exactly one job.
//
// A warm sandbox runs the runner in standby (FASTEST_STANDBY=1): it boots the agent server, then
// long-polls GET /v1/standby/assignment (server/api/standby_routes.h) with a standby credential —
// 192 random bits from the CSPRNG, given to the sandbox the way a job's token is (the channel's
// token file, or API_TOKEN without a channel) and able to fetch that sandbox's assignment only:
// no store token, so every other route answers it 401. The job's own token arrives in the
// assignment. Once the runner fetched it the credential is forgotten (a second fetch: 401).
//
//   - Ready = its runner has polled once (standing by). Take() hands out ready sandboxes only;
//     none ready is a miss (the caller uses the cold path).
//   - Slots: warm sandboxes count toward max_instances. WarmSlots (the dispatcher) grants a slot
//     for each new one only while no job waits and a slot is free; a cold job that finds no room
//     calls EvictOne(). Take() gives the slot back (the job's own slot now holds the sandbox).
//   - Refill: a maintenance thread keeps `size` idle sandboxes (booting or ready), creating one
//     at a time, after each take and whenever Kick() says a slot came free.
//   - Retirement: idle longer than `ttl` (recycled: removed and replaced), booting longer than
//     `boot_timeout` or silent (no poll) for `poll_grace` (dead), evicted for a cold job, or
//     drained by Stop(). A waiting runner gets 410 (kRetired) and exits; the sandbox is removed.
//   - Labels: fastest.server_id and fastest.warm=<name>. After a server crash the dispatcher's
//     Recover() removes idle ones and re-adopts one whose name is recorded as a job's sandbox.
//
// Thread-safe. Backend calls run on the maintenance thread, or on the caller's thread for
// EvictOne(); never under the pool's lock.
#ifndef FASTEST_SERVER_DISPATCH_WARM_POOL_H_
#define FASTEST_SERVER_DISPATCH_WARM_POOL_H_

#include <condition_variable>
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
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/plugin/sandbox_backend.h"
#include "server/channel/sandbox_channel.h"
#include "server/metrics/metrics.h"

namespace fastest::server {

// Label of a warm sandbox: its name (also its channel's key).
inline constexpr char kWarmLabel[] = "fastest.warm";

// Capacity for warm sandboxes, granted by the dispatcher.
class WarmSlots {
 public:
  virtual ~WarmSlots() = default;
  // A slot for one more warm sandbox: false while jobs wait or every slot is taken.
  virtual bool TryReserveWarmSlot() = 0;
  // A warm sandbox is gone (removed, or given to a job that holds its own slot).
  virtual void ReleaseWarmSlot() = 0;
};

struct WarmPoolOptions {
  int size = 0;                                    // idle sandboxes to keep
  absl::Duration ttl = absl::Minutes(10);          // idle longer: recycled
  // After a take, the replacement starts this much later: its boot (seconds of CPU for the
  // agent) then does not compete with the job that just took a sandbox on a small machine.
  absl::Duration refill_delay = absl::ZeroDuration();
  absl::Duration boot_timeout = absl::Minutes(2);  // started, never polled: dead
  absl::Duration poll_grace = absl::Seconds(90);   // ready, silent this long: dead
  absl::Duration max_poll_wait = absl::Seconds(25);
  absl::Duration tick = absl::Milliseconds(200);
  absl::Duration create_backoff = absl::Seconds(5);  // after a failed create
  // What the sandboxes are made of (backend, image, instance type, model settings): Take()
  // hands out only sandboxes made with the key it is given.
  std::string key;
};

// The answer to one standby poll.
struct StandbyAnswer {
  enum class Kind {
    kAssigned,  // job_id and api_token set
    kNotYet,    // poll again
    kRetired,   // this sandbox gets no job: exit
    kUnknown,   // not a (current) standby credential
  };
  Kind kind = Kind::kUnknown;
  std::string job_id;
  std::string api_token;
};
using StandbyCallback = std::function<void(StandbyAnswer)>;

// A ready warm sandbox, given to one job by Take().
struct WarmSandbox {
  std::string name;
  std::string sandbox_id;
  std::unique_ptr<SandboxChannel> channel;  // null for backends without channel mounts
  std::string credential;                    // the standby credential (a secret)
  absl::Time created;
};

class WarmPool {
 public:
  // The spec of a warm sandbox named `name` whose runner holds `credential`; opens its channel
  // into *channel when the backend mounts one.
  using SpecFactory = std::function<absl::StatusOr<core::SandboxSpec>(
      const std::string& name, const std::string& credential,
      std::unique_ptr<SandboxChannel>* channel)>;

  // `backend`, `metrics` and `slots` must outlive the pool.
  WarmPool(core::SandboxBackend* backend, Metrics* metrics, WarmSlots* slots,
           WarmPoolOptions options, SpecFactory factory);
  ~WarmPool();  // Stop()
  WarmPool(const WarmPool&) = delete;
  WarmPool& operator=(const WarmPool&) = delete;

  // Starts the maintenance thread (it fills the pool).
  void Start();
  // Drain: no more sandboxes; waiting runners get kRetired; idle sandboxes are removed. Taken
  // ones belong to their jobs.
  void Stop();
  // A slot may have come free: refill now.
  void Kick();

  // A ready sandbox of `key` for a job (counted as a take), or nullopt (a miss).
  std::optional<WarmSandbox> Take(const std::string& key);
  // Gives the taken sandbox its job: the channel now accepts `token` only, and the runner's
  // (current or next) poll answers {job_id, token}. Call after the job's sandbox is recorded.
  absl::Status Assign(WarmSandbox& sandbox, const std::string& job_id, const std::string& token);
  // The job of a taken sandbox ended: its credential is forgotten if its runner never fetched.
  void Forget(const std::string& name);
  // Removes one idle sandbox to make room for a cold job (blocking backend calls). False when
  // none can be removed now (all still being created).
  bool EvictOne();

  // One standby poll: `done` runs once, at once or within `wait` (capped at max_poll_wait), on
  // the calling thread or the maintenance thread.
  void AwaitAssignment(absl::string_view credential, absl::Duration wait, StandbyCallback done);

  int ready() const;
  int booting() const;
  const WarmPoolOptions& options() const { return options_; }

 private:
  struct Entry {
    std::string name;
    std::string key;
    std::string credential;
    std::string sandbox_id;
    std::unique_ptr<SandboxChannel> channel;
    absl::Time created_at;
    bool started = false;  // CreateSandbox returned
    std::optional<absl::Time> first_poll;
    absl::Time last_poll;
    bool taken = false;
    std::optional<StandbyAnswer> assignment;
    StandbyCallback waiter;
    absl::Time waiter_deadline;
  };
  using Entries = std::map<std::string, std::shared_ptr<Entry>>;  // by credential hash

  void Loop();
  // Creates one sandbox (slot already reserved); false when it failed.
  bool CreateOne();
  // Removes `entry` (already out of entries_): answers its waiter, kills and removes it.
  void Retire(const std::shared_ptr<Entry>& entry, absl::string_view reason);
  void UpdateGauges();  // mu_ held
  bool IsIdle(const Entry& e) const { return !e.taken; }
  bool IsReady(const Entry& e) const { return !e.taken && e.started && e.first_poll.has_value(); }

  core::SandboxBackend* backend_;
  Metrics* metrics_;
  WarmSlots* slots_;
  WarmPoolOptions options_;
  SpecFactory factory_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Entries entries_;
  bool kicked_ = false;
  absl::Time refill_not_before_ = absl::InfinitePast();  // guarded by mu_
  bool stopping_ = false;
  bool started_ = false;
  std::thread thread_;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_DISPATCH_WARM_POOL_H_
