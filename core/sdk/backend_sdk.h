// File: core/sdk/backend_sdk.h
//
// The C++ SDK for backend authors. Implement fastest::core::SandboxBackend
// (core/plugin/sandbox_backend.h) in ordinary C++ with absl::Status results, then export it as a
// plugin with ONE macro in ONE .cc file of the plugin's shared library:
//
//   FASTEST_DEFINE_BACKEND(name, version, capabilities, factory)
//     name          string literal, the backend's short name, e.g. "docker"
//     version       string literal, the plugin's version, e.g. "0.1.0"
//     capabilities  FASTEST_CAP_* bits (core/abi/backend_abi.h), e.g. FASTEST_CAP_LOG_STREAMING
//     factory       a function
//                     absl::StatusOr<std::unique_ptr<fastest::core::SandboxBackend>>
//                     Factory(const nlohmann::json& config);
//                   called by the ABI's `open` with the parsed config object.
//
// The macro defines the static fastest_backend_api_v1 table and the extern "C" entry
// `fastest_backend_entry` (NULL unless the host speaks ABI major 1). Every slot is a noexcept
// trampoline that:
//   - parses the JSON input with the shared codecs (core/plugin/sandbox_types.h) and rejects bad
//     input with FASTEST_INVALID_ARGUMENT;
//   - calls your SandboxBackend method and turns its absl::Status into code + message
//     (message truncated to FASTEST_ERROR_MESSAGE_SIZE on a UTF-8 boundary);
//   - catches every exception: FASTEST_INTERNAL "uncaught exception: <what()>";
//   - returns outputs as malloc'ed JSON strings; the table's free_string is free().
// Semantics the SDK adds for you:
//   - Wait returning OK with exited=false (or kDeadlineExceeded) becomes FASTEST_DEADLINE_EXCEEDED
//     with {"exited":false}; timeout_ms -1 arrives as absl::InfiniteDuration().
//   - Describe's document gets defaults for missing "schema", "name", "version", "log_streaming",
//     "warm_pool", "resource_limits" (from the capability bits) and "health" ("ok"). Fields you
//     set must agree with the bits: the host refuses a contradiction (core/plugin/capabilities.h).
//   - A log sink returning non-zero makes your ReadLogs sink callback return false: stop reading
//     and return OK.
// Your SandboxBackend must be thread-safe (slots are called concurrently), and must stop any
// thread it started in its destructor (the ABI's `close`).
//
// Example (backends/docker/docker_plugin.cc):
//   #include "backends/docker/docker_backend.h"
//   #include "core/sdk/backend_sdk.h"
//
//   namespace {
//   absl::StatusOr<std::unique_ptr<fastest::core::SandboxBackend>> MakeDocker(
//       const nlohmann::json& config) {
//     return fastest::backends::docker::DockerBackend::Create(config);
//   }
//   }  // namespace
//
//   FASTEST_DEFINE_BACKEND("docker", "0.1.0", FASTEST_CAP_LOG_STREAMING |
//   FASTEST_CAP_RESOURCE_LIMITS,
//                          MakeDocker)
//
// BUILD (backends/docker/BUILD.bazel). Keep the logic in a cc_library that tests link directly;
// the .so is a cc_binary whose srcs hold the FASTEST_DEFINE_BACKEND file:
//
//   load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library")
//
//   cc_library(name = "docker_backend", srcs = [...], hdrs = [...],
//              deps = ["//core/plugin:sandbox_backend", ...])
//
//   cc_binary(
//       name = "libfastest_backend_docker.so",
//       srcs = ["docker_plugin.cc"],
//       copts = ["-fvisibility=hidden"],
//       linkshared = True,
//       linkopts = ["-Wl,--version-script=$(location //core/sdk:plugin_exports.lds)"],
//       additional_linker_inputs = ["//core/sdk:plugin_exports.lds"],
//       visibility = ["//visibility:public"],
//       deps = [":docker_backend", "//core/sdk:backend_sdk"],
//   )
//
// or, equivalently, with the macro that expands to exactly that:
//
//   load("//core/sdk:backend_plugin.bzl", "fastest_backend_plugin")
//   fastest_backend_plugin(name = "docker", srcs = ["docker_plugin.cc"], deps =
//   [":docker_backend"])
//       # -> target :libfastest_backend_docker.so
//
// The version script exports only `fastest_backend_entry`; everything else (your code, the SDK,
// statically linked helpers) stays local to the .so, so plugins never clash with the host or with
// each other. Do NOT link the .so into binaries; tests load it with OpenBackend (as `data`).
#ifndef FASTEST_CORE_SDK_BACKEND_SDK_H_
#define FASTEST_CORE_SDK_BACKEND_SDK_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/abi/backend_abi.h"
#include "core/plugin/sandbox_backend.h"
#include "nlohmann/json.hpp"

