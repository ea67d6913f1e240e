#include "server/store/store.h"

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "core/snapshot/sha256.h"
#include "gtest/gtest.h"

namespace fastest::server {
namespace {

using core::JobStatus;

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base ? base : "/tmp") + "/" + name;
  std::system(("rm -rf '" + dir + "'").c_str());
  return dir;
}

struct Fixture {
  std::unique_ptr<Store> store;
  std::string user;
  core::Project project;
  core::Workspace ws;
};

Fixture Make(const std::string& dir) {
  Fixture f;
  f.store = Store::Open(dir).value();
  f.user = f.store->EnsureUser("a@example.test").value();
  f.project = f.store->CreateProject(f.user, "p").value();
  core::Workspace w;
  w.project_id = f.project.id;
  w.name = "ws";
  f.ws = f.store->CreateWorkspace(w).value();
  return f;
}

TEST(StoreTest, TokensAreHashedAndScoped) {
  auto dir = TempDir("tokens");
  auto f = Make(dir);
  auto token = f.store->CreateToken(f.user, std::nullopt).value();
  EXPECT_EQ(token.substr(0, 4), "fst_");
  auto auth = f.store->Authenticate(token);
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ(auth->user_id, f.user);
  EXPECT_FALSE(auth->project_scope.has_value());
  EXPECT_EQ(f.store->Authenticate("nope").status().code(), absl::StatusCode::kUnauthenticated);
  auto scoped = f.store->CreateToken(f.user, f.project.id, "JOB1").value();
  EXPECT_EQ(*f.store->Authenticate(scoped)->project_scope, f.project.id);
  ASSERT_TRUE(f.store->DeleteTokensForJob("JOB1").ok());
  EXPECT_FALSE(f.store->Authenticate(scoped).ok());
  ASSERT_TRUE(f.store->ImportToken(f.user, "env-token").ok());
  ASSERT_TRUE(f.store->ImportToken(f.user, "env-token").ok());
  EXPECT_TRUE(f.store->Authenticate("env-token").ok());
  EXPECT_EQ(f.store->CountTokens().value(), 2);
  // Plaintext never stored.
  std::string cmd = "grep -c env-token '" + dir + "/fastest.db' > /dev/null";
  EXPECT_NE(std::system(cmd.c_str()), 0);
}

TEST(StoreTest, SnapshotIdempotentAndJobLifecycle) {
  auto f = Make(TempDir("jobs"));
  auto [s1, c1] = f.store->CreateSnapshot(f.project.id, "h1", std::nullopt, "cli").value();
  EXPECT_TRUE(c1);
  auto [s2, c2] = f.store->CreateSnapshot(f.project.id, "h1", "x", "agent").value();
  EXPECT_FALSE(c2);
  EXPECT_EQ(s1.id, s2.id);
  EXPECT_EQ(s2.source, "cli");
  EXPECT_EQ(f.store->GetProject(f.project.id)->last_snapshot_id, s1.id);

  auto job = f.store->CreateJob(f.ws, "do it").value();
  EXPECT_EQ(job.status, JobStatus::kPending);
  auto bad = f.store->UpdateJobStatus(job.id, JobStatus::kCompleted, std::nullopt, std::nullopt,
                                      true);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  auto running =
      f.store->UpdateJobStatus(job.id, JobStatus::kRunning, std::nullopt, std::nullopt, true);
  ASSERT_TRUE(running.ok());
  EXPECT_TRUE(running->started_at.has_value());
  auto missing_snap =
      f.store->UpdateJobStatus(job.id, JobStatus::kCompleted, "NOPE", std::nullopt, true);
  EXPECT_EQ(missing_snap.status().code(), absl::StatusCode::kNotFound);
  auto done = f.store->UpdateJobStatus(job.id, JobStatus::kCompleted, s1.id, std::nullopt, true);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->output_snapshot_id, s1.id);
  EXPECT_TRUE(done->completed_at.has_value());
  EXPECT_EQ(f.store->CancelJob(job.id).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(f.store->FinishJobIfActive(job.id, JobStatus::kFailed, "x").value());
  auto events = f.store->ListEvents(f.project.id, 100).value();
  ASSERT_GE(events.size(), 5u);
  EXPECT_EQ(events[0].type, "job.completed");
}

