#include "tools/cli/write_back.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/snapshot/safe_fs.h"
#include "core/snapshot/sha256.h"
#include "tools/cli/unified_diff.h"

namespace fastest::cli {
namespace {

using core::FileEntry;
using core::Manifest;

std::map<std::string, const FileEntry*> ByPath(const Manifest& m) {
  std::map<std::string, const FileEntry*> out;
  for (const FileEntry& e : m.files) out[e.path] = &e;
  return out;
}

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

std::string ModeString(uint32_t mode) { return absl::StrFormat("100%o", mode & 0777); }

}  // namespace

absl::StatusOr<ApplyResult> ApplyOutput(const std::string& root, const Manifest& base,
                                        const Manifest& output, const BlobFetcher& fetch) {
  ApplyResult result;
  auto base_map = ByPath(base);
  auto out_map = ByPath(output);
  for (const auto& [path, entry] : out_map) {
    auto it = base_map.find(path);
    const FileEntry* old = it == base_map.end() ? nullptr : it->second;
    if (old && old->hash == entry->hash && old->mode == entry->mode) continue;
    absl::StatusOr<std::string> abs = core::ResolveInsideWorkspace(root, path);
    if (!abs.ok()) {
      result.conflicts.push_back(absl::StrCat(path, ": ", abs.status().message()));
      continue;
    }
    std::optional<std::string> local = LocalHash(*abs);
    if (old && old->hash == entry->hash) {
      // Mode-only change.
      if (local && *local == entry->hash && chmod(abs->c_str(), entry->mode & 0777) == 0) {
        result.mode_changed.push_back(path);
      } else {
        result.conflicts.push_back(absl::StrCat(path, ": changed locally; mode not applied"));
      }
      continue;
    }
    bool expected_local = old ? (local && *local == old->hash) : !local.has_value();
    bool already = local && *local == entry->hash;
    if (!expected_local && !already) {
      result.conflicts.push_back(
          absl::StrCat(path, old ? ": changed locally since the upload; kept yours"
                                 : ": created locally meanwhile; kept yours"));
      continue;
    }
    absl::StatusOr<std::string> bytes = fetch(entry->hash);
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(),
                          absl::StrCat("downloading ", path, ": ", bytes.status().message()));
    }
    if (absl::Status s = core::WriteFileWithMode(*abs, *bytes, entry->mode); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("writing ", path, ": ", s.message()));
    }
    (old ? result.modified : result.added).push_back(path);
  }
  for (const auto& [path, old] : base_map) {
    if (out_map.count(path)) continue;
    absl::StatusOr<std::string> abs = core::ResolveInsideWorkspace(root, path);
    if (!abs.ok()) {
      result.conflicts.push_back(absl::StrCat(path, ": ", abs.status().message()));
      continue;
    }
    std::optional<std::string> local = LocalHash(*abs);
    if (!local) continue;  // already gone
    if (*local != old->hash) {
      result.conflicts.push_back(absl::StrCat(path, ": deleted by the job but changed locally; kept"));
      continue;
    }
    if (unlink(abs->c_str()) != 0) {
      return absl::InternalError(absl::StrCat("deleting ", path, ": ", strerror(errno)));
    }
    PruneEmptyDirs(root, path);
    result.deleted.push_back(path);
  }
  return result;
}

absl::StatusOr<std::string> DiffOutput(const Manifest& base, const Manifest& output,
                                       const BlobFetcher& fetch) {
  auto base_map = ByPath(base);
  auto out_map = ByPath(output);
  std::map<std::string, std::pair<const FileEntry*, const FileEntry*>> all;
  for (const auto& [p, e] : base_map) all[p].first = e;
  for (const auto& [p, e] : out_map) all[p].second = e;
  std::string out;
  for (const auto& [path, pair] : all) {
    const FileEntry* a = pair.first;
    const FileEntry* b = pair.second;
    if (a && b && a->hash == b->hash && a->mode == b->mode) continue;
    absl::StrAppend(&out, "diff --git a/", path, " b/", path, "\n");
    if (!a) absl::StrAppend(&out, "new file mode ", ModeString(b->mode), "\n");
    if (!b) absl::StrAppend(&out, "deleted file mode ", ModeString(a->mode), "\n");
    if (a && b && a->mode != b->mode) {
      absl::StrAppend(&out, "old mode ", ModeString(a->mode), "\nnew mode ", ModeString(b->mode),
                      "\n");
    }
    if (a && b && a->hash == b->hash) continue;
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
    absl::StrAppend(&out, UnifiedDiff(path, old_text, new_text));
  }
  return out;
}

}  // namespace fastest::cli
