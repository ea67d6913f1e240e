#include "core/encoding/percent_encoding.h"

#include "absl/strings/ascii.h"
#include "core/encoding/hex.h"

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

std::string PercentDecode(absl::string_view text, bool plus_is_space,
                          absl::string_view keep_encoded) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      const int hi = HexDigitValue(text[i + 1]);
      const int lo = HexDigitValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        const char decoded = static_cast<char>(hi * 16 + lo);
        if (keep_encoded.find(decoded) == absl::string_view::npos) {
          out.push_back(decoded);
          i += 2;
          continue;
        }
      }
    }
    out.push_back(c == '+' && plus_is_space ? ' ' : c);
  }
  return out;
}

}  // namespace fastest::core
