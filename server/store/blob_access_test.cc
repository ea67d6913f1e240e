#include "server/store/blob_access.h"

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/snapshot/manifest.h"
#include "core/snapshot/sha256.h"
#include "gtest/gtest.h"

namespace fastest::server {
namespace {

using Kind = BlobStore::Kind;

std::string FreshDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/blob_access_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// One user's view of a fresh data directory, with an upload quota.
struct QuotaSetup {
  QuotaSetup(const std::string& name, uint64_t quota)
      : dir(FreshDir(name)),
        store(Store::Open(dir).value()),
        blobs(dir),
        user(store->EnsureUser("a@example.test").value()),
        access(store.get(), quota) {
    EXPECT_TRUE(blobs.Init().ok());
    EXPECT_TRUE(access.Init(&blobs).ok());
  }
  std::string dir;
  std::unique_ptr<Store> store;
  BlobStore blobs;
  std::string user;
  BlobAccess access;
};

TEST(BlobAccessTest, GrantsArePerUserAndSurviveReopen) {
  const std::string dir = FreshDir("grants");
  std::string alice, bob;
  const std::string hash = core::Sha256Hex("x");
  {
    auto store = Store::Open(dir).value();
    BlobStore blobs(dir);
    ASSERT_TRUE(blobs.Init().ok());
    alice = store->EnsureUser("alice@example.test").value();
    bob = store->EnsureUser("bob@example.test").value();
    BlobAccess access(store.get(), 0);
    ASSERT_TRUE(access.Init(&blobs).ok());
    EXPECT_FALSE(access.CanRead(alice, Kind::kBlob, hash));
    ASSERT_TRUE(access.Grant(alice, {{Kind::kBlob, hash, 1}}).ok());
    EXPECT_TRUE(access.CanRead(alice, Kind::kBlob, hash));
    EXPECT_FALSE(access.CanRead(bob, Kind::kBlob, hash));
    // Blob and manifest namespaces are separate.
    EXPECT_FALSE(access.CanRead(alice, Kind::kManifest, hash));
    // A blob grant waits for the next manifest (or Flush / destruction) to reach SQLite.
    int rows = 0;
    ASSERT_TRUE(store->ForEachBlobGrant([&](auto&&...) { ++rows; }).ok());
    EXPECT_EQ(rows, 0);
    ASSERT_TRUE(access.Grant(alice, {{Kind::kManifest, core::Sha256Hex("m"), 1}}).ok());
    ASSERT_TRUE(store->ForEachBlobGrant([&](auto&&...) { ++rows; }).ok());
    EXPECT_EQ(rows, 2);
    ASSERT_TRUE(access.Grant(bob, {{Kind::kBlob, core::Sha256Hex("bob's"), 1}}).ok());
  }
  auto store = Store::Open(dir).value();
  BlobStore blobs(dir);
  ASSERT_TRUE(blobs.Init().ok());
  BlobAccess access(store.get(), 0);
  ASSERT_TRUE(access.Init(&blobs).ok());
  EXPECT_TRUE(access.CanRead(alice, Kind::kBlob, hash));
  EXPECT_FALSE(access.CanRead(bob, Kind::kBlob, hash));
  EXPECT_EQ(access.UsedBytes(alice), 2u);
  // Flushed when the first BlobAccess went away.
  EXPECT_TRUE(access.CanRead(bob, Kind::kBlob, core::Sha256Hex("bob's")));
}

TEST(BlobAccessTest, QuotaCountsDistinctNewContentOnly) {
  QuotaSetup q("quota", 100);
  BlobAccess& access = q.access;
  const std::string& user = q.user;
  const BlobAccess::Item a{Kind::kBlob, core::Sha256Hex("a"), 60};
  const BlobAccess::Item b{Kind::kBlob, core::Sha256Hex("b"), 60};
  EXPECT_TRUE(access.ReserveQuota(user, {a}).ok());  // dropped at once: nothing held
  EXPECT_TRUE(absl::IsResourceExhausted(access.ReserveQuota(user, {a, b}).status()));
  ASSERT_TRUE(access.Grant(user, {a}).ok());
  // Already granted content costs nothing again.
  EXPECT_TRUE(access.ReserveQuota(user, {a}).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(access.ReserveQuota(user, {b}).status()));
  ASSERT_TRUE(access.Grant(user, {a, a}).ok());
  EXPECT_EQ(access.UsedBytes(user), 60u);
}

// Two uploads in flight: the second is refused while the first holds its share, and admitted
// once the first's hold is dropped (a failed upload) — never both past the quota.
TEST(BlobAccessTest, UploadsInFlightHoldTheirShareOfTheQuota) {
  QuotaSetup q("quota_hold", 100);
  BlobAccess& access = q.access;
  const std::string& user = q.user;
  const BlobAccess::Item a{Kind::kBlob, core::Sha256Hex("a"), 60};
  const BlobAccess::Item b{Kind::kBlob, core::Sha256Hex("b"), 60};
  {
    absl::StatusOr<BlobAccess::QuotaHold> first = access.ReserveQuota(user, {a});
    ASSERT_TRUE(first.ok());
    absl::Status second = access.ReserveQuota(user, {b}).status();
    EXPECT_TRUE(absl::IsResourceExhausted(second)) << second;
    EXPECT_NE(second.message().find("60 held by uploads in progress"), std::string::npos)
        << second;
  }  // the first upload failed: its hold is dropped
  absl::StatusOr<BlobAccess::QuotaHold> retry = access.ReserveQuota(user, {b});
  ASSERT_TRUE(retry.ok());
  // Granting with the hold counts the bytes once (held -> granted).
  ASSERT_TRUE(access.Grant(user, {b}, &*retry).ok());
  EXPECT_EQ(access.UsedBytes(user), 60u);
  EXPECT_TRUE(access.ReserveQuota(user, {b}).ok());
  const BlobAccess::Item c{Kind::kBlob, core::Sha256Hex("c"), 40};
  EXPECT_TRUE(access.ReserveQuota(user, {c}).ok()) << "a granted hold still counted";
}

// Many concurrent uploads of distinct content: the granted total never passes the quota.
TEST(BlobAccessTest, ConcurrentUploadsNeverOvershootTheQuota) {
  QuotaSetup q("quota_race", 1000);
  BlobAccess& access = q.access;
  const std::string& user = q.user;
  std::vector<std::thread> uploads;
  std::atomic<int> admitted{0};
  for (int t = 0; t < 8; ++t) {
    uploads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const BlobAccess::Item item{Kind::kBlob, core::Sha256Hex(absl::StrCat(t, "-", i)), 30};
        absl::StatusOr<BlobAccess::QuotaHold> hold = access.ReserveQuota(user, {item});
        if (!hold.ok()) continue;
        std::this_thread::yield();  // "storing the bytes"
        ASSERT_TRUE(access.Grant(user, {item}, &*hold).ok());
        ++admitted;
      }
    });
  }
  for (std::thread& u : uploads) u.join();
  EXPECT_LE(access.UsedBytes(user), 1000u);
  EXPECT_EQ(admitted.load(), 33);  // 33 * 30 = 990: the quota is used, not overshot
}

