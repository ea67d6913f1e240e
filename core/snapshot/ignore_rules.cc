// File: core/snapshot/ignore_rules.cc
#include "core/snapshot/ignore_rules.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fastest::core {

const std::vector<std::string>& IgnoreRules::DefaultPatterns() {
  static const std::vector<std::string>* defaults = new std::vector<std::string>{
      ".fst/", ".fst",  ".git/",  ".svn/", ".hg/", "node_modules/", "__pycache__/", ".DS_Store",
      "Thumbs.db", "*.pyc", "*.pyo", "*.class", "*.o", "*.obj", "*.exe", "*.dll", "*.so", "*.dylib"};
  return *defaults;
}

IgnoreRules::IgnoreRules() {
  for (const std::string& p : DefaultPatterns()) AddPattern(p);
}

IgnoreRules IgnoreRules::Empty() {
  IgnoreRules rules;
  rules.rules_.clear();
  rules.lines_.clear();
  return rules;
}

void IgnoreRules::AddPattern(absl::string_view line) {
  absl::string_view p = absl::StripAsciiWhitespace(line);
  if (p.empty() || p.front() == '#') return;
  lines_.emplace_back(p);
  Rule rule{Kind::kExact, "", false, false};
  if (p.front() == '!') {
    rule.negate = true;
    p.remove_prefix(1);
  }
  if (!p.empty() && p.back() == '/') {
    rule.dir_only = true;
    p.remove_suffix(1);
  }
  if (p.size() > 2 && p.front() == '*' && p.back() == '*') {
    rule.kind = Kind::kContains;
    rule.text = std::string(p.substr(1, p.size() - 2));
  } else if (!p.empty() && p.front() == '*') {
    rule.text = std::string(p.substr(1));
    // A lone "*" has an empty suffix; the original matches nothing with it.
    rule.kind = rule.text.empty() ? Kind::kNever : Kind::kSuffix;
  } else if (!p.empty() && p.back() == '*') {
    rule.kind = Kind::kExact;  // Quirk kept: "tmp*" means exactly "tmp", not a prefix glob.
    rule.text = std::string(p.substr(0, p.size() - 1));
  } else {
    rule.kind = Kind::kExact;
    rule.text = std::string(p);
  }
  if (rule.kind == Kind::kExact && rule.text.empty()) rule.kind = Kind::kNever;
  rules_.push_back(std::move(rule));
}

void IgnoreRules::AddPatternsFromText(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) AddPattern(line);
}

absl::Status IgnoreRules::AddFstignoreFile(const std::string& root) {
  std::string path = absl::StrCat(root, "/.fstignore");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    // A symlinked .fstignore is not followed (it could point outside the workspace).
    if (errno == ENOENT || errno == ELOOP) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("open ", path, ": ", strerror(errno)));
  }
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return absl::InternalError(absl::StrCat("read ", path, ": ", strerror(err)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (1 << 20)) {
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat(path, ": larger than 1 MiB"));
    }
  }
  close(fd);
  AddPatternsFromText(text);
  return absl::OkStatus();
}

bool IgnoreRules::Matches(const Rule& rule, absl::string_view path, absl::string_view name) {
  const std::string& x = rule.text;
  switch (rule.kind) {
    case Kind::kNever:
      return false;
    case Kind::kContains:
      return absl::StrContains(name, x) || absl::StrContains(path, x);
    case Kind::kSuffix:
      return absl::EndsWith(name, x) || absl::EndsWith(path, x);
    case Kind::kExact:
      if (name == x || path == x) return true;
      if (path.size() > x.size()) {
        if (absl::StartsWith(path, x) && path[x.size()] == '/') return true;
        if (absl::EndsWith(path, x) && path[path.size() - x.size() - 1] == '/') return true;
      }
      return absl::StrContains(path, absl::StrCat("/", x, "/"));
  }
  return false;
}

bool IgnoreRules::IsIgnored(absl::string_view rel_path, bool is_dir) const {
  size_t slash = rel_path.rfind('/');
  absl::string_view name = slash == absl::string_view::npos ? rel_path : rel_path.substr(slash + 1);
  bool ignored = false;
  for (const Rule& rule : rules_) {
    if (rule.dir_only && !is_dir) continue;
    if (Matches(rule, rel_path, name)) ignored = !rule.negate;
  }
  return ignored;
}

bool IgnoreRules::IsIgnoredPath(absl::string_view rel_path) const {
  for (size_t slash = rel_path.find('/'); slash != absl::string_view::npos;
       slash = rel_path.find('/', slash + 1)) {
    if (IsIgnored(rel_path.substr(0, slash), /*is_dir=*/true)) return true;
  }
  return IsIgnored(rel_path, /*is_dir=*/false);
}

}  // namespace fastest::core
