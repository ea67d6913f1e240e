#include "core/api/api_client.h"

#include <openssl/sha.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/api/blob_batch.h"
#include "core/api/testing/loopback_http_server.h"
#include "core/http/http_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

using ::fastest::core::testing::LoopbackHttpServer;
using ::fastest::core::testing::TestRequest;
using ::fastest::core::testing::TestResponse;
using ::testing::HasSubstr;

RetryPolicy FastRetry() {
  RetryPolicy p;
  p.initial_backoff = absl::Milliseconds(5);
  p.max_backoff = absl::Milliseconds(20);
  p.max_attempts = 5;
  return p;
}

std::string Sha(const std::string& s) {
  unsigned char md[32];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  std::string out;
  for (unsigned char c : md) absl::StrAppend(&out, absl::Hex(c, absl::kZeroPad2));
  return out;
}

const char kJob[] =
    R"({"job":{"id":"J1","workspace_id":"W1","project_id":"P1","prompt":"hi","status":"pending",)"
    R"("output_snapshot_id":null,"error":null,"created_at":"2026-11-26T14:34:18.536Z",)"
    R"("started_at":null,"completed_at":null}})";

TEST(ApiClientTest, RetriesOn503ThenSucceeds) {
  std::atomic<int> calls{0};
  LoopbackHttpServer server([&](const TestRequest&) {
    if (calls++ < 2) {
      return TestResponse{503, "application/json",
                          R"({"error":{"code":"UNAVAILABLE","message":"busy"}})"};
    }
    return TestResponse{200, "application/json", kJob};
  });
  HttpClient http;
  ApiClient api(http, server.base_url() + "/", "secret-token", FastRetry());
  absl::StatusOr<Job> job = api.GetJob("J1");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->id, "J1");
  EXPECT_EQ(job->status, JobStatus::kPending);
  EXPECT_EQ(calls.load(), 3);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[2].target, "/v1/jobs/J1");
  EXPECT_EQ(reqs[2].Header("authorization"), "Bearer secret-token");
}

TEST(ApiClientTest, GivesUpAfterMaxAttemptsOn5xx) {
  std::atomic<int> calls{0};
  LoopbackHttpServer server([&](const TestRequest&) {
    calls++;
    return TestResponse{502, "text/plain", "bad gateway"};
  });
  HttpClient http;
  ApiClient api(http, server.base_url(), "t", FastRetry());
  absl::StatusOr<Job> job = api.GetJob("J1");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls.load(), 5);
}

TEST(ApiClientTest, NoRetryOn422AndErrorMapped) {
  std::atomic<int> calls{0};
  LoopbackHttpServer server([&](const TestRequest&) {
    calls++;
    return TestResponse{422, "application/json",
                        R"({"error":{"code":"INVALID_STATE","message":"Cannot cancel job with status 'completed'"}})"};
  });
  HttpClient http;
  ApiClient api(http, server.base_url(), "secret-token", FastRetry());
  absl::StatusOr<Job> job = api.CancelJob("J1");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(job.status().message()), HasSubstr("INVALID_STATE"));
  EXPECT_THAT(std::string(job.status().message()), HasSubstr("Cannot cancel job"));
  EXPECT_THAT(std::string(job.status().message()), ::testing::Not(HasSubstr("secret-token")));
  auto info = GetApiErrorInfo(job.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->http_status, 422);
  EXPECT_EQ(info->code, "INVALID_STATE");
}

TEST(ApiClientTest, ConnectionRefusedIsRetriedThenUnavailable) {
  int port;
  {
    LoopbackHttpServer server([](const TestRequest&) { return TestResponse{}; });
    port = server.port();
  }  // closed: nothing listens on the port now
  HttpClient http;
  RetryPolicy p = FastRetry();
  p.max_attempts = 3;
  ApiClient api(http, absl::StrCat("http://127.0.0.1:", port), "t", p);
  absl::Time start = absl::Now();
  absl::StatusOr<Job> job = api.GetJob("J1");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(8));  // two backoff sleeps happened
}

