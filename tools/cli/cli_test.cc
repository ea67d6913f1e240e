#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "core/snapshot/directory_scan.h"
#include "core/snapshot/manifest.h"
#include "core/snapshot/sha256.h"
#include "gtest/gtest.h"
#include "tools/cli/commands.h"
#include "tools/cli/log_format.h"
#include "tools/cli/review.h"
#include "tools/cli/subprocess.h"
#include "tools/cli/test_blobs.h"
#include "tools/cli/unified_diff.h"
#include "tools/cli/write_back.h"

namespace fastest::cli {
namespace {

TEST(UnifiedDiffTest, ModifiedFileHasHunkWithContext) {
  std::string a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
  std::string b = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
  EXPECT_EQ(UnifiedDiff("x.txt", a, b),
            "--- a/x.txt\n+++ b/x.txt\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");
}

TEST(UnifiedDiffTest, AddedDeletedAndEqual) {
  EXPECT_EQ(UnifiedDiff("n.txt", std::nullopt, std::string("hi\n")),
            "--- /dev/null\n+++ b/n.txt\n@@ -0,0 +1 @@\n+hi\n");
  EXPECT_EQ(UnifiedDiff("d.txt", std::string("a\nb\n"), std::nullopt),
            "--- a/d.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n");
  EXPECT_EQ(UnifiedDiff("same", std::string("x"), std::string("x")), "");
}

TEST(UnifiedDiffTest, NoNewlineMarkerAndBinary) {
  EXPECT_EQ(UnifiedDiff("f", std::string("a"), std::string("a\n")),
            "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+a\n");
  EXPECT_EQ(UnifiedDiff("bin", std::string("a\0b", 3), std::string("c")),
            "Binary files a/bin and b/bin differ\n");
}

TEST(UnifiedDiffTest, SeparateHunksWhenFarApart) {
  std::string a, b;
  for (int i = 1; i <= 30; ++i) {
    a += std::to_string(i) + "\n";
    b += (i == 2 || i == 28 ? "x" : std::to_string(i)) + "\n";
  }
  std::string d = UnifiedDiff("f", a, b);
  EXPECT_NE(d.find("@@ -1,5 +1,5 @@"), std::string::npos) << d;
  EXPECT_NE(d.find("@@ -25,6 +25,6 @@"), std::string::npos) << d;
}

class WriteBackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastest_cli_test_XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  void TearDown() override { system(("rm -rf " + root_).c_str()); }

