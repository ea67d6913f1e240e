/* Declares a struct_size that stops before free_string: a table too small for ABI 1.0. */
#include "tests/plugins/broken/stub_slots.h"

static const fastest_backend_api_v1 kTable = {
    FASTEST_BACKEND_ABI_MAJOR, 0, (uint32_t)offsetof(fastest_backend_api_v1, free_string), 0,
    "small", "0", STUB_SLOTS};

const fastest_backend_api_v1* fastest_backend_entry(uint32_t major, uint32_t minor) {
  (void)major, (void)minor;
  return &kTable;
}
