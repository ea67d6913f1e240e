#include "core/crypto/secure_random.h"

#include <errno.h>
#include <sys/random.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/encoding/hex.h"

namespace fastest::core {
namespace {

[[noreturn]] void DieNoEntropy(const absl::Status& status) {
  std::fprintf(stderr, "FATAL: the OS random number generator failed: %s\n",
               std::string(status.message()).c_str());
  std::abort();
}

}  // namespace

absl::Status SecureRandomBytes(void* out, size_t n) {
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("getrandom: ", std::strerror(errno)));
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

void SecureRandomBytesOrDie(void* out, size_t n) {
  if (absl::Status s = SecureRandomBytes(out, n); !s.ok()) DieNoEntropy(s);
}

std::string SecureRandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  SecureRandomBytesOrDie(raw.data(), raw.size());
  return HexEncode(raw);
}

std::string SecureRandomString(absl::string_view alphabet, size_t length) {
  if (alphabet.size() < 2 || alphabet.size() > 256) {
    DieNoEntropy(absl::InvalidArgumentError("alphabet must hold 2..256 characters"));
  }
  // Bytes at or above the largest multiple of the alphabet size are redrawn (no modulo bias).
  const unsigned limit = 256 - 256 % static_cast<unsigned>(alphabet.size());
  std::string out;
  out.reserve(length);
  unsigned char pool[64];
  while (out.size() < length) {
    SecureRandomBytesOrDie(pool, sizeof(pool));
    for (unsigned char b : pool) {
      if (out.size() == length) break;
      if (b < limit) out.push_back(alphabet[b % alphabet.size()]);
    }
  }
  return out;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace fastest::core
