#include "runner/workspace_restore.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "core/api/testing/loopback_http_server.h"
#include "core/http/http_client.h"
#include "core/snapshot/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fastest::runner {
namespace {

using core::testing::LoopbackHttpServer;
using core::testing::TestRequest;
using core::testing::TestResponse;
using ::testing::HasSubstr;

std::string ReadAll(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& p, const std::string& s) {
  std::filesystem::create_directories(std::filesystem::path(p).parent_path());
  std::ofstream(p) << s;
}

class RestoreTest : public ::testing::Test {
 protected:
  RestoreTest()
      : server_([this](const TestRequest& req) {
          std::string prefix = "/v1/blobs/download/";
          if (absl::StartsWith(req.target, prefix)) {
            auto it = blobs_.find(req.target.substr(prefix.size()));
            if (it != blobs_.end()) return TestResponse{200, "application/octet-stream", it->second};
          }
          return TestResponse{404, "application/json",
                              R"({"error":{"code":"NOT_FOUND","message":"Blob not found"}})"};
        }),
        api_(http_, server_.base_url(), "t", core::RetryPolicy::NoRetry()) {
    root_ = ::testing::TempDir() + "/" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }

  core::FileEntry Add(const std::string& path, const std::string& content, uint32_t mode = 0644) {
    std::string h = core::Sha256Hex(content);
    blobs_[h] = content;
    return core::FileEntry{path, h, content.size(), mode, std::nullopt};
  }

  std::map<std::string, std::string> blobs_;
  LoopbackHttpServer server_;
  core::HttpClient http_;
  core::ApiClient api_;
  std::string root_;
};

TEST_F(RestoreTest, RestoresReusesAndDeletes) {
  core::Manifest m;
  m.files = {Add("a.txt", "alpha"), Add("bin/run.sh", "#!/bin/sh\n", 0755),
             Add("deep/x/y/z.txt", "zzz"), Add("empty", "")};
  WriteAll(root_ + "/a.txt", "alpha");            // reusable
  WriteAll(root_ + "/deep/x/y/z.txt", "stale!");  // wrong content
  WriteAll(root_ + "/stray.txt", "delete me");
  WriteAll(root_ + "/olddir/f", "delete me too");
  core::HashCache cache;
  auto stats = RestoreWorkspace(api_, m, root_, &cache, 4);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->files, 4u);
  EXPECT_EQ(stats->reused, 1u);
  EXPECT_EQ(stats->downloaded, 3u);
  EXPECT_EQ(stats->deleted, 2u);
  EXPECT_EQ(ReadAll(root_ + "/deep/x/y/z.txt"), "zzz");
  EXPECT_FALSE(std::filesystem::exists(root_ + "/stray.txt"));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/olddir"));
  struct stat st;
  ASSERT_EQ(stat((root_ + "/bin/run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  EXPECT_EQ(cache.size(), 4u);
  // Only a.txt was read locally; the downloads never asked for it.
  for (const auto& r : server_.requests()) EXPECT_THAT(r.target, ::testing::Not(HasSubstr(m.files[0].hash)));
}

TEST_F(RestoreTest, CorruptBlobFailsWithHashMismatch) {
  core::Manifest m;
  m.files = {Add("good.txt", "good"), Add("bad.txt", "original")};
  blobs_[m.files[1].hash] = "tampered";
  auto stats = RestoreWorkspace(api_, m, root_, nullptr, 2);
  ASSERT_FALSE(stats.ok());
  EXPECT_THAT(std::string(stats.status().message()), HasSubstr("hash mismatch"));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/bad.txt"));
}

TEST_F(RestoreTest, SymlinkComponentRefusedBeforeAnyWrite) {
  std::string outside = root_ + "_outside";
  std::filesystem::remove_all(outside);
  std::filesystem::create_directories(outside);
  ASSERT_EQ(symlink(outside.c_str(), (root_ + "/evil").c_str()), 0);
  WriteAll(root_ + "/keep.txt", "untouched");
  core::Manifest m;
  m.files = {Add("a.txt", "a"), Add("evil/pwned.txt", "x")};
  auto stats = RestoreWorkspace(api_, m, root_, nullptr, 2);
  ASSERT_FALSE(stats.ok());
  EXPECT_THAT(std::string(stats.status().message()), HasSubstr("symlink"));
  EXPECT_TRUE(std::filesystem::is_empty(outside));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/a.txt"));
  EXPECT_EQ(ReadAll(root_ + "/keep.txt"), "untouched");  // nothing deleted either
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(RestoreTest, FileDirectoryConflictRefused) {
  core::Manifest m;
  m.files = {Add("a", "file"), Add("a/b", "nested")};
  auto stats = RestoreWorkspace(api_, m, root_, nullptr, 2);
  ASSERT_FALSE(stats.ok());
  EXPECT_THAT(std::string(stats.status().message()), HasSubstr("both a file and a directory"));
}

}  // namespace
}  // namespace fastest::runner
