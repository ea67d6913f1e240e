#include "server/api/job_scopes.h"

#include <cstdlib>
#include <memory>
#include <string>

#include "core/snapshot/manifest.h"
#include "core/snapshot/sha256.h"
#include "gtest/gtest.h"

namespace fastest::server {
namespace {

using Kind = BlobStore::Kind;

// A project with a base snapshot of two files, a workspace on it, and a job in that workspace
// (real SQLite store and blob files in a fresh directory).
class JobScopesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TEST_TMPDIR");
    const std::string dir = std::string(base ? base : "/tmp") + "/job_scopes_" +
                            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::system(("rm -rf '" + dir + "'").c_str());
    store_ = Store::Open(dir + "/db").value();
    blobs_ = std::make_unique<BlobStore>(dir + "/blobs");
    ASSERT_TRUE(blobs_->Init().ok());
    const std::string user = store_->EnsureUser("a@example.test").value();
    project_ = store_->CreateProject(user, "p").value();

    core::Manifest m;
    m.files.push_back({"a.txt", core::Sha256Hex("a"), 1});
    m.files.push_back({"b.txt", core::Sha256Hex("b"), 1});
    const std::string text = core::SerializeManifest(m);
    manifest_hash_ = core::Sha256Hex(text);
    ASSERT_TRUE(blobs_->Put(Kind::kManifest, manifest_hash_, text).ok());
    base_snapshot_ =
        store_->CreateSnapshot(project_.id, manifest_hash_, std::nullopt, "cli").value().first.id;
    other_snapshot_ =
        store_->CreateSnapshot(project_.id, core::Sha256Hex("other"), std::nullopt, "cli")
            .value()
            .first.id;

    core::Workspace w;
    w.project_id = project_.id;
    w.name = "ws";
    w.base_snapshot_id = base_snapshot_;
    ws_ = store_->CreateWorkspace(w).value();
    job_ = store_->CreateJob(ws_, "do it").value();
    scopes_ = std::make_unique<JobScopes>(store_.get(), blobs_.get());
  }

  std::unique_ptr<Store> store_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<JobScopes> scopes_;
  core::Project project_;
  core::Workspace ws_;
  core::Job job_;
  std::string manifest_hash_, base_snapshot_, other_snapshot_;
};

TEST_F(JobScopesTest, ReadsItsBaseManifestAndItsFilesOnly) {
  EXPECT_TRUE(scopes_->MayRead(job_.id, Kind::kManifest, manifest_hash_));
  EXPECT_TRUE(scopes_->MayRead(job_.id, Kind::kBlob, core::Sha256Hex("a")));
  EXPECT_TRUE(scopes_->MayRead(job_.id, Kind::kBlob, core::Sha256Hex("b")));
  // The kinds are separate namespaces.
  EXPECT_FALSE(scopes_->MayRead(job_.id, Kind::kBlob, manifest_hash_));
  EXPECT_FALSE(scopes_->MayRead(job_.id, Kind::kManifest, core::Sha256Hex("a")));
  EXPECT_FALSE(scopes_->MayRead(job_.id, Kind::kBlob, core::Sha256Hex("c")));
}

TEST_F(JobScopesTest, UploadsBecomeReadable) {
  const std::string c = core::Sha256Hex("c");
  EXPECT_FALSE(scopes_->MayRead(job_.id, Kind::kBlob, c));
  scopes_->AddUploaded(job_.id, {{Kind::kBlob, c, 1}});
  EXPECT_TRUE(scopes_->MayRead(job_.id, Kind::kBlob, c));
  EXPECT_FALSE(scopes_->MayRead(job_.id, Kind::kManifest, c));
}

TEST_F(JobScopesTest, WorkspaceAndSnapshots) {
  EXPECT_TRUE(scopes_->IsOwnWorkspace(job_.id, ws_.id));
  EXPECT_FALSE(scopes_->IsOwnWorkspace(job_.id, "other-workspace"));
  EXPECT_TRUE(scopes_->MayReadSnapshot(job_.id, base_snapshot_));
  EXPECT_FALSE(scopes_->MayReadSnapshot(job_.id, other_snapshot_));
  // The base may be reported as output (nothing changed); another snapshot only once it is the
  // job's own output.
  EXPECT_TRUE(scopes_->MayReportOutput(job_.id, base_snapshot_));
  EXPECT_FALSE(scopes_->MayReportOutput(job_.id, other_snapshot_));
  EXPECT_EQ(scopes_->OutputSnapshot(job_.id).value(), std::nullopt);
  scopes_->SetOutputSnapshot(job_.id, other_snapshot_);
  EXPECT_EQ(scopes_->OutputSnapshot(job_.id).value(), other_snapshot_);
  EXPECT_TRUE(scopes_->MayReadSnapshot(job_.id, other_snapshot_));
  EXPECT_TRUE(scopes_->MayReportOutput(job_.id, other_snapshot_));
}

TEST_F(JobScopesTest, StoredOutputSnapshotSurvivesARestart) {
  ASSERT_TRUE(store_
                  ->UpdateJobStatus(job_.id, core::JobStatus::kRunning, std::nullopt, std::nullopt,
                                    /*enforce_transitions=*/true)
                  .ok());
  ASSERT_TRUE(store_
                  ->UpdateJobStatus(job_.id, core::JobStatus::kCompleted, other_snapshot_,
                                    std::nullopt, /*enforce_transitions=*/true)
                  .ok());
  JobScopes fresh(store_.get(), blobs_.get());  // as after a server restart
  EXPECT_EQ(fresh.OutputSnapshot(job_.id).value(), other_snapshot_);
  EXPECT_TRUE(fresh.MayReadSnapshot(job_.id, other_snapshot_));
}

TEST_F(JobScopesTest, UnknownJobReachesNothing) {
  EXPECT_FALSE(scopes_->MayRead("no-such-job", Kind::kManifest, manifest_hash_));
  EXPECT_FALSE(scopes_->IsOwnWorkspace("no-such-job", ws_.id));
  EXPECT_FALSE(scopes_->MayReadSnapshot("no-such-job", base_snapshot_));
  EXPECT_FALSE(scopes_->MayReportOutput("no-such-job", base_snapshot_));
  EXPECT_TRUE(absl::IsNotFound(scopes_->OutputSnapshot("no-such-job").status()));
}

}  // namespace
}  // namespace fastest::server
