/* File: core/abi/backend_abi.h
 *
 * The whole contract between fastest (server, CLI) and a sandbox backend plugin.
 *
 * A backend is a shared library (`libfastest_backend_<name>.so`) that exports exactly one symbol,
 * `fastest_backend_entry`, returning a versioned table of function pointers. Nothing but C types
 * crosses this boundary: structured data travels as UTF-8 JSON strings, errors as a code plus a
 * message, and no C++ exception may escape a slot.
 *
 * Versioning (SQLite's io_methods / CLAP's entry style):
 *   - `abi_major` changes only on a breaking change, with a new `_v2` struct. The host refuses a
 *     plugin whose major differs from its own.
 *   - `abi_minor` grows when slots are appended at the END of the table. A slot added in 1.k is
 *     called only when the plugin's `abi_minor >= k`, its `struct_size` covers the slot, and the
 *     pointer is non-NULL. Never insert, reorder or remove slots.
 *
 * Ownership:
 *   - Strings passed INTO a slot are borrowed for the duration of the call only.
 *   - Every `char**` output is allocated by the plugin and released by the host with the table's
 *     `free_string`. The host never calls free() on them.
 *   - `fastest_backend` instances are opaque; created by `open`, destroyed by `close`.
 *
 * Loading (core/plugin/backend.cc): the host dlopen()s with RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE,
 * looks up only `fastest_backend_entry`, and refuses the plugin (a clear error, never a crash) when
 * the entry is missing or returns NULL, `abi_major` differs, `struct_size` is below
 * FASTEST_BACKEND_API_V1_0_SIZE, or any 1.0 slot is NULL. The library is never unmapped.
 * C++ plugins should use core/sdk/backend_sdk.h (FASTEST_DEFINE_BACKEND), which fills this table.
 *
 * Threading: every slot except `open` may be called concurrently from several host threads on the
 * same instance; a plugin must make its instance thread-safe. Slots may block (the host calls them
 * from a worker pool, never from its network thread).
 *
 * Errors: every slot that can fail returns an int32 code numbered as absl::StatusCode
 * (0 = OK) and, on failure, fills `err` (message NUL-terminated, truncated to fit). Guidance:
 *   FASTEST_UNAVAILABLE         engine not reachable (daemon down) - retrying may help
 *   FASTEST_FAILED_PRECONDITION image missing, bad credentials - fix the setup first
 *   FASTEST_INVALID_ARGUMENT    malformed config/spec JSON
 *   FASTEST_NOT_FOUND           unknown sandbox id
 *   FASTEST_DEADLINE_EXCEEDED   wait deadline passed (not an error of the sandbox itself)
 *   FASTEST_PERMISSION_DENIED   e.g. no access to the engine socket
 *   FASTEST_ALREADY_EXISTS      name conflict
 *   FASTEST_INTERNAL            anything else
 *
 * JSON documents (every object carries "schema": 1; readers ignore unknown fields):
 *
 *   config (open):   backend-specific, e.g. {"schema":1,"host":"unix:///var/run/docker.sock"}.
 *
 *   sandbox spec (create_sandbox):
 *     {"schema":1,
 *      "name": "fastest-job-<id>",            optional, engine-side name
 *      "image": "fastest/sandbox:0.1.0",
 *      "command": ["fastest-runner"],          argv
 *      "env": {"JOB_ID":"...","API_TOKEN":"..."},   may hold secrets: never log values
 *      "labels": {"fastest.job_id":"...","fastest.server_id":"..."},
 *      "working_dir": "/workspace",            optional
 *      "network_mode": "host"|"none"|"bridge", optional, backend default otherwise
 *      "resources": {"nano_cpus":int, "memory_bytes":int, "pids_limit":int, "disk_bytes":int},
 *      "timeout_ms": int}                      hard cap the backend may enforce itself; 0 = none
 *
 *   sandbox (create_sandbox output, list_sandboxes items):
 *     {"schema":1,"id":"<opaque>","name":"...","state":"created|running|exited|unknown",
 *      "labels":{...},"exit_code":int|null}
 *
 *   wait result (wait_sandbox output): {"schema":1,"exited":bool,"exit_code":int|null}
 *     exited=false with code FASTEST_DEADLINE_EXCEEDED when the deadline passed first.
 *
 *   log options (read_logs): {"schema":1,"follow":bool,"tail":int (0 = all),
 *                             "stdout":bool,"stderr":bool}
 *
 *   label selector (list_sandboxes): {"schema":1,"labels":{"fastest.server_id":"..."}}
 *     matches sandboxes carrying every listed label with that value; output
 *     {"schema":1,"sandboxes":[sandbox,...]}.
 *
 *   capabilities (describe output):
 *     {"schema":1,"name":"docker","version":"...","log_streaming":bool,"warm_pool":bool,
 *      "network_modes":["host","none","bridge"],"default_network_mode":"host",
 *      "max_parallel_sandboxes":int (0 = unlimited),"health":"ok"|"<reason>"}
 *
 * Example (host side, C):
 *   void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
 *   fastest_backend_entry_fn entry = (fastest_backend_entry_fn)dlsym(lib, FASTEST_BACKEND_ENTRY_SYMBOL);
 *   const fastest_backend_api_v1* api = entry(FASTEST_BACKEND_ABI_MAJOR, FASTEST_BACKEND_ABI_MINOR);
 *   fastest_backend* b; fastest_error err;
 *   if (api->open("{\"schema\":1}", &b, &err) != FASTEST_OK) puts(err.message);
 */