// A data directory from before grants existed: its snapshots' owners keep their content.
TEST(BlobAccessTest, BackfillGrantsSnapshotContentToItsOwner) {
  const std::string dir = FreshDir("backfill");
  auto store = Store::Open(dir).value();
  BlobStore blobs(dir);
  ASSERT_TRUE(blobs.Init().ok());
  const std::string owner = store->EnsureUser("owner@example.test").value();
  const std::string other = store->EnsureUser("other@example.test").value();
  const std::string data = "file content";
  const std::string blob = core::Sha256Hex(data);
  ASSERT_TRUE(blobs.Put(Kind::kBlob, blob, data).ok());
  core::Manifest m;
  m.files.push_back(core::FileEntry{"a.txt", blob, data.size()});
  const std::string text = core::SerializeManifest(m);
  const std::string manifest = core::Sha256Hex(text);
  ASSERT_TRUE(blobs.Put(Kind::kManifest, manifest, text).ok());
  const core::Project p = store->CreateProject(owner, "p").value();
  ASSERT_TRUE(store->CreateSnapshot(p.id, manifest, std::nullopt, "cli").ok());
  ASSERT_TRUE(store->blob_grants_created());  // a fresh database counts as "before grants"
  BlobAccess access(store.get(), 0);
  ASSERT_TRUE(access.Init(&blobs).ok());
  EXPECT_TRUE(access.CanRead(owner, Kind::kManifest, manifest));
  EXPECT_TRUE(access.CanRead(owner, Kind::kBlob, blob));
  EXPECT_FALSE(access.CanRead(other, Kind::kBlob, blob));
  EXPECT_FALSE(access.CanRead(other, Kind::kManifest, manifest));
}

}  // namespace
}  // namespace fastest::server
