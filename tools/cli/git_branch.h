// File: tools/cli/git_branch.h
//
// Git-native output (`--branch NAME`): commits a WritePlan's accepted changes on a new branch
// based on the checked-out commit (HEAD), without touching the working tree, the index, HEAD or
// any existing branch, and without running a single hook. Only git plumbing is used, with a
// temporary index (GIT_INDEX_FILE):
//   read-tree HEAD; hash-object -w --stdin (each new content); update-index -z --index-info;
//   write-tree; commit-tree -p HEAD; update-ref refs/heads/NAME <commit> ""   (must not exist)
// every call with `-c core.hooksPath=/dev/null -c core.fsmonitor=false -c gc.auto=0` and an argv
// (no shell). Plan paths are relative to `dir`, which may be a subdirectory of the work tree.
// The commit holds the job's version of every file the plan changes (whole files, on HEAD's
// tree): edits the user had not committed when the job started are in it for those files, and
// only for those.
#ifndef FASTEST_TOOLS_CLI_GIT_BRANCH_H_
#define FASTEST_TOOLS_CLI_GIT_BRANCH_H_

#include <string>

#include "absl/status/statusor.h"
#include "tools/cli/write_policy.h"

namespace fastest::cli {

struct BranchCommit {
  std::string commit;  // the new commit's id
  std::string parent;  // HEAD's commit
};

// Errors: `dir` is not in a git work tree, no commit is checked out, the branch name is invalid
// or the branch exists (FailedPrecondition / InvalidArgument), a git call failed (with its
// stderr), or the plan changes nothing in HEAD's tree.
absl::StatusOr<BranchCommit> CommitPlanToBranch(const std::string& dir, const WritePlan& plan,
                                                const BlobFetcher& fetch,
                                                const std::string& branch,
                                                const std::string& message);

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_GIT_BRANCH_H_
