#include "tools/cli/write_back.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/snapshot/safe_fs.h"
#include "core/snapshot/sha256.h"
#include "tools/cli/git_binary_patch.h"
#include "tools/cli/unified_diff.h"

namespace fastest::cli {
namespace {

// Hash of the local file now, or nullopt if it does not exist (or is not a regular file).
std::optional<std::string> LocalHash(const std::string& abs) {
  struct stat st;
  if (lstat(abs.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  absl::StatusOr<std::string> h = core::Sha256FileHex(abs);
  if (!h.ok()) return std::nullopt;
  return *h;
}

// Removes empty directories from dirname(rel) up to (not including) root.
void PruneEmptyDirs(const std::string& root, std::string rel) {
  while (true) {
    size_t slash = rel.rfind('/');
    if (slash == std::string::npos) return;
    rel = rel.substr(0, slash);
    if (rmdir((root + "/" + rel).c_str()) != 0) return;
  }
}

// chmod without following a symlink swapped in at `abs`: through an O_NOFOLLOW descriptor.
bool ChmodRegularFile(const std::string& abs, uint32_t mode) {
  int fd = open(abs.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && fchmod(fd, mode & 0777) == 0;
  close(fd);
  return ok;
}

// Git records only these two file modes.
std::string GitMode(uint32_t mode) { return (mode & 0111) ? "100755" : "100644"; }

}  // namespace

absl::StatusOr<ApplyResult> ApplyPlan(const std::string& root, const WritePlan& plan,
                                      const BlobFetcher& fetch) {
  ApplyResult result;
  for (const Change& c : plan.accepted) {
    absl::StatusOr<std::string> abs = core::ResolveInsideWorkspace(root, c.path);
    if (!abs.ok()) {
      result.refused.push_back({c.kind, c.path, std::string(abs.status().message())});
      continue;
    }
    std::optional<std::string> local = LocalHash(*abs);
    if (c.kind == ChangeKind::kMode) {
      if (local && *local == c.after->hash && ChmodRegularFile(*abs, c.after->mode)) {
        result.mode_changed.push_back(c.path);
      } else {
        result.conflicts.push_back(absl::StrCat(c.path, ": changed locally; mode not applied"));
      }
      continue;
    }
    if (c.kind == ChangeKind::kDelete) {
      if (!local) continue;  // already gone
      if (*local != c.before->hash) {
        result.conflicts.push_back(
            absl::StrCat(c.path, ": deleted by the job but changed locally; kept"));
        continue;
      }
      if (unlink(abs->c_str()) != 0) {
        return absl::InternalError(absl::StrCat("deleting ", c.path, ": ", strerror(errno)));
      }
      PruneEmptyDirs(root, c.path);
      result.deleted.push_back(c.path);
      continue;
    }
    bool expected_local = c.before ? (local && *local == c.before->hash) : !local.has_value();
    bool already = local && *local == c.after->hash;
    if (!expected_local && !already) {
      result.conflicts.push_back(
          absl::StrCat(c.path, c.before ? ": changed locally since the upload; kept yours"
                                        : ": created locally meanwhile; kept yours"));
      continue;
    }
    absl::StatusOr<std::string> bytes = fetch(c.after->hash);
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(),
                          absl::StrCat("downloading ", c.path, ": ", bytes.status().message()));
    }
    if (absl::Status s = core::WriteFileWithMode(*abs, *bytes, c.after->mode & 0777); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("writing ", c.path, ": ", s.message()));
    }
    (c.before ? result.modified : result.added).push_back(c.path);
  }
  return result;
}

absl::StatusOr<std::string> DiffPlan(const WritePlan& plan, const BlobFetcher& fetch,
                                     DiffStyle style) {
  std::string out;
  for (const Change& c : plan.accepted) {
    const std::optional<core::FileEntry>& a = c.before;
    const std::optional<core::FileEntry>& b = c.after;
    std::string header = absl::StrCat("diff --git a/", c.path, " b/", c.path, "\n");
    if (!a) absl::StrAppend(&header, "new file mode ", GitMode(b->mode), "\n");
    if (!b) absl::StrAppend(&header, "deleted file mode ", GitMode(a->mode), "\n");
    if (a && b && GitMode(a->mode) != GitMode(b->mode)) {
      absl::StrAppend(&header, "old mode ", GitMode(a->mode), "\nnew mode ", GitMode(b->mode),
                      "\n");
    }
    if (c.kind == ChangeKind::kMode) {
      // 0644 -> 0600 is invisible to git: nothing to show.
      if (GitMode(a->mode) != GitMode(b->mode)) absl::StrAppend(&out, header);
      continue;
    }
    std::optional<std::string> old_text, new_text;
    if (a) {
      absl::StatusOr<std::string> t = fetch(a->hash);
      if (!t.ok()) return t.status();
      old_text = std::move(*t);
    }
    if (b) {
      absl::StatusOr<std::string> t = fetch(b->hash);
      if (!t.ok()) return t.status();
      new_text = std::move(*t);
    }
    UnifiedDiffOptions options;
    options.full_text = style == DiffStyle::kPatch;
    std::optional<std::string> body = UnifiedDiffOrBinary(c.path, old_text, new_text, options);
    if (!body) {  // binary content in a patch: git's binary encoding
      absl::StatusOr<std::string> binary = GitBinaryPatch(old_text, new_text);
      if (!binary.ok()) return binary.status();
      body = std::move(*binary);
    }
    absl::StrAppend(&out, header, *body);
  }
  return out;
}

}  // namespace fastest::cli
