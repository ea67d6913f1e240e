#include "server/dashboard/dashboard.h"

#include <regex>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/dashboard/embedded_assets.h"

namespace fastest::server::dashboard {
namespace {

std::string HeaderOf(const net::Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

TEST(DashboardTest, ServesIndexWithStrictHeaders) {
  net::Response r = AssetResponse("index.html", "");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_TRUE(absl::StartsWith(HeaderOf(r, "Content-Security-Policy"), "default-src 'self'"));
  EXPECT_FALSE(absl::StrContains(HeaderOf(r, "Content-Security-Policy"), "unsafe"));
  EXPECT_EQ(HeaderOf(r, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(HeaderOf(r, "Referrer-Policy"), "no-referrer");
  EXPECT_EQ(HeaderOf(r, "X-Frame-Options"), "DENY");
  EXPECT_EQ(HeaderOf(r, "Cross-Origin-Opener-Policy"), "same-origin");
  EXPECT_EQ(HeaderOf(r, "Cross-Origin-Resource-Policy"), "same-origin");
  EXPECT_EQ(HeaderOf(r, "Cache-Control"), "no-cache");
  EXPECT_TRUE(absl::StrContains(r.body, "<title>fastest</title>"));
}

TEST(DashboardTest, ModulesAreJavaScriptAndRevalidate) {
  net::Response r = AssetResponse("app.js", "");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "text/javascript; charset=utf-8");
  const std::string etag = HeaderOf(r, "ETag");
  ASSERT_FALSE(etag.empty());
  net::Response again = AssetResponse("app.js", etag);
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(HeaderOf(again, "ETag"), etag);
  EXPECT_EQ(AssetResponse("app.js", "\"other\"").status, 200);
  EXPECT_EQ(HeaderOf(AssetResponse("app.css", ""), "Content-Type"), "text/css; charset=utf-8");
}

TEST(DashboardTest, UnknownFilesAre404) {
  EXPECT_EQ(AssetResponse("nope.js", "").status, 404);
  EXPECT_EQ(AssetResponse("../main.cc", "").status, 404);
  EXPECT_EQ(AssetResponse("", "").status, 404);
  EXPECT_EQ(HeaderOf(AssetResponse("nope.js", ""), "X-Content-Type-Options"), "nosniff");
}

// The CSP forbids inline script; keep the page free of it so nothing silently stops working,
// and keep the code free of HTML sinks: agent text is rendered with textContent only.
TEST(DashboardTest, NoInlineScriptAndNoHtmlSinks) {
  const std::regex inline_script("<script(?![^>]*\\ssrc=)[^>]*>", std::regex::icase);
  const std::regex handler_attr("\\son[a-z]+\\s*=", std::regex::icase);
  const std::regex html_sink("innerHTML|outerHTML|insertAdjacentHTML|document\\.write|eval\\(|"
                             "new Function");
  ASSERT_GT(kEmbeddedAssetCount, 3u);
  for (size_t i = 0; i < kEmbeddedAssetCount; ++i) {
    const std::string name(kEmbeddedAssets[i].name);
    const std::string data(kEmbeddedAssets[i].data);
    if (absl::EndsWith(name, ".html")) {
      EXPECT_FALSE(std::regex_search(data, inline_script)) << name;
      EXPECT_FALSE(std::regex_search(data, handler_attr)) << name;
      EXPECT_FALSE(absl::StrContains(data, "style=")) << name;
    }
    if (absl::EndsWith(name, ".js")) {
      EXPECT_FALSE(std::regex_search(data, html_sink)) << name;
    }
  }
}

}  // namespace
}  // namespace fastest::server::dashboard