#ifndef FASTEST_CORE_ABI_BACKEND_ABI_H_
#define FASTEST_CORE_ABI_BACKEND_ABI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FASTEST_BACKEND_ABI_MAJOR 1
#define FASTEST_BACKEND_ABI_MINOR 0
#define FASTEST_BACKEND_ENTRY_SYMBOL "fastest_backend_entry"

/* Result codes: the numbering of absl::StatusCode, so the host maps them 1:1. */
enum {
  FASTEST_OK = 0,
  FASTEST_CANCELLED = 1,
  FASTEST_UNKNOWN = 2,
  FASTEST_INVALID_ARGUMENT = 3,
  FASTEST_DEADLINE_EXCEEDED = 4,
  FASTEST_NOT_FOUND = 5,
  FASTEST_ALREADY_EXISTS = 6,
  FASTEST_PERMISSION_DENIED = 7,
  FASTEST_RESOURCE_EXHAUSTED = 8,
  FASTEST_FAILED_PRECONDITION = 9,
  FASTEST_ABORTED = 10,
  FASTEST_OUT_OF_RANGE = 11,
  FASTEST_UNIMPLEMENTED = 12,
  FASTEST_INTERNAL = 13,
  FASTEST_UNAVAILABLE = 14,
  FASTEST_DATA_LOSS = 15,
  FASTEST_UNAUTHENTICATED = 16
};

/* Capability bits in the table (static; `describe` adds live details and health). */
#define FASTEST_CAP_LOG_STREAMING (1u << 0) /* read_logs honours "follow":true */
#define FASTEST_CAP_WARM_POOL (1u << 1)     /* sandboxes may start from a pre-warmed pool */
#define FASTEST_CAP_RESOURCE_LIMITS (1u << 2)
#define FASTEST_CAP_NETWORK_MODES (1u << 3)

#define FASTEST_ERROR_MESSAGE_SIZE 1024

/* Filled by a failing slot. The host zeroes it before each call. */
typedef struct fastest_error {
  int32_t code;
  char message[FASTEST_ERROR_MESSAGE_SIZE];
} fastest_error;

/* Opaque backend instance, owned by the plugin. */
typedef struct fastest_backend fastest_backend;

/* Log sink for read_logs. `stream` is 1 for stdout, 2 for stderr. Bytes are borrowed for the call.
 * Return 0 to continue, non-zero to stop reading (read_logs then returns FASTEST_OK). */
typedef int32_t (*fastest_log_sink)(void* user_data, int32_t stream, const char* data, size_t size);

