// File: core/snapshot/ignore_rules.h
//
// Ignore patterns of PROTOCOLS.md §2.5 (not gitignore): the defaults, then `.fstignore` lines.
// Grammar: leading '!' negates; trailing '/' = directory-only; `*X*` contains X; `*X` suffix X;
// `X*` is plain X (the star is dropped); plain X matches a whole component or path prefix.
// Every pattern is tested in order and the last match wins. Directory-only patterns apply to
// directories only; the scanner prunes ignored directories (Go CLI semantics, the recommended
// C++ profile), so a negation cannot resurrect a file inside an ignored directory.
//
// Example:
//   IgnoreRules rules;                               // defaults
//   FASTEST_RETURN_IF_ERROR(rules.AddFstignoreFile(root));
//   if (rules.IsIgnored("src/app.pyc", /*is_dir=*/false)) ...
#ifndef FASTEST_CORE_SNAPSHOT_IGNORE_RULES_H_
#define FASTEST_CORE_SNAPSHOT_IGNORE_RULES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fastest::core {

class IgnoreRules {
 public:
  // The default patterns, in their fixed order.
  static const std::vector<std::string>& DefaultPatterns();

  // IgnoreRules: starts with the defaults.
  IgnoreRules();

  // Empty: no patterns at all (for tests and callers that want full control).
  static IgnoreRules Empty();

  // AddPattern: one line; trimmed; blank lines and lines starting with '#' are skipped.
  void AddPattern(absl::string_view line);

  // AddPatternsFromText: every line of a .fstignore body.
  void AddPatternsFromText(absl::string_view text);

  // AddFstignoreFile: appends <root>/.fstignore if it exists (missing is fine; other errors are not).
  absl::Status AddFstignoreFile(const std::string& root);

  // IsIgnored: `rel_path` is '/'-separated and relative to the root.
  bool IsIgnored(absl::string_view rel_path, bool is_dir) const;

  // IsIgnoredPath: whether the scanner would leave out the file `rel_path`: the file itself is
  // ignored, or one of its parent directories is (the scanner prunes ignored directories, so a
  // negation cannot bring back a file below one).
  bool IsIgnoredPath(absl::string_view rel_path) const;

  // The pattern lines as added (after trimming), in order.
  const std::vector<std::string>& patterns() const { return lines_; }

 private:
  enum class Kind { kNever, kContains, kSuffix, kExact };
  struct Rule {
    Kind kind;
    std::string text;
    bool negate;
    bool dir_only;
  };
  static bool Matches(const Rule& rule, absl::string_view path, absl::string_view name);

  std::vector<Rule> rules_;
  std::vector<std::string> lines_;
};

}  // namespace fastest::core

#endif  // FASTEST_CORE_SNAPSHOT_IGNORE_RULES_H_
