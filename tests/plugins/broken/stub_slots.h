/* Minimal C slots for the deliberately broken test plugins: each does nothing useful, because the
 * loader must refuse these plugins before it calls any slot. */
#ifndef FASTEST_TESTS_PLUGINS_BROKEN_STUB_SLOTS_H_
#define FASTEST_TESTS_PLUGINS_BROKEN_STUB_SLOTS_H_

#include <stdlib.h>

#include "core/abi/backend_abi.h"

static __attribute__((unused)) int32_t stub_open(const char* c, fastest_backend** out, fastest_error* e) {
  (void)c;
  (void)e;
  *out = NULL;
  return FASTEST_UNIMPLEMENTED;
}
static __attribute__((unused)) void stub_close(fastest_backend* b) { (void)b; }
static __attribute__((unused)) int32_t stub_describe(fastest_backend* b, char** o, fastest_error* e) {
  (void)b, (void)o, (void)e;
  return FASTEST_UNIMPLEMENTED;
}
static __attribute__((unused)) int32_t stub_create(fastest_backend* b, const char* s, char** o, fastest_error* e) {
  (void)b, (void)s, (void)o, (void)e;
  return FASTEST_UNIMPLEMENTED;
}
static __attribute__((unused)) int32_t stub_wait(fastest_backend* b, const char* i, int64_t t, char** o, fastest_error* e) {
  (void)b, (void)i, (void)t, (void)o, (void)e;
  return FASTEST_UNIMPLEMENTED;
}
static __attribute__((unused)) int32_t stub_logs(fastest_backend* b, const char* i, const char* o, fastest_log_sink s,
                         void* u, fastest_error* e) {
  (void)b, (void)i, (void)o, (void)s, (void)u, (void)e;
  return FASTEST_UNIMPLEMENTED;
}
static __attribute__((unused)) int32_t stub_kill(fastest_backend* b, const char* i, int32_t s, fastest_error* e) {
  (void)b, (void)i, (void)s, (void)e;
  return FASTEST_UNIMPLEMENTED;
}
static __attribute__((unused)) int32_t stub_remove(fastest_backend* b, const char* i, fastest_error* e) {
  (void)b, (void)i, (void)e;
  return FASTEST_UNIMPLEMENTED;
}
static __attribute__((unused)) int32_t stub_list(fastest_backend* b, const char* s, char** o, fastest_error* e) {
  (void)b, (void)s, (void)o, (void)e;
  return FASTEST_UNIMPLEMENTED;
}
static __attribute__((unused)) void stub_free(char* s) { free(s); }

#define STUB_SLOTS                                                                         \
  stub_open, stub_close, stub_describe, stub_create, stub_wait, stub_logs, stub_kill,      \
      stub_remove, stub_list, stub_free

#endif /* FASTEST_TESTS_PLUGINS_BROKEN_STUB_SLOTS_H_ */
