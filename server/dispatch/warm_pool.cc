#include "server/dispatch/warm_pool.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/crypto/secure_random.h"
#include "core/snapshot/sha256.h"
#include "server/util/log.h"

namespace fastest::server {
namespace {

constexpr char kNameAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";

std::chrono::milliseconds Millis(absl::Duration d) {
  return std::chrono::milliseconds(std::max<int64_t>(0, absl::ToInt64Milliseconds(d)));
}

}  // namespace

WarmPool::WarmPool(core::SandboxBackend* backend, Metrics* metrics, WarmSlots* slots,
                   WarmPoolOptions options, SpecFactory factory)
    : backend_(backend),
      metrics_(metrics),
      slots_(slots),
      options_(std::move(options)),
      factory_(std::move(factory)) {}

WarmPool::~WarmPool() { Stop(); }

void WarmPool::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  UpdateGauges();
  thread_ = std::thread([this] { Loop(); });
}

void WarmPool::Stop() {
  Entries drained;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  // The maintenance thread may be creating one: it sees stopping_ and removes it itself.
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (IsIdle(*it->second)) {
        drained.insert(*it);
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
    UpdateGauges();
  }
  for (auto& [hash, entry] : drained) Retire(entry, "drain");
  if (!drained.empty()) {
    LogInfo("warm pool drained", {{"removed", std::to_string(drained.size())}});
  }
}

void WarmPool::Kick() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

int WarmPool::ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& [hash, e] : entries_) n += IsReady(*e) ? 1 : 0;
  return n;
}

int WarmPool::booting() const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& [hash, e] : entries_) n += IsIdle(*e) && !IsReady(*e) ? 1 : 0;
  return n;
}

void WarmPool::UpdateGauges() {
  int ready = 0, booting = 0;
  for (const auto& [hash, e] : entries_) {
    if (IsReady(*e)) {
      ++ready;
    } else if (IsIdle(*e)) {
      ++booting;
    }
  }
  metrics_->SetWarmPool(ready, booting);
}

std::optional<WarmSandbox> WarmPool::Take(const std::string& key) {
  std::shared_ptr<Entry> best;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      for (auto& [hash, e] : entries_) {
        if (!IsReady(*e) || e->key != key) continue;
        // A runner waiting right now gets its job without a poll round trip.
        if (best == nullptr || (e->waiter && !best->waiter)) best = e;
      }
    }
    if (best == nullptr) {
      metrics_->IncWarmMiss();
      return std::nullopt;
    }
    best->taken = true;
    refill_not_before_ = absl::Now() + options_.refill_delay;
    UpdateGauges();
  }
  metrics_->IncWarmTake();
  // The job's slot holds the sandbox now; a replacement may be made.
  slots_->ReleaseWarmSlot();
  Kick();
  WarmSandbox out;
  out.name = best->name;
  out.sandbox_id = best->sandbox_id;
  out.channel = std::move(best->channel);
  out.credential = best->credential;
  out.created = best->created_at;
  return out;
}

absl::Status WarmPool::Assign(WarmSandbox& sandbox, const std::string& job_id,
                              const std::string& token) {
  // The channel first: the runner sends the job's token as soon as it has the assignment.
  if (sandbox.channel != nullptr) {
    if (absl::Status s = sandbox.channel->SwitchToken(token); !s.ok()) return s;
  }
  StandbyCallback waiter;
  StandbyAnswer answer;
  answer.kind = StandbyAnswer::Kind::kAssigned;
  answer.job_id = job_id;
  answer.api_token = token;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(core::Sha256Hex(sandbox.credential));
    if (it == entries_.end()) return absl::NotFoundError("warm sandbox no longer known");
    if (it->second->waiter) {
      waiter = std::move(it->second->waiter);
      entries_.erase(it);  // fetched: the credential is spent
    } else {
      it->second->assignment = answer;  // for its next poll
    }
  }
  if (waiter) waiter(std::move(answer));
  return absl::OkStatus();
}

void WarmPool::Forget(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->second->name == name) {
      entries_.erase(it);
      return;
    }
  }
}

bool WarmPool::EvictOne() {
  std::shared_ptr<Entry> victim;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The least useful first: still booting before ready, then the youngest.
    for (auto& [hash, e] : entries_) {
      if (!IsIdle(*e) || !e->started) continue;
      if (victim == nullptr || (IsReady(*victim) && !IsReady(*e)) ||
          (IsReady(*victim) == IsReady(*e) && e->created_at > victim->created_at)) {
        victim = e;
      }
    }
    if (victim == nullptr) return false;
    entries_.erase(core::Sha256Hex(victim->credential));
    UpdateGauges();
  }
  Retire(victim, "evicted");
  return true;
}

void WarmPool::AwaitAssignment(absl::string_view credential, absl::Duration wait,
                               StandbyCallback done) {
  const std::string hash = core::Sha256Hex(credential);
  StandbyCallback previous;
  StandbyAnswer now;
  bool answer_now = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(hash);
    if (it == entries_.end()) {
      now.kind = StandbyAnswer::Kind::kUnknown;
    } else if (stopping_) {
      now.kind = StandbyAnswer::Kind::kRetired;
    } else {
      Entry& e = *it->second;
      const absl::Time t = absl::Now();
      e.last_poll = t;
      if (!e.first_poll) {
        e.first_poll = t;
        metrics_->ObserveWarmBoot(t - e.created_at);
        LogInfo("warm sandbox standing by",
                {{"sandbox", e.name},
                 {"boot_ms", std::to_string(absl::ToInt64Milliseconds(t - e.created_at))}});
        UpdateGauges();
      }
      if (e.assignment) {
        now = *e.assignment;
        entries_.erase(it);  // fetched: the credential is spent
      } else {
        previous = std::move(e.waiter);  // one poll at a time: the older one ends
        e.waiter = std::move(done);
        e.waiter_deadline = t + std::min(wait, options_.max_poll_wait);
        answer_now = false;
      }
    }
  }
  cv_.notify_all();
  if (previous) previous(StandbyAnswer{StandbyAnswer::Kind::kNotYet, "", ""});
  if (answer_now) done(std::move(now));
}

