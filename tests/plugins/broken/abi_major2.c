/* Claims ABI major 2: the 1.x host must refuse it with a rebuild hint. */
#include "tests/plugins/broken/stub_slots.h"

static const fastest_backend_api_v1 kTable = {2, 0, sizeof(fastest_backend_api_v1), 0, "major2",
                                              "0", STUB_SLOTS};

const fastest_backend_api_v1* fastest_backend_entry(uint32_t major, uint32_t minor) {
  (void)major, (void)minor;
  return &kTable;
}
