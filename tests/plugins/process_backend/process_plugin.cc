// Exports ProcessBackend as libfastest_backend_process.so.
#include "core/sdk/backend_sdk.h"
#include "tests/plugins/process_backend/process_backend.h"

namespace {

absl::StatusOr<std::unique_ptr<fastest::core::SandboxBackend>> MakeProcessBackend(
    const nlohmann::json& config) {
  absl::StatusOr<std::unique_ptr<fastest::backends::process::ProcessBackend>> backend =
      fastest::backends::process::ProcessBackend::Create(config);
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<fastest::core::SandboxBackend>(*std::move(backend));
}

}  // namespace

FASTEST_DEFINE_BACKEND("process", "0.1.0", FASTEST_CAP_LOG_STREAMING, MakeProcessBackend)
