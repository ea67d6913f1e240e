#include "server/dispatch/job_log_hub.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "core/status/status_macros.h"

namespace fastest::server {
namespace {

constexpr size_t kMaxPartialLine = 64 * 1024;
using core::kMinSecretLength;

bool ValidJobId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::Status MakeDirs(const std::string& dir) {
  std::string cur;
  for (absl::string_view part : absl::StrSplit(dir, '/')) {
    if (cur.empty() && part.empty()) {
      cur = "/";
      continue;
    }
    if (part.empty()) continue;
    if (!cur.empty() && cur.back() != '/') cur += '/';
    absl::StrAppend(&cur, part);
    if (mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("mkdir ", cur, ": ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------- JobLogWriter

std::string RedactApiTokens(std::string text) {
  constexpr size_t kHexDigits = 48;
  size_t from = 0;
  while (true) {
    size_t at = text.find("fst_", from);
    if (at == std::string::npos) return text;
    size_t end = at + 4;
    while (end < text.size() && end - at - 4 < kHexDigits && std::isxdigit(
                                                                  static_cast<unsigned char>(text[end]))) {
      ++end;
    }
    if (end - at - 4 == kHexDigits) {
      text.replace(at, end - at, "[redacted]");
      from = at + 10;
    } else {
      from = at + 4;
    }
  }
}

JobLogWriter::JobLogWriter(JobLogHub* hub, std::string job_id, int fd, int pos_fd,
                           std::vector<std::string> secrets, LogPosition position)
    : hub_(hub),
      job_id_(std::move(job_id)),
      fd_(fd),
      pos_fd_(pos_fd),
      secrets_(std::move(secrets)),
      position_(position) {}

JobLogWriter::~JobLogWriter() { Close(); }

absl::Status JobLogWriter::WriteScrubbed(std::string text) {
  text = RedactApiTokens(RedactSecrets(std::move(text), secrets_));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd_, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(
          absl::StrCat("writing the log of job ", job_id_, ": ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  bytes_written_ += static_cast<int64_t>(text.size());
  hub_->Notify(job_id_);
  return absl::OkStatus();
}

absl::Status JobLogWriter::Append(int stream, absl::string_view data) {
  if (closed_) return absl::FailedPreconditionError("log writer is closed");
  if (data.empty()) return absl::OkStatus();
  std::string& pending = pending_[stream == 2 ? 1 : 0];
  pending.append(data.data(), data.size());
  size_t cut = pending.rfind('\n');
  if (cut == std::string::npos) {
    if (pending.size() < kMaxPartialLine) return absl::OkStatus();
    cut = pending.size() - 1;  // a huge line without an end: write what we have
  }
  std::string whole = pending.substr(0, cut + 1);
  pending.erase(0, cut + 1);
  FASTEST_RETURN_IF_ERROR(WriteScrubbed(std::move(whole)));
  (stream == 2 ? position_.stderr_bytes : position_.stdout_bytes) += cut + 1;
  SavePosition();
  return absl::OkStatus();
}

void JobLogWriter::SavePosition() {
  if (pos_fd_ < 0) return;
  // Fixed width, one pwrite: a reader never sees a half-updated position.
  char buf[64];
  int n = snprintf(buf, sizeof(buf), "%020llu %020llu\n",
                   static_cast<unsigned long long>(position_.stdout_bytes),
                   static_cast<unsigned long long>(position_.stderr_bytes));
  if (pwrite(pos_fd_, buf, static_cast<size_t>(n), 0) != n) {
    close(pos_fd_);  // resuming after a restart may then repeat lines; the job goes on
    pos_fd_ = -1;
  }
}

void JobLogWriter::Close() {
  if (closed_) return;
  for (std::string& p : pending_) {
    if (!p.empty()) WriteScrubbed(std::move(p)).IgnoreError();
    p.clear();
  }
  closed_ = true;
  close(fd_);
  fd_ = -1;
  // The log is complete: nothing will resume it.
  if (pos_fd_ >= 0) {
    close(pos_fd_);
    pos_fd_ = -1;
    if (auto path = hub_->PathFor(job_id_); path.ok()) unlink((*path + ".pos").c_str());
  }
  hub_->WriterClosed(job_id_);
}

// ------------------------------------------------------------------------------- JobLogHub

JobLogHub::JobLogHub(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

absl::Status JobLogHub::Init() { return MakeDirs(dir_); }

absl::StatusOr<std::string> JobLogHub::PathFor(absl::string_view job_id) const {
  if (!ValidJobId(job_id)) return absl::InvalidArgumentError("invalid job id");
  return absl::StrCat(dir_, "/", job_id, ".log");
}

absl::StatusOr<std::unique_ptr<JobLogWriter>> JobLogHub::OpenWriter(
    const std::string& job_id, std::vector<std::string> secrets) {
  absl::StatusOr<std::string> path = PathFor(job_id);
  if (!path.ok()) return path.status();
  LogPosition position = CapturedPosition(job_id);
  int fd = open(path->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("open ", *path, ": ", std::strerror(errno)));
  }
  int pos_fd = open((*path + ".pos").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  secrets.erase(std::remove_if(secrets.begin(), secrets.end(),
                               [](const std::string& s) { return s.size() < kMinSecretLength; }),
                secrets.end());
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++writers_[job_id];
  }
  Notify(job_id);
  return std::unique_ptr<JobLogWriter>(
      new JobLogWriter(this, job_id, fd, pos_fd, std::move(secrets), position));
}

LogPosition JobLogHub::CapturedPosition(const std::string& job_id) const {
  LogPosition position;
  absl::StatusOr<std::string> path = PathFor(job_id);
  if (!path.ok()) return position;
  FILE* f = fopen((*path + ".pos").c_str(), "re");
  if (f == nullptr) return position;
  unsigned long long out = 0, err = 0;
  if (fscanf(f, "%llu %llu", &out, &err) == 2) {
    position.stdout_bytes = out;
    position.stderr_bytes = err;
  }
  fclose(f);
  return position;
}

bool JobLogHub::IsWriting(const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = writers_.find(job_id);
  return it != writers_.end() && it->second > 0;
}

void JobLogHub::WriterClosed(const std::string& job_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = writers_.find(job_id);
    if (it != writers_.end() && --it->second <= 0) writers_.erase(it);
  }
  Notify(job_id);
}

absl::StatusOr<JobLogChunk> JobLogHub::Read(const std::string& job_id, int64_t offset,
                                            size_t max_bytes) const {
  if (offset < 0) return absl::InvalidArgumentError("offset must not be negative");
  absl::StatusOr<std::string> path = PathFor(job_id);
  if (!path.ok()) return path.status();
  if (std::shared_ptr<DemandHandler> demand = DemandHandlerOf(job_id)) (*demand)(/*wait=*/true);
  JobLogChunk chunk;
  chunk.next_offset = offset;
  int fd = open(path->c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return chunk;
    return absl::InternalError(absl::StrCat("open ", *path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("stat ", *path, ": ", std::strerror(errno)));
  }
  chunk.size = st.st_size;
  if (offset < chunk.size) {
    size_t want = static_cast<size_t>(std::min<int64_t>(chunk.size - offset, max_bytes));
    chunk.data.resize(want);
    size_t got = 0;
    while (got < want) {
      ssize_t n = pread(fd, &chunk.data[got], want - got, offset + static_cast<int64_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    chunk.data.resize(got);
    chunk.next_offset = offset + static_cast<int64_t>(got);
  }
  close(fd);
  return chunk;
}

int64_t JobLogHub::Subscribe(const std::string& job_id, Listener listener) {
  int64_t id;
  std::shared_ptr<DemandHandler> demand;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_sub_++;
    subs_[id] = Subscription{job_id, std::make_shared<Listener>(std::move(listener))};
    auto it = demand_.find(job_id);
    if (it != demand_.end()) demand = it->second;
  }
  if (demand) (*demand)(/*wait=*/false);
  return id;
}

void JobLogHub::SetDemandHandler(const std::string& job_id, DemandHandler handler) {
  std::shared_ptr<DemandHandler> call_now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!handler) {
      demand_.erase(job_id);
      return;
    }
    auto h = std::make_shared<DemandHandler>(std::move(handler));
    demand_[job_id] = h;
    for (const auto& [id, sub] : subs_) {
      if (sub.job_id == job_id) {
        call_now = h;
        break;
      }
    }
  }
  if (call_now) (*call_now)(/*wait=*/false);
}

std::shared_ptr<JobLogHub::DemandHandler> JobLogHub::DemandHandlerOf(
    const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = demand_.find(job_id);
  return it == demand_.end() ? nullptr : it->second;
}

void JobLogHub::Unsubscribe(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  subs_.erase(id);
}

void JobLogHub::Notify(const std::string& job_id) {
  std::vector<std::shared_ptr<Listener>> listeners;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, sub] : subs_) {
      if (sub.job_id == job_id) listeners.push_back(sub.listener);
    }
  }
  for (const auto& l : listeners) (*l)();
}

}  // namespace fastest::server
