// The plugin entry of libfastest_backend_cloudflare.so (see core/sdk/backend_sdk.h).
#include "backends/cloudflare/cloudflare_backend.h"
#include "core/sdk/backend_sdk.h"

namespace {

absl::StatusOr<std::unique_ptr<fastest::core::SandboxBackend>> MakeCloudflare(
    const nlohmann::json& config) {
  auto backend = fastest::backends::cloudflare::CloudflareBackend::Create(config);
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<fastest::core::SandboxBackend>(std::move(*backend));
}

}  // namespace

FASTEST_DEFINE_BACKEND("cloudflare", "0.1.0", FASTEST_CAP_LOG_STREAMING | FASTEST_CAP_WARM_POOL,
                       MakeCloudflare)
