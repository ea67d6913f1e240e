// The batch blob endpoints (POST /v1/blobs/batch-upload, /v1/blobs/batch-download) over real HTTP:
// the ApiService on an in-process HttpServer with a real SQLite store and blob files, and the
// ApiClient's batch calls against it.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/api/api_client.h"
#include "core/api/blob_batch.h"
#include "core/http/http_client.h"
#include "core/snapshot/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/api/in_process_api.h"
#include "core/net/http_server.h"
#include "server/metrics/metrics.h"
#include "server/store/blob_store.h"
#include "server/store/store.h"

namespace fastest::server {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

constexpr char kToken[] = "batch-test-token";

class BlobBatchApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(api_.Start(dir_, kToken, /*max_body_bytes=*/4 << 20).ok());
    base_ = api_.base_url();
    store_ = api_.store();
    blobs_ = api_.blobs();
    access_ = api_.access();
  }

  core::HttpResponse Post(const std::string& path, const std::string& body,
                          const std::string& token = kToken) {
    core::HttpRequest req;
    req.method = "POST";
    req.url = base_ + path;
    req.body = body;
    req.bearer_token = token;
    return http_.Send(req).value();
  }

  // Frames of a download answer: hash -> data ("<missing>" for missing frames), in order.
  std::vector<std::pair<std::string, std::string>> Frames(const std::string& body) {
    std::vector<std::pair<std::string, std::string>> out;
    core::BlobBatchReader reader(1 << 30);
    absl::Status s = reader.Feed(body, [&](const core::BlobFrame& f) {
      out.emplace_back(std::string(f.hash), f.missing ? "<missing>" : std::string(f.data));
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_TRUE(reader.Finish().ok());
    return out;
  }

  InProcessApi api_;
  std::string dir_, base_;
  Store* store_ = nullptr;
  BlobStore* blobs_ = nullptr;
  BlobAccess* access_ = nullptr;
  core::HttpClient http_;
};

TEST_F(BlobBatchApiTest, UploadStoresEachBlobAndReportsCreated) {
  std::string body;
  core::AppendBlobFrame(&body, core::Sha256Hex("hello"), "hello");
  core::AppendBlobFrame(&body, core::Sha256Hex(""), "");
  auto resp = Post("/v1/blobs/batch-upload", body);
  ASSERT_EQ(resp.status, 200) << resp.body;
  json j = json::parse(resp.body);
  EXPECT_EQ(j["stored"], 2);
  EXPECT_EQ(j["created"], 2);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["results"][0]["hash"], core::Sha256Hex("hello"));
  EXPECT_EQ(j["results"][0]["size"], 5);
  EXPECT_EQ(j["results"][0]["created"], true);
  EXPECT_EQ(blobs_->Get(BlobStore::Kind::kBlob, core::Sha256Hex("hello")).value(), "hello");
  // The same again: stored, not created.
  resp = Post("/v1/blobs/batch-upload", body);
  j = json::parse(resp.body);
  EXPECT_EQ(j["stored"], 2);
  EXPECT_EQ(j["created"], 0);
  EXPECT_EQ(j["results"][1]["created"], false);
  // And the original single-blob endpoint agrees.
  auto exists = Post("/v1/blobs/exists", json{{"hashes", {core::Sha256Hex("hello")}}}.dump());
  EXPECT_EQ(json::parse(exists.body)["existing"].size(), 1u);
}

TEST_F(BlobBatchApiTest, UploadHashMismatchFailsOnlyThatItem) {
  std::string body;
  core::AppendBlobFrame(&body, core::Sha256Hex("good"), "good");
  core::AppendBlobFrame(&body, core::Sha256Hex("original"), "tampered");
  core::AppendBlobFrame(&body, core::Sha256Hex("also good"), "also good");
  auto resp = Post("/v1/blobs/batch-upload", body);
  ASSERT_EQ(resp.status, 200) << resp.body;
  json j = json::parse(resp.body);
  EXPECT_EQ(j["stored"], 2);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["results"][1]["error"]["code"], "HASH_MISMATCH");
  EXPECT_THAT(j["results"][1]["error"]["message"].get<std::string>(),
              HasSubstr(absl::StrCat("does not match requested hash ",
                                     core::Sha256Hex("original").substr(0, 16))));
  EXPECT_TRUE(blobs_->Exists(BlobStore::Kind::kBlob, core::Sha256Hex("good")));
  EXPECT_TRUE(blobs_->Exists(BlobStore::Kind::kBlob, core::Sha256Hex("also good")));
  EXPECT_FALSE(blobs_->Exists(BlobStore::Kind::kBlob, core::Sha256Hex("original")));
  EXPECT_FALSE(blobs_->Exists(BlobStore::Kind::kBlob, core::Sha256Hex("tampered")));
}

