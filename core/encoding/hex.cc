#include "core/encoding/hex.h"

namespace fastest::core {

std::string HexEncode(const unsigned char* bytes, size_t size) {
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) AppendHexByte(&out, bytes[i]);
  return out;
}

std::string HexEncode(absl::string_view bytes) {
  return HexEncode(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

}  // namespace fastest::core
