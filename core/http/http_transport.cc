#include "core/http/http_transport.h"

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace fastest::core {

absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view endpoint) {
  Endpoint result;
  absl::string_view rest = endpoint;
  if (absl::ConsumePrefix(&rest, "unix://")) {
    if (rest.empty() || rest[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("unix endpoint needs an absolute socket path: ", endpoint));
    }
    result.unix_socket = std::string(rest);
    result.base_url = "http://localhost";
    return result;
  }
  if (absl::ConsumePrefix(&rest, "tcp://")) {
    if (rest.empty()) return absl::InvalidArgumentError("tcp endpoint needs host:port");
    result.base_url = absl::StrCat("http://", rest);
  } else if (absl::StartsWith(rest, "http://") || absl::StartsWith(rest, "https://")) {
    result.base_url = std::string(rest);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported endpoint '", endpoint,
        "': use http://host:port, https://..., tcp://host:port or unix:///path.sock"));
  }
  while (!result.base_url.empty() && result.base_url.back() == '/') result.base_url.pop_back();
  return result;
}

std::string HttpResponse::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

size_t BodyPiecesSize(const HttpRequest& request) {
  size_t total = 0;
  for (absl::string_view piece : request.body_pieces) total += piece.size();
  return total;
}

size_t BodyPiecesReader::Read(char* buf, size_t max) {
  size_t n = 0;
  while (n < max && piece_ < pieces_.size()) {
    absl::string_view rest = pieces_[piece_].substr(offset_);
    const size_t k = std::min(max - n, rest.size());
    std::memcpy(buf + n, rest.data(), k);
    n += k;
    offset_ += k;
    if (offset_ == pieces_[piece_].size()) {
      ++piece_;
      offset_ = 0;
    }
  }
  return n;
}

}  // namespace fastest::core
