#include "server/store/pack_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/snapshot/sha256.h"
#include "gtest/gtest.h"

namespace fastest::server {
namespace {

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base ? base : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

BlobKey KeyOf(const std::string& data) {
  BlobKey key;
  EXPECT_TRUE(ParseBlobKey(core::Sha256Hex(data), &key));
  return key;
}

std::string ReadBack(const PackStore& packs, const std::string& data) {
  auto at = packs.Find(KeyOf(data));
  if (!at) return "<missing>";
  std::string out(at->size, '\0');
  absl::Status s = packs.Read(*at, out.data());
  return s.ok() ? out : std::string(s.message());
}

// Keeps the strings alive for the entries' views.
std::vector<PackStore::Entry> Entries(const std::vector<std::string>& blobs) {
  std::vector<PackStore::Entry> entries;
  for (const auto& b : blobs) entries.push_back({KeyOf(b), b});
  return entries;
}

std::vector<std::string> Blobs(const std::string& prefix, int n, size_t size) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string s = absl::StrCat(prefix, i, ":");
    s.resize(size, static_cast<char>('a' + i % 26));
    out.push_back(s);
  }
  return out;
}

uint64_t FileSize(const std::string& path) { return std::filesystem::file_size(path); }

TEST(PackStoreTest, ParsesOnlyLowercaseHexKeys) {
  BlobKey key;
  EXPECT_TRUE(ParseBlobKey(std::string(64, 'f'), &key));
  EXPECT_EQ(key[0], 0xff);
  EXPECT_FALSE(ParseBlobKey(std::string(64, 'F'), &key));
  EXPECT_FALSE(ParseBlobKey(std::string(63, 'a'), &key));
  EXPECT_FALSE(ParseBlobKey("../" + std::string(61, 'a'), &key));
}

TEST(PackStoreTest, AppendsOncePerKeyAndReopens) {
  auto dir = TempDir("packs_basic");
  const auto blobs = Blobs("basic", 50, 3000);
  {
    PackStore packs(dir, {});
    ASSERT_TRUE(packs.Open().ok());
    auto created = packs.Append(Entries(blobs));
    ASSERT_TRUE(created.ok()) << created.status();
    for (bool c : *created) EXPECT_TRUE(c);
    auto again = packs.Append(Entries({blobs[3], blobs[3]}));
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE((*again)[0]);
    EXPECT_FALSE((*again)[1]);
    EXPECT_EQ(packs.blob_count(), 50u);
    for (const auto& b : blobs) EXPECT_EQ(ReadBack(packs, b), b);
    // Every byte written once: no duplicate data for the repeated key.
    EXPECT_EQ(FileSize(dir + "/pack-000001.dat"), 50u * 3000);
  }
  PackStore reopened(dir, {});
  ASSERT_TRUE(reopened.Open().ok());
  EXPECT_EQ(reopened.blob_count(), 50u);
  EXPECT_EQ(reopened.dropped_records(), 0u);
  for (const auto& b : blobs) EXPECT_EQ(ReadBack(reopened, b), b);
}

TEST(PackStoreTest, RotatesToANewPackAtTheSizeLimit) {
  auto dir = TempDir("packs_rotate");
  const auto blobs = Blobs("rotate", 40, 1000);
  PackStore::Options options;
  options.rotate_bytes = 10000;
  options.fsync = true;
  {
    PackStore packs(dir, options);
    ASSERT_TRUE(packs.Open().ok());
    for (size_t i = 0; i < blobs.size(); i += 4) {
      std::vector<std::string> batch(blobs.begin() + i, blobs.begin() + i + 4);
      ASSERT_TRUE(packs.Append(Entries(batch)).ok());
    }
  }
  EXPECT_TRUE(std::filesystem::exists(dir + "/pack-000004.dat"));
  EXPECT_LE(FileSize(dir + "/pack-000001.dat"), 10000u);
  PackStore reopened(dir, options);
  ASSERT_TRUE(reopened.Open().ok());
  for (const auto& b : blobs) EXPECT_EQ(ReadBack(reopened, b), b);
}

TEST(PackStoreTest, ATornIndexTailIsDroppedAndAppendingGoesOn) {
  auto dir = TempDir("packs_torn");
  const auto first = Blobs("torn", 5, 500), later = Blobs("later", 3, 700);
  {
    PackStore packs(dir, {});
    ASSERT_TRUE(packs.Open().ok());
    ASSERT_TRUE(packs.Append(Entries(first)).ok());
  }
  // A crash in the middle of writing a record: half a record at the end of the index.
  const std::string idx = dir + "/pack-000001.idx";
  const uint64_t whole = FileSize(idx);
  std::ofstream(idx, std::ios::app) << std::string(40, 'z');
  {
    PackStore packs(dir, {});
    ASSERT_TRUE(packs.Open().ok());
    EXPECT_EQ(FileSize(idx), whole);  // cut back to whole records
    for (const auto& b : first) EXPECT_EQ(ReadBack(packs, b), b);
    ASSERT_TRUE(packs.Append(Entries(later)).ok());
  }
  PackStore reopened(dir, {});
  ASSERT_TRUE(reopened.Open().ok());
  EXPECT_EQ(reopened.dropped_records(), 0u);
  for (const auto& b : first) EXPECT_EQ(ReadBack(reopened, b), b);
  for (const auto& b : later) EXPECT_EQ(ReadBack(reopened, b), b);
}

