// CommitPlanToBranch against real git repositories.
#include "tools/cli/git_branch.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "tools/cli/test_blobs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fastest::cli {
namespace {

using ::testing::HasSubstr;

class GitBranchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastest_git_branch_test_XXXXXX";
    repo_ = mkdtemp(tmpl);
    setenv("GIT_AUTHOR_NAME", "Test", 1);
    setenv("GIT_AUTHOR_EMAIL", "test@localhost", 1);
    setenv("GIT_COMMITTER_NAME", "Test", 1);
    setenv("GIT_COMMITTER_EMAIL", "test@localhost", 1);
  }
  void TearDown() override { Sh("rm -rf '" + repo_ + "'"); }

  std::string Sh(const std::string& cmd) {
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
  }
  std::string Git(const std::string& args) {
    return Sh("cd '" + repo_ + "' && git -c core.hooksPath=/dev/null " + args + " 2>&1");
  }
  void Write(const std::string& rel, const std::string& content) {
    std::string p = repo_ + "/" + rel;
    Sh("mkdir -p \"$(dirname '" + p + "')\"");
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
  }
  Change Add(const std::string& path, const std::string& content, uint32_t mode = 0644) {
    Change c;
    c.kind = ChangeKind::kAdd;
    c.path = path;
    c.after = blobs_.Entry(path, content, mode);
    return c;
  }
  BlobFetcher Fetcher() { return blobs_.Fetcher(); }
  void InitRepo() {
    Git("init -q -b main");
    Write("app/main.py", "print(1)\n");
    Write("app/old.py", "old\n");
    Write("top.txt", "top\n");
    Git("add -A");
    Git("commit -qm base");
  }

  std::string repo_;
  TestBlobs blobs_;
};

TEST_F(GitBranchTest, PathsOfASubdirectoryLandUnderItsPrefix) {
  InitRepo();
  const std::string head = Git("rev-parse HEAD");
  WritePlan plan;
  plan.accepted.push_back(Add("new.sh", "#!/bin/sh\n", 0755));
  Change del;
  del.kind = ChangeKind::kDelete;
  del.path = "old.py";
  plan.accepted.push_back(del);
  absl::StatusOr<BranchCommit> c =
      CommitPlanToBranch(repo_ + "/app", plan, Fetcher(), "feature/x", "msg\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->parent + "\n", head);
  EXPECT_EQ(Git("diff-tree --no-commit-id --name-status -r feature/x"),
            "A\tapp/new.sh\nD\tapp/old.py\n");
  EXPECT_EQ(Git("ls-tree feature/x app/new.sh").substr(0, 6), "100755");
  EXPECT_EQ(Git("log -1 --format=%B feature/x"), "msg\n\n");
  EXPECT_EQ(Git("status --porcelain"), "");
  EXPECT_EQ(Git("rev-parse HEAD"), head);
}

TEST_F(GitBranchTest, RefusesBadNamesExistingBranchesAndNonRepositories) {
  WritePlan plan;
  plan.accepted.push_back(Add("a.txt", "a\n"));
  absl::StatusOr<BranchCommit> c = CommitPlanToBranch(repo_, plan, Fetcher(), "x", "m");
  EXPECT_THAT(c.status().message(), HasSubstr("not inside a git work tree"));
  Git("init -q -b main");
  c = CommitPlanToBranch(repo_, plan, Fetcher(), "x", "m");
  EXPECT_THAT(c.status().message(), HasSubstr("no commit is checked out"));
  InitRepo();
  for (const char* bad : {"", "-f", "a..b", "has space", "x.lock", "a/", "@{x}"}) {
    c = CommitPlanToBranch(repo_, plan, Fetcher(), bad, "m");
    EXPECT_TRUE(absl::IsInvalidArgument(c.status())) << bad << ": " << c.status();
  }
  c = CommitPlanToBranch(repo_, plan, Fetcher(), "main", "m");
  EXPECT_THAT(c.status().message(), HasSubstr("branch 'main' already exists"));
  // Nothing new relative to HEAD: no empty commit.
  WritePlan same;
  same.accepted.push_back(Add("top.txt", "top\n"));
  c = CommitPlanToBranch(repo_, same, Fetcher(), "same", "m");
  EXPECT_THAT(c.status().message(), HasSubstr("already in HEAD"));
  EXPECT_EQ(Git("branch --list same"), "");
}

}  // namespace
}  // namespace fastest::cli
