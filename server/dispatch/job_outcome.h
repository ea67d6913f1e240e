// File: server/dispatch/job_outcome.h
//
// DecideOutcome: the one rule for how a dispatched job ends, as a pure function of what the
// dispatcher observed. Both the runner (through the API) and the dispatcher write a job's status;
// the rule, in order:
//   0. A warm sandbox that ended while its job is still pending (its runner never started the job:
//      the sandbox died standing by, or the hand-over did not reach it), with no cancel, timeout
//      or stop: the job runs on a cold sandbox instead (run_cold). The dispatcher writes nothing.
//   1. A terminal status already stored wins: the runner's completed/failed (also when it landed
//      just as a timeout, cancel or stop hit), or the API's cancelled. The dispatcher writes
//      nothing.
//   2. Otherwise the dispatcher ends the job (a write that loses a race with the runner changes
//      nothing: FinishIfActive only ends active jobs):
//        cancel requested            -> cancelled
//        timed out                   -> failed "Job timed out after <d>"
//        server stopping             -> failed "server stopped while the job was running"
//        sandbox exited              -> failed "Sandbox exited with code N: <last lines>"
//        backend lost the sandbox    -> failed "Lost contact with the sandbox: <error>: <last lines>"
//        none of these               -> failed "Sandbox ended without an exit code: <last lines>"
//   3. A completed job without an output snapshot in the store takes the id the runner printed
//      ("Output snapshot: <id>" on stdout), like the original worker.
#ifndef FASTEST_SERVER_DISPATCH_JOB_OUTCOME_H_
#define FASTEST_SERVER_DISPATCH_JOB_OUTCOME_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/model/model.h"

namespace fastest::server {

// What the dispatcher knows when the sandbox is gone.
struct JobObservation {
  // The job as stored after the sandbox ended (nullopt when it could not be read).
  std::optional<core::JobStatus> stored_status;
  std::optional<std::string> stored_error;
  std::optional<std::string> stored_output_snapshot_id;
  bool cancel_requested = false;  // NotifyJobCancelled while it ran
  bool timed_out = false;
  absl::Duration timeout;  // for the timeout message
  bool stopping = false;   // Stop() killed it (or was under way)
  std::optional<int> exit_code;
  absl::Status wait_error;  // the backend's last Wait error, OK if none
  std::string output_tail;  // last lines of the output, secrets redacted
  std::string stdout_text;  // for the printed output snapshot id
  bool warm_sandbox = false;  // the job was handed to a warm (standby) sandbox
};

struct JobOutcome {
  // The status the dispatcher stores (FinishIfActive), or nullopt when the stored one stands.
  std::optional<core::JobStatus> write_status;
  std::string write_error;  // the error stored with write_status
  // The RunResult's view.
  bool success = false;
  std::optional<std::string> error;
  std::optional<std::string> output_snapshot_id;
  // Rule 0: not ended; the dispatcher runs the job again on a cold sandbox.
  bool run_cold = false;
};

JobOutcome DecideOutcome(const JobObservation& o);

}  // namespace fastest::server

#endif  // FASTEST_SERVER_DISPATCH_JOB_OUTCOME_H_