typedef struct fastest_backend_api_v1 {
  uint32_t abi_major;   /* == FASTEST_BACKEND_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor;   /* the plugin's minor: slots up to this version are present */
  uint32_t struct_size; /* sizeof(fastest_backend_api_v1) as the plugin compiled it */
  uint32_t capabilities; /* FASTEST_CAP_* bits */
  const char* name;     /* short name, static storage, e.g. "docker" */
  const char* version;  /* plugin version string, static storage */

  /* ---- since 1.0 -------------------------------------------------------------------------- */

  /* open: create an instance from a JSON config. Required.
   * OWNERSHIP: *out belongs to the plugin until close(). */
  int32_t (*open)(const char* config_json, fastest_backend** out, fastest_error* err);

  /* close: release the instance. Sandboxes keep running. Required. NULL is a no-op. */
  void (*close)(fastest_backend* backend);

  /* describe: capabilities + health as JSON (see above). Required.
   * OWNERSHIP: *capabilities_json is freed with free_string. */
  int32_t (*describe)(fastest_backend* backend, char** capabilities_json, fastest_error* err);

  /* create_sandbox: create AND start a sandbox from a spec. Required.
   * OWNERSHIP: *sandbox_json is freed with free_string. */
  int32_t (*create_sandbox)(fastest_backend* backend, const char* spec_json, char** sandbox_json,
                            fastest_error* err);

  /* wait_sandbox: block until the sandbox exits or `timeout_ms` passes (0 = check and return at
   * once, -1 = no deadline). Required. On deadline: returns FASTEST_DEADLINE_EXCEEDED and still
   * fills *result_json with "exited":false.
   * OWNERSHIP: *result_json is freed with free_string. */
  int32_t (*wait_sandbox)(fastest_backend* backend, const char* sandbox_id, int64_t timeout_ms,
                          char** result_json, fastest_error* err);

  /* read_logs: deliver the sandbox's output to `sink`, in order. With "follow":true, blocks until the
   * sandbox exits or the sink returns non-zero. Required (follow only with FASTEST_CAP_LOG_STREAMING). */
  int32_t (*read_logs)(fastest_backend* backend, const char* sandbox_id, const char* options_json,
                       fastest_log_sink sink, void* user_data, fastest_error* err);

  /* kill_sandbox: send `signal` (e.g. 9, 15) to the sandbox's main process. Killing a sandbox that
   * already exited is not an error. Required. */
  int32_t (*kill_sandbox)(fastest_backend* backend, const char* sandbox_id, int32_t signal,
                          fastest_error* err);

  /* remove_sandbox: remove the sandbox and its volumes, killing it first if it runs. Removing an
   * unknown id returns FASTEST_NOT_FOUND. Required. */
  int32_t (*remove_sandbox)(fastest_backend* backend, const char* sandbox_id, fastest_error* err);

  /* list_sandboxes: every sandbox (running or not) matching a label selector. Required; used to
   * find orphans after a server restart.
   * OWNERSHIP: *list_json is freed with free_string. */
  int32_t (*list_sandboxes)(fastest_backend* backend, const char* selector_json, char** list_json,
                            fastest_error* err);

  /* free_string: release any char* the plugin returned. Required. NULL is a no-op. */
  void (*free_string)(char* s);

  /* ---- since 1.1: append new slots here, bump FASTEST_BACKEND_ABI_MINOR ------------------- */
} fastest_backend_api_v1;

/* The smallest table a 1.x host accepts: everything through free_string. */
#define FASTEST_BACKEND_API_V1_0_SIZE \
  (offsetof(fastest_backend_api_v1, free_string) + sizeof(void (*)(char*)))

/* The only exported symbol. Returns NULL when the plugin cannot serve `host_major`. The table has
 * static storage and lives as long as the library is loaded. */
typedef const fastest_backend_api_v1* (*fastest_backend_entry_fn)(uint32_t host_major,
                                                                   uint32_t host_minor);
const fastest_backend_api_v1* fastest_backend_entry(uint32_t host_major, uint32_t host_minor);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FASTEST_CORE_ABI_BACKEND_ABI_H_ */
