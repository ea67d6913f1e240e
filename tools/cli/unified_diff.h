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

// `old_text` nullopt = the file is new; `new_text` nullopt = it was deleted. Returns "" when equal.
std::string UnifiedDiff(absl::string_view path, const std::optional<std::string>& old_text,
                        const std::optional<std::string>& new_text, int context = 3);

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_UNIFIED_DIFF_H_
