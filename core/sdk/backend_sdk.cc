#include "core/sdk/backend_sdk.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <utility>

#include "core/plugin/abi_status.h"
#include "core/plugin/sandbox_types.h"

// The opaque instance handed to the host: the author's backend plus the table's static facts.
struct fastest_backend {
  std::unique_ptr<fastest::core::SandboxBackend> impl;
  const char* name;
  const char* version;
  uint32_t capabilities;
};

namespace fastest::sdk::internal {
namespace {

using fastest::core::AbiCodeFromStatus;
using nlohmann::json;

constexpr char kEllipsis[] = "...";

// Reports `status` through `err`; returns its ABI code.
int32_t FromStatus(const absl::Status& status, fastest_error* err) {
  int32_t code = AbiCodeFromStatus(status.code());
  if (code != FASTEST_OK) FillError(err, code, "", status.message());
  return code;
}

// Hands `doc` to the host as a malloc'ed string.
int32_t Output(const json& doc, char** out, fastest_error* err) {
  if (out == nullptr) {
    FillError(err, FASTEST_INVALID_ARGUMENT, "", "output pointer is NULL");
    return FASTEST_INVALID_ARGUMENT;
  }
  *out = CopyToMalloc(fastest::core::DumpJson(doc));
  if (*out == nullptr) {
    FillError(err, FASTEST_RESOURCE_EXHAUSTED, "", "out of memory for the output document");
    return FASTEST_RESOURCE_EXHAUSTED;
  }
  return FASTEST_OK;
}

int32_t BadInput(fastest_error* err, absl::string_view what) {
  FillError(err, FASTEST_INVALID_ARGUMENT, "", what);
  return FASTEST_INVALID_ARGUMENT;
}

// Runs `body` and converts any exception to FASTEST_INTERNAL. FillError does not allocate, so the
// handler itself cannot throw.
template <typename Body>
int32_t Guard(fastest_error* err, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    FillError(err, FASTEST_INTERNAL, "uncaught exception: ", e.what());
  } catch (...) {
    FillError(err, FASTEST_INTERNAL, "uncaught exception: ", "(not a std::exception)");
  }
  return FASTEST_INTERNAL;
}

// Parses a JSON object argument, reporting InvalidArgument through err on failure.
bool ParseArg(const char* text, const char* what, json* out, fastest_error* err) {
  if (text == nullptr) {
    BadInput(err, std::string(what) + " is NULL");
    return false;
  }
  absl::StatusOr<json> parsed = fastest::core::ParseJsonObject(text, what);
  if (!parsed.ok()) {
    FromStatus(parsed.status(), err);
    return false;
  }
  *out = *std::move(parsed);
  return true;
}

bool CheckInstance(fastest_backend* backend, const char* id, fastest_error* err) {
  if (backend == nullptr || backend->impl == nullptr) {
    BadInput(err, "backend instance is NULL");
    return false;
  }
  if (id == nullptr) {
    BadInput(err, "sandbox id is NULL");
    return false;
  }
  return true;
}

}  // namespace

void FillError(fastest_error* err, int32_t code, absl::string_view prefix,
               absl::string_view message) noexcept {
  if (err == nullptr) return;
  err->code = code;
  constexpr size_t kCapacity = sizeof(err->message) - 1;  // keep room for the NUL
  size_t used = 0;
  bool truncated = false;
  for (absl::string_view part : {prefix, message}) {
    size_t take = part.size();
    if (used + take > kCapacity) {
      take = kCapacity - used;
      truncated = true;
    }
    std::memcpy(err->message + used, part.data(), take);
    used += take;
    if (truncated) break;
  }
  if (truncated) {
    // Make room for "...", then step back off any UTF-8 continuation bytes so the message never
    // ends inside a multi-byte character.
    used = kCapacity - (sizeof(kEllipsis) - 1);
    while (used > 0 && (static_cast<unsigned char>(err->message[used]) & 0xC0) == 0x80) --used;
    std::memcpy(err->message + used, kEllipsis, sizeof(kEllipsis) - 1);
    used += sizeof(kEllipsis) - 1;
  }
  err->message[used] = '\0';
}

