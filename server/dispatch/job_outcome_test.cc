#include "server/dispatch/job_outcome.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fastest::server {
namespace {

using core::JobStatus;

struct Case {
  std::string name;
  JobObservation seen;
  std::optional<JobStatus> write_status;
  std::string write_error;
  bool success;
  std::optional<std::string> error;
  std::optional<std::string> output_snapshot_id;
};

JobObservation Seen(std::optional<JobStatus> stored) {
  JobObservation o;
  o.stored_status = stored;
  o.timeout = absl::Minutes(30);
  return o;
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  {
    JobObservation o = Seen(JobStatus::kCompleted);
    o.stored_output_snapshot_id = "snap-stored";
    o.stdout_text = "Output snapshot: snap-printed\n";
    o.exit_code = 0;
    cases.push_back({"runner completed: stored snapshot wins", o, std::nullopt, "", true,
                     std::nullopt, "snap-stored"});
  }
  {
    JobObservation o = Seen(JobStatus::kCompleted);
    o.stdout_text = "restoring\nOutput snapshot: snap-printed\ndone\n";
    cases.push_back({"runner completed without stored snapshot: printed id", o, std::nullopt, "",
                     true, std::nullopt, "snap-printed"});
  }
  {
    JobObservation o = Seen(JobStatus::kFailed);
    o.stored_error = "agent crashed";
    o.exit_code = 1;
    o.stdout_text = "Output snapshot: snap-x\n";
    cases.push_back({"runner failed: its error, no printed snapshot", o, std::nullopt, "", false,
                     "agent crashed", std::nullopt});
  }
  {
    JobObservation o = Seen(JobStatus::kFailed);
    cases.push_back({"runner failed without error", o, std::nullopt, "", false, "Job failed",
                     std::nullopt});
  }
  {
    JobObservation o = Seen(JobStatus::kCompleted);
    o.timed_out = true;
    o.cancel_requested = true;
    o.stopping = true;
    cases.push_back({"stored terminal wins over timeout, cancel and stop", o, std::nullopt, "",
                     true, std::nullopt, std::nullopt});
  }
  {
    JobObservation o = Seen(JobStatus::kCancelled);
    o.exit_code = 137;
    cases.push_back({"API cancelled", o, std::nullopt, "", false, "Job cancelled", std::nullopt});
  }
  {
    JobObservation o = Seen(JobStatus::kRunning);
    o.cancel_requested = true;
    o.timed_out = true;
    cases.push_back({"cancel requested beats timeout", o, JobStatus::kCancelled, "", false,
                     "Job cancelled", std::nullopt});
  }
  {
    JobObservation o = Seen(JobStatus::kRunning);
    o.timed_out = true;
    o.stopping = true;
    o.timeout = absl::Seconds(2);
    cases.push_back({"timeout beats stop", o, JobStatus::kFailed, "Job timed out after 2s", false,
                     "Job timed out after 2s", std::nullopt});
  }
  {
    JobObservation o = Seen(JobStatus::kRunning);
    o.stopping = true;
    o.exit_code = 137;
    cases.push_back({"server stopping", o, JobStatus::kFailed,
                     "server stopped while the job was running", false,
                     "server stopped while the job was running", std::nullopt});
  }
  {
    JobObservation o = Seen(JobStatus::kRunning);
    o.exit_code = 3;
    o.output_tail = "line a\nline b\n\n";
    cases.push_back({"sandbox exited without status", o, JobStatus::kFailed,
                     "Sandbox exited with code 3: line a\nline b", false,
                     "Sandbox exited with code 3: line a\nline b", std::nullopt});
  }
  {
    JobObservation o = Seen(JobStatus::kPending);
    o.exit_code = 0;
    o.stdout_text = "Output snapshot: snap-y\n";
    cases.push_back({"exit 0 without status is still a failure", o, JobStatus::kFailed,
                     "Sandbox exited with code 0", false, "Sandbox exited with code 0",
                     std::nullopt});
  }
  {
    JobObservation o = Seen(JobStatus::kRunning);
    o.wait_error = absl::NotFoundError("no such container");
    o.output_tail = "last";
    cases.push_back({"backend lost the sandbox", o, JobStatus::kFailed,
                     "Lost contact with the sandbox: no such container: last", false,
                     "Lost contact with the sandbox: no such container: last", std::nullopt});
  }
  {
    JobObservation o = Seen(std::nullopt);
    cases.push_back({"nothing known", o, JobStatus::kFailed, "Sandbox ended without an exit code",
                     false, "Sandbox ended without an exit code", std::nullopt});
  }
  return cases;
}

TEST(JobOutcomeTest, AWarmSandboxThatNeverStartedItsJobMeansRunCold) {
  JobObservation o = Seen(JobStatus::kPending);
  o.warm_sandbox = true;
  o.exit_code = 1;
  JobOutcome out = DecideOutcome(o);
  EXPECT_TRUE(out.run_cold);
  EXPECT_FALSE(out.write_status.has_value());
  EXPECT_FALSE(out.success);

  // Started (running), or cancelled, timed out or stopping: ended like any other sandbox.
  JobObservation started = o;
  started.stored_status = JobStatus::kRunning;
  EXPECT_FALSE(DecideOutcome(started).run_cold);
  EXPECT_EQ(DecideOutcome(started).write_status, JobStatus::kFailed);
  for (bool JobObservation::*flag : {&JobObservation::cancel_requested,
                                     &JobObservation::timed_out, &JobObservation::stopping}) {
    JobObservation ended = o;
    ended.*flag = true;
    EXPECT_FALSE(DecideOutcome(ended).run_cold);
    EXPECT_TRUE(DecideOutcome(ended).write_status.has_value());
  }
  JobObservation cold = o;
  cold.warm_sandbox = false;
  EXPECT_FALSE(DecideOutcome(cold).run_cold);
}

TEST(JobOutcomeTest, Table) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    JobOutcome out = DecideOutcome(c.seen);
    EXPECT_EQ(out.write_status, c.write_status);
    EXPECT_EQ(out.write_error, c.write_error);
    EXPECT_EQ(out.success, c.success);
    EXPECT_EQ(out.error, c.error);
    EXPECT_EQ(out.output_snapshot_id, c.output_snapshot_id);
    EXPECT_FALSE(out.run_cold);
  }
}

}  // namespace
}  // namespace fastest::server