void WarmPool::Retire(const std::shared_ptr<Entry>& entry, absl::string_view reason) {
  if (entry->waiter) {
    StandbyCallback waiter = std::move(entry->waiter);
    waiter(StandbyAnswer{StandbyAnswer::Kind::kRetired, "", ""});
  }
  if (!entry->sandbox_id.empty()) {
    backend_->Kill(entry->sandbox_id, SIGKILL).IgnoreError();
    absl::Status removed = backend_->Remove(entry->sandbox_id);
    if (!removed.ok() && !absl::IsNotFound(removed)) {
      metrics_->IncBackendError("remove");
      LogWarn("warm sandbox remove failed",
              {{"sandbox", entry->name}, {"error", std::string(removed.message())}});
    }
  }
  entry->channel.reset();
  metrics_->IncWarmRetired(reason);
  LogInfo("warm sandbox retired", {{"sandbox", entry->name}, {"reason", std::string(reason)}});
  slots_->ReleaseWarmSlot();
  Kick();
}

bool WarmPool::CreateOne() {
  auto entry = std::make_shared<Entry>();
  entry->name = absl::StrCat("fastest-warm-", core::SecureRandomString(kNameAlphabet, 16));
  entry->key = options_.key;
  entry->credential = absl::StrCat("fst_standby_", core::SecureRandomHex(24));
  entry->created_at = absl::Now();
  const std::string hash = core::Sha256Hex(entry->credential);
  {
    std::lock_guard<std::mutex> lock(mu_);
    entries_[hash] = entry;
    UpdateGauges();
  }
  auto fail = [&](absl::string_view what, const absl::Status& s) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      entries_.erase(hash);
      UpdateGauges();
    }
    entry->channel.reset();
    slots_->ReleaseWarmSlot();
    LogError(std::string(what), {{"sandbox", entry->name}, {"error", s.ToString()}});
    return false;
  };
  std::unique_ptr<SandboxChannel> channel;
  absl::StatusOr<core::SandboxSpec> spec = factory_(entry->name, entry->credential, &channel);
  if (!spec.ok()) return fail("warm sandbox spec failed", spec.status());
  entry->channel = std::move(channel);
  absl::StatusOr<core::SandboxInfo> info = backend_->CreateSandbox(*spec);
  if (!info.ok()) {
    metrics_->IncBackendError("create");
    return fail("warm sandbox create failed", info.status());
  }
  bool drop = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    entry->sandbox_id = info->id;
    entry->started = true;
    // Draining (or evicted while it was made): it goes at once.
    if (stopping_) {
      entries_.erase(hash);
      drop = true;
    }
    UpdateGauges();
  }
  if (drop) {
    Retire(entry, "drain");
    return true;
  }
  LogInfo("warm sandbox started", {{"sandbox", entry->name}, {"id", info->id}});
  return true;
}

void WarmPool::Loop() {
  absl::Time next_create = absl::InfinitePast();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    // Wake at the tick, a kick, or the earliest poll deadline.
    absl::Time wake = absl::Now() + options_.tick;
    for (const auto& [hash, e] : entries_) {
      if (e->waiter) wake = std::min(wake, e->waiter_deadline);
    }
    cv_.wait_for(lock, Millis(wake - absl::Now()), [&] { return stopping_ || kicked_; });
    kicked_ = false;
    if (stopping_) break;
    const absl::Time now = absl::Now();
    std::vector<StandbyCallback> expired;
    std::vector<std::pair<std::shared_ptr<Entry>, std::string>> retire;
    int idle = 0;
    for (auto it = entries_.begin(); it != entries_.end();) {
      Entry& e = *it->second;
      if (e.waiter && now >= e.waiter_deadline) expired.push_back(std::move(e.waiter));
      std::string reason;
      if (IsIdle(e) && e.started) {
        if (now - e.created_at > options_.ttl) {
          reason = "ttl";
        } else if (!e.first_poll && now - e.created_at > options_.boot_timeout) {
          reason = "dead";
        } else if (e.first_poll && !e.waiter && now - e.last_poll > options_.poll_grace) {
          reason = "dead";
        }
      }
      if (!reason.empty()) {
        retire.emplace_back(it->second, reason);
        it = entries_.erase(it);
        continue;
      }
      if (IsIdle(e)) ++idle;
      ++it;
    }
    if (!retire.empty()) UpdateGauges();
    const absl::Time refill_not_before = refill_not_before_;
    lock.unlock();
    for (StandbyCallback& waiter : expired) waiter(StandbyAnswer{StandbyAnswer::Kind::kNotYet, "", ""});
    for (auto& [entry, reason] : retire) Retire(entry, reason);
    // Refill, one sandbox at a time, while there is room (jobs first: see WarmSlots).
    while (idle < options_.size && absl::Now() >= std::max(next_create, refill_not_before)) {
      {
        std::lock_guard<std::mutex> check(mu_);
        if (stopping_) break;
      }
      if (!slots_->TryReserveWarmSlot()) break;
      if (!CreateOne()) {
        next_create = absl::Now() + options_.create_backoff;
        break;
      }
      ++idle;
    }
    lock.lock();
  }
}

}  // namespace fastest::server
