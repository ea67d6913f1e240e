/* An entry that serves no host version. */
#include "core/abi/backend_abi.h"

const fastest_backend_api_v1* fastest_backend_entry(uint32_t major, uint32_t minor) {
  (void)major, (void)minor;
  return NULL;
}
