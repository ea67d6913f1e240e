#include "core/http/http_url.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fastest::core {

absl::Status ParseUrl(absl::string_view url, Url* out) {
  for (char c : url) {
    // Whitespace or CR/LF would let a URL inject header lines.
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("URL contains whitespace or control characters");
    }
  }
  absl::string_view rest = url;
  if (absl::StartsWithIgnoreCase(rest, "http://")) {
    rest.remove_prefix(7);
    out->port = 80;
  } else if (absl::StartsWithIgnoreCase(rest, "https://")) {
    rest.remove_prefix(8);
    out->tls = true;
    out->port = 443;
  } else {
    return absl::InvalidArgumentError("unsupported URL scheme (use http:// or https://)");
  }
  size_t end = rest.find_first_of("/?#");
  absl::string_view authority = rest.substr(0, end);
  absl::string_view target = end == absl::string_view::npos ? "" : rest.substr(end);
  target = target.substr(0, target.find('#'));
  if (authority.find('@') != absl::string_view::npos) {
    return absl::InvalidArgumentError("credentials in the URL are not supported");
  }
  absl::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("unterminated '['");
    out->host = authority.substr(1, close - 1);
    out->ipv6 = true;
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return absl::InvalidArgumentError("junk after ']'");
      port = after.substr(1);
      has_port = true;
    }
  } else {
    size_t colon = authority.rfind(':');
    out->host = authority.substr(0, colon);
    if (colon != absl::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (out->host.empty()) return absl::InvalidArgumentError("URL has no host");
  if (has_port && !port.empty()) {
    uint32_t value = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || value > 65535) return absl::InvalidArgumentError("bad port");
      value = value * 10 + (c - '0');
    }
    if (value == 0 || value > 65535) return absl::InvalidArgumentError("bad port");
    out->default_port = value == out->port;
    out->port = static_cast<uint16_t>(value);
  }
  out->target = target;
  return absl::OkStatus();
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == ':') return false;
  }
  return true;
}

bool HasLineBreak(absl::string_view s) {
  return s.find_first_of("\r\n") != absl::string_view::npos;
}

}  // namespace fastest::core
