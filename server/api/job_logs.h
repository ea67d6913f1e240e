// File: server/api/job_logs.h
//
// JobLogsService: GET /v1/jobs/:jobId/logs — a job's captured sandbox output (both streams, in
// arrival order, as the dispatcher wrote it to `<data_dir>/logs/<job_id>.log`; see
// server/dispatch/job_log_hub.h).
//
//   Auth and ownership as GET /v1/jobs/:jobId: bearer token (401), unknown job 404, a job of
//   another user (or outside a per-job token's project) 403 — same error JSON.
//   ?offset=N   (default 0; not a non-negative integer → 400) the bytes from N to the current end
//               (at most 4 MiB per call), 200 text/plain, headers `X-Log-Offset-Next` (N + bytes
//               returned; ask again from there) and `X-Job-Status`. A job without a log yet (still
//               pending, or never ran) → 200 with an empty body, not 404.
//   ?follow=1   (also true/yes) a chunked text/plain stream from `offset`: what is there, then new
//               bytes as the dispatcher appends them, until the job is terminal and its log is
//               complete; then the stream ends. Header `X-Log-Offset-Start`.
//
// Followers never poll the file: the dispatcher's capture thread notifies the hub after every
// append, which wakes this service's one pump thread; it reads the new bytes and writes them to
// each follower of that job. A 2 s recheck covers what sends no notification (a pending job
// cancelled, a client gone while the job is quiet). Remote mode (--api_url): jobs are not in the
// local store, so this answers 404.
#ifndef FASTEST_SERVER_API_JOB_LOGS_H_
#define FASTEST_SERVER_API_JOB_LOGS_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "server/dispatch/job_log_hub.h"
#include "core/net/http_server.h"
#include "server/store/store.h"

namespace fastest::server {

struct JobLogsOptions {
  // Followers are rechecked this often even without a notification.
  absl::Duration recheck = absl::Seconds(2);
  // Largest body of one ?offset= answer.
  size_t max_read_bytes = 4 * 1024 * 1024;
  // Read size when streaming.
  size_t stream_chunk_bytes = 256 * 1024;
};

class JobLogsService {
 public:
  // `store` and `hub` must outlive this.
  JobLogsService(Store* store, JobLogHub* hub, JobLogsOptions options = {});
  ~JobLogsService();  // Stop()
  JobLogsService(const JobLogsService&) = delete;
  JobLogsService& operator=(const JobLogsService&) = delete;

  // Adds GET /v1/jobs/:jobId/logs and starts the pump thread.
  void Register(net::Router& router);
  // Sends what is left to every follower, ends their streams, joins the pump thread. Call
  // before stopping the HTTP server; later follow requests answer 503.
  void Stop();

  int followers() const;

 private:
  struct Follower;
  void Handle(const net::Request& req, std::shared_ptr<net::Responder> r);
  void PumpLoop();
  // Sends new bytes; true when the follower is finished (stream ended or client gone).
  bool Pump(Follower& f, bool final_pass);

  Store* store_;
  JobLogHub* hub_;
  JobLogsOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, std::shared_ptr<Follower>> followers_;
  int64_t next_id_ = 1;
  bool any_dirty_ = false;
  bool stopping_ = false;
  bool started_ = false;
  std::thread pump_;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_API_JOB_LOGS_H_
