#include "server/store/blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/snapshot/sha256.h"

namespace fastest::server {

BlobStore::BlobStore(std::string data_dir) : data_dir_(std::move(data_dir)) {}

absl::Status BlobStore::Init() {
  for (const char* sub : {"blobs", "manifests", "tmp"}) {
    std::error_code ec;
    std::filesystem::create_directories(absl::StrCat(data_dir_, "/", sub), ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create ", data_dir_, "/", sub, ": ", ec.message()));
    }
  }
  return absl::OkStatus();
}

std::string BlobStore::PathFor(Kind kind, absl::string_view hash) const {
  return absl::StrCat(data_dir_, kind == Kind::kBlob ? "/blobs/" : "/manifests/",
                      hash.substr(0, 2), "/", hash);
}

bool BlobStore::Exists(Kind kind, absl::string_view hash) const {
  if (!core::IsLowerHexSha256(hash)) return false;
  std::error_code ec;
  return std::filesystem::is_regular_file(PathFor(kind, hash), ec);
}

absl::StatusOr<bool> BlobStore::Put(Kind kind, absl::string_view hash, absl::string_view bytes) {
  const std::string actual = core::Sha256Hex(bytes);
  if (!core::IsLowerHexSha256(hash) || actual != hash) {
    return absl::InvalidArgumentError(absl::StrCat("hash mismatch: content hash ", actual));
  }
  if (Exists(kind, hash)) return false;
  const std::string final_path = PathFor(kind, hash);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(final_path).parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir for blob: ", ec.message()));
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = absl::StrCat(data_dir_, "/tmp/", hash, ".", getpid(), ".",
                                       counter.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("open temp blob: ", strerror(errno)));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("write blob: ", strerror(e)));
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("rename blob: ", strerror(e)));
  }
  return true;
}

absl::StatusOr<std::string> BlobStore::Get(Kind kind, absl::string_view hash) const {
  if (!core::IsLowerHexSha256(hash)) {
    return absl::NotFoundError(kind == Kind::kBlob ? "Blob not found" : "Manifest not found");
  }
  std::ifstream in(PathFor(kind, hash), std::ios::binary);
  if (!in) {
    return absl::NotFoundError(kind == Kind::kBlob ? "Blob not found" : "Manifest not found");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace fastest::server
