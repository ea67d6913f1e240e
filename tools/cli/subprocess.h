// File: tools/cli/subprocess.h
//
// RunProcess: runs a program with an argv (no shell, so no user string is ever parsed by one),
// feeds it `stdin_data`, and collects its stdout and stderr. For the CLI's git calls.
//
// Example:
//   FASTEST_ASSIGN_OR_RETURN(ProcessResult r, RunProcess({"git", "-C", dir, "write-tree"}, {}, ""));
//   if (r.exit_code != 0) ... r.err ...
#ifndef FASTEST_TOOLS_CLI_SUBPROCESS_H_
#define FASTEST_TOOLS_CLI_SUBPROCESS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fastest::cli {

struct ProcessResult {
  int exit_code = -1;  // 128 + N when killed by signal N
  std::string out;
  std::string err;
};

// argv[0] is looked up in PATH. The child's environment is this process's with `env` set on top.
// Errors: the program could not be started (NotFound / Internal).
absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                         const std::map<std::string, std::string>& env,
                                         absl::string_view stdin_data);

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_SUBPROCESS_H_
