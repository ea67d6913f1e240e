// File: tools/cli/unified_diff.h
//
// UnifiedDiff: a `diff -u` style text diff of one file, for `fastest run --diff`. Line based (LCS),
// 3 lines of context, `--- a/<path>` / `+++ b/<path>` headers, "\ No newline at end of file"
// markers. Added files diff against /dev/null, deleted ones to /dev/null. Binary content (a NUL
// byte) or very large inputs give a one-line "Binary files ... differ" / "... differ (large)".
#ifndef FASTEST_TOOLS_CLI_UNIFIED_DIFF_H_
#define FASTEST_TOOLS_CLI_UNIFIED_DIFF_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace fastest::cli {

struct UnifiedDiffOptions {
  int context = 3;
  // For a patch: a text too large for the line diff becomes one hunk replacing every line, and
  // binary content gives nullopt (instead of the "Binary files ... differ" line).
  bool full_text = false;
};

// `old_text` nullopt = the file is new; `new_text` nullopt = it was deleted. Returns "" when equal
// (and when there are no lines to show, e.g. a new empty file).
std::string UnifiedDiff(absl::string_view path, const std::optional<std::string>& old_text,
                        const std::optional<std::string>& new_text, int context = 3);
std::optional<std::string> UnifiedDiffOrBinary(absl::string_view path,
                                               const std::optional<std::string>& old_text,
                                               const std::optional<std::string>& new_text,
                                               const UnifiedDiffOptions& options);

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_UNIFIED_DIFF_H_