char* CopyToMalloc(absl::string_view text) noexcept {
  char* copy = static_cast<char*>(std::malloc(text.size() + 1));
  if (copy == nullptr) return nullptr;
  if (!text.empty()) std::memcpy(copy, text.data(), text.size());
  copy[text.size()] = '\0';
  return copy;
}

const fastest_backend_api_v1* Entry(const fastest_backend_api_v1* table, uint32_t host_major,
                                    uint32_t /*host_minor*/) noexcept {
  // A host of another major cannot read this table's layout.
  return host_major == FASTEST_BACKEND_ABI_MAJOR ? table : nullptr;
}

int32_t Open(BackendFactory factory, const char* name, const char* version, uint32_t capabilities,
             const char* config_json, fastest_backend** out, fastest_error* err) noexcept {
  return Guard(err, [&]() -> int32_t {
    if (out == nullptr) return BadInput(err, "open: output pointer is NULL");
    *out = nullptr;
    json config;
    if (!ParseArg(config_json != nullptr ? config_json : "{}", "config", &config, err)) {
      return FASTEST_INVALID_ARGUMENT;
    }
    absl::StatusOr<std::unique_ptr<fastest::core::SandboxBackend>> impl = factory(config);
    if (!impl.ok()) return FromStatus(impl.status(), err);
    if (*impl == nullptr) {
      FillError(err, FASTEST_INTERNAL, "", "backend factory returned a null backend");
      return FASTEST_INTERNAL;
    }
    *out = new fastest_backend{*std::move(impl), name, version, capabilities};
    return FASTEST_OK;
  });
}

void Close(fastest_backend* backend) noexcept {
  try {
    delete backend;
  } catch (...) {
    // A destructor that throws is already a bug; swallowing keeps the host alive.
  }
}

int32_t Describe(fastest_backend* backend, char** capabilities_json, fastest_error* err) noexcept {
  return Guard(err, [&]() -> int32_t {
    if (backend == nullptr || backend->impl == nullptr) return BadInput(err, "backend is NULL");
    absl::StatusOr<json> doc = backend->impl->Describe();
    if (!doc.ok()) return FromStatus(doc.status(), err);
    json caps = doc->is_object() ? *std::move(doc) : json::object();
    auto set_default = [&caps](const char* key, json value) {
      if (!caps.contains(key)) caps[key] = std::move(value);
    };
    set_default("schema", fastest::core::kSandboxSchemaVersion);
    set_default("name", backend->name);
    set_default("version", backend->version != nullptr ? backend->version : "");
    set_default("log_streaming", (backend->capabilities & FASTEST_CAP_LOG_STREAMING) != 0);
    set_default("warm_pool", (backend->capabilities & FASTEST_CAP_WARM_POOL) != 0);
    set_default("resource_limits", (backend->capabilities & FASTEST_CAP_RESOURCE_LIMITS) != 0);
    set_default("health", "ok");
    return Output(caps, capabilities_json, err);
  });
}

int32_t CreateSandbox(fastest_backend* backend, const char* spec_json, char** sandbox_json,
                      fastest_error* err) noexcept {
  return Guard(err, [&]() -> int32_t {
    if (backend == nullptr || backend->impl == nullptr) return BadInput(err, "backend is NULL");
    json j;
    if (!ParseArg(spec_json, "sandbox spec", &j, err)) return FASTEST_INVALID_ARGUMENT;
    absl::StatusOr<fastest::core::SandboxSpec> spec = fastest::core::SandboxSpecFromJson(j);
    if (!spec.ok()) return FromStatus(spec.status(), err);
    absl::StatusOr<fastest::core::SandboxInfo> info = backend->impl->CreateSandbox(*spec);
    if (!info.ok()) return FromStatus(info.status(), err);
    return Output(fastest::core::SandboxInfoToJson(*info), sandbox_json, err);
  });
}