TEST_F(BlobBatchApiTest, MalformedUploadIs400AndStoresNothing) {
  const std::string good_hash = core::Sha256Hex("first");
  std::string valid;
  core::AppendBlobFrame(&valid, good_hash, "first");
  for (const std::string& tail :
       {std::string("garbage"), absl::StrCat(core::Sha256Hex("x"), " 5\nx"),  // truncated
        absl::StrCat(core::Sha256Hex("x"), " missing\n"),                       // download-only
        absl::StrCat(core::Sha256Hex("x"), " -1\n")}) {
    auto resp = Post("/v1/blobs/batch-upload", valid + tail);
    EXPECT_EQ(resp.status, 400) << tail;
    EXPECT_THAT(resp.body, HasSubstr("BAD_REQUEST"));
    EXPECT_THAT(resp.body, HasSubstr("malformed blob batch"));
    EXPECT_FALSE(blobs_->Exists(BlobStore::Kind::kBlob, good_hash)) << tail;
  }
}

TEST_F(BlobBatchApiTest, OversizeUploadsAre413) {
  // More frames than one batch may hold.
  std::string many;
  for (int i = 0; i < 1001; ++i) core::AppendBlobFrame(&many, core::Sha256Hex(""), "");
  auto resp = Post("/v1/blobs/batch-upload", many);
  EXPECT_EQ(resp.status, 413);
  EXPECT_THAT(resp.body, HasSubstr("PAYLOAD_TOO_LARGE"));
  EXPECT_FALSE(blobs_->Exists(BlobStore::Kind::kBlob, core::Sha256Hex("")));
  // A body over the server's limit (4 MiB here).
  std::string big(5 << 20, 'z');
  std::string body;
  core::AppendBlobFrame(&body, core::Sha256Hex(big), big);
  resp = Post("/v1/blobs/batch-upload", body);
  EXPECT_EQ(resp.status, 413);
}

TEST_F(BlobBatchApiTest, DownloadStreamsFramesInRequestOrder) {
  ASSERT_TRUE(blobs_->Put(BlobStore::Kind::kBlob, core::Sha256Hex("one"), "one").ok());
  ASSERT_TRUE(blobs_->Put(BlobStore::Kind::kBlob, core::Sha256Hex(""), "").ok());
  // Stored directly, so granted directly (an upload through the API grants by itself).
  const std::string user = store_->EnsureUser("a@example.test").value();
  ASSERT_TRUE(access_
                  ->Grant(user, {{BlobStore::Kind::kBlob, core::Sha256Hex("one"), 3},
                                 {BlobStore::Kind::kBlob, core::Sha256Hex(""), 0},
                                 {BlobStore::Kind::kManifest, core::Sha256Hex("{}"), 2}})
                  .ok());
  const std::string unknown = core::Sha256Hex("never stored");
  auto resp = Post("/v1/blobs/batch-download",
                   json{{"hashes", {core::Sha256Hex("one"), unknown, core::Sha256Hex("")}}}.dump());
  ASSERT_EQ(resp.status, 200) << resp.body;
  EXPECT_EQ(resp.Header("content-type"), core::kBlobBatchContentType);
  auto frames = Frames(resp.body);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0], std::make_pair(core::Sha256Hex("one"), std::string("one")));
  EXPECT_EQ(frames[1], std::make_pair(unknown, std::string("<missing>")));
  EXPECT_EQ(frames[2], std::make_pair(core::Sha256Hex(""), std::string()));
  // Manifests are a separate namespace: never served as blobs.
  ASSERT_TRUE(blobs_->Put(BlobStore::Kind::kManifest, core::Sha256Hex("{}"), "{}").ok());
  resp = Post("/v1/blobs/batch-download", json{{"hashes", {core::Sha256Hex("{}")}}}.dump());
  EXPECT_EQ(Frames(resp.body)[0].second, "<missing>");
}