TEST(ApiClientTest, MissingBlobsBatches250HashesInto3Calls) {
  std::vector<std::string> hashes;
  for (int i = 0; i < 250; ++i) hashes.push_back(Sha(absl::StrCat("blob", i)));
  LoopbackHttpServer server([&](const TestRequest& req) {
    nlohmann::json body = nlohmann::json::parse(req.body);
    nlohmann::json existing = nlohmann::json::array();
    nlohmann::json missing = nlohmann::json::array();
    int n = 0;
    for (const auto& h : body["hashes"]) {
      std::string s = h;
      int idx = std::find(hashes.begin(), hashes.end(), s) - hashes.begin();
      // The server "forgets" hashes 5..9 of each batch (in neither list) and reports odd ones as
      // existing.
      if (n >= 5 && n < 10) {
      } else if (idx % 2 == 1) {
        existing.push_back(s);
      } else {
        missing.push_back(s);
      }
      ++n;
    }
    nlohmann::json out = {{"missing", missing}, {"existing", existing}, {"checked", n}};
    return TestResponse{200, "application/json", out.dump()};
  });
  HttpClient http;
  ApiClient api(http, server.base_url(), "t", FastRetry());
  std::vector<std::string> input = hashes;
  input.push_back(hashes[0]);  // duplicates are sent once
  auto missing = api.MissingBlobs(input);
  ASSERT_TRUE(missing.ok()) << missing.status();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  std::vector<size_t> sizes;
  for (const auto& r : reqs) {
    EXPECT_EQ(r.target, "/v1/blobs/exists");
    sizes.push_back(nlohmann::json::parse(r.body)["hashes"].size());
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{100, 100, 50}));
  // Expected: even indices plus "forgotten" positions 5..9 of each batch.
  std::vector<std::string> expected;
  for (int i = 0; i < 250; ++i) {
    int pos = i % 100;
    if ((pos >= 5 && pos < 10) || i % 2 == 0) expected.push_back(hashes[i]);
  }
  EXPECT_EQ(*missing, expected);
}

TEST(ApiClientTest, BlobRoundTripAndVerification) {
  const std::string content = "hello";
  const std::string good = Sha(content);
  const std::string bad = Sha("other");
  std::string uploaded;
  LoopbackHttpServer server([&](const TestRequest& req) {
    if (req.method == "PUT") {
      uploaded = req.body;
      return TestResponse{201, "application/json",
                          absl::StrCat(R"({"hash":")", good, R"(","size":5,"created":true})")};
    }
    // Serves "hello" for every hash, so `bad` must fail verification.
    return TestResponse{200, "application/octet-stream", content};
  });
  HttpClient http;
  ApiClient api(http, server.base_url(), "t", FastRetry());
  auto up = api.UploadBlob(good, content);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_TRUE(up->created);
  EXPECT_EQ(up->size, 5u);
  EXPECT_EQ(uploaded, content);

  auto ok = api.DownloadVerifiedBlob(good);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, content);
  auto mismatch = api.DownloadVerifiedBlob(bad);
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(mismatch.status().message()), HasSubstr("hash mismatch"));

  std::string dir = ::testing::TempDir();
  std::string file = dir + "/blob_out";
  auto n = api.DownloadBlobToFile(good, file);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 5u);
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), content);
  auto n2 = api.DownloadBlobToFile(bad, file + "2");
  EXPECT_EQ(n2.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(access((file + "2").c_str(), F_OK), 0);  // removed on mismatch

  EXPECT_EQ(api.DownloadBlob("../../etc/passwd").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ApiClientTest, NextJobNullAndSnapshotCreate) {
  LoopbackHttpServer server([&](const TestRequest& req) {
    if (req.target == "/v1/jobs/next") return TestResponse{200, "application/json", R"({"job":null})"};
    nlohmann::json body = nlohmann::json::parse(req.body);
    nlohmann::json snap = {{"id", "S2"},
                           {"project_id", "P1"},
                           {"manifest_hash", body["manifest_hash"]},
                           {"parent_snapshot_id", body["parent_snapshot_id"]},
                           {"source", body["source"]},
                           {"created_at", "2026-11-26T14:34:18.536Z"}};
    return TestResponse{201, "application/json",
                        nlohmann::json({{"snapshot", snap}, {"created", true}}).dump()};
  });
  HttpClient http;
  ApiClient api(http, server.base_url(), "t", FastRetry());
  auto next = api.NextJob();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_FALSE(next->has_value());
  auto snap = api.CreateSnapshot("P1", Sha(""), std::string("S1"), "agent");
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_TRUE(snap->created);
  EXPECT_EQ(snap->snapshot.parent_snapshot_id.value_or(""), "S1");
  EXPECT_EQ(snap->snapshot.source, "agent");
}

// A server with only the original per-blob endpoints (like the original deployment): the batch
// calls fall back to them, and the client remembers that the batch path is absent.
TEST(ApiClientTest, BatchCallsFallBackToPerBlobEndpoints) {
  std::map<std::string, std::string> stored;
  std::mutex mu;
  LoopbackHttpServer server([&](const TestRequest& req) {
    std::lock_guard<std::mutex> lock(mu);
    const std::string up = "/v1/blobs/upload/", down = "/v1/blobs/download/";
    if (req.method == "PUT" && req.target.rfind(up, 0) == 0) {
      std::string hash = req.target.substr(up.size());
      if (Sha(req.body) != hash) {
        return TestResponse{400, "application/json",
                            R"({"error":{"code":"HASH_MISMATCH","message":"mismatch"}})"};
      }
      bool created = stored.emplace(hash, req.body).second;
      return TestResponse{created ? 201 : 200, "application/json",
                          nlohmann::json({{"hash", hash},
                                          {"size", req.body.size()},
                                          {"created", created}})
                              .dump()};
    }
    if (req.method == "GET" && req.target.rfind(down, 0) == 0) {
      auto it = stored.find(req.target.substr(down.size()));
      if (it != stored.end()) return TestResponse{200, "application/octet-stream", it->second};
      return TestResponse{404, "application/json",
                          R"({"error":{"code":"NOT_FOUND","message":"Blob not found"}})"};
    }
    return TestResponse{404, "application/json",
                        R"({"error":{"code":"NOT_FOUND","message":"Route not found"}})"};
  });
  std::string dir = ::testing::TempDir() + "/fallback";
  std::filesystem::create_directories(dir);
  std::vector<BlobFile> files;
  std::vector<std::string> hashes;
  for (int i = 0; i < 5; ++i) {
    std::string content = absl::StrCat("blob ", i);
    std::string path = absl::StrCat(dir, "/f", i);
    std::ofstream(path, std::ios::binary) << content;
    files.push_back({Sha(content), path});
    hashes.push_back(Sha(content));
  }
  HttpClient http;
  ApiClient api(http, server.base_url(), "t", FastRetry());
  auto up = api.UploadBlobFiles(files, 2);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->blobs, 5u);
  EXPECT_EQ(up->created, 5u);
  EXPECT_EQ(api.batch_support(), BatchSupport::kUnsupported);
  EXPECT_EQ(stored.size(), 5u);

  std::map<std::string, std::string> got;
  std::mutex got_mu;
  absl::Status s = api.DownloadBlobs(hashes, [&](const std::string& h, absl::string_view data) {
    std::lock_guard<std::mutex> lock(got_mu);
    got[h] = std::string(data);
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got.size(), 5u);
  EXPECT_EQ(got[hashes[2]], "blob 2");

  // The batch path was tried exactly once (by the first call), never again.
  int batch_calls = 0;
  for (const auto& r : server.requests()) {
    if (r.target.find("/v1/blobs/batch-") == 0) ++batch_calls;
  }
  EXPECT_EQ(batch_calls, 1);

  // Per-blob errors keep their meaning in the fallback: corrupt content and unknown blobs.
  {
    std::lock_guard<std::mutex> lock(mu);
    stored[hashes[1]] = "tampered";
  }
  s = api.DownloadBlobs({hashes[1]}, [](const std::string&, absl::string_view) {
    return absl::OkStatus();
  });
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("hash mismatch"));
  s = api.DownloadBlobs({Sha("unknown")}, [](const std::string&, absl::string_view) {
    return absl::OkStatus();
  });
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
}

