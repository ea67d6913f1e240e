// SnapshotWorkspace's read-once upload pipeline against the real server binary on loopback:
// files of every size class (many small ones filling several batch buffers, files larger than a
// batch, empty files, the same content under several names), with and without a base manifest.
// Every stored blob is fetched back and compared with the file it came from.
#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/api/api_client.h"
#include "core/http/asio_http_client.h"
#include "core/snapshot/sha256.h"
#include "gtest/gtest.h"
#include "runner/workspace_snapshot.h"
#include "tests/runner/e2e_harness.h"

namespace fastest {
namespace {

class SnapshotPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    server_ = testing::MakeServer(dir_ + "/server", "pipeline-token", testing::PickFreePort());
    ASSERT_TRUE(server_->Start().ok());
    api_ = std::make_unique<core::ApiClient>(http_, server_->url(), "pipeline-token");
    auto project = api_->CreateProject("pipeline");
    ASSERT_TRUE(project.ok()) << project.status();
    project_id_ = project->id;
  }

  void Write(const std::string& rel, const std::string& content) {
    testing::WriteTestFile(dir_ + "/tree", rel, content);
    files_[rel] = content;
  }

  // Every blob of the manifest is stored and equals the file's bytes.
  void ExpectStored(const core::Manifest& manifest) {
    ASSERT_EQ(manifest.files.size(), files_.size());
    for (const auto& e : manifest.files) {
      const std::string& content = files_.at(e.path);
      EXPECT_EQ(e.hash, core::Sha256Hex(content)) << e.path;
      auto blob = api_->DownloadBlob(e.hash);
      ASSERT_TRUE(blob.ok()) << e.path << ": " << blob.status();
      EXPECT_TRUE(*blob == content) << e.path;
    }
  }

  std::string dir_;
  std::unique_ptr<testing::ServerProcess> server_;
  core::AsioHttpClient http_;
  std::unique_ptr<core::ApiClient> api_;
  std::string project_id_;
  std::map<std::string, std::string> files_;
};

TEST_F(SnapshotPipelineTest, EveryBlobIsUploadedOnceWithItsExactBytes) {
  std::mt19937 rng(7);
  auto random_bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    return s;
  };
  // ~600 small files (several 1 MiB batches), three larger than a batch, empty files and
  // duplicated content (one blob, several paths).
  for (int i = 0; i < 600; ++i) Write(absl::StrCat("d", i % 7, "/f", i), random_bytes(50 + i * 17));
  Write("big/one.bin", random_bytes(1 << 20));           // exactly a batch: does not fit with slack
  Write("big/two.bin", random_bytes((3 << 20) + 5));
  Write("big/three.bin", random_bytes((9 << 20) + 1));   // above the read-once limit too
  Write("empty/a", "");
  Write("empty/b", "");
  const std::string same = random_bytes(4000);
  for (int i = 0; i < 5; ++i) Write(absl::StrCat("dup/", i), same);

  runner::SnapshotRequest req;
  req.root = dir_ + "/tree";
  req.project_id = project_id_;
  req.source = "cli";
  auto full = runner::SnapshotWorkspace(*api_, req);
  ASSERT_TRUE(full.ok()) << full.status();
  const size_t unique = files_.size() - 1 - 4;  // one empty blob, one blob for the five dups
  EXPECT_EQ(full->unique_blobs, unique);
  EXPECT_EQ(full->blobs_uploaded, unique);
  ExpectStored(full->manifest);

  // Again: everything is stored already, nothing is uploaded.
  auto again = runner::SnapshotWorkspace(*api_, req);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->blobs_uploaded, 0u);
  EXPECT_EQ(again->manifest_hash, full->manifest_hash);

  // With the first manifest as base: only the changed and new contents go up.
  Write("d3/f3", "changed");
  Write("d3/new", "new file");
  Write("dup/5", same);  // known content under a new name: no upload
  req.base_manifest = &full->manifest;
  req.parent_snapshot_id = full->snapshot.id;
  auto inc = runner::SnapshotWorkspace(*api_, req);
  ASSERT_TRUE(inc.ok()) << inc.status();
  EXPECT_EQ(inc->blobs_uploaded, 2u);
  ExpectStored(inc->manifest);
}

// A server restarted between snapshots still has every blob (the pack index is reloaded).
TEST_F(SnapshotPipelineTest, StoredBlobsSurviveAServerRestart) {
  for (int i = 0; i < 50; ++i) Write(absl::StrCat("f", i), std::string(1000 + i, 'a' + i % 26));
  runner::SnapshotRequest req;
  req.root = dir_ + "/tree";
  req.project_id = project_id_;
  req.source = "cli";
  auto first = runner::SnapshotWorkspace(*api_, req);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->blobs_uploaded, 50u);
  server_->Stop();
  ASSERT_TRUE(server_->Start().ok());
  ExpectStored(first->manifest);
  auto second = runner::SnapshotWorkspace(*api_, req);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->blobs_uploaded, 0u);
}

}  // namespace
}  // namespace fastest
