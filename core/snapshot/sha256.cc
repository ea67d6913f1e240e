// File: core/snapshot/sha256.cc
#include "core/snapshot/sha256.h"

#include <errno.h>
#include <fcntl.h>
// The low-level SHA256_* calls (deprecated, not removed, in OpenSSL 3) run the same SHA-NI code as
// EVP without EVP's first-use cost: provider loading and reading openssl.cnf, ~1 ms in every
// runner start.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <string.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/encoding/hex.h"

namespace fastest::core {
namespace {

constexpr size_t kReadBuffer = 1 << 20;  // 1 MiB: few syscalls for large files.

}  // namespace

Sha256Hasher::Sha256Hasher() : ctx_(new SHA256_CTX) { Reset(); }

Sha256Hasher::~Sha256Hasher() { delete static_cast<SHA256_CTX*>(ctx_); }

void Sha256Hasher::Reset() { SHA256_Init(static_cast<SHA256_CTX*>(ctx_)); }

void Sha256Hasher::Update(const void* data, size_t size) {
  if (size > 0) SHA256_Update(static_cast<SHA256_CTX*>(ctx_), data, size);
}

void Sha256Hasher::Update(absl::string_view bytes) { Update(bytes.data(), bytes.size()); }

std::string Sha256Hasher::FinishHex() {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, static_cast<SHA256_CTX*>(ctx_));
  return HexEncode(digest, SHA256_DIGEST_LENGTH);
}

std::string Sha256Hex(absl::string_view bytes) {
  Sha256Hasher h;
  h.Update(bytes);
  return h.FinishHex();
}

absl::StatusOr<std::string> Sha256Fd(int fd, uint64_t* size_out, std::string* buffer) {
  std::string local;
  if (buffer == nullptr) buffer = &local;
  if (buffer->size() < kReadBuffer) buffer->resize(kReadBuffer);
  Sha256Hasher h;
  uint64_t total = 0;
  for (;;) {
    ssize_t n = read(fd, &(*buffer)[0], buffer->size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("read: ", strerror(errno)));
    }
    if (n == 0) break;
    h.Update(buffer->data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  if (size_out != nullptr) *size_out = total;
  return h.FinishHex();
}

absl::StatusOr<std::string> Sha256FileHex(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string msg = absl::StrCat("open ", path, ": ", strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg);
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  auto result = Sha256Fd(fd, nullptr);
  close(fd);
  if (!result.ok()) {
    return absl::Status(result.status().code(), absl::StrCat(path, ": ", result.status().message()));
  }
  return result;
}

bool IsLowerHexSha256(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace fastest::core