  void Write(const std::string& rel, const std::string& content, mode_t mode = 0644) {
    std::string p = root_ + "/" + rel;
    system(("mkdir -p \"$(dirname " + p + ")\"").c_str());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
    chmod(p.c_str(), mode);
  }
  std::string Read(const std::string& rel) {
    std::ifstream in(root_ + "/" + rel, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool Exists(const std::string& rel) {
    struct stat st;
    return lstat((root_ + "/" + rel).c_str(), &st) == 0;
  }
  core::FileEntry Entry(const std::string& path, const std::string& content, uint32_t mode = 0644) {
    return blobs_.Entry(path, content, mode);
  }
  BlobFetcher Fetcher() { return blobs_.Fetcher(); }

  absl::StatusOr<ApplyResult> Apply(const core::Manifest& base, const core::Manifest& out) {
    WritePlan plan = PlanWriteBack(base, out, core::IgnoreRules(), nullptr);
    return ApplyPlan(root_, plan, Fetcher());
  }

  std::string root_;
  TestBlobs blobs_;
};

TEST_F(WriteBackTest, AppliesAddModifyDeleteAndMode) {
  Write("README.md", "old\n");
  Write("src/gone.sh", "bye\n");
  Write("keep.txt", "same\n");
  Write("run.sh", "echo\n");
  core::Manifest base, out;
  base.files = {Entry("README.md", "old\n"), Entry("keep.txt", "same\n"),
                Entry("run.sh", "echo\n"), Entry("src/gone.sh", "bye\n")};
  out.files = {Entry("README.md", "new\n"), Entry("keep.txt", "same\n"),
               Entry("run.sh", "echo\n", 0755), Entry("src/farewell.sh", "#!/bin/sh\n", 0755)};
  blobs_.reset_fetches();
  absl::StatusOr<ApplyResult> r = Apply(base, out);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->added, std::vector<std::string>{"src/farewell.sh"});
  EXPECT_EQ(r->modified, std::vector<std::string>{"README.md"});
  EXPECT_EQ(r->deleted, std::vector<std::string>{"src/gone.sh"});
  EXPECT_EQ(r->mode_changed, std::vector<std::string>{"run.sh"});
  EXPECT_TRUE(r->conflicts.empty());
  EXPECT_EQ(blobs_.fetches(), 2);  // only the changed contents are downloaded
  EXPECT_EQ(Read("README.md"), "new\n");
  EXPECT_EQ(Read("src/farewell.sh"), "#!/bin/sh\n");
  struct stat st;
  ASSERT_EQ(stat((root_ + "/src/farewell.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(stat((root_ + "/run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  EXPECT_FALSE(Exists("src/gone.sh"));

  // The result now matches the output manifest exactly.
  absl::StatusOr<core::Manifest> now = core::BuildManifestFromDirectory(root_);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(core::ManifestHash(*now), core::ManifestHash(out));
}

TEST_F(WriteBackTest, LocalEditsAreKeptAsConflicts) {
  Write("a.txt", "edited by the user\n");
  Write("b.txt", "also edited\n");
  core::Manifest base, out;
  base.files = {Entry("a.txt", "a\n"), Entry("b.txt", "b\n")};
  out.files = {Entry("a.txt", "agent\n")};  // modifies a, deletes b
  absl::StatusOr<ApplyResult> r = Apply(base, out);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->conflicts.size(), 2u);
  EXPECT_EQ(Read("a.txt"), "edited by the user\n");
  EXPECT_EQ(Read("b.txt"), "also edited\n");
}

TEST_F(WriteBackTest, RefusesPathsThroughSymlinks) {
  char tmpl[] = "/tmp/fastest_cli_outside_XXXXXX";
  std::string outside = mkdtemp(tmpl);
  ASSERT_EQ(symlink(outside.c_str(), (root_ + "/link").c_str()), 0);
  core::Manifest base, out;
  out.files = {Entry("link/pwned.txt", "x\n")};
  absl::StatusOr<ApplyResult> r = Apply(base, out);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->refused.size(), 1u);
  EXPECT_EQ(r->refused[0].path, "link/pwned.txt");
  EXPECT_EQ(r->refused[0].reason, "refusing to follow symlink 'link'");
  struct stat st;
  EXPECT_NE(stat((outside + "/pwned.txt").c_str(), &st), 0);
  system(("rm -rf " + outside).c_str());
}

TEST_F(WriteBackTest, DiffOutputIsGitStyle) {
  core::Manifest base, out;
  base.files = {Entry("README.md", "a\nb\n"), Entry("old.txt", "x\n")};
  out.files = {Entry("README.md", "a\nc\n"), Entry("new.sh", "echo\n", 0755)};
  absl::StatusOr<std::string> d =
      DiffPlan(PlanWriteBack(base, out, core::IgnoreRules(), nullptr), Fetcher());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d,
            "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n"
            "@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
            "diff --git a/new.sh b/new.sh\nnew file mode 100755\n--- /dev/null\n+++ b/new.sh\n"
            "@@ -0,0 +1 @@\n+echo\n"
            "diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n--- a/old.txt\n"
            "+++ /dev/null\n@@ -1 +0,0 @@\n-x\n");
}

TEST(ReviewTest, ShellQuoteOnlyWhenNeeded) {
  EXPECT_EQ(ShellQuote("/home/me/proj-1.2"), "/home/me/proj-1.2");
  EXPECT_EQ(ShellQuote("http://127.0.0.1:8787"), "http://127.0.0.1:8787");
  EXPECT_EQ(ShellQuote("my dir"), "'my dir'");
  EXPECT_EQ(ShellQuote("it's $(x)"), "'it'\\''s $(x)'");
  EXPECT_EQ(ShellQuote(""), "''");
}

TEST(ReviewTest, AgentChosenPathsCannotForgeTheSummary) {
  WritePlan plan;
  Change c;
  c.kind = ChangeKind::kAdd;
  c.path = "x\n3 changes: 0 added\x1b[2K\r";
  plan.accepted.push_back(c);
  plan.refused.push_back({ChangeKind::kAdd, ".git/\x1b]0;t\x07h", "git metadata"});
  plan.refused.push_back({ChangeKind::kDelete, "c1\xc2\x9bz", "ignored"});
  EXPECT_EQ(FormatPlan(plan),
            "  A x\\x0a3 changes: 0 added\\x1b[2K\\x0d\n"
            "  ! A .git/\\x1b]0;t\\x07h: refused: git metadata\n"
            "  ! D c1\\u009bz: refused: ignored\n"
            "1 change: 1 added, 0 modified, 0 deleted, 0 mode; 2 refused paths\n");
  EXPECT_EQ(EscapeControl("a\tb\nc\x1b[31m\xc3\xa9", true), "a\tb\nc\\x1b[31m\xc3\xa9");
}

TEST(SubprocessTest, FeedsStdinAndCollectsBothOutputs) {
  std::string big(3 << 20, 'x');  // far beyond a pipe's buffer, both ways
  absl::StatusOr<ProcessResult> r = RunProcess({"cat"}, {}, big);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_TRUE(r->out == big) << r->out.size();
  // A child that never reads its stdin neither blocks us nor kills us with SIGPIPE.
  r = RunProcess({"true"}, {}, big);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  r = RunProcess({"sh", "-c", "echo \"$FOO\"; echo err >&2; exit 3"}, {{"FOO", "a b;$(x)"}}, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "a b;$(x)\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_TRUE(absl::IsNotFound(RunProcess({"fastest-no-such-program"}, {}, "").status()));
}

TEST(LogFormatTest, PhasesAndAgentEvents) {
  EXPECT_EQ(FormatRunnerLine("[restoring] Restored 2 files (2 downloaded)").phase,
            Phase::kRestoring);
  EXPECT_TRUE(FormatRunnerLine("[restoring] Restored 2 files").show);
  EXPECT_FALSE(FormatRunnerLine("[restoring] Fetching workspace...").show);
  LogLineView tool = FormatRunnerLine(
      R"([agent] {"type":"tool_use","part":{"tool":"write","state":{"status":"completed","input":{"filePath":"src/a.sh","content":"x"}}}})");
  EXPECT_EQ(tool.phase, Phase::kAgent);
  EXPECT_TRUE(tool.show);
  EXPECT_EQ(tool.text, "    tool write src/a.sh");
  EXPECT_EQ(FormatRunnerLine(R"([agent] {"type":"text","part":{"text":"Done.\nBye"}})").text,
            "    says: Done. Bye");
  EXPECT_EQ(SummarizeAgentEvent(
                R"({"type":"error","error":{"name":"APIError","data":{"message":"stub failure"}}})"),
            "error: stub failure");
  EXPECT_FALSE(FormatRunnerLine(R"([agent] {"type":"step_start","part":{}})").show);
  EXPECT_EQ(FormatRunnerLine("[snapshotting] Changes: +1 ~1 -0").phase, Phase::kSnapshotting);
  EXPECT_TRUE(FormatRunnerLine("Job failed: boom").show);
  EXPECT_FALSE(FormatRunnerLine("============").show);
}

}  // namespace
}  // namespace fastest::cli

namespace fastest::cli {
namespace {

TEST(StatusTest, WarmPoolLineFromMetrics) {
  EXPECT_EQ(WarmPoolLine("fastest_sandboxes_running 1\n"), "");  // no pool
  const std::string text =
      "fastest_warm_pool_sandboxes{state=\"ready\"} 2\n"
      "fastest_warm_pool_sandboxes{state=\"booting\"} 1\n"
      "fastest_warm_pool_takes_total 14\n"
      "fastest_warm_pool_misses_total 3\n"
      "fastest_warm_pool_boot_seconds_bucket{le=\"+Inf\"} 4\n"
      "fastest_warm_pool_boot_seconds_sum 10\n"
      "fastest_warm_pool_boot_seconds_count 4\n";
  EXPECT_EQ(WarmPoolLine(text),
            "warm pool: 2 ready, 1 booting; 14 takes, 3 misses; boot 2.50 s on average (4)");
  EXPECT_EQ(WarmPoolLine("fastest_warm_pool_sandboxes{state=\"ready\"} 0\n"
                         "fastest_warm_pool_boot_seconds_count 0\n"),
            "warm pool: 0 ready, 0 booting; 0 takes, 0 misses");
}

}  // namespace
}  // namespace fastest::cli
