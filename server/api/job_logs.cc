#include "server/api/job_logs.h"

#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/model/model.h"
#include "server/api/api_error.h"
#include "server/api/request_auth.h"

namespace fastest::server {
namespace {

using net::Request;
using net::Responder;
using net::Response;

bool Truthy(const std::string& v) {
  std::string s = absl::AsciiStrToLower(v);
  return s == "1" || s == "true" || s == "yes";
}

}  // namespace

struct JobLogsService::Follower {
  int64_t id = 0;
  std::string job_id;
  std::shared_ptr<Responder> responder;
  int64_t offset = 0;
  int64_t subscription = 0;
  bool dirty = true;  // guarded by the service's mu_
};

JobLogsService::JobLogsService(Store* store, JobLogHub* hub, JobLogsOptions options)
    : store_(store), hub_(hub), options_(options) {}

JobLogsService::~JobLogsService() { Stop(); }

void JobLogsService::Register(net::Router& router) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) {
      started_ = true;
      pump_ = std::thread([this] { PumpLoop(); });
    }
  }
  // Authentication and the job lookup read SQLite: on the worker pool; following is the pump's.
  router.Add(
      "GET", "/v1/jobs/:jobId/logs",
      [this](const Request& req, std::shared_ptr<Responder> r) { Handle(req, std::move(r)); },
      net::Execution::kWorkerPool);
}

int JobLogsService::followers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(followers_.size());
}

void JobLogsService::Handle(const Request& req, std::shared_ptr<Responder> r) {
  absl::StatusOr<AuthInfo> auth = AuthenticateRequest(store_, req);
  if (!auth.ok()) {
    if (absl::IsUnauthenticated(auth.status())) {
      return r->Send(ErrorResponse(401, "UNAUTHORIZED", "Authentication required"));
    }
    return r->Send(ResponseFromStatus(auth.status()));
  }
  // A sandbox's per-job token has no business reading logs (its own output included).
  if (auth->job_scope) return r->Send(ErrorResponse(403, "FORBIDDEN", "Access denied"));
  absl::StatusOr<core::Job> job = OwnedJob(store_, *auth, req.Param("jobId"));
  if (!job.ok()) return r->Send(ResponseFromStatus(job.status()));
  int64_t offset = 0;
  if (req.HasQuery("offset") && (!absl::SimpleAtoi(req.Query("offset"), &offset) || offset < 0)) {
    return r->Send(ErrorResponse(400, "BAD_REQUEST", "'offset' must be a non-negative integer"));
  }
  const std::string status(core::JobStatusName(job->status));

  if (!Truthy(req.Query("follow"))) {
    absl::StatusOr<JobLogChunk> c = hub_->Read(job->id, offset, options_.max_read_bytes);
    if (!c.ok()) return r->Send(ResponseFromStatus(c.status()));
    Response resp = Response::Text(200, std::move(c->data));
    resp.SetHeader("X-Log-Offset-Next", std::to_string(c->next_offset));
    resp.SetHeader("X-Job-Status", status);
    resp.SetHeader("Cache-Control", "no-store");
    return r->Send(std::move(resp));
  }

  auto f = std::make_shared<Follower>();
  f->job_id = job->id;
  f->responder = r;
  f->offset = offset;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || !started_) {
    return r->Send(ErrorResponse(503, "UNAVAILABLE", "server is stopping"));
  }
  f->id = next_id_++;
  r->StartStream(200, {{"Content-Type", "text/plain; charset=utf-8"},
                       {"Cache-Control", "no-store"},
                       {"X-Content-Type-Options", "nosniff"},
                       {"X-Log-Offset-Start", std::to_string(offset)},
                       {"X-Job-Status", status}});
  // The hub calls listeners without its own lock held, so subscribing under mu_ cannot deadlock.
  const int64_t id = f->id;
  f->subscription = hub_->Subscribe(job->id, [this, id] {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = followers_.find(id);
    if (it == followers_.end()) return;
    it->second->dirty = true;
    any_dirty_ = true;
    cv_.notify_one();
  });
  followers_[id] = f;
  any_dirty_ = true;  // the first pump sends what is already there
  cv_.notify_one();
}

bool JobLogsService::Pump(Follower& f, bool final_pass) {
  if (f.responder->client_closed()) return true;
  // Decide "complete" BEFORE reading: once no writer is open and the job is terminal, every byte
  // is in the file, so the read below drains it all.
  bool complete = false;
  if (!hub_->IsWriting(f.job_id)) {
    absl::StatusOr<core::Job> job = store_->GetJob(f.job_id);
    complete = !job.ok() || core::IsTerminal(job->status);
  }
  while (true) {
    absl::StatusOr<JobLogChunk> c = hub_->Read(f.job_id, f.offset, options_.stream_chunk_bytes);
    if (!c.ok()) {
      f.responder->End();
      return true;
    }
    if (c->data.empty()) break;
    f.offset = c->next_offset;
    if (!f.responder->Write(c->data)) return true;  // client gone
  }
  if (complete || final_pass) {
    f.responder->End();
    return true;
  }
  return false;
}

void JobLogsService::PumpLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    bool woke = cv_.wait_for(lock,
                             std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.recheck)),
                             [&] { return stopping_ || any_dirty_; });
    const bool final_pass = stopping_;
    if (!woke || final_pass) {
      // Periodic recheck (or the last pass): every follower.
      for (auto& [id, f] : followers_) f->dirty = true;
    }
    any_dirty_ = false;
    std::vector<std::shared_ptr<Follower>> work;
    for (auto& [id, f] : followers_) {
      if (f->dirty) {
        f->dirty = false;
        work.push_back(f);
      }
    }
    lock.unlock();
    std::vector<std::shared_ptr<Follower>> finished;
    for (const auto& f : work) {
      if (Pump(*f, final_pass)) finished.push_back(f);
    }
    for (const auto& f : finished) hub_->Unsubscribe(f->subscription);
    lock.lock();
    for (const auto& f : finished) followers_.erase(f->id);
    if (final_pass) {
      followers_.clear();
      return;
    }
  }
}

void JobLogsService::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (pump_.joinable()) pump_.join();
}

}  // namespace fastest::server