TEST(StoreTest, ConcurrentClaimsAreExclusive) {
  auto f = Make(TempDir("claims"));
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(f.store->CreateJob(f.ws, "j").ok());
  std::mutex mu;
  std::multiset<std::string> claimed;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto j = f.store->ClaimNextJob("srv", std::nullopt);
        ASSERT_TRUE(j.ok());
        if (j->has_value()) {
          std::lock_guard<std::mutex> lock(mu);
          claimed.insert((*j)->id);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(claimed.size(), 30u);
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(), 30u);
  EXPECT_FALSE(f.store->NextPendingJob(f.user, std::nullopt).value().has_value());
  EXPECT_EQ(f.store->ListActiveClaims("srv").value().size(), 30u);
}

TEST(StoreTest, ReopenKeepsStateAndServerId) {
  auto dir = TempDir("reopen");
  std::string server_id, job_id;
  {
    auto f = Make(dir);
    server_id = f.store->server_id();
    job_id = f.store->CreateJob(f.ws, "x").value().id;
    EXPECT_EQ(f.store->schema_version(), 3);
  }
  auto store = Store::Open(dir).value();
  EXPECT_EQ(store->server_id(), server_id);
  EXPECT_EQ(store->GetJob(job_id)->prompt, "x");
}

TEST(StoreTest, CachedTokenIsRevokedImmediately) {
  auto f = Make(TempDir("token_cache"));
  auto scoped = f.store->CreateToken(f.user, f.project.id, "JOB9").value();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.store->Authenticate(scoped).ok());  // now cached
  ASSERT_TRUE(f.store->DeleteTokensForJob("JOB9").ok());
  EXPECT_EQ(f.store->Authenticate(scoped).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(StoreTest, DeviceCodeFlow) {
  auto f = Make(TempDir("device"));
  auto codes = f.store->CreateDeviceCode(absl::Minutes(15), 10).value();
  EXPECT_EQ(codes.device_code.size(), 32u);
  ASSERT_EQ(codes.user_code.size(), 9u);
  EXPECT_EQ(codes.user_code[4], '-');
  EXPECT_EQ(f.store->ExchangeDeviceCode(codes.device_code, absl::Hours(1)).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.store->ApproveDeviceCode("ZZZZ-ZZZZ", f.user).code(), absl::StatusCode::kNotFound);
  // Case-insensitive, dashes ignored.
  std::string typed = codes.user_code.substr(0, 4) + codes.user_code.substr(5);
  for (char& c : typed) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  ASSERT_TRUE(f.store->ApproveDeviceCode(typed, f.user).ok());
  EXPECT_EQ(f.store->ApproveDeviceCode(codes.user_code, f.user).code(),
            absl::StatusCode::kFailedPrecondition);
  auto login = f.store->ExchangeDeviceCode(codes.device_code, absl::Hours(1)).value();
  EXPECT_EQ(login.user_id, f.user);
  EXPECT_EQ(login.email, "a@example.test");
  auto auth = f.store->Authenticate(login.access_token).value();
  EXPECT_EQ(auth.user_id, f.user);
  EXPECT_FALSE(auth.project_scope.has_value());
  // Single use.
  EXPECT_EQ(f.store->ExchangeDeviceCode(codes.device_code, absl::Hours(1)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(StoreTest, DeviceCodeExpiryDenialAndCap) {
  auto f = Make(TempDir("device2"));
  auto expired = f.store->CreateDeviceCode(absl::Seconds(-1), 10).value();
  EXPECT_EQ(f.store->ExchangeDeviceCode(expired.device_code, absl::Hours(1)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(f.store->ApproveDeviceCode(expired.user_code, f.user).code(),
            absl::StatusCode::kDeadlineExceeded);
  auto denied = f.store->CreateDeviceCode(absl::Minutes(15), 10).value();
  ASSERT_TRUE(f.store->DenyDeviceCode(denied.user_code).ok());
  EXPECT_EQ(f.store->ExchangeDeviceCode(denied.device_code, absl::Hours(1)).status().code(),
            absl::StatusCode::kPermissionDenied);
  // The cap counts unexpired codes (the denied one too); the expired one is purged on create.
  ASSERT_TRUE(f.store->CreateDeviceCode(absl::Minutes(15), 3).ok());
  ASSERT_TRUE(f.store->CreateDeviceCode(absl::Minutes(15), 3).ok());
  EXPECT_EQ(f.store->CreateDeviceCode(absl::Minutes(15), 3).status().code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace fastest::server
