// File: tools/cli/write_policy.h
//
// What a job's output may change on the user's machine. The job's output snapshot is produced by
// untrusted code (the agent), so it is only a proposal: PlanWriteBack compares the job's base
// manifest (what the CLI uploaded) with its output manifest and sorts every difference into
// accepted changes and refusals, each refusal with its reason. Write-back (write_back.h), the git
// branch (git_branch.h), the diff and the patch all work from the same plan, so none of them can
// touch a path the plan refused.
//
// Refused, whatever the output manifest says:
//   - any path with a `.git` component, at any depth (also `.GIT`, `.git.`, `git~1`, which other
//     file systems treat as `.git`): git metadata such as hooks and config runs code on the host;
//   - `.fstignore` itself: the ignore rules are the user's; an agent's edit of them is shown as
//     refused and never applied (the user can copy it by hand after reading it);
//   - paths the host's ignore rules (read on the host: defaults + the user's `.fstignore`) leave
//     out, and files below an ignored directory: they were never uploaded, so the job cannot have
//     a legitimate version of them (e.g. `secret.env`), and deleting them is never right either;
//   - deletions of files that the job's own (changed) `.fstignore` hides: the file was not deleted,
//     the agent stopped listing it;
//   - invalid paths (absolute, `..`, empty components) and, once the directory is looked at
//     (CheckAgainstDirectory), paths through a symlink or onto anything but a regular file.
// Modes: only the permission bits 0777 are ever applied; setuid, setgid and sticky bits are
// stripped (and the change says so). Files are always written as regular files.
#ifndef FASTEST_TOOLS_CLI_WRITE_POLICY_H_
#define FASTEST_TOOLS_CLI_WRITE_POLICY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/snapshot/ignore_rules.h"
#include "core/snapshot/manifest.h"

namespace fastest::cli {

// Returns the verified content of a blob (e.g. ApiClient::DownloadVerifiedBlob).
using BlobFetcher = std::function<absl::StatusOr<std::string>(const std::string& hash)>;

enum class ChangeKind { kAdd, kModify, kDelete, kMode };
// "A", "M", "D", "m": the letter shown in the summary.
const char* ChangeLetter(ChangeKind kind);

struct Change {
  ChangeKind kind;
  std::string path;
  std::optional<core::FileEntry> before;  // the base entry (modify, delete, mode)
  std::optional<core::FileEntry> after;   // the output entry (add, modify, mode), mode sanitized
  std::string note;                       // e.g. "setuid/setgid/sticky bits stripped"
};

struct Refusal {
  ChangeKind kind;
  std::string path;
  std::string reason;
};

struct WritePlan {
  std::vector<Change> accepted;  // in path order
  std::vector<Refusal> refused;  // in path order
};

// True for a path component that git (on any file system) treats as the `.git` directory.
bool IsGitComponent(absl::string_view component);
// True when any component of `path` is one.
bool IsGitPath(absl::string_view path);

// Why write-back must not touch `path` at all; nullopt when it may.
std::optional<std::string> RefusalReason(absl::string_view path,
                                         const core::IgnoreRules& host_rules);

// The permission bits write-back applies (mode & 0777); sets *note when more bits were asked for.
uint32_t SanitizeMode(uint32_t mode, std::string* note);

// The lines of `dir`/.fstignore as the host sees them now (none when it does not exist; a
// symlinked one is not followed).
absl::StatusOr<std::vector<std::string>> UserIgnoreLines(const std::string& dir);
// The host's rules: the defaults, then `lines` (UserIgnoreLines, plus whatever the CLI adds).
core::IgnoreRules HostIgnoreRules(const std::vector<std::string>& lines);

// The rules the runner used for the output snapshot when the job changed `.fstignore` (defaults +
// the output's `.fstignore`), or nullopt when `.fstignore` is unchanged (then the base's rules
// are the host's, already applied).
absl::StatusOr<std::optional<core::IgnoreRules>> JobIgnoreRules(const core::Manifest& base,
                                                                const core::Manifest& output,
                                                                const BlobFetcher& fetch);

// Sorts base -> output into accepted changes and refusals (no file system access).
// `job_rules`: from JobIgnoreRules (nullptr: the job did not change `.fstignore`).
WritePlan PlanWriteBack(const core::Manifest& base, const core::Manifest& output,
                        const core::IgnoreRules& host_rules, const core::IgnoreRules* job_rules);

// Moves accepted changes whose path under `root` goes through a symlink or ends on something
// that is not a regular file (ResolveInsideWorkspace) to the refusals. Write-back checks again
// when it writes.
void CheckAgainstDirectory(const std::string& root, WritePlan* plan);

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_WRITE_POLICY_H_
