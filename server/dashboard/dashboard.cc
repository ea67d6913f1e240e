#include "server/dashboard/dashboard.h"

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/api/api_error.h"
#include "server/dashboard/embedded_assets.h"
#include "core/net/responder.h"

namespace fastest::server::dashboard {
namespace {

const EmbeddedAsset* FindAsset(absl::string_view name) {
  for (size_t i = 0; i < kEmbeddedAssetCount; ++i) {
    if (kEmbeddedAssets[i].name == name) return &kEmbeddedAssets[i];
  }
  return nullptr;
}

std::string ContentType(absl::string_view name) {
  if (absl::EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(name, ".svg")) return "image/svg+xml";
  if (absl::EndsWith(name, ".png")) return "image/png";
  return "application/octet-stream";
}

// FNV-1a of the bytes: the assets change only with the binary, so a content hash is a stable
// validator without any clock.
std::string ETag(absl::string_view data) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrFormat("\"%016x\"", h);
}

net::Response& AddSecurityHeaders(net::Response& r) {
  r.SetHeader("Content-Security-Policy", kContentSecurityPolicy);
  r.SetHeader("X-Content-Type-Options", "nosniff");
  r.SetHeader("Referrer-Policy", "no-referrer");
  r.SetHeader("X-Frame-Options", "DENY");
  // No other origin may open this window's context or embed these files.
  r.SetHeader("Cross-Origin-Opener-Policy", "same-origin");
  r.SetHeader("Cross-Origin-Resource-Policy", "same-origin");
  return r;
}

}  // namespace

net::Response AssetResponse(absl::string_view name, absl::string_view if_none_match) {
  const EmbeddedAsset* asset = FindAsset(name);
  if (asset == nullptr) {
    net::Response r = ErrorResponse(404, "NOT_FOUND", "Route not found");
    return AddSecurityHeaders(r);
  }
  const std::string etag = ETag(asset->data);
  net::Response r;
  if (!if_none_match.empty() && if_none_match == etag) {
    r.status = 304;
  } else {
    r.status = 200;
    r.body = std::string(asset->data);
    r.SetHeader("Content-Type", ContentType(name));
  }
  r.SetHeader("ETag", etag);
  // Revalidate every time: the file names carry no version, and a 304 costs one round trip.
  r.SetHeader("Cache-Control", "no-cache");
  return AddSecurityHeaders(r);
}

void Register(net::Router& router) {
  router.AddSync("GET", "/", [](const net::Request& req) {
    return AssetResponse("index.html", req.Header("if-none-match"));
  });
  router.AddSync("GET", "/dashboard/:file", [](const net::Request& req) {
    return AssetResponse(req.Param("file"), req.Header("if-none-match"));
  });
}

}  // namespace fastest::server::dashboard
