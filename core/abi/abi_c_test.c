/* core/abi/abi_c_test.c: backend_abi.h must compile as strict C11 (plugins may be written in C)
 * and its layout must match what a 1.x host assumes. A failed check prints and exits non-zero. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/abi/backend_abi.h"

/* Compile-time: the version header fields sit at fixed offsets in every ABI version (the host
 * reads abi_major and struct_size before trusting anything else). */
_Static_assert(offsetof(fastest_backend_api_v1, abi_major) == 0, "abi_major first");
_Static_assert(offsetof(fastest_backend_api_v1, abi_minor) == 4, "abi_minor second");
_Static_assert(offsetof(fastest_backend_api_v1, struct_size) == 8, "struct_size third");
_Static_assert(offsetof(fastest_backend_api_v1, capabilities) == 12, "capabilities fourth");
_Static_assert(FASTEST_BACKEND_ABI_MAJOR == 1, "this test describes ABI 1.x");
_Static_assert(FASTEST_ERROR_MESSAGE_SIZE >= 256, "room for useful messages");
_Static_assert(FASTEST_UNAUTHENTICATED == 16, "codes follow absl::StatusCode");

static int failures = 0;

#define CHECK(cond)                                               \
  do {                                                            \
    if (!(cond)) {                                                \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                 \
    }                                                             \
  } while (0)

/* A minimal plugin written in plain C, to prove the header is usable from C. */
static int32_t c_open(const char* config_json, fastest_backend** out, fastest_error* err) {
  (void)config_json;
  (void)err;
  *out = (fastest_backend*)malloc(1);
  return FASTEST_OK;
}
static void c_close(fastest_backend* b) { free(b); }
static int32_t c_describe(fastest_backend* b, char** out, fastest_error* err) {
  static const char kDoc[] = "{\"schema\":1,\"name\":\"c\"}";
  (void)b;
  (void)err;
  *out = (char*)malloc(sizeof(kDoc));
  memcpy(*out, kDoc, sizeof(kDoc));
  return FASTEST_OK;
}
static void c_free_string(char* s) { free(s); }

int main(void) {
  const size_t ptr = sizeof(void*);
  /* 4 uint32 + 2 strings, then 10 slots of 1.0. */
  const size_t header = 4 * sizeof(uint32_t) + 2 * ptr;
  CHECK(offsetof(fastest_backend_api_v1, name) == 16);
  CHECK(offsetof(fastest_backend_api_v1, version) == 16 + ptr);
  CHECK(offsetof(fastest_backend_api_v1, open) == header);
  CHECK(offsetof(fastest_backend_api_v1, close) == header + 1 * ptr);
  CHECK(offsetof(fastest_backend_api_v1, describe) == header + 2 * ptr);
  CHECK(offsetof(fastest_backend_api_v1, create_sandbox) == header + 3 * ptr);
  CHECK(offsetof(fastest_backend_api_v1, wait_sandbox) == header + 4 * ptr);
  CHECK(offsetof(fastest_backend_api_v1, read_logs) == header + 5 * ptr);
  CHECK(offsetof(fastest_backend_api_v1, kill_sandbox) == header + 6 * ptr);
  CHECK(offsetof(fastest_backend_api_v1, remove_sandbox) == header + 7 * ptr);
  CHECK(offsetof(fastest_backend_api_v1, list_sandboxes) == header + 8 * ptr);
  CHECK(offsetof(fastest_backend_api_v1, free_string) == header + 9 * ptr);
  CHECK(FASTEST_BACKEND_API_V1_0_SIZE == header + 10 * ptr);
  CHECK(sizeof(fastest_backend_api_v1) >= FASTEST_BACKEND_API_V1_0_SIZE);
  CHECK(sizeof(fastest_error) == sizeof(int32_t) + FASTEST_ERROR_MESSAGE_SIZE);
  CHECK(strcmp(FASTEST_BACKEND_ENTRY_SYMBOL, "fastest_backend_entry") == 0);
  CHECK(FASTEST_OK == 0 && FASTEST_NOT_FOUND == 5 && FASTEST_INTERNAL == 13);

  /* Designated initializers: the way a C plugin fills its table. */
  static const fastest_backend_api_v1 table = {
      .abi_major = FASTEST_BACKEND_ABI_MAJOR,
      .abi_minor = FASTEST_BACKEND_ABI_MINOR,
      .struct_size = sizeof(fastest_backend_api_v1),
      .capabilities = FASTEST_CAP_LOG_STREAMING,
      .name = "c",
      .version = "0",
      .open = c_open,
      .close = c_close,
      .describe = c_describe,
      .free_string = c_free_string,
  };
  fastest_backend* b = NULL;
  fastest_error err;
  memset(&err, 0, sizeof(err));
  CHECK(table.open("{\"schema\":1}", &b, &err) == FASTEST_OK);
  CHECK(b != NULL);
  char* doc = NULL;
  CHECK(table.describe(b, &doc, &err) == FASTEST_OK);
  CHECK(doc != NULL && strstr(doc, "\"schema\":1") != NULL);
  table.free_string(doc);
  table.close(b);

  if (failures != 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("backend_abi.h: C11 layout checks passed (ABI %d.%d, 1.0 table %zu bytes)\n",
         FASTEST_BACKEND_ABI_MAJOR, FASTEST_BACKEND_ABI_MINOR,
         (size_t)FASTEST_BACKEND_API_V1_0_SIZE);
  return 0;
}
