#include "tools/cli/git_branch.h"

#include <stdlib.h>
#include <unistd.h>

#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "tools/cli/subprocess.h"

namespace fastest::cli {
namespace {

// Runs git on `dir` with hooks and other configured helpers switched off.
class Git {
 public:
  explicit Git(std::string dir) : dir_(std::move(dir)) {}
  void set_index_file(std::string path) { env_["GIT_INDEX_FILE"] = std::move(path); }

  absl::StatusOr<ProcessResult> Run(const std::vector<std::string>& args,
                                    absl::string_view stdin_data = "") {
    std::vector<std::string> argv = {"git",      "-c", "core.hooksPath=/dev/null",
                                     "-c",       "core.fsmonitor=false",
                                     "-c",       "gc.auto=0",
                                     "-C",       dir_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, env_, stdin_data);
  }
  // Run, requiring exit 0; returns stdout without the trailing newline.
  absl::StatusOr<std::string> Output(const std::vector<std::string>& args,
                                     absl::string_view stdin_data = "") {
    absl::StatusOr<ProcessResult> r = Run(args, stdin_data);
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "git ", args.empty() ? "" : args[0], " failed: ", absl::StripAsciiWhitespace(r->err)));
    }
    std::string out = r->out;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }

 private:
  std::string dir_;
  std::map<std::string, std::string> env_;
};

// A temporary directory, removed with what it holds (the index and its lock) when done.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = absl::StrCat(base && *base ? base : "/tmp", "/fastest-git-XXXXXX");
    if (mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~TempDir() {
    if (path_.empty()) return;
    unlink((path_ + "/index").c_str());
    unlink((path_ + "/index.lock").c_str());
    rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

absl::StatusOr<BranchCommit> CommitPlanToBranch(const std::string& dir, const WritePlan& plan,
                                                const BlobFetcher& fetch,
                                                const std::string& branch,
                                                const std::string& message) {
  Git git(dir);
  if (branch.empty() || branch[0] == '-') {
    return absl::InvalidArgumentError(absl::StrCat("invalid branch name '", branch, "'"));
  }
  const std::string ref = absl::StrCat("refs/heads/", branch);
  absl::StatusOr<ProcessResult> check = git.Run({"check-ref-format", ref});
  if (!check.ok()) return check.status();
  if (check->exit_code != 0) {
    return absl::InvalidArgumentError(absl::StrCat("invalid branch name '", branch, "'"));
  }
  absl::StatusOr<std::string> inside = git.Output({"rev-parse", "--is-inside-work-tree"});
  if (!inside.ok() || *inside != "true") {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is not inside a git work tree (--branch needs one)"));
  }
  absl::StatusOr<std::string> prefix = git.Output({"rev-parse", "--show-prefix"});
  if (!prefix.ok()) return prefix.status();
  absl::StatusOr<std::string> head = git.Output({"rev-parse", "--verify", "--quiet",
                                                 "HEAD^{commit}"});
  if (!head.ok()) {
    return absl::FailedPreconditionError("no commit is checked out (HEAD): --branch needs one");
  }
  absl::StatusOr<ProcessResult> exists = git.Run({"rev-parse", "--verify", "--quiet", ref});
  if (!exists.ok()) return exists.status();
  if (exists->exit_code == 0) {
    return absl::FailedPreconditionError(absl::StrCat("branch '", branch, "' already exists"));
  }

  TempDir tmp;
  if (tmp.path().empty()) return absl::InternalError("cannot create a temporary directory");
  git.set_index_file(tmp.path() + "/index");
  if (absl::StatusOr<std::string> r = git.Output({"read-tree", *head}); !r.ok()) return r.status();
  std::string index_info;  // -z records: "<mode> <object>\t<path>\0"
  for (const Change& c : plan.accepted) {
    const std::string path = *prefix + c.path;
    if (c.kind == ChangeKind::kDelete) {
      absl::StrAppend(&index_info, "0 ", std::string(40, '0'), "\t", path, std::string(1, '\0'));
      continue;
    }
    absl::StatusOr<std::string> bytes = fetch(c.after->hash);
    if (!bytes.ok()) return bytes.status();
    absl::StatusOr<std::string> blob = git.Output({"hash-object", "-w", "--stdin"}, *bytes);
    if (!blob.ok()) return blob.status();
    absl::StrAppend(&index_info, (c.after->mode & 0111) ? "100755 " : "100644 ", *blob, "\t", path,
                    std::string(1, '\0'));
  }
  if (absl::StatusOr<std::string> r = git.Output({"update-index", "-z", "--index-info"},
                                                 index_info);
      !r.ok()) {
    return r.status();
  }
  absl::StatusOr<std::string> tree = git.Output({"write-tree"});
  if (!tree.ok()) return tree.status();
  absl::StatusOr<std::string> head_tree = git.Output({"rev-parse", *head + "^{tree}"});
  if (!head_tree.ok()) return head_tree.status();
  if (*tree == *head_tree) {
    return absl::FailedPreconditionError(
        "the accepted changes are already in HEAD: no branch created");
  }
  absl::StatusOr<std::string> commit = git.Output({"commit-tree", *tree, "-p", *head}, message);
  if (!commit.ok()) return commit.status();
  // The empty old value makes update-ref fail if the branch appeared meanwhile: never overwrite.
  absl::StatusOr<std::string> updated =
      git.Output({"update-ref", "-m", "fastest: job output", ref, *commit, ""});
  if (!updated.ok()) return updated.status();
  return BranchCommit{*commit, *head};
}

}  // namespace fastest::cli