TEST_F(BlobBatchApiTest, DownloadRequestErrors) {
  EXPECT_EQ(Post("/v1/blobs/batch-download", "{}").status, 422);
  EXPECT_EQ(Post("/v1/blobs/batch-download", "{not json").status, 400);
  EXPECT_EQ(Post("/v1/blobs/batch-download", R"({"hashes":[1]})").status, 400);
  EXPECT_EQ(Post("/v1/blobs/batch-download", R"({"hashes":["../../etc/passwd"]})").status, 400);
  json many = {{"hashes", json::array()}};
  for (int i = 0; i < 1001; ++i) many["hashes"].push_back(core::Sha256Hex(""));
  EXPECT_EQ(Post("/v1/blobs/batch-download", many.dump()).status, 413);
  EXPECT_EQ(Post("/v1/blobs/batch-download", R"({"hashes":[]})", "wrong-token").status, 401);
  EXPECT_EQ(Post("/v1/blobs/batch-upload", "", "wrong-token").status, 401);
}

TEST_F(BlobBatchApiTest, ApiClientUsesBatchesAndRoundTrips) {
  std::string files = dir_ + "/files";
  std::filesystem::create_directories(files);
  std::vector<core::BlobFile> upload;
  std::vector<std::string> hashes;
  for (int i = 0; i < 30; ++i) {
    std::string content = absl::StrCat("content of file ", i, std::string(i * 1000, 'x'));
    std::string path = absl::StrCat(files, "/f", i);
    std::ofstream(path, std::ios::binary) << content;
    upload.push_back({core::Sha256Hex(content), path});
    hashes.push_back(core::Sha256Hex(content));
  }
  core::ApiClient api(http_, base_, kToken, core::RetryPolicy::NoRetry());
  EXPECT_EQ(api.batch_support(), core::BatchSupport::kUnknown);
  auto up = api.UploadBlobFiles(upload);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->blobs, 30u);
  EXPECT_EQ(up->created, 30u);
  EXPECT_EQ(up->requests, 1u);
  EXPECT_EQ(api.batch_support(), core::BatchSupport::kSupported);
  std::map<std::string, std::string> got;
  hashes.push_back(hashes[0]);  // duplicates are fetched once
  ASSERT_TRUE(api.DownloadBlobs(hashes, [&](const std::string& h, absl::string_view data) {
                   EXPECT_EQ(got.count(h), 0u);
                   got[h] = std::string(data);
                   return absl::OkStatus();
                 }).ok());
  EXPECT_EQ(got.size(), 30u);
  EXPECT_EQ(got[hashes[3]].substr(0, 17), "content of file 3");
  // An unknown blob is NotFound, like the per-blob endpoint's 404.
  absl::Status s = api.DownloadBlobs({core::Sha256Hex("nope")},
                                     [](const std::string&, absl::string_view) {
                                       return absl::OkStatus();
                                     });
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("Blob not found"));
  // A file whose content no longer matches its hash is refused by the server.
  std::ofstream(upload[5].path, std::ios::binary) << "changed";
  auto bad = api.UploadBlobFiles({upload[5]});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("HASH_MISMATCH"));
}

TEST_F(BlobBatchApiTest, UploadBlobsFromMemoryInSeveralRequests) {
  // 1,001 blobs: more than kMaxBlobsPerBatch (1,000), so two requests.
  std::vector<std::string> contents;
  uint64_t total = 0;
  for (int i = 0; i < 1000; ++i) {
    contents.push_back(absl::StrCat("blob ", i, std::string(i, 'x')));
    total += contents.back().size();
  }
  contents.push_back("");  // an empty blob frames fine too
  std::vector<core::BlobData> blobs;
  for (const std::string& c : contents) blobs.push_back({core::Sha256Hex(c), c});
  core::ApiClient api(http_, base_, kToken, core::RetryPolicy::NoRetry());
  auto up = api.UploadBlobs(blobs);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->blobs, 1001u);
  EXPECT_EQ(up->created, 1001u);
  EXPECT_EQ(up->requests, 2u);
  EXPECT_EQ(up->bytes, total);
  for (size_t i : {size_t{0}, size_t{999}, size_t{1000}}) {
    auto got = api.DownloadVerifiedBlob(blobs[i].hash);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, contents[i]);
  }
  // Stored again: not created. Bytes that do not match their hash are refused.
  auto again = api.UploadBlobs({blobs[3]});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->created, 0u);
  auto bad = api.UploadBlobs({core::BlobData{core::Sha256Hex("x"), "y"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("HASH_MISMATCH"));
}

}  // namespace
}  // namespace fastest::server
