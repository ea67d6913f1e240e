// File: server/dispatch/job_log_hub.h
//
// JobLogHub: the jobs' captured sandbox output, one append-only file per job under
// `<data_dir>/logs/<job_id>.log`, kept after the sandbox is removed.
//
//   - Writer side (the dispatcher's capture thread): OpenWriter() -> JobLogWriter::Append() per
//     chunk the backend delivers. Both streams go into the one file in arrival order, assembled
//     per stream into whole lines (a stdout line is never cut by a stderr chunk); each append is
//     one write(2), so readers see it at once. Secret values given to OpenWriter (the job's token,
//     provider keys) are replaced by "[redacted]" before anything reaches the disk.
//   - Reader side (GET /v1/jobs/:jobId/logs): Read() from an offset, IsWriting(), and
//     Subscribe() — a listener called after every append and when the writer closes, so followers
//     wake on new output instead of polling.
//   - Capture on demand: following a sandbox's output live costs the engine CPU on every job, so
//     the writer side may register a demand handler (SetDemandHandler) and capture only once
//     someone reads: Subscribe() (also a subscription made before the handler was set) calls it
//     without waiting, Read() asks it to wait (bounded) until what exists so far is in the file.
//
// Thread-safe. Listeners run on the writer's thread with no hub lock held: keep them short (set a
// flag, notify a condition variable).
//
// Example:
//   JobLogHub hub(data_dir + "/logs");
//   FASTEST_RETURN_IF_ERROR(hub.Init());
//   FASTEST_ASSIGN_OR_RETURN(auto w, hub.OpenWriter(job_id, {token}));
//   w->Append(1, "hello\n");
//   w->Close();
//   FASTEST_ASSIGN_OR_RETURN(JobLogChunk c, hub.Read(job_id, 0, 1 << 20));  // c.data == "hello\n"
#ifndef FASTEST_SERVER_DISPATCH_JOB_LOG_HUB_H_
#define FASTEST_SERVER_DISPATCH_JOB_LOG_HUB_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config/secrets.h"

namespace fastest::server {

class JobLogHub;

// `text` with every secret (values of 6+ bytes; longer ones first) replaced by "[redacted]".
using core::RedactSecrets;

// Replaces every API-token-shaped string ("fst_" + 48 hex, see Store::CreateToken) by
// "[redacted]": a job re-adopted after a restart has a token the server no longer knows in plain.
std::string RedactApiTokens(std::string text);

// Raw bytes per stream of a sandbox's output that are in a job's log file (a trailing partial
// line is not): where capture resumes for a sandbox re-adopted after a restart.
struct LogPosition {
  uint64_t stdout_bytes = 0;
  uint64_t stderr_bytes = 0;
};

// Appends one job's output to its log file. Not thread-safe itself (one capture thread owns it).
class JobLogWriter {
 public:
  ~JobLogWriter();  // Close()
  JobLogWriter(const JobLogWriter&) = delete;
  JobLogWriter& operator=(const JobLogWriter&) = delete;

  // One chunk of `stream` (1 stdout, 2 stderr; anything else counts as stdout). Whole lines are
  // written at once; a trailing partial line waits for its end, for Close(), or until it grows
  // past 64 KiB.
  absl::Status Append(int stream, absl::string_view data);
  // Writes pending partial lines, closes the file and tells subscribers. Idempotent.
  void Close();

  int64_t bytes_written() const { return bytes_written_; }

 private:
  friend class JobLogHub;
  JobLogWriter(JobLogHub* hub, std::string job_id, int fd, int pos_fd,
               std::vector<std::string> secrets, LogPosition position);
  absl::Status WriteScrubbed(std::string text);
  void SavePosition();

  JobLogHub* hub_;
  std::string job_id_;
  int fd_;
  int pos_fd_;  // <job>.log.pos: position_, rewritten after every write
  std::vector<std::string> secrets_;
  LogPosition position_;
  std::string pending_[2];  // partial line per stream (0 stdout, 1 stderr)
  int64_t bytes_written_ = 0;
  bool closed_ = false;
};

struct JobLogChunk {
  std::string data;
  int64_t next_offset = 0;  // offset + data.size()
  int64_t size = 0;         // file size when read (0 if there is no file yet)
};

class JobLogHub {
 public:
  using Listener = std::function<void()>;
  // Called with wait=true from Read() (may block briefly until the output so far is captured)
  // and wait=false from Subscribe(). Runs with no hub lock held; must be cheap after the first
  // call.
  using DemandHandler = std::function<void(bool wait)>;

  explicit JobLogHub(std::string dir);
  JobLogHub(const JobLogHub&) = delete;
  JobLogHub& operator=(const JobLogHub&) = delete;

  // Creates the directory (0700).
  absl::Status Init();
  const std::string& dir() const { return dir_; }

  // <dir>/<job_id>.log. InvalidArgument unless job_id is 1..64 of [0-9A-Za-z_-] (no path tricks).
  absl::StatusOr<std::string> PathFor(absl::string_view job_id) const;

  // Where capture of `job_id`'s output stands (see LogPosition); zeros when nothing was written.
  LogPosition CapturedPosition(const std::string& job_id) const;

  // Opens (creating, appending) the job's log. `secrets`: values to redact (empty / shorter than
  // 6 bytes are ignored). Subscribers are told (the job now has a live writer).
  absl::StatusOr<std::unique_ptr<JobLogWriter>> OpenWriter(const std::string& job_id,
                                                           std::vector<std::string> secrets);
  // True while a writer of this job is open.
  bool IsWriting(const std::string& job_id) const;

  // Up to `max_bytes` from `offset`. No file yet -> OK with empty data and size 0. An offset
  // past the end -> empty data, next_offset = offset. InvalidArgument for a negative offset.
  absl::StatusOr<JobLogChunk> Read(const std::string& job_id, int64_t offset,
                                   size_t max_bytes) const;

  // `listener` runs after each append to `job_id`'s log and when its writer opens or closes.
  // Returns an id for Unsubscribe (which waits for nothing: a listener may still be running).
  int64_t Subscribe(const std::string& job_id, Listener listener);
  void Unsubscribe(int64_t id);

  // Sets (null: clears) the job's demand handler. If the job already has subscribers the handler
  // is called at once (wait=false).
  void SetDemandHandler(const std::string& job_id, DemandHandler handler);

 private:
  friend class JobLogWriter;
  void Notify(const std::string& job_id);
  void WriterClosed(const std::string& job_id);
  std::shared_ptr<DemandHandler> DemandHandlerOf(const std::string& job_id) const;

  std::string dir_;
  mutable std::mutex mu_;
  std::map<std::string, int> writers_;  // job id -> open writers
  struct Subscription {
    std::string job_id;
    std::shared_ptr<Listener> listener;
  };
  std::map<int64_t, Subscription> subs_;
  int64_t next_sub_ = 1;
  std::map<std::string, std::shared_ptr<DemandHandler>> demand_;  // job id -> handler
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_DISPATCH_JOB_LOG_HUB_H_