namespace fastest::sdk {

// BackendFactory: what FASTEST_DEFINE_BACKEND's `factory` must be.
using BackendFactory = absl::StatusOr<std::unique_ptr<fastest::core::SandboxBackend>> (*)(
    const nlohmann::json& config);

namespace internal {

// The trampolines FASTEST_DEFINE_BACKEND puts in the table. Not for direct use.
int32_t Open(BackendFactory factory, const char* name, const char* version, uint32_t capabilities,
             const char* config_json, fastest_backend** out, fastest_error* err) noexcept;
void Close(fastest_backend* backend) noexcept;
int32_t Describe(fastest_backend* backend, char** capabilities_json, fastest_error* err) noexcept;
int32_t CreateSandbox(fastest_backend* backend, const char* spec_json, char** sandbox_json,
                      fastest_error* err) noexcept;
int32_t WaitSandbox(fastest_backend* backend, const char* sandbox_id, int64_t timeout_ms,
                    char** result_json, fastest_error* err) noexcept;
int32_t ReadLogs(fastest_backend* backend, const char* sandbox_id, const char* options_json,
                 fastest_log_sink sink, void* user_data, fastest_error* err) noexcept;
int32_t KillSandbox(fastest_backend* backend, const char* sandbox_id, int32_t signal,
                    fastest_error* err) noexcept;
int32_t RemoveSandbox(fastest_backend* backend, const char* sandbox_id,
                      fastest_error* err) noexcept;
int32_t ListSandboxes(fastest_backend* backend, const char* selector_json, char** list_json,
                      fastest_error* err) noexcept;
void FreeString(char* s) noexcept;

// Entry: `table` when the host speaks ABI major 1, NULL otherwise.
const fastest_backend_api_v1* Entry(const fastest_backend_api_v1* table, uint32_t host_major,
                                    uint32_t host_minor) noexcept;

// FillError: sets err->code and a NUL-terminated message, truncated on a UTF-8 boundary (with
// "..." appended when cut). Never allocates, so it is safe inside catch blocks. NULL err: no-op.
void FillError(fastest_error* err, int32_t code, absl::string_view prefix,
               absl::string_view message) noexcept;

// CopyToMalloc: a malloc'ed NUL-terminated copy (what free_string releases); NULL on OOM.
char* CopyToMalloc(absl::string_view text) noexcept;

}  // namespace internal
}  // namespace fastest::sdk

// Defines the plugin table and the exported entry. Use once per shared library, at global scope.
#define FASTEST_DEFINE_BACKEND(backend_name, backend_version, backend_capabilities, factory)  \
  namespace {                                                                                 \
  int32_t FastestSdkOpenTrampoline(const char* config_json, fastest_backend** out,            \
                                   fastest_error* err) noexcept {                             \
    return ::fastest::sdk::internal::Open((factory), (backend_name), (backend_version),       \
                                          (backend_capabilities), config_json, out, err);     \
  }                                                                                           \
  const fastest_backend_api_v1 kFastestSdkBackendTable = {                                    \
      FASTEST_BACKEND_ABI_MAJOR,                                                              \
      FASTEST_BACKEND_ABI_MINOR,                                                              \
      static_cast<uint32_t>(sizeof(fastest_backend_api_v1)),                                  \
      static_cast<uint32_t>(backend_capabilities),                                            \
      (backend_name),                                                                         \
      (backend_version),                                                                      \
      &FastestSdkOpenTrampoline,                                                              \
      &::fastest::sdk::internal::Close,                                                       \
      &::fastest::sdk::internal::Describe,                                                    \
      &::fastest::sdk::internal::CreateSandbox,                                               \
      &::fastest::sdk::internal::WaitSandbox,                                                 \
      &::fastest::sdk::internal::ReadLogs,                                                    \
      &::fastest::sdk::internal::KillSandbox,                                                 \
      &::fastest::sdk::internal::RemoveSandbox,                                               \
      &::fastest::sdk::internal::ListSandboxes,                                               \
      &::fastest::sdk::internal::FreeString,                                                  \
  };                                                                                          \
  }                                                                                           \
  extern "C" __attribute__((visibility("default"))) const fastest_backend_api_v1*             \
  fastest_backend_entry(uint32_t host_major, uint32_t host_minor) {                           \
    return ::fastest::sdk::internal::Entry(&kFastestSdkBackendTable, host_major, host_minor); \
  }

#endif  // FASTEST_CORE_SDK_BACKEND_SDK_H_
