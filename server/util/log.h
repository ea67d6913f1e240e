// File: server/util/log.h
//
// Structured key=value logs on stderr, one line per event:
//   ts=2026-11-26T14:34:18.536Z level=info msg="job finished" job_id=00MW... status=completed
// Values containing spaces, quotes or '=' are quoted. Never pass secrets (tokens, provider keys,
// sandbox env) as values. Thread-safe (one write(2) per line).
//
// Example:
//   fastest::server::LogInfo("sandbox started", {{"job_id", id}, {"sandbox", sandbox.id}});
#ifndef FASTEST_SERVER_UTIL_LOG_H_
#define FASTEST_SERVER_UTIL_LOG_H_

#include <initializer_list>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fastest::server {

using LogFields = std::initializer_list<std::pair<absl::string_view, std::string>>;

void Log(absl::string_view level, absl::string_view msg, LogFields fields = {});
inline void LogInfo(absl::string_view msg, LogFields fields = {}) { Log("info", msg, fields); }
inline void LogWarn(absl::string_view msg, LogFields fields = {}) { Log("warn", msg, fields); }
inline void LogError(absl::string_view msg, LogFields fields = {}) { Log("error", msg, fields); }

// Turns logging off (tests) or on.
void SetLogEnabled(bool enabled);

// The same lines, written by a background thread: Log() only formats and appends under a short
// lock (no syscall on the caller's thread), the writer flushes every `flush_every` (sooner when
// much is pending) and the destructor writes what is left, so a clean shutdown loses nothing.
// For hot paths such as the per-request access log.
class BufferedLog {
 public:
  explicit BufferedLog(int fd = 2, absl::Duration flush_every = absl::Milliseconds(100));
  ~BufferedLog();  // flushes and joins the writer
  BufferedLog(const BufferedLog&) = delete;
  BufferedLog& operator=(const BufferedLog&) = delete;

  void Log(absl::string_view level, absl::string_view msg, LogFields fields = {});
  // Writes what is pending now (tests).
  void Flush();

 private:
  void WriterLoop();

  const int fd_;
  const absl::Duration flush_every_;
  absl::Mutex mu_;
  std::string pending_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex write_mu_;  // held from taking pending bytes to writing them
  std::thread writer_;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_UTIL_LOG_H_
