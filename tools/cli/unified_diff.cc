#include "tools/cli/unified_diff.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace fastest::cli {
namespace {

// Lines keep their trailing '\n'; a last line without one is marked.
struct Line {
  absl::string_view text;
  bool has_newline = true;
  bool operator==(const Line& o) const { return text == o.text && has_newline == o.has_newline; }
};

std::vector<Line> SplitLines(absl::string_view s) {
  std::vector<Line> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == absl::string_view::npos) {
      out.push_back({s.substr(start), false});
      break;
    }
    out.push_back({s.substr(start, nl - start), true});
    start = nl + 1;
  }
  return out;
}

enum class Op { kKeep, kDel, kAdd };
struct Edit {
  Op op;
  size_t old_index;  // valid for kKeep/kDel
  size_t new_index;  // valid for kKeep/kAdd
};

std::vector<Edit> Lcs(const std::vector<Line>& a, const std::vector<Line>& b) {
  // Trim the common prefix/suffix first: most edits are small.
  size_t pre = 0;
  while (pre < a.size() && pre < b.size() && a[pre] == b[pre]) ++pre;
  size_t suf = 0;
  while (suf < a.size() - pre && suf < b.size() - pre &&
         a[a.size() - 1 - suf] == b[b.size() - 1 - suf]) {
    ++suf;
  }
  size_t n = a.size() - pre - suf, m = b.size() - pre - suf;
  std::vector<std::vector<uint32_t>> dp(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      dp[i][j] = a[pre + i] == b[pre + j] ? dp[i + 1][j + 1] + 1
                                          : std::max(dp[i + 1][j], dp[i][j + 1]);
    }
  }
  std::vector<Edit> out;
  for (size_t k = 0; k < pre; ++k) out.push_back({Op::kKeep, k, k});
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[pre + i] == b[pre + j]) {
      out.push_back({Op::kKeep, pre + i, pre + j});
      ++i;
      ++j;
    } else if (i < n && (j == m || dp[i + 1][j] >= dp[i][j + 1])) {
      // Deletions before additions, like diff(1).
      out.push_back({Op::kDel, pre + i, 0});
      ++i;
    } else {
      out.push_back({Op::kAdd, 0, pre + j});
      ++j;
    }
  }
  for (size_t k = 0; k < suf; ++k) {
    out.push_back({Op::kKeep, a.size() - suf + k, b.size() - suf + k});
  }
  return out;
}

void AppendLine(std::string* out, char prefix, const Line& line) {
  absl::StrAppend(out, std::string(1, prefix), line.text, "\n");
  if (!line.has_newline) absl::StrAppend(out, "\\ No newline at end of file\n");
}

std::string Range(size_t start, size_t count) {
  // diff -u: an empty range is "start,0" with start = line before it.
  if (count == 1) return std::to_string(start);
  return absl::StrCat(start, ",", count);
}

}  // namespace

std::string UnifiedDiff(absl::string_view path, const std::optional<std::string>& old_text,
                        const std::optional<std::string>& new_text, int context) {
  UnifiedDiffOptions options;
  options.context = context;
  return *UnifiedDiffOrBinary(path, old_text, new_text, options);
}

std::optional<std::string> UnifiedDiffOrBinary(absl::string_view path,
                                               const std::optional<std::string>& old_text,
                                               const std::optional<std::string>& new_text,
                                               const UnifiedDiffOptions& options) {
  const int context = options.context;
  std::string a_name = old_text ? absl::StrCat("a/", path) : "/dev/null";
  std::string b_name = new_text ? absl::StrCat("b/", path) : "/dev/null";
  std::string old_s = old_text.value_or(""), new_s = new_text.value_or("");
  if (old_text && new_text && old_s == new_s) return "";
  std::string header = absl::StrCat("--- ", a_name, "\n+++ ", b_name, "\n");
  bool binary = old_s.find('\0') != std::string::npos || new_s.find('\0') != std::string::npos;
  if (binary) {
    if (options.full_text) return std::nullopt;
    return absl::StrCat("Binary files ", a_name, " and ", b_name, " differ\n");
  }
  std::vector<Line> a = SplitLines(old_s), b = SplitLines(new_s);
  if (a.empty() && b.empty()) return "";
  std::vector<Edit> edits;
  if (a.size() > 20000 || b.size() > 20000 ||
      static_cast<double>(a.size()) * static_cast<double>(b.size()) > 25e6) {
    // The DP would be too big: trimmed prefix/suffix usually keep it small, but be safe.
    if (!options.full_text) {
      return absl::StrCat("Files ", a_name, " and ", b_name, " differ (too large to show)\n");
    }
    for (size_t i = 0; i < a.size(); ++i) edits.push_back({Op::kDel, i, 0});
    for (size_t j = 0; j < b.size(); ++j) edits.push_back({Op::kAdd, 0, j});
  } else {
    edits = Lcs(a, b);
  }
  std::string out = header;
  size_t k = 0;
  while (k < edits.size()) {
    // Find the next change.
    size_t first = k;
    while (first < edits.size() && edits[first].op == Op::kKeep) ++first;
    if (first == edits.size()) break;
    size_t hunk_start = first >= static_cast<size_t>(context) ? first - context : 0;
    hunk_start = std::max(hunk_start, k);
    // Extend while changes are within 2*context of each other.
    size_t end = first;
    size_t last_change = first;
    while (end < edits.size()) {
      if (edits[end].op != Op::kKeep) {
        last_change = end;
      } else if (end - last_change > static_cast<size_t>(2 * context)) {
        break;
      }
      ++end;
    }
    size_t hunk_end = std::min(edits.size(), last_change + 1 + context);
    size_t old_start = 0, new_start = 0, old_count = 0, new_count = 0;
    // Line numbers: the first old/new line the hunk touches.
    size_t old_line = 0, new_line = 0;
    for (size_t e = 0; e < hunk_start; ++e) {
      if (edits[e].op != Op::kAdd) ++old_line;
      if (edits[e].op != Op::kDel) ++new_line;
    }
    std::string body;
    for (size_t e = hunk_start; e < hunk_end; ++e) {
      const Edit& ed = edits[e];
      if (ed.op == Op::kKeep) {
        AppendLine(&body, ' ', a[ed.old_index]);
        ++old_count;
        ++new_count;
      } else if (ed.op == Op::kDel) {
        AppendLine(&body, '-', a[ed.old_index]);
        ++old_count;
      } else {
        AppendLine(&body, '+', b[ed.new_index]);
        ++new_count;
      }
    }
    old_start = old_count == 0 ? old_line : old_line + 1;
    new_start = new_count == 0 ? new_line : new_line + 1;
    absl::StrAppend(&out, "@@ -", Range(old_start, old_count), " +", Range(new_start, new_count),
                    " @@\n", body);
    k = hunk_end;
  }
  return out;
}

}  // namespace fastest::cli
