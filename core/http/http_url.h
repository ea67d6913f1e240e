// File: core/http/http_url.h
//
// URL and header-token checks: AsioHttpClient's, also the model gateway's base URL.
#ifndef FASTEST_CORE_HTTP_HTTP_URL_H_
#define FASTEST_CORE_HTTP_HTTP_URL_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fastest::core {

// The parts of an absolute URL a request needs; views into HttpRequest::url.
struct Url {
  bool tls = false;
  bool ipv6 = false;  // host was a bracketed literal
  absl::string_view host;
  uint16_t port = 0;
  bool default_port = true;
  absl::string_view target;  // path and query; "" means "/"
};

// Parses an absolute http:// or https:// URL; InvalidArgument naming what is wrong.
absl::Status ParseUrl(absl::string_view url, Url* out);

// An RFC 9110 token (method, header name).
bool IsToken(absl::string_view s);

// Whether `s` holds CR or LF (header injection).
bool HasLineBreak(absl::string_view s);

}  // namespace fastest::core

#endif  // FASTEST_CORE_HTTP_HTTP_URL_H_
