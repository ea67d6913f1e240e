#include "server/store/blob_store.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "core/snapshot/sha256.h"
#include "gtest/gtest.h"

namespace fastest::server {
namespace {

using Kind = BlobStore::Kind;
using PutResult = BlobStore::PutResult;

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base ? base : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(BlobStoreTest, VerifiesAndRoundTrips) {
  auto dir = TempDir("blobs");
  BlobStore blobs(dir);
  ASSERT_TRUE(blobs.Init().ok());
  const std::string data = "hello";
  const std::string hash = core::Sha256Hex(data);
  EXPECT_FALSE(blobs.Exists(Kind::kBlob, hash));
  EXPECT_TRUE(blobs.Put(Kind::kBlob, hash, data).value());
  EXPECT_FALSE(blobs.Put(Kind::kBlob, hash, data).value());
  EXPECT_EQ(blobs.Get(Kind::kBlob, hash).value(), data);
  EXPECT_FALSE(blobs.Exists(Kind::kManifest, hash));
  EXPECT_EQ(blobs.Put(Kind::kBlob, hash, "other").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(blobs.Get(Kind::kBlob, "../../etc/passwd").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(blobs.Get(Kind::kBlob, std::string(64, 'A')).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(BlobStoreTest, ConcurrentPutsCreateOnceAndSurviveReopen) {
  auto dir = TempDir("blobs_concurrent");
  const std::string data(100000, 'q');
  const std::string hash = core::Sha256Hex(data);
  {
    BlobStore blobs(dir);
    ASSERT_TRUE(blobs.Init().ok());
    EXPECT_FALSE(blobs.Size(Kind::kBlob, hash).has_value());
    std::atomic<int> created{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] {
        auto r = blobs.Put(Kind::kBlob, hash, data);
        ASSERT_TRUE(r.ok()) << r.status();
        if (*r) ++created;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(created.load(), 1);
    EXPECT_EQ(blobs.Size(Kind::kBlob, hash).value_or(0), data.size());
    std::string out = "prefix:";
    EXPECT_EQ(blobs.AppendTo(Kind::kBlob, hash, &out).value(), data.size());
    EXPECT_EQ(out, "prefix:" + data);
    // One owner per data directory: a second store is refused with a message.
    BlobStore second(dir);
    absl::Status s = second.Init();
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_NE(s.message().find("in use by another process"), std::string::npos) << s;
  }
  BlobStore again(dir);
  ASSERT_TRUE(again.Init().ok());
  EXPECT_EQ(again.Get(Kind::kBlob, hash).value(), data);
  // No temp files remain anywhere in the store.
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
    EXPECT_EQ(e.path().filename().string().find(".new"), std::string::npos) << e.path();
  }
}

TEST(BlobStoreTest, BatchReportsEachBlobAndStoresTheGoodOnes) {
  auto dir = TempDir("blobs_batch");
  BlobStore blobs(dir);
  ASSERT_TRUE(blobs.Init().ok());
  const std::string a = "alpha", b = "beta", empty;
  ASSERT_TRUE(blobs.Put(Kind::kBlob, core::Sha256Hex(b), b).ok());
  const std::string ha = core::Sha256Hex(a), hb = core::Sha256Hex(b), he = core::Sha256Hex(empty);
  std::vector<BlobStore::BlobPut> batch = {
      {ha, a}, {hb, b}, {ha, "tampered"}, {he, empty}, {ha, a}, {"not-a-hash", "x"}};
  auto r = blobs.PutBlobs(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), batch.size());
  EXPECT_EQ((*r)[0].outcome, PutResult::kCreated);
  EXPECT_EQ((*r)[1].outcome, PutResult::kExisted);
  EXPECT_EQ((*r)[2].outcome, PutResult::kHashMismatch);
  EXPECT_EQ((*r)[2].content_hash, core::Sha256Hex("tampered"));
  EXPECT_EQ((*r)[3].outcome, PutResult::kCreated);
  EXPECT_EQ((*r)[4].outcome, PutResult::kExisted);  // same blob twice in one batch: stored once
  EXPECT_EQ((*r)[5].outcome, PutResult::kHashMismatch);
  EXPECT_EQ(blobs.Get(Kind::kBlob, ha).value(), a);
  EXPECT_EQ(blobs.Get(Kind::kBlob, he).value(), "");
  EXPECT_EQ(blobs.Size(Kind::kBlob, he).value_or(99), 0u);
}

TEST(BlobStoreTest, ReadsBlobsOfTheLooseFileLayout) {
  auto dir = TempDir("blobs_legacy");
  const std::string data = "written by an earlier version";
  const std::string hash = core::Sha256Hex(data);
  std::filesystem::create_directories(dir + "/blobs/" + hash.substr(0, 2));
  std::ofstream(dir + "/blobs/" + hash.substr(0, 2) + "/" + hash) << data;
  BlobStore blobs(dir);
  ASSERT_TRUE(blobs.Init().ok());
  EXPECT_TRUE(blobs.Exists(Kind::kBlob, hash));
  EXPECT_EQ(blobs.Get(Kind::kBlob, hash).value(), data);
  // Not stored a second time.
  EXPECT_FALSE(blobs.Put(Kind::kBlob, hash, data).value());
  EXPECT_FALSE(std::filesystem::exists(dir + "/packs/pack-000001.dat"));
}

TEST(BlobStoreTest, ManifestsAreSeparateFiles) {
  auto dir = TempDir("blobs_manifests");
  BlobStore blobs(dir, /*fsync_writes=*/true);
  ASSERT_TRUE(blobs.Init().ok());
  const std::string m = R"({"version":1,"files":[]})";
  const std::string hash = core::Sha256Hex(m);
  EXPECT_TRUE(blobs.Put(Kind::kManifest, hash, m).value());
  EXPECT_FALSE(blobs.Put(Kind::kManifest, hash, m).value());
  EXPECT_TRUE(std::filesystem::is_regular_file(dir + "/manifests/" + hash.substr(0, 2) + "/" + hash));
  EXPECT_FALSE(blobs.Exists(Kind::kBlob, hash));
  EXPECT_EQ(blobs.Get(Kind::kManifest, hash).value(), m);
  EXPECT_EQ(blobs.Put(Kind::kManifest, hash, "{}").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fastest::server
