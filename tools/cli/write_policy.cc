#include "tools/cli/write_policy.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/snapshot/safe_fs.h"

namespace fastest::cli {
namespace {

using core::FileEntry;
using core::IgnoreRules;
using core::Manifest;

constexpr char kFstignore[] = ".fstignore";
constexpr uint64_t kMaxFstignoreBytes = 1 << 20;

std::map<std::string, const FileEntry*> ByPath(const Manifest& m) {
  std::map<std::string, const FileEntry*> out;
  for (const FileEntry& e : m.files) out[e.path] = &e;
  return out;
}

}  // namespace

const char* ChangeLetter(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kAdd:
      return "A";
    case ChangeKind::kModify:
      return "M";
    case ChangeKind::kDelete:
      return "D";
    case ChangeKind::kMode:
      return "m";
  }
  return "?";
}

bool IsGitComponent(absl::string_view component) {
  // Windows and macOS resolve ".GIT", ".git." and ".git " to ".git", and NTFS's short name of
  // ".git" is "GIT~1": refuse them all, like git's own core.protectNTFS/protectHFS checks.
  std::string c = absl::AsciiStrToLower(component);
  while (!c.empty() && (c.back() == '.' || c.back() == ' ')) c.pop_back();
  return c == ".git" || c == "git~1";
}

bool IsGitPath(absl::string_view path) {
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (IsGitComponent(part)) return true;
  }
  return false;
}

std::optional<std::string> RefusalReason(absl::string_view path, const IgnoreRules& host_rules) {
  if (absl::Status s = core::ValidateManifestPath(path); !s.ok()) {
    return absl::StrCat("unsafe path (", s.message(), ")");
  }
  if (IsGitPath(path)) return std::string("git metadata (.git) is never written back");
  if (path == kFstignore) {
    return std::string("the ignore rules are yours: the job's .fstignore is not applied");
  }
  if (host_rules.IsIgnoredPath(path)) return std::string("ignored on this machine (.fstignore)");
  return std::nullopt;
}

uint32_t SanitizeMode(uint32_t mode, std::string* note) {
  if (mode & ~07777u) {
    *note = "file type bits ignored; written as a regular file";
  } else if (mode & 07000) {
    *note = "setuid/setgid/sticky bits stripped";
  }
  return mode & 0777;
}

absl::StatusOr<std::vector<std::string>> UserIgnoreLines(const std::string& dir) {
  IgnoreRules user = IgnoreRules::Empty();
  if (absl::Status s = user.AddFstignoreFile(dir); !s.ok()) return s;
  return user.patterns();
}

IgnoreRules HostIgnoreRules(const std::vector<std::string>& lines) {
  IgnoreRules rules;
  for (const std::string& line : lines) rules.AddPattern(line);
  return rules;
}

absl::StatusOr<std::optional<IgnoreRules>> JobIgnoreRules(const Manifest& base,
                                                          const Manifest& output,
                                                          const BlobFetcher& fetch) {
  auto find = [](const Manifest& m) -> const FileEntry* {
    for (const FileEntry& e : m.files) {
      if (e.path == kFstignore) return &e;
    }
    return nullptr;
  };
  const FileEntry* before = find(base);
  const FileEntry* after = find(output);
  if ((before == nullptr) == (after == nullptr) && (!before || before->hash == after->hash)) {
    return std::optional<IgnoreRules>();
  }
  IgnoreRules rules;
  // The runner refuses a larger one too (IgnoreRules::AddFstignoreFile).
  if (after && after->size > kMaxFstignoreBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the job's .fstignore is ", after->size, " bytes (at most ", kMaxFstignoreBytes, ")"));
  }
  if (after) {
    absl::StatusOr<std::string> text = fetch(after->hash);
    if (!text.ok()) return text.status();
    rules.AddPatternsFromText(*text);
  }
  return std::optional<IgnoreRules>(std::move(rules));
}

WritePlan PlanWriteBack(const Manifest& base, const Manifest& output, const IgnoreRules& host_rules,
                        const IgnoreRules* job_rules) {
  std::map<std::string, std::pair<const FileEntry*, const FileEntry*>> all;
  for (const auto& [p, e] : ByPath(base)) all[p].first = e;
  for (const auto& [p, e] : ByPath(output)) all[p].second = e;
  WritePlan plan;
  for (const auto& [path, pair] : all) {
    const FileEntry* before = pair.first;
    const FileEntry* after = pair.second;
    Change change;
    change.path = path;
    if (before) change.before = *before;
    if (after) {
      change.after = *after;
      change.after->mode = SanitizeMode(after->mode, &change.note);
    }
    if (before && after) {
      if (before->hash == after->hash && (before->mode & 0777) == change.after->mode) continue;
      change.kind = before->hash == after->hash ? ChangeKind::kMode : ChangeKind::kModify;
    } else {
      change.kind = after ? ChangeKind::kAdd : ChangeKind::kDelete;
    }
    std::optional<std::string> reason = RefusalReason(path, host_rules);
    if (!reason && change.kind == ChangeKind::kDelete && job_rules &&
        job_rules->IsIgnoredPath(path)) {
      reason = "hidden by the job's .fstignore, not deleted";
    }
    if (reason) {
      plan.refused.push_back({change.kind, path, *reason});
      continue;
    }
    plan.accepted.push_back(std::move(change));
  }
  return plan;
}

void CheckAgainstDirectory(const std::string& root, WritePlan* plan) {
  std::vector<Change> kept;
  for (Change& c : plan->accepted) {
    absl::StatusOr<std::string> abs = core::ResolveInsideWorkspace(root, c.path);
    if (abs.ok()) {
      kept.push_back(std::move(c));
    } else {
      plan->refused.push_back({c.kind, c.path, std::string(abs.status().message())});
    }
  }
  plan->accepted = std::move(kept);
  std::sort(plan->refused.begin(), plan->refused.end(),
            [](const Refusal& a, const Refusal& b) { return a.path < b.path; });
}

}  // namespace fastest::cli
