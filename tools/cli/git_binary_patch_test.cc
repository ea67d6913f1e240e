// Git binary patches against the real git: blob ids match `git hash-object`, and `git apply`
// takes our patches for added, changed and deleted binary files (and -R undoes them).
#include "tools/cli/git_binary_patch.h"

#include <stdlib.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tools/cli/subprocess.h"

namespace fastest::cli {
namespace {

class GitBinaryPatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastest_binary_patch_test_XXXXXX";
    repo_ = mkdtemp(tmpl);
    ASSERT_EQ(Git({"init", "-q"}).exit_code, 0);
  }
  void TearDown() override { RunProcess({"rm", "-rf", repo_}, {}, "").IgnoreError(); }

  ProcessResult Git(std::vector<std::string> args, absl::string_view stdin_data = "") {
    std::vector<std::string> argv = {"git", "-C", repo_, "-c", "core.hooksPath=/dev/null"};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<ProcessResult> r = RunProcess(argv, {}, stdin_data);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : ProcessResult{};
  }
  void Write(const std::string& rel, const std::string& content) {
    std::ofstream(repo_ + "/" + rel, std::ios::binary | std::ios::trunc) << content;
  }
  std::string Read(const std::string& rel) {
    std::ifstream in(repo_ + "/" + rel, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // A whole `diff --git` entry for `path`, as DiffPlan writes it.
  std::string Entry(const std::string& path, const std::optional<std::string>& before,
                    const std::optional<std::string>& after) {
    std::string header = absl::StrCat("diff --git a/", path, " b/", path, "\n");
    if (!before) absl::StrAppend(&header, "new file mode 100644\n");
    if (!after) absl::StrAppend(&header, "deleted file mode 100644\n");
    absl::StatusOr<std::string> body = GitBinaryPatch(before, after);
    EXPECT_TRUE(body.ok()) << body.status();
    return header + body.value_or("");
  }
  bool Apply(const std::string& patch, bool reverse = false) {
    Write(".patch", patch);
    std::vector<std::string> args = {"apply"};
    if (reverse) args.push_back("-R");
    args.push_back(repo_ + "/.patch");
    ProcessResult r = Git(args);
    EXPECT_EQ(r.exit_code, 0) << r.err << "\n" << patch;
    return r.exit_code == 0;
  }

  std::string repo_;
};

TEST_F(GitBinaryPatchTest, BlobIdsAndBase85MatchGit) {
  for (const std::string& content :
       {std::string(), std::string("hello\n"), std::string("a\0b\xff", 4)}) {
    ProcessResult r = Git({"hash-object", "--stdin"}, content);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(GitBlobId(content) + "\n", r.out);
  }
  // The empty content deflated at git's level (1): "HcmV?d00001" closes every git binary patch.
  EXPECT_EQ(GitBase85(std::string("\x78\x01\x03\x00\x00\x00\x00\x01", 8)), "cmV?d00001");
  EXPECT_EQ(GitBase85(std::string("\0\0\0\0", 4)), "00000");
}

TEST_F(GitBinaryPatchTest, GitApplyTakesAddedChangedAndDeletedBinaryFiles) {
  std::string big;
  for (int i = 0; i < 5000; ++i) big.push_back(static_cast<char>((i * 7919) % 251));
  const std::string old_bin = std::string("\x00\x01\x02 old\n", 8);
  Write("changed.bin", old_bin);
  Write("gone.bin", big);
  const std::string added = std::string("\x89PNG\r\n\x1a\n\0\0", 10) + big;
  const std::string changed = std::string("\x00\x01\x02 new and longer\n", 19);
  const std::string patch = Entry("added.bin", std::nullopt, added) +
                            Entry("changed.bin", old_bin, changed) +
                            Entry("gone.bin", big, std::nullopt);
  ASSERT_TRUE(Apply(patch));
  EXPECT_EQ(Read("added.bin"), added);
  EXPECT_EQ(Read("changed.bin"), changed);
  EXPECT_NE(access((repo_ + "/gone.bin").c_str(), F_OK), 0);
  // The reverse hunks undo it.
  ASSERT_TRUE(Apply(patch, /*reverse=*/true));
  EXPECT_EQ(Read("changed.bin"), old_bin);
  EXPECT_EQ(Read("gone.bin"), big);
  EXPECT_NE(access((repo_ + "/added.bin").c_str(), F_OK), 0);
}

TEST_F(GitBinaryPatchTest, APatchForOtherContentIsRefused) {
  Write("changed.bin", std::string("\0something else", 15));
  Write(".patch", Entry("changed.bin", std::string("\0expected", 9), std::string("\0new", 4)));
  ProcessResult r = Git({"apply", repo_ + "/.patch"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(Read("changed.bin"), std::string("\0something else", 15));
}

}  // namespace
}  // namespace fastest::cli
