// File: core/encoding/hex.h
//
// Lowercase hexadecimal: the one spelling fastest uses for hashes, ids and tokens.
//
// Example:
//   std::string id = fastest::core::HexEncode(random_bytes);  // "9f0c..."
#ifndef FASTEST_CORE_ENCODING_HEX_H_
#define FASTEST_CORE_ENCODING_HEX_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace fastest::core {

// The sixteen lowercase digits, for code that writes single nibbles in place (chunk sizes, \u00XX).
inline constexpr char kLowerHexDigits[] = "0123456789abcdef";

// HexEncode: two lowercase digits per byte ("\x0f\xa0" -> "0fa0").
std::string HexEncode(absl::string_view bytes);
std::string HexEncode(const unsigned char* bytes, size_t size);

// AppendHexByte: appends the two lowercase digits of `byte` to `out`.
inline void AppendHexByte(std::string* out, unsigned char byte) {
  out->push_back(kLowerHexDigits[byte >> 4]);
  out->push_back(kLowerHexDigits[byte & 15]);
}

// HexDigitValue: 0-15 for a hex digit of either case, -1 for anything else.
inline int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace fastest::core

#endif  // FASTEST_CORE_ENCODING_HEX_H_
