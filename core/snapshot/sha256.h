// File: core/snapshot/sha256.h
//
// SHA-256 (OpenSSL) as lowercase hex: the blob key and the manifest hash of PROTOCOLS.md §2.3.
//
// Example:
//   Sha256Hasher h;
//   h.Update("hel"); h.Update("lo");
//   std::string hex = h.FinishHex();   // 2cf24dba...
//   FASTEST_ASSIGN_OR_RETURN(std::string file_hash, Sha256FileHex("/work/a.txt"));
#ifndef FASTEST_CORE_SNAPSHOT_SHA256_H_
#define FASTEST_CORE_SNAPSHOT_SHA256_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fastest::core {

// Sha256Hasher: incremental hasher. Not copyable; Reset() allows reuse after FinishHex().
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(absl::string_view bytes);
  void Update(const void* data, size_t size);
  // FinishHex: 64 lowercase hex chars; the hasher must be Reset() before further use.
  std::string FinishHex();
  void Reset();

 private:
  void* ctx_;  // SHA256_CTX*, kept opaque so users need no OpenSSL headers.
};

// Sha256Hex: one-shot hash of a byte string.
std::string Sha256Hex(absl::string_view bytes);

// Sha256FileHex: hashes a file's bytes with a large read buffer. Errors name the path.
absl::StatusOr<std::string> Sha256FileHex(const std::string& path);

// Sha256Fd: hashes everything readable from an open fd (from its current offset); *size_out gets the
// number of bytes hashed. `buffer` (may be null → internal) lets callers reuse one large buffer.
absl::StatusOr<std::string> Sha256Fd(int fd, uint64_t* size_out, std::string* buffer = nullptr);

// IsLowerHexSha256: exactly 64 chars of [0-9a-f].
bool IsLowerHexSha256(absl::string_view s);

}  // namespace fastest::core

#endif  // FASTEST_CORE_SNAPSHOT_SHA256_H_