// A batch answer whose blob does not match its hash is refused before the sink sees it.
TEST(ApiClientTest, BatchDownloadVerifiesEveryBlob) {
  const std::string good = "good bytes", bad = "evil bytes";
  LoopbackHttpServer server([&](const TestRequest& req) {
    std::string body;
    AppendBlobFrame(&body, Sha(good), good);
    AppendBlobFrame(&body, Sha("expected"), bad);
    return TestResponse{200, kBlobBatchContentType, body};
  });
  HttpClient http;
  ApiClient api(http, server.base_url(), "t", FastRetry());
  std::vector<std::string> seen;
  absl::Status s = api.DownloadBlobs({Sha(good), Sha("expected")},
                                     [&](const std::string& h, absl::string_view) {
                                       seen.push_back(h);
                                       return absl::OkStatus();
                                     });
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("hash mismatch"));
  EXPECT_EQ(seen, std::vector<std::string>{Sha(good)});
  EXPECT_EQ(api.batch_support(), BatchSupport::kSupported);
}

// A truncated or garbled batch answer is an error, not a silent partial restore.
TEST(ApiClientTest, BatchDownloadRejectsMalformedAnswer) {
  LoopbackHttpServer server([&](const TestRequest&) {
    std::string body;
    AppendBlobFrame(&body, Sha("abc"), "abc");
    return TestResponse{200, kBlobBatchContentType, body + "trailing junk"};
  });
  HttpClient http;
  ApiClient api(http, server.base_url(), "t", RetryPolicy::NoRetry());
  absl::Status s = api.DownloadBlobs({Sha("abc"), Sha("def")},
                                     [](const std::string&, absl::string_view) {
                                       return absl::OkStatus();
                                     });
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
}

}  // namespace
}  // namespace fastest::core