TEST(PackStoreTest, ACorruptRecordEndsTheIndex) {
  auto dir = TempDir("packs_corrupt");
  const auto blobs = Blobs("corrupt", 4, 100);
  {
    PackStore packs(dir, {});
    ASSERT_TRUE(packs.Open().ok());
    ASSERT_TRUE(packs.Append(Entries(blobs)).ok());
  }
  // Flip a byte of the second record's size: its check no longer matches.
  const std::string idx = dir + "/pack-000001.idx";
  int fd = ::open(idx.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const char bad = 0x7f;
  ASSERT_EQ(::pwrite(fd, &bad, 1, 16 + 64 + 40), 1);
  ::close(fd);
  PackStore packs(dir, {});
  ASSERT_TRUE(packs.Open().ok());
  EXPECT_EQ(packs.dropped_records(), 3u);
  EXPECT_EQ(ReadBack(packs, blobs[0]), blobs[0]);
  for (size_t i = 1; i < blobs.size(); ++i) EXPECT_EQ(ReadBack(packs, blobs[i]), "<missing>");
}

TEST(PackStoreTest, ARecordWhoseDataIsMissingNeverComesBack) {
  auto dir = TempDir("packs_lost_data");
  const auto blobs = Blobs("lost", 3, 1000);
  {
    PackStore packs(dir, {});
    ASSERT_TRUE(packs.Open().ok());
    ASSERT_TRUE(packs.Append(Entries(blobs)).ok());
  }
  // Power loss without fsync: the index reached the disk, the last blob's bytes did not.
  std::filesystem::resize_file(dir + "/pack-000001.dat", 2500);
  const auto more = Blobs("more", 2, 4000);
  {
    PackStore packs(dir, {});
    ASSERT_TRUE(packs.Open().ok());
    EXPECT_EQ(packs.dropped_records(), 1u);
    EXPECT_EQ(ReadBack(packs, blobs[2]), "<missing>");
    EXPECT_EQ(ReadBack(packs, blobs[1]), blobs[1]);
    // New data grows the file past the lost record's range ...
    ASSERT_TRUE(packs.Append(Entries(more)).ok());
  }
  // ... which must not make the dropped record valid again.
  PackStore packs(dir, {});
  ASSERT_TRUE(packs.Open().ok());
  EXPECT_EQ(packs.dropped_records(), 0u);
  EXPECT_EQ(ReadBack(packs, blobs[2]), "<missing>");
  for (const auto& b : more) EXPECT_EQ(ReadBack(packs, b), b);
}

TEST(PackStoreTest, ConcurrentBatchesAllLand) {
  auto dir = TempDir("packs_threads");
  PackStore::Options options;
  options.rotate_bytes = 200000;  // rotations while other threads write
  std::vector<std::vector<std::string>> per_thread;
  for (int t = 0; t < 4; ++t) per_thread.push_back(Blobs(absl::StrCat("t", t, "-"), 200, 1500));
  {
    PackStore packs(dir, options);
    ASSERT_TRUE(packs.Open().ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        const auto& mine = per_thread[t];
        for (size_t i = 0; i < mine.size(); i += 20) {
          std::vector<std::string> batch(mine.begin() + i, mine.begin() + i + 20);
          // Every thread also re-sends thread 0's first blob: stored once in total.
          batch.push_back(per_thread[0][0]);
          auto r = packs.Append(Entries(batch));
          ASSERT_TRUE(r.ok()) << r.status();
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(packs.blob_count(), 800u);
  }
  PackStore reopened(dir, options);
  ASSERT_TRUE(reopened.Open().ok());
  EXPECT_EQ(reopened.blob_count(), 800u);
  for (const auto& mine : per_thread) {
    for (const auto& b : mine) ASSERT_EQ(ReadBack(reopened, b), b);
  }
}

TEST(PackStoreTest, SyncMakesAppendsDurableAndCanRepeat) {
  auto dir = TempDir("packs_sync");
  PackStore::Options options;
  options.fsync = true;
  options.rotate_bytes = 5000;
  const auto blobs = Blobs("sync", 6, 2000);
  {
    PackStore packs(dir, options);
    ASSERT_TRUE(packs.Open().ok());
    EXPECT_TRUE(packs.Sync().ok());  // nothing written yet
    for (const auto& b : blobs) ASSERT_TRUE(packs.Append(Entries({b})).ok());
    EXPECT_TRUE(packs.Sync().ok());
    EXPECT_TRUE(packs.Sync().ok());
  }
  PackStore reopened(dir, options);
  ASSERT_TRUE(reopened.Open().ok());
  for (const auto& b : blobs) EXPECT_EQ(ReadBack(reopened, b), b);
}

TEST(PackStoreTest, RefusesAForeignIndexFile) {
  auto dir = TempDir("packs_foreign");
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/pack-000001.idx") << "this is not an index file at all";
  PackStore packs(dir, {});
  absl::Status s = packs.Open();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
}

}  // namespace
}  // namespace fastest::server
