// File: tools/cli/git_binary_patch.h
//
// The binary part of a `git diff --binary` entry, so `fastest apply --patch` carries binary files
// too and `git apply` takes them:
//
//   index <old blob id>..<new blob id>        (full ids: git apply refuses binary without them)
//   GIT binary patch
//   literal <new size>                        (forward: the whole new content)
//   <lines: a length char, then base85 of up to 52 bytes of the zlib-deflated content>
//   <empty line>
//   literal <old size>                        (reverse, for `git apply -R`)
//   ...
//   <empty line>
//
// A missing side (an added or deleted file) is the empty content with the all-zero id.
#ifndef FASTEST_TOOLS_CLI_GIT_BINARY_PATCH_H_
#define FASTEST_TOOLS_CLI_GIT_BINARY_PATCH_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fastest::cli {

// The id git gives `content` as a blob: SHA-1 of "blob <size>\0<content>", 40 lowercase hex.
std::string GitBlobId(absl::string_view content);

// Git's base85 of `data` (4 bytes -> 5 characters; a short last group is zero-padded).
std::string GitBase85(absl::string_view data);

// The "index ..\nGIT binary patch\n..." text for a change from `old_content` to `new_content`
// (nullopt: the file did not exist / no longer exists). Fails only if zlib does.
absl::StatusOr<std::string> GitBinaryPatch(const std::optional<std::string>& old_content,
                                           const std::optional<std::string>& new_content);

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_GIT_BINARY_PATCH_H_
