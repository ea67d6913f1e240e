// File: runner/exit_codes.h
//
// Exit codes of fastest-runner (Bazel client style: one place, stable numbers). Backends and the
// server read them from the sandbox's exit status.
#ifndef FASTEST_RUNNER_EXIT_CODES_H_
#define FASTEST_RUNNER_EXIT_CODES_H_

namespace fastest::runner {

enum ExitCode : int {
  // The job completed and its output snapshot was recorded (also: JOB_ID unset and no pending job).
  kExitCompleted = 0,
  // The job failed (agent exit/timeout, restore, hostile manifest, corrupt blob, snapshot upload)
  // and was marked `failed` with the error.
  kExitJobFailed = 1,
  // Bad configuration: missing API_URL/API_TOKEN, unusable work dir. No API call was made.
  kExitConfigError = 2,
  // The job could not be run: it is already terminal (completed/failed/cancelled) or unknown.
  kExitNotRunnable = 3,
  // The job was cancelled while it ran; the runner left `cancelled` in place.
  kExitCancelled = 4,
  // The API stayed unreachable (after retries) so even the failure could not be recorded.
  kExitApiUnreachable = 5,
};

}  // namespace fastest::runner

#endif  // FASTEST_RUNNER_EXIT_CODES_H_
