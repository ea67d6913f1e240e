// File: server/dashboard/embedded_assets.h
//
// The dashboard's files (server/dashboard/assets/*), compiled in by //server/dashboard:embed_assets.
#ifndef FASTEST_SERVER_DASHBOARD_EMBEDDED_ASSETS_H_
#define FASTEST_SERVER_DASHBOARD_EMBEDDED_ASSETS_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace fastest::server::dashboard {

struct EmbeddedAsset {
  absl::string_view name;  // base name, e.g. "app.js"
  absl::string_view data;
};

extern const EmbeddedAsset kEmbeddedAssets[];
extern const size_t kEmbeddedAssetCount;

}  // namespace fastest::server::dashboard

#endif  // FASTEST_SERVER_DASHBOARD_EMBEDDED_ASSETS_H_
