// File: core/crypto/secure_random.h
//
// The one source of secrets and unguessable ids in fastest: the kernel CSPRNG through
// getrandom(2) (blocks only until the pool is initialised at boot, never afterwards).
//
//   - SecureRandomBytes: fills a buffer; a Status error if the kernel refuses (no getrandom,
//     seccomp filter). Use it where the caller can report the failure.
//   - SecureRandomHex / SecureRandomString: for tokens, ids and device codes. They abort the
//     process with a message on stderr if the CSPRNG fails: there is no safe fallback (a weaker
//     generator is exactly the bug this helper exists to prevent), and on Linux >= 3.17 it does
//     not fail in practice.
//   - ConstantTimeEquals: compares secrets or their hashes without an early exit, so the time
//     taken does not tell how many leading bytes matched.
//
// Non-secret randomness (retry jitter, seeded test data) may use an ordinary PRNG, but only in
// files on the allow-list of //tests/lint:weak_random_lint_test.
//
// Example:
//   std::string token = "fst_" + core::SecureRandomHex(24);         // 192 bits
//   std::string id = core::SecureRandomString(kBase36Upper, 16);     // ~82 bits
//   if (core::ConstantTimeEquals(stored_hash, Sha256Hex(presented))) ...
#ifndef FASTEST_CORE_CRYPTO_SECURE_RANDOM_H_
#define FASTEST_CORE_CRYPTO_SECURE_RANDOM_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fastest::core {

// Fills out[0..n) from getrandom(2); retries EINTR and short reads.
absl::Status SecureRandomBytes(void* out, size_t n);

// SecureRandomBytes that aborts if the CSPRNG fails.
void SecureRandomBytesOrDie(void* out, size_t n);

// 2 * bytes lowercase hex characters from `bytes` CSPRNG bytes. Aborts if the CSPRNG fails.
std::string SecureRandomHex(size_t bytes);

// `length` characters drawn uniformly (rejection sampling, no modulo bias) from `alphabet`
// (2..256 distinct characters). Aborts if the CSPRNG fails.
std::string SecureRandomString(absl::string_view alphabet, size_t length);

// True iff a == b; the time depends only on the lengths, not on where the bytes differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace fastest::core

#endif  // FASTEST_CORE_CRYPTO_SECURE_RANDOM_H_
