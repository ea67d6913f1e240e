#include "server/dispatch/job_outcome.h"

#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace fastest::server {

using core::JobStatus;

JobOutcome DecideOutcome(const JobObservation& o) {
  JobOutcome out;
  auto dispatcher_ends = [&out](JobStatus status, std::string error) {
    out.write_status = status;
    out.write_error = error;
    out.error = status == JobStatus::kCancelled ? "Job cancelled" : error;
  };
  if (o.warm_sandbox && o.stored_status == JobStatus::kPending && !o.cancel_requested &&
      !o.timed_out && !o.stopping) {
    out.run_cold = true;
    return out;
  }
  if (o.stored_status && core::IsTerminal(*o.stored_status)) {
    if (*o.stored_status == JobStatus::kCancelled) {
      out.error = "Job cancelled";
    } else {
      out.success = *o.stored_status == JobStatus::kCompleted;
      out.output_snapshot_id = o.stored_output_snapshot_id;
      if (!out.success) out.error = o.stored_error.value_or("Job failed");
    }
  } else if (o.cancel_requested) {
    dispatcher_ends(JobStatus::kCancelled, "");
  } else if (o.timed_out) {
    dispatcher_ends(JobStatus::kFailed,
                    absl::StrCat("Job timed out after ", absl::FormatDuration(o.timeout)));
  } else if (o.stopping) {
    dispatcher_ends(JobStatus::kFailed, "server stopped while the job was running");
  } else {
    std::string msg;
    if (o.exit_code) {
      msg = absl::StrCat("Sandbox exited with code ", *o.exit_code);
    } else if (!o.wait_error.ok()) {
      msg = absl::StrCat("Lost contact with the sandbox: ", o.wait_error.message());
    } else {
      msg = "Sandbox ended without an exit code";
    }
    std::string trimmed(absl::StripTrailingAsciiWhitespace(o.output_tail));
    if (!trimmed.empty()) absl::StrAppend(&msg, ": ", trimmed);
    dispatcher_ends(JobStatus::kFailed, msg);
  }
  if (out.success && !out.output_snapshot_id) {
    static const std::regex kOutput("Output snapshot: (\\S+)");
    std::smatch m;
    if (std::regex_search(o.stdout_text, m, kOutput)) out.output_snapshot_id = m[1].str();
  }
  return out;
}

}  // namespace fastest::server
