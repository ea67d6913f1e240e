/* A complete-sized 1.0 table with a required slot (read_logs) left NULL. */
#include "tests/plugins/broken/stub_slots.h"

static const fastest_backend_api_v1 kTable = {
    FASTEST_BACKEND_ABI_MAJOR, FASTEST_BACKEND_ABI_MINOR, sizeof(fastest_backend_api_v1), 0,
    "nullslot", "0", stub_open, stub_close, stub_describe, stub_create, stub_wait,
    NULL /* read_logs */, stub_kill, stub_remove, stub_list, stub_free};

const fastest_backend_api_v1* fastest_backend_entry(uint32_t major, uint32_t minor) {
  (void)major, (void)minor;
  return &kTable;
}
