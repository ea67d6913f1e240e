#include "server/util/log.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/io/fd_io.h"
#include "core/model/model.h"

namespace fastest::server {
namespace {

std::atomic<bool> g_enabled{true};

void AppendValue(std::string* out, absl::string_view v) {
  bool quote = v.empty();
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t') quote = true;
  }
  if (!quote) {
    out->append(v.data(), v.size());
    return;
  }
  out->push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

// Formatting the time (cctz) is a visible cost of the access log at tens of thousands of lines a
// second; lines of the same millisecond share the text.
void AppendTimestamp(std::string* out) {
  thread_local int64_t cached_ms = -1;
  thread_local std::string cached;
  const absl::Time now = absl::Now();
  const int64_t ms = absl::ToUnixMillis(now);
  if (ms != cached_ms) {
    cached = core::FormatIso8601(now);
    cached_ms = ms;
  }
  out->append(cached);
}

void AppendLine(std::string* out, absl::string_view level, absl::string_view msg,
                LogFields fields) {
  out->append("ts=");
  AppendTimestamp(out);
  absl::StrAppend(out, " level=", level, " msg=");
  AppendValue(out, msg);
  for (const auto& [k, v] : fields) {
    absl::StrAppend(out, " ", k, "=");
    AppendValue(out, v);
  }
  out->push_back('\n');
}

// Pending bytes past which the writer is woken before its period ends.
constexpr size_t kEagerFlushBytes = 64 << 10;

}  // namespace

void SetLogEnabled(bool enabled) { g_enabled = enabled; }

void Log(absl::string_view level, absl::string_view msg, LogFields fields) {
  if (!g_enabled) return;
  std::string line;
  AppendLine(&line, level, msg, fields);
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

BufferedLog::BufferedLog(int fd, absl::Duration flush_every)
    : fd_(fd), flush_every_(flush_every), writer_([this] { WriterLoop(); }) {}

BufferedLog::~BufferedLog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  writer_.join();  // its last Flush() ran after stop_ was set: nothing is left
}

void BufferedLog::Log(absl::string_view level, absl::string_view msg, LogFields fields) {
  if (!g_enabled) return;
  std::string line;  // formatted outside the lock
  AppendLine(&line, level, msg, fields);
  absl::MutexLock lock(&mu_);
  pending_ += line;
}

void BufferedLog::Flush() {
  // write_mu_ from taking the bytes to writing them: batches reach the fd in order.
  absl::MutexLock write_lock(&write_mu_);
  std::string bytes;
  {
    absl::MutexLock lock(&mu_);
    bytes.swap(pending_);
  }
  core::WriteFully(fd_, bytes.data(), bytes.size());
}

void BufferedLog::WriterLoop() {
  for (;;) {
    bool stop;
    {
      absl::MutexLock lock(&mu_);
      auto due = [this] { return stop_ || pending_.size() >= kEagerFlushBytes; };
      mu_.AwaitWithTimeout(absl::Condition(&due), flush_every_);
      stop = stop_;
    }
    Flush();
    if (stop) return;
  }
}

}  // namespace fastest::server
