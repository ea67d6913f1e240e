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
#include <utility>

#include "absl/strings/string_view.h"

namespace fastest::server {

using LogFields = std::initializer_list<std::pair<absl::string_view, std::string>>;

void Log(absl::string_view level, absl::string_view msg, LogFields fields = {});
inline void LogInfo(absl::string_view msg, LogFields fields = {}) { Log("info", msg, fields); }
inline void LogWarn(absl::string_view msg, LogFields fields = {}) { Log("warn", msg, fields); }
inline void LogError(absl::string_view msg, LogFields fields = {}) { Log("error", msg, fields); }

// Turns logging off (tests) or on.
void SetLogEnabled(bool enabled);

}  // namespace fastest::server

#endif  // FASTEST_SERVER_UTIL_LOG_H_
