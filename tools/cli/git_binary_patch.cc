#include "tools/cli/git_binary_patch.h"

#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/encoding/hex.h"

namespace fastest::cli {
namespace {

constexpr char kBase85Digits[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";
constexpr char kNoBlob[] = "0000000000000000000000000000000000000000";
constexpr size_t kBytesPerLine = 52;  // what git writes (and the most a length char can say)

absl::StatusOr<std::string> Deflate(absl::string_view data) {
  uLongf size = compressBound(static_cast<uLong>(data.size()));
  std::string out(size, '\0');
  int rc = compress2(reinterpret_cast<Bytef*>(&out[0]), &size,
                     reinterpret_cast<const Bytef*>(data.data()), static_cast<uLong>(data.size()),
                     Z_BEST_COMPRESSION);
  if (rc != Z_OK) return absl::InternalError(absl::StrCat("zlib compress2 failed: ", rc));
  out.resize(size);
  return out;
}

// "literal N\n" + the deflated content, 52 bytes a line, + the empty line that ends the hunk.
absl::StatusOr<std::string> LiteralHunk(absl::string_view content) {
  absl::StatusOr<std::string> deflated = Deflate(content);
  if (!deflated.ok()) return deflated.status();
  std::string out = absl::StrCat("literal ", content.size(), "\n");
  for (size_t at = 0; at < deflated->size(); at += kBytesPerLine) {
    const size_t n = std::min(kBytesPerLine, deflated->size() - at);
    out.push_back(n <= 26 ? static_cast<char>('A' + n - 1) : static_cast<char>('a' + n - 27));
    absl::StrAppend(&out, GitBase85(absl::string_view(*deflated).substr(at, n)), "\n");
  }
  out.push_back('\n');
  return out;
}

}  // namespace

std::string GitBlobId(absl::string_view content) {
  const std::string header = absl::StrCat("blob ", content.size(), std::string(1, '\0'));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr);
  EVP_DigestUpdate(ctx, header.data(), header.size());
  EVP_DigestUpdate(ctx, content.data(), content.size());
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  return core::HexEncode(digest, length);
}

std::string GitBase85(absl::string_view data) {
  std::string out;
  out.reserve((data.size() + 3) / 4 * 5);
  for (size_t at = 0; at < data.size(); at += 4) {
    uint32_t group = 0;
    for (size_t i = 0; i < 4; ++i) {
      const uint32_t byte = at + i < data.size() ? static_cast<unsigned char>(data[at + i]) : 0;
      group |= byte << (24 - 8 * i);
    }
    char digits[5];
    for (int i = 4; i >= 0; --i) {
      digits[i] = kBase85Digits[group % 85];
      group /= 85;
    }
    out.append(digits, 5);
  }
  return out;
}

absl::StatusOr<std::string> GitBinaryPatch(const std::optional<std::string>& old_content,
                                           const std::optional<std::string>& new_content) {
  const std::string old_id = old_content ? GitBlobId(*old_content) : kNoBlob;
  const std::string new_id = new_content ? GitBlobId(*new_content) : kNoBlob;
  absl::StatusOr<std::string> forward = LiteralHunk(new_content.value_or(""));
  if (!forward.ok()) return forward.status();
  absl::StatusOr<std::string> reverse = LiteralHunk(old_content.value_or(""));
  if (!reverse.ok()) return reverse.status();
  return absl::StrCat("index ", old_id, "..", new_id, "\nGIT binary patch\n", *forward, *reverse);
}

}  // namespace fastest::cli
