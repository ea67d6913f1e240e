// File: tools/cli/log_format.h
//
// Turning the runner's log (what the sandbox prints) into the CLI's progress display. The runner
// prefixes its lines by phase: "[restoring] ", "[agent] ", "[agent:stderr] ", "[snapshotting] ";
// OpenCode's own output (`--format json`) arrives as "[agent] {json event}" lines, which are
// summarised: tool calls ("write src/a.sh"), the agent's text, errors. Banner lines are hidden.
#ifndef FASTEST_TOOLS_CLI_LOG_FORMAT_H_
#define FASTEST_TOOLS_CLI_LOG_FORMAT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace fastest::cli {

enum class Phase { kUnknown, kRestoring, kAgent, kSnapshotting, kFinishing };

absl::string_view PhaseTitle(Phase phase);  // "restoring workspace", "agent running", ...

struct LogLineView {
  Phase phase = Phase::kUnknown;  // kUnknown: the line says nothing about the phase
  bool show = false;
  std::string text;  // what to print (already indented), when `show`
};

LogLineView FormatRunnerLine(absl::string_view line);

// One OpenCode `--format json` event as a short line ("" = nothing worth showing).
std::string SummarizeAgentEvent(absl::string_view json_line);

// The CLI's own progress lines: "==> <text>" on stderr, flushed.
void Step(const std::string& text);
// "1 file", "3 files".
std::string Plural(size_t n, const char* word);

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_LOG_FORMAT_H_
