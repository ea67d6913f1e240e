// Pure parts of the emulator (no Docker needed): the tar writer, the process-tree killer and the
// --fail-next flag.
#include "tools/cf_bridge_emulator/docker_sandboxes.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tools/cf_bridge_emulator/bridge_emulator.h"

namespace fastest::tools::cf_bridge_emulator {
namespace {

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir == nullptr ? "/tmp" : dir;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(BuildTarTest, GnuTarExtractsShortAndLongNames) {
  std::string dir = absl::StrCat(TempDir(), "/tar_test");
  ASSERT_EQ(std::system(absl::StrCat("rm -rf ", dir, " && mkdir -p ", dir).c_str()), 0);
  std::string long_name(150, 'n');
  std::string payload("bin\0ary\xff data", 14);
  for (const std::string& name : {std::string("short.txt"), long_name}) {
    std::string tar = BuildTar(name, payload, 0600);
    EXPECT_EQ(tar.size() % 512, 0u);
    std::string tar_path = absl::StrCat(dir, "/a.tar");
    std::ofstream(tar_path, std::ios::binary) << tar;
    ASSERT_EQ(std::system(absl::StrCat("tar -xf ", tar_path, " -C ", dir).c_str()), 0) << name;
    EXPECT_EQ(ReadAll(absl::StrCat(dir, "/", name)), payload);
  }
}

TEST(KillProcessTreeTest, KillsChildAndGrandchild) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execl("/bin/sh", "sh", "-c", "sleep 60 & sleep 60; wait", static_cast<char*>(nullptr));
    _exit(127);
  }
  usleep(200 * 1000);
  EXPECT_GE(KillProcessTree(child), 2);  // the shell and at least one sleep
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(FailNextFlagTest, Parses) {
  auto rule = ParseFailNextFlag("429:2");
  ASSERT_TRUE(rule.ok());
  EXPECT_EQ(rule->status, 429);
  EXPECT_EQ(rule->count, 2);
  auto with_path = ParseFailNextFlag("500:1:/exec");
  ASSERT_TRUE(with_path.ok());
  EXPECT_EQ(with_path->path, "/exec");
  EXPECT_EQ(ParseFailNextFlag("429")->count, 1);
  EXPECT_FALSE(ParseFailNextFlag("x:2").ok());
  EXPECT_FALSE(ParseFailNextFlag("429:0").ok());
  EXPECT_FALSE(ParseFailNextFlag("99").ok());
}

}  // namespace
}  // namespace fastest::tools::cf_bridge_emulator
