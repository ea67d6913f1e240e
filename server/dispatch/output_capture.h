// File: server/dispatch/output_capture.h
//
// OutputCapture: collects one sandbox's output into the job's log file (through the JobLogHub) and,
// kept to a tail, into the job's RunResult. A follow thread feeds it while the sandbox runs;
// CatchUp() reads whatever the follow missed (or everything, for backends without log streaming),
// skipping the bytes per stream already seen, so nothing is written twice.
//
// A follow may never end (a backend whose log stream hangs after the sandbox is gone). So the
// follow thread touches only `State`, which it co-owns through a shared_ptr: Release() can then
// detach it instead of joining forever. Once let go its sink refuses data, and the log writer
// (which points into the hub) is destroyed by CloseLog() on the owner's thread, never by a
// straggler.
#ifndef FASTEST_SERVER_DISPATCH_OUTPUT_CAPTURE_H_
#define FASTEST_SERVER_DISPATCH_OUTPUT_CAPTURE_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/plugin/sandbox_backend.h"
#include "server/dispatch/job_log_hub.h"
#include "server/dispatch/stragglers.h"

namespace fastest::server {

// Keeps the last `max` bytes of `s`.
void KeepTail(std::string* s, size_t max);
// The last `max_lines` lines of `text`.
std::string LastLines(absl::string_view text, int max_lines);

class OutputCapture {
 public:
  // `writer` may be null (output is then kept only for the RunResult).
  OutputCapture(std::unique_ptr<JobLogWriter> writer, std::vector<std::string> secrets,
                size_t max_output, std::shared_ptr<Stragglers> stragglers);
  ~OutputCapture();
  OutputCapture(const OutputCapture&) = delete;
  OutputCapture& operator=(const OutputCapture&) = delete;

  // Bytes per stream (stdout, stderr) the backend will deliver first that are already in the log
  // (a sandbox re-adopted after a server restart): dropped by every read. Call before reading.
  void SkipAlreadyCaptured(uint64_t stdout_bytes, uint64_t stderr_bytes);

  // Starts following on a thread of its own. `lazy`: the thread reads nothing until someone
  // reads the job's log (Demand()); then it reads what exists so far (readers waiting in Demand
  // get it), and follows from there, skipping those bytes. If nobody asks before the sandbox
  // ends (SandboxEnded()) it reads nothing: CatchUp() then reads the log once.
  void StartFollow(core::SandboxBackend* backend, const std::string& sandbox_id, bool lazy);
  // Someone reads the job's log: start a lazy follow. wait: until the output so far is captured
  // (bounded). Never takes `mu` (callers may hold locks a Sink's listeners need).
  void Demand(bool wait);
  // The sandbox exited: a lazy follow nobody asked for ends without reading.
  void SandboxEnded();
  // Lets readers of the log ask for the output (see Demand). Cleared by CloseLog().
  void EnableDemand(JobLogHub* hub, const std::string& job_id);
  bool following() const { return follow_.joinable(); }
  // Waits for the follow to end (it does when the sandbox exits). False on timeout.
  bool WaitFollow(absl::Duration timeout);
  absl::Status follow_status();
  // One non-following read, skipping what was already captured. Call only when the follow has
  // ended or was abandoned (its sink refuses data then, so the two never interleave).
  absl::Status CatchUp(core::SandboxBackend* backend, const std::string& sandbox_id);
  // From now on the follow's sink refuses data (a follow that did not end lets go at its next
  // chunk, if it ever delivers one).
  void Abandon();
  // Joins the follow if it ends within `grace`; otherwise lets it go (detached, counted as a
  // straggler until it ends). Returns false when it was let go.
  bool Release(absl::Duration grace);

  // Output so far (each stream's tail) and the last `tail_lines` lines of both streams in order,
  // secrets redacted.
  void TakeOutput(std::string* stdout_text, std::string* stderr_text, int tail_lines,
                  std::string* tail);
  // Lines of the server's own about the job (the sandbox channel's gateway and egress notes).
  void AppendLines(const std::vector<std::string>& lines);
  // One such line, written now if the output is being followed live (so it lands among the
  // output it belongs to); false otherwise (the caller keeps it for AppendLines at the end).
  bool AppendLineIfLive(absl::string_view line);
  // Completes the log file and tells its followers. Call once the job's final status is stored.
  // Idempotent.
  void CloseLog();

 private:
  struct State;

  std::shared_ptr<State> state_;
  std::thread follow_;
  JobLogHub* hub_ = nullptr;  // where the demand handler is registered
  std::string job_id_;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_DISPATCH_OUTPUT_CAPTURE_H_
