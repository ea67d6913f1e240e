// Blobs and manifests: exists, presign (original API), single upload/download, batch transfer
// (a fastest extension; wire format in core/api/blob_batch.h and server/README.md), manifests.
// Every route is open to per-job tokens; what they may read is checked per hash.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/api/blob_batch.h"
#include "core/snapshot/manifest.h"  // IsValidUtf8
#include "core/snapshot/sha256.h"
#include "server/api/api_error.h"
#include "server/api/api_routes.h"
#include "server/api/request_parsing.h"

namespace fastest::server {
namespace {

using api_request::BadRequest;
using api_request::ParseHashes;
using api_request::ParseObject;
using api_request::Validation;
using net::Request;
using net::Response;
using nlohmann::json;

// Batch transfer limits (see server/README.md).
constexpr size_t kMaxBatchBlobs = 1000;
constexpr uint64_t kMaxBatchDownloadBytes = 64ull << 20;

// The blob routes answer every batch of every snapshot: their JSON is written directly (nlohmann
// builds a tree and escapes char by char). Only for strings that need no escaping: lowercase hex.
void AppendHexArray(std::string* out, const std::vector<absl::string_view>& hashes) {
  out->push_back('[');
  for (size_t i = 0; i < hashes.size(); ++i) {
    if (i > 0) out->push_back(',');
    out->push_back('"');
    out->append(hashes[i].data(), hashes[i].size());
    out->push_back('"');
  }
  out->push_back(']');
}

Response QuotaError(const absl::Status& s) {
  return ErrorResponse(413, "QUOTA_EXCEEDED", s.message());
}

}  // namespace

void RegisterBlobRoutes(const ApiContext& ctx, net::Router& router) {
  AuthedRoutes routes(ctx, router);
  BlobStore* blobs = ctx.blobs;
  BlobAccess* access = ctx.access;
  std::shared_ptr<JobScopes> scopes = ctx.scopes;
  auto visible = [ctx](const AuthInfo& auth, BlobStore::Kind kind, absl::string_view hash) {
    return CanReadContent(ctx, auth, kind, hash);
  };
  // After the bytes are stored and verified: the grant to the user and, for a per-job token, to
  // the job.
  auto grant = [access, scopes](const AuthInfo& auth, const std::vector<BlobAccess::Item>& items,
                                BlobAccess::QuotaHold* hold) {
    absl::Status s = access->Grant(auth.user_id, items, hold);
    if (auth.job_scope) scopes->AddUploaded(*auth.job_scope, items);
    return s;
  };

  // Only content the caller may already read counts as existing: anything else is "missing",
  // the client uploads it, and the verified upload grants access (stored once on disk).
  routes.PostOnIoThread("/v1/blobs/exists", [blobs, visible](const Request& req,
                                                             const AuthInfo& auth) {
    std::vector<std::string> hashes;
    if (auto err = ParseHashes(req, &hashes)) return *err;
    auto exists = [&](const std::string& h) {
      return visible(auth, BlobStore::Kind::kBlob, h) && blobs->Exists(BlobStore::Kind::kBlob, h);
    };
    if (!std::all_of(hashes.begin(), hashes.end(), core::IsLowerHexSha256)) {
      // Anything goes in the original API's answer (unknown strings are just "missing").
      json missing = json::array(), existing = json::array();
      for (const auto& h : hashes) {
        (exists(h) ? existing : missing).push_back(h);
      }
      return Response::Json(200, {{"missing", missing},
                                  {"existing", existing},
                                  {"checked", static_cast<int64_t>(hashes.size())}});
    }
    std::vector<absl::string_view> missing, existing;
    for (const auto& h : hashes) {
      (exists(h) ? existing : missing).push_back(h);
    }
    std::string out;
    out.reserve(hashes.size() * 67 + 64);
    out += "{\"missing\":";
    AppendHexArray(&out, missing);
    out += ",\"existing\":";
    AppendHexArray(&out, existing);
    absl::StrAppend(&out, ",\"checked\":", hashes.size(), "}");
    return JsonText(std::move(out));
  }, Audience::kJobToken);
  for (const char* kind : {"upload", "download"}) {
    std::string path = absl::StrCat("/v1/blobs/presign-", kind);
    std::string prefix = absl::StrCat("/v1/blobs/", kind, "/");
    routes.Post(path.c_str(), [prefix](const Request& req, const AuthInfo&) {
      std::vector<std::string> hashes;
      if (auto err = ParseHashes(req, &hashes)) return *err;
      json urls = json::object();
      for (const auto& h : hashes) urls[h] = prefix + h;
      return Response::Json(200, {{"urls", urls}});
    }, Audience::kJobToken);
  }
  routes.Put("/v1/blobs/upload/:hash", [blobs, access, visible, grant](
                                     const Request& req, const AuthInfo& auth) {
    const std::string hash = req.Param("hash");
    std::vector<BlobAccess::Item> items = {{BlobStore::Kind::kBlob, hash, req.body.size()}};
    absl::StatusOr<BlobAccess::QuotaHold> hold = access->ReserveQuota(auth.user_id, items);
    if (!hold.ok()) return QuotaError(hold.status());
    // "created" from the caller's point of view: whether anyone else stored it stays private.
    const bool had = visible(auth, BlobStore::Kind::kBlob, hash);
    auto stored = blobs->Put(BlobStore::Kind::kBlob, hash, req.body);
    if (absl::IsInvalidArgument(stored.status())) {
      return ErrorResponse(
          400, "HASH_MISMATCH",
          absl::StrCat("Content hash ", core::Sha256Hex(req.body).substr(0, 16),
                       "... does not match requested hash ", hash.substr(0, 16), "..."));
    }
    if (!stored.ok()) return ResponseFromStatus(stored.status());
    if (absl::Status g = grant(auth, items, &*hold); !g.ok()) return ResponseFromStatus(g);
    const bool created = !had;
    return Response::Json(created ? 201 : 200,
                          {{"hash", hash},
                           {"size", static_cast<int64_t>(req.body.size())},
                           {"created", created}});
  }, Audience::kJobToken);
  routes.Get("/v1/blobs/download/:hash", [blobs, visible](const Request& req,
                                                          const AuthInfo& auth) {
    if (!visible(auth, BlobStore::Kind::kBlob, req.Param("hash"))) {
      return ResponseFromStatus(absl::NotFoundError("Blob not found"));
    }
    auto data = blobs->Get(BlobStore::Kind::kBlob, req.Param("hash"));
    if (!data.ok()) return ResponseFromStatus(data.status());
    Response r = Response::Text(200, std::move(*data), "application/octet-stream");
    r.SetHeader("Cache-Control", "private, max-age=31536000, immutable");
    return r;
  }, Audience::kJobToken);
  // Batch transfer (a fastest extension; wire format in core/api/blob_batch.h and
  // server/README.md). Clients detect it by the 404 an original deployment answers.
  routes.PostOnIoThread("/v1/blobs/batch-upload", [blobs, access, visible, grant](
                                     const Request& req, const AuthInfo& auth) {
    // Parse every frame first: a malformed body stores nothing.
    std::vector<BlobStore::BlobPut> items;
    core::BlobBatchReader reader(std::numeric_limits<uint64_t>::max(), /*allow_missing=*/false);
    absl::Status parsed = reader.Feed(req.body, [&](const core::BlobFrame& f) {
      if (items.size() >= kMaxBatchBlobs) {
        return absl::ResourceExhaustedError(
            absl::StrCat("A batch holds at most ", kMaxBatchBlobs, " blobs"));
      }
      items.push_back(BlobStore::BlobPut{f.hash, f.data});
      return absl::OkStatus();
    });
    if (parsed.ok()) parsed = reader.Finish();
    if (absl::IsResourceExhausted(parsed)) {
      return ErrorResponse(413, "PAYLOAD_TOO_LARGE", parsed.message());
    }
    if (!parsed.ok()) return BadRequest(parsed.message());
    std::vector<BlobAccess::Item> grants;
    grants.reserve(items.size());
    for (const auto& item : items) {
      grants.push_back({BlobStore::Kind::kBlob, std::string(item.hash), item.data.size()});
    }
    absl::StatusOr<BlobAccess::QuotaHold> hold = access->ReserveQuota(auth.user_id, grants);
    if (!hold.ok()) return QuotaError(hold.status());
    std::vector<bool> had(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      had[i] = visible(auth, BlobStore::Kind::kBlob, items[i].hash);
    }
    // One verified append for the whole batch. Disk trouble fails the request (retryable).
    auto outcomes = blobs->PutBlobs(items);
    if (!outcomes.ok()) return ResponseFromStatus(outcomes.status());
    // Only verified blobs are granted (one transaction for the batch).
    std::vector<BlobAccess::Item> verified;
    verified.reserve(grants.size());
    for (size_t i = 0; i < items.size(); ++i) {
      if ((*outcomes)[i].outcome != BlobStore::PutResult::kHashMismatch) {
        verified.push_back(std::move(grants[i]));
      }
    }
    if (absl::Status g = grant(auth, verified, &*hold); !g.ok()) return ResponseFromStatus(g);
    // Frame hashes are lowercase hex (the reader checks), so the JSON is written directly.
    std::string out;
    out.reserve(items.size() * 100 + 64);
    out += "{\"results\":[";
    int64_t stored = 0, created_count = 0, failed = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      const BlobStore::BlobPut& item = items[i];
      const BlobStore::PutResult& outcome = (*outcomes)[i];
      if (i > 0) out.push_back(',');
      if (outcome.outcome == BlobStore::PutResult::kHashMismatch) {
        absl::StrAppend(&out, "{\"hash\":\"", item.hash,
                        "\",\"error\":{\"code\":\"HASH_MISMATCH\",\"message\":\"Content hash ",
                        outcome.content_hash.substr(0, 16), "... does not match requested hash ",
                        item.hash.substr(0, 16), "...\"}}");
        ++failed;
        continue;
      }
      const bool created = !had[i];
      absl::StrAppend(&out, "{\"hash\":\"", item.hash, "\",\"size\":", item.data.size(),
                      ",\"created\":", created ? "true" : "false", "}");
      ++stored;
      if (created) ++created_count;
    }
    absl::StrAppend(&out, "],\"stored\":", stored, ",\"created\":", created_count,
                    ",\"failed\":", failed, "}");
    return JsonText(std::move(out));
  }, Audience::kJobToken);
  routes.PostOnIoThread("/v1/blobs/batch-download", [blobs, visible](const Request& req,
                                                                     const AuthInfo& auth) {
    json body;
    if (auto err = ParseObject(req, &body, false)) return *err;
    auto it = body.find("hashes");
    if (it == body.end() || !it->is_array()) return Validation("hashes array is required");
    if (it->size() > kMaxBatchBlobs) {
      return ErrorResponse(413, "PAYLOAD_TOO_LARGE",
                           absl::StrCat("A batch holds at most ", kMaxBatchBlobs, " blobs"));
    }
    std::vector<std::string> hashes;
    hashes.reserve(it->size());
    for (const auto& h : *it) {
      if (!h.is_string()) return BadRequest("'hashes' must contain strings");
      hashes.push_back(h.get<std::string>());
    }
    // Sizes first: the answer is refused before any reading if it would be too large, and the
    // response buffer is allocated once.
    std::vector<std::optional<uint64_t>> sizes(hashes.size());
    uint64_t total = 0;
    for (size_t i = 0; i < hashes.size(); ++i) {
      // Content the caller may not read answers exactly like content nobody stored.
      if (visible(auth, BlobStore::Kind::kBlob, hashes[i])) {
        sizes[i] = blobs->Size(BlobStore::Kind::kBlob, hashes[i]);
      }
      total += sizes[i].value_or(0) + core::kMaxBlobBatchHeaderBytes;
    }
    if (total > kMaxBatchDownloadBytes) {
      return ErrorResponse(413, "PAYLOAD_TOO_LARGE",
                           absl::StrCat("The requested blobs exceed ", kMaxBatchDownloadBytes,
                                        " bytes; ask for fewer at a time"));
    }
    std::string out;
    out.reserve(total);
    for (size_t i = 0; i < hashes.size(); ++i) {
      // Only valid keys are echoed (Size() is nullopt for anything else), so no hostile string
      // can break the framing.
      if (!sizes[i]) {
        if (core::IsLowerHexSha256(hashes[i])) {
          core::AppendMissingFrame(&out, hashes[i]);
          continue;
        }
        return BadRequest(absl::StrCat("not a lowercase sha256 hex hash at index ", i));
      }
      out += core::BlobFrameHeader(hashes[i], *sizes[i]);
      auto n = blobs->AppendTo(BlobStore::Kind::kBlob, hashes[i], &out);
      if (!n.ok() || *n != *sizes[i]) {
        return ResponseFromStatus(
            n.ok() ? absl::InternalError("blob changed size while being read") : n.status());
      }
    }
    Response r;
    r.status = 200;
    r.body = std::move(out);
    r.headers = {{"Content-Type", core::kBlobBatchContentType}, {"Cache-Control", "no-store"}};
    return r;
  }, Audience::kJobToken);
  routes.Put("/v1/blobs/manifests/:hash", [blobs, access, visible, grant](
                                        const Request& req, const AuthInfo& auth) {
    const std::string hash = req.Param("hash");
    std::vector<BlobAccess::Item> items = {{BlobStore::Kind::kManifest, hash, req.body.size()}};
    absl::StatusOr<BlobAccess::QuotaHold> hold = access->ReserveQuota(auth.user_id, items);
    if (!hold.ok()) return QuotaError(hold.status());
    const bool had = visible(auth, BlobStore::Kind::kManifest, hash);
    // The original hashes manifests as UTF-8 text, so invalid bytes can never match.
    if (!core::IsValidUtf8(req.body)) {
      return ErrorResponse(400, "HASH_MISMATCH", "Manifest hash does not match");
    }
    auto created = blobs->Put(BlobStore::Kind::kManifest, hash, req.body);
    if (absl::IsInvalidArgument(created.status())) {
      return ErrorResponse(400, "HASH_MISMATCH", "Manifest hash does not match");
    }
    if (!created.ok()) return ResponseFromStatus(created.status());
    if (absl::Status g = grant(auth, items, &*hold); !g.ok()) return ResponseFromStatus(g);
    return Response::Json(had ? 200 : 201, {{"hash", hash}, {"created", !had}});
  }, Audience::kJobToken);
  routes.Get("/v1/blobs/manifests/:hash", [blobs, visible](const Request& req,
                                                           const AuthInfo& auth) {
    if (!visible(auth, BlobStore::Kind::kManifest, req.Param("hash"))) {
      return ResponseFromStatus(absl::NotFoundError("Manifest not found"));
    }
    auto data = blobs->Get(BlobStore::Kind::kManifest, req.Param("hash"));
    if (!data.ok()) return ResponseFromStatus(data.status());
    Response r = Response::Text(200, std::move(*data), "application/json");
    r.SetHeader("Cache-Control", "private, max-age=31536000, immutable");
    return r;
  }, Audience::kJobToken);
}

}  // namespace fastest::server
