// File: tools/cli/review.h
//
// The last step of `fastest run` and all of `fastest apply`: plan what the job's output may change
// (write_policy.h), show it (A/M/D/m lines, refusals with their reasons, counts; `--diff` adds the
// unified diff), then carry it out:
//   --branch NAME   commit the accepted changes on a new git branch (git_branch.h), no prompt:
//                   the working tree is not touched;
//   --patch FILE    write them as a git-style patch, no prompt;
//   otherwise       write them into the directory: with --yes at once, on a terminal (stdin and
//                   stdout) after asking, and not at all otherwise (the hint says how to apply).
#ifndef FASTEST_TOOLS_CLI_REVIEW_H_
#define FASTEST_TOOLS_CLI_REVIEW_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

#include "core/model/model.h"
#include "core/snapshot/ignore_rules.h"
#include "core/snapshot/manifest.h"
#include "tools/cli/write_policy.h"

namespace fastest::cli {

struct WriteBackOptions {
  bool yes = false;     // write without asking
  bool diff = false;    // show the unified diff of the accepted changes
  std::string branch;   // commit on this new branch instead of writing the directory
  std::string patch;    // write a patch file instead of writing the directory
  // Extra flags for the `fastest apply` hint (e.g. " --server URL").
  std::string apply_hint_flags;
};

// Returns the exit code: 0 when everything the job changed was carried out (or, without --yes
// and without a terminal, nothing was written and nothing was refused), 1 when something was
// refused, conflicted or failed, or the user declined.
int ReviewAndWriteBack(const std::string& dir, const core::Manifest& base,
                       const core::Manifest& output, const core::IgnoreRules& host_rules,
                       const BlobFetcher& fetch, const core::Job& job,
                       const WriteBackOptions& options);

// `s` quoted for a POSIX shell when it needs it (for the hints the CLI prints).
std::string ShellQuote(const std::string& s);

// The summary: one "  A|M|D|m <path>[ (note)]" line per accepted change, one
// "  ! <letter> <path>: refused: <reason>" line per refusal, then the counts.
std::string FormatPlan(const WritePlan& plan);
std::string FormatRefusals(const std::vector<Refusal>& refused);

// Agent-chosen text made safe to print: control characters (and, unless `keep_newlines`,
// newlines and tabs) become \xNN, C1 controls \u00NN, so no path or file content can move the
// cursor, recolour or forge lines of the summary.
std::string EscapeControl(absl::string_view text, bool keep_newlines);

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_REVIEW_H_
