#include "tools/cli/review.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/snapshot/safe_fs.h"
#include "tools/cli/git_branch.h"
#include "tools/cli/log_format.h"
#include "tools/cli/write_back.h"

namespace fastest::cli {
namespace {

void PrintRefusals(const std::vector<Refusal>& refused) {
  fputs(FormatRefusals(refused).c_str(), stdout);
}

bool AskYesNo(const std::string& question) {
  fprintf(stderr, "%s [y/N] ", question.c_str());
  fflush(stderr);
  char line[64];
  if (!fgets(line, sizeof(line), stdin)) return false;
  std::string answer = absl::AsciiStrToLower(absl::StripAsciiWhitespace(line));
  return answer == "y" || answer == "yes";
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

std::string CommitMessage(const core::Job& job) {
  std::string first = job.prompt.substr(0, job.prompt.find('\n'));
  if (first.size() > 60) first = first.substr(0, 57) + "...";
  return absl::StrCat("fastest: ", first.empty() ? "job output" : first, "\n\n", job.prompt,
                      "\n\nJob: ", job.id, "\n");
}

// Writes the plan's patch (binary files included) to `path`.
absl::Status WritePatch(const std::string& dir, const WritePlan& plan, const BlobFetcher& fetch,
                        const std::string& path) {
  absl::StatusOr<std::string> patch = DiffPlan(plan, fetch, DiffStyle::kPatch);
  if (!patch.ok()) return patch.status();
  if (absl::Status s = core::WriteFileWithMode(path, *patch, 0644); !s.ok()) return s;
  Step(absl::StrCat("patch of ", Plural(plan.accepted.size(), "change"), " written to ", path,
                    " (apply it with: git -C ", ShellQuote(dir), " apply ", ShellQuote(path),
                    "); nothing written to ", dir));
  return absl::OkStatus();
}

}  // namespace

std::string EscapeControl(absl::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    // C1 controls (U+0080..U+009F) are 0xC2 0x80..0x9F in UTF-8; some terminals obey them.
    bool c1 = c == 0xC2 && i + 1 < text.size() &&
              static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
              static_cast<unsigned char>(text[i + 1]) <= 0x9F;
    if ((c == '\n' || c == '\t') && keep_newlines) {
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      absl::StrAppend(&out, absl::StrFormat("\\x%02x", c));
    } else if (c1) {
      absl::StrAppend(&out, absl::StrFormat("\\u%04x", static_cast<unsigned char>(text[++i])));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string FormatRefusals(const std::vector<Refusal>& refused) {
  std::string out;
  for (const Refusal& r : refused) {
    absl::StrAppend(&out, "  ! ", ChangeLetter(r.kind), " ", EscapeControl(r.path, false),
                    ": refused: ", EscapeControl(r.reason, false), "\n");
  }
  return out;
}

std::string FormatPlan(const WritePlan& plan) {
  std::string out;
  for (const Change& c : plan.accepted) {
    std::string extra;
    if (c.kind == ChangeKind::kMode) {
      extra = absl::StrFormat(" (mode %o -> %o)", c.before->mode & 0777, c.after->mode);
    }
    if (!c.note.empty()) absl::StrAppend(&extra, " (", c.note, ")");
    absl::StrAppend(&out, "  ", ChangeLetter(c.kind), " ", EscapeControl(c.path, false), extra,
                    "\n");
  }
  absl::StrAppend(&out, FormatRefusals(plan.refused));
  size_t counts[4] = {0, 0, 0, 0};
  for (const Change& c : plan.accepted) ++counts[static_cast<int>(c.kind)];
  absl::StrAppend(&out, absl::StrFormat("%s: %zu added, %zu modified, %zu deleted, %zu mode; %s\n",
                                        Plural(plan.accepted.size(), "change"), counts[0],
                                        counts[1], counts[2], counts[3],
                                        Plural(plan.refused.size(), "refused path")));
  return out;
}

std::string ShellQuote(const std::string& s) {
  bool plain = !s.empty();
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && !strchr("/._-+=:,@", c)) {
      plain = false;
    }
  }
  if (plain) return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

int ReviewAndWriteBack(const std::string& dir, const core::Manifest& base,
                       const core::Manifest& output, const core::IgnoreRules& host_rules,
                       const BlobFetcher& fetch, const core::Job& job,
                       const WriteBackOptions& options) {
  absl::StatusOr<std::optional<core::IgnoreRules>> job_rules =
      JobIgnoreRules(base, output, fetch);
  if (!job_rules.ok()) {
    fprintf(stderr, "fastest: reading the job's .fstignore: %s\n", Msg(job_rules.status()).c_str());
    return 1;
  }
  WritePlan plan = PlanWriteBack(base, output, host_rules, job_rules->has_value() ? &**job_rules
                                                                                  : nullptr);
  CheckAgainstDirectory(dir, &plan);
  printf("job %s changed:\n", job.id.c_str());
  fputs(FormatPlan(plan).c_str(), stdout);
  fflush(stdout);
  if (options.diff) {
    absl::StatusOr<std::string> text = DiffPlan(plan, fetch);
    if (!text.ok()) {
      fprintf(stderr, "fastest: building the diff: %s\n", Msg(text.status()).c_str());
      return 1;
    }
    // The agent wrote this text: no escape sequence of it reaches the terminal.
    std::string shown = EscapeControl(*text, /*keep_newlines=*/true);
    fwrite(shown.data(), 1, shown.size(), stdout);
    fflush(stdout);
  }
  bool failed = !plan.refused.empty();

  if (!options.patch.empty()) {
    if (absl::Status written = WritePatch(dir, plan, fetch, options.patch); !written.ok()) {
      fprintf(stderr, "fastest: --patch %s: %s\n", options.patch.c_str(), Msg(written).c_str());
      return 1;
    }
  }
  if (!options.branch.empty()) {
    absl::StatusOr<BranchCommit> commit =
        CommitPlanToBranch(dir, plan, fetch, options.branch, CommitMessage(job));
    if (!commit.ok()) {
      fprintf(stderr, "fastest: --branch %s: %s\n", options.branch.c_str(),
              Msg(commit.status()).c_str());
      return 1;
    }
    Step(absl::StrCat("branch ", options.branch, " created: commit ", commit->commit.substr(0, 12),
                      " on ", commit->parent.substr(0, 12), " (HEAD) with ",
                      Plural(plan.accepted.size(), "change"),
                      "; working tree, index and HEAD unchanged"));
  }
  if (!options.patch.empty() || !options.branch.empty()) return failed ? 1 : 0;

  if (plan.accepted.empty()) {
    Step(absl::StrCat("nothing to write to ", dir));
    return failed ? 1 : 0;
  }
  std::string hint = absl::StrCat("fastest apply ", job.id, " --dir ", ShellQuote(dir),
                                  options.apply_hint_flags);
  if (!options.yes) {
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
      Step(absl::StrCat("nothing written (no terminal to ask on). Review: ", hint,
                        " --diff; apply: ", hint, " --yes"));
      return failed ? 1 : 0;
    }
    if (!AskYesNo(absl::StrCat("Write ", Plural(plan.accepted.size(), "change"), " to ", dir,
                               "?"))) {
      Step(absl::StrCat("nothing written. Apply later: ", hint, " --yes"));
      return 1;
    }
  }
  absl::StatusOr<ApplyResult> applied = ApplyPlan(dir, plan, fetch);
  if (!applied.ok()) {
    fprintf(stderr, "fastest: writing the result into %s: %s\n", dir.c_str(),
            Msg(applied.status()).c_str());
    return 1;
  }
  PrintRefusals(applied->refused);
  for (const std::string& p : applied->conflicts) {
    printf("  ! %s\n", EscapeControl(p, /*keep_newlines=*/false).c_str());
  }
  fflush(stdout);
  Step(absl::StrCat(applied->written() == 0 ? "nothing written" :
                    absl::StrCat(Plural(applied->written(), "change"), " written to ", dir),
                    applied->conflicts.empty() ? ""
                        : absl::StrCat(", ", Plural(applied->conflicts.size(), "conflict"),
                                       " kept local"),
                    plan.refused.size() + applied->refused.size() == 0 ? ""
                        : absl::StrCat(", ", Plural(plan.refused.size() + applied->refused.size(),
                                                    "path"), " refused")));
  return failed || !applied->refused.empty() || !applied->conflicts.empty() ? 1 : 0;
}

}  // namespace fastest::cli
