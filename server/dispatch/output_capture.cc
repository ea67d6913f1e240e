#include "server/dispatch/output_capture.h"

#include "absl/strings/str_cat.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "server/util/log.h"

namespace fastest::server {
namespace {

constexpr size_t kCombinedTail = 8 * 1024;
// How long a reader waits for a lazy follow's first read.
constexpr absl::Duration kDemandWait = absl::Seconds(1);

}  // namespace

void KeepTail(std::string* s, size_t max) {
  if (s->size() > max) s->erase(0, s->size() - max);
}

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

struct OutputCapture::State {
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
  bool live = false;              // a follow is delivering output as it is written
  bool write_failed = false;
  // Per stream: bytes of the backend's output that are already in the log from before (a
  // re-adopted sandbox); every read starts by dropping them.
  uint64_t base[2] = {0, 0};
  uint64_t seen[2] = {0, 0};
  uint64_t skip[2] = {0, 0};
  std::string out[2];
  std::string combined;

  void SetLive(bool on) {
    std::lock_guard<std::mutex> lock(mu);
    live = on;
  }

  // Every read delivers the output from its start: drop what is already captured.
  void StartRead() {
    std::lock_guard<std::mutex> lock(mu);
    skip[0] = base[0] + seen[0];
    skip[1] = base[1] + seen[1];
  }

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

OutputCapture::OutputCapture(std::unique_ptr<JobLogWriter> writer,
                             std::vector<std::string> secrets, size_t max_output,
                             std::shared_ptr<Stragglers> stragglers)
    : state_(std::make_shared<State>()) {
  state_->writer = std::move(writer);
  state_->secrets = std::move(secrets);
  state_->max_output = max_output;
  state_->stragglers = std::move(stragglers);
}

OutputCapture::~OutputCapture() {
  SandboxEnded();
  CloseLog();
  Release(absl::ZeroDuration());
}

void OutputCapture::SkipAlreadyCaptured(uint64_t stdout_bytes, uint64_t stderr_bytes) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->base[0] = stdout_bytes;
  state_->base[1] = stderr_bytes;
}

void OutputCapture::StartFollow(core::SandboxBackend* backend, const std::string& sandbox_id,
                                bool lazy) {
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
      state->StartRead();
      s = backend->ReadLogs(sandbox_id, core::LogOptions{}, sink);
      state->SetCaughtUp();
    }
    if (run && s.ok()) {
      state->StartRead();
      core::LogOptions opts;
      opts.follow = true;
      state->SetLive(true);
      s = backend->ReadLogs(sandbox_id, opts, sink);
      state->SetLive(false);
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

void OutputCapture::Demand(bool wait) { state_->Demand(wait); }

void OutputCapture::SandboxEnded() {
  {
    std::lock_guard<std::mutex> lock(state_->demand_mu);
    state_->ended = true;
  }
  state_->demand_cv.notify_all();
}

void OutputCapture::EnableDemand(JobLogHub* hub, const std::string& job_id) {
  std::shared_ptr<State> state = state_;
  hub_ = hub;
  job_id_ = job_id;
  hub->SetDemandHandler(job_id, [state](bool wait) { state->Demand(wait); });
}

bool OutputCapture::WaitFollow(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(state_->mu);
  return state_->cv.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
                             [&] { return state_->follow_done; });
}

absl::Status OutputCapture::follow_status() {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->follow_status;
}

absl::Status OutputCapture::CatchUp(core::SandboxBackend* backend,
                                    const std::string& sandbox_id) {
  std::shared_ptr<State> state = state_;
  state->StartRead();
  absl::Status s = backend->ReadLogs(sandbox_id, core::LogOptions{},
                                     [&state](int stream, absl::string_view d) {
                                       return state->Sink(stream, d, /*from_follow=*/false);
                                     });
  state->SetCaughtUp();
  return s;
}

void OutputCapture::Abandon() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->follow_abandoned = true;
}

bool OutputCapture::Release(absl::Duration grace) {
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

void OutputCapture::TakeOutput(std::string* stdout_text, std::string* stderr_text,
                               int tail_lines, std::string* tail) {
  std::lock_guard<std::mutex> lock(state_->mu);
  *stdout_text = state_->out[0];
  *stderr_text = state_->out[1];
  KeepTail(stdout_text, state_->max_output);
  KeepTail(stderr_text, state_->max_output);
  *tail = RedactSecrets(LastLines(state_->combined, tail_lines), state_->secrets);
}

void OutputCapture::AppendLines(const std::vector<std::string>& lines) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->writer == nullptr) return;
  for (const std::string& line : lines) {
    state_->writer->Append(core::kStdoutStream, line + "\n").IgnoreError();
  }
}

bool OutputCapture::AppendLineIfLive(absl::string_view line) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->live || state_->closed || state_->writer == nullptr) return false;
  state_->writer->Append(core::kStdoutStream, absl::StrCat(line, "\n")).IgnoreError();
  return true;
}

void OutputCapture::CloseLog() {
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

}  // namespace fastest::server
