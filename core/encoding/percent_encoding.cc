#include "core/encoding/percent_encoding.h"

#include "absl/strings/ascii.h"

namespace fastest::core {

std::string PercentEncode(absl::string_view text, absl::string_view also_keep) {
  static constexpr char kUpperHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (unsigned char c : text) {
    const bool unreserved = absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved || also_keep.find(static_cast<char>(c)) != absl::string_view::npos) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kUpperHex[c >> 4]);
      out.push_back(kUpperHex[c & 15]);
    }
  }
  return out;
}

}  // namespace fastest::core