int32_t WaitSandbox(fastest_backend* backend, const char* sandbox_id, int64_t timeout_ms,
                    char** result_json, fastest_error* err) noexcept {
  return Guard(err, [&]() -> int32_t {
    if (!CheckInstance(backend, sandbox_id, err)) return FASTEST_INVALID_ARGUMENT;
    absl::Duration timeout =
        timeout_ms < 0 ? absl::InfiniteDuration() : absl::Milliseconds(timeout_ms);
    absl::StatusOr<fastest::core::WaitResult> result = backend->impl->Wait(sandbox_id, timeout);
    fastest::core::WaitResult pending;  // exited=false
    if (!result.ok() && result.status().code() != absl::StatusCode::kDeadlineExceeded) {
      return FromStatus(result.status(), err);
    }
    const fastest::core::WaitResult& value = result.ok() ? *result : pending;
    int32_t rc = Output(fastest::core::WaitResultToJson(value), result_json, err);
    if (rc != FASTEST_OK) return rc;
    if (!value.exited) {
      FillError(err, FASTEST_DEADLINE_EXCEEDED, "", "deadline passed before the sandbox exited");
      return FASTEST_DEADLINE_EXCEEDED;
    }
    return FASTEST_OK;
  });
}

int32_t ReadLogs(fastest_backend* backend, const char* sandbox_id, const char* options_json,
                 fastest_log_sink sink, void* user_data, fastest_error* err) noexcept {
  return Guard(err, [&]() -> int32_t {
    if (!CheckInstance(backend, sandbox_id, err)) return FASTEST_INVALID_ARGUMENT;
    if (sink == nullptr) return BadInput(err, "log sink is NULL");
    json j;
    if (!ParseArg(options_json != nullptr ? options_json : "{}", "log options", &j, err)) {
      return FASTEST_INVALID_ARGUMENT;
    }
    absl::StatusOr<fastest::core::LogOptions> options = fastest::core::LogOptionsFromJson(j);
    if (!options.ok()) return FromStatus(options.status(), err);
    absl::Status status = backend->impl->ReadLogs(
        sandbox_id, *options, [sink, user_data](int stream, absl::string_view data) {
          return sink(user_data, stream, data.data(), data.size()) == 0;
        });
    return FromStatus(status, err);
  });
}

int32_t KillSandbox(fastest_backend* backend, const char* sandbox_id, int32_t signal,
                    fastest_error* err) noexcept {
  return Guard(err, [&]() -> int32_t {
    if (!CheckInstance(backend, sandbox_id, err)) return FASTEST_INVALID_ARGUMENT;
    return FromStatus(backend->impl->Kill(sandbox_id, signal), err);
  });
}

int32_t RemoveSandbox(fastest_backend* backend, const char* sandbox_id,
                      fastest_error* err) noexcept {
  return Guard(err, [&]() -> int32_t {
    if (!CheckInstance(backend, sandbox_id, err)) return FASTEST_INVALID_ARGUMENT;
    return FromStatus(backend->impl->Remove(sandbox_id), err);
  });
}

int32_t ListSandboxes(fastest_backend* backend, const char* selector_json, char** list_json,
                      fastest_error* err) noexcept {
  return Guard(err, [&]() -> int32_t {
    if (backend == nullptr || backend->impl == nullptr) return BadInput(err, "backend is NULL");
    json j;
    if (!ParseArg(selector_json != nullptr ? selector_json : "{}", "label selector", &j, err)) {
      return FASTEST_INVALID_ARGUMENT;
    }
    absl::StatusOr<std::map<std::string, std::string>> labels =
        fastest::core::LabelSelectorFromJson(j);
    if (!labels.ok()) return FromStatus(labels.status(), err);
    absl::StatusOr<std::vector<fastest::core::SandboxInfo>> list = backend->impl->List(*labels);
    if (!list.ok()) return FromStatus(list.status(), err);
    return Output(fastest::core::SandboxListToJson(*list), list_json, err);
  });
}

void FreeString(char* s) noexcept { std::free(s); }

}  // namespace fastest::sdk::internal
