#include "server/store/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/snapshot/sha256.h"
#include "core/encoding/hex.h"
#include "core/io/fd_io.h"

namespace fastest::server {
namespace {

absl::Status NotFound(BlobStore::Kind kind) {
  return absl::NotFoundError(kind == BlobStore::Kind::kBlob ? "Blob not found"
                                                            : "Manifest not found");
}

}  // namespace

BlobStore::BlobStore(std::string data_dir, bool fsync_writes)
    : data_dir_(std::move(data_dir)), fsync_writes_(fsync_writes) {}

BlobStore::~BlobStore() {
  if (legacy_blobs_fd_ >= 0) ::close(legacy_blobs_fd_);
  if (manifests_fd_ >= 0) ::close(manifests_fd_);
}

absl::Status BlobStore::Init() {
  const std::string top = absl::StrCat(data_dir_, "/manifests");
  std::error_code ec;
  std::filesystem::create_directories(top, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat("cannot create ", top, ": ", ec.message()));
  }
  // All shard directories up front: a put then never needs a mkdir on the hot path.
  for (int i = 0; i < 256; ++i) {
    std::string dir = absl::StrCat(top, "/");
    core::AppendHexByte(&dir, static_cast<unsigned char>(i));
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create ", dir, ": ", std::strerror(errno)));
    }
  }
  if (manifests_fd_ >= 0) ::close(manifests_fd_);
  manifests_fd_ = ::open(top.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (manifests_fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", top, ": ", std::strerror(errno)));
  }
  // Blobs of an earlier version (one file each): read, never written.
  const std::string legacy = absl::StrCat(data_dir_, "/blobs");
  if (legacy_blobs_fd_ >= 0) ::close(legacy_blobs_fd_);
  legacy_blobs_fd_ = ::open(legacy.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  PackStore::Options options;
  options.fsync = fsync_writes_;
  packs_ = std::make_unique<PackStore>(absl::StrCat(data_dir_, "/packs"), options);
  return packs_->Open();
}

std::string BlobStore::RelPath(absl::string_view hash) {
  return absl::StrCat(hash.substr(0, 2), "/", hash);
}

std::string BlobStore::PathFor(Kind kind, absl::string_view hash) const {
  return absl::StrCat(data_dir_, kind == Kind::kBlob ? "/blobs/" : "/manifests/", RelPath(hash));
}

bool BlobStore::Exists(Kind kind, absl::string_view hash) const {
  return Size(kind, hash).has_value();
}

std::optional<uint64_t> BlobStore::Size(Kind kind, absl::string_view hash) const {
  if (kind == Kind::kBlob) {
    BlobKey key;
    if (!ParseBlobKey(hash, &key) || packs_ == nullptr) return std::nullopt;
    if (auto at = packs_->Find(key)) return at->size;
  }
  return LooseSize(kind, hash);
}

std::optional<uint64_t> BlobStore::LooseSize(Kind kind, absl::string_view hash) const {
  if (!core::IsLowerHexSha256(hash) || DirFd(kind) < 0) return std::nullopt;
  struct stat st;
  if (::fstatat(DirFd(kind), RelPath(hash).c_str(), &st, 0) != 0 || !S_ISREG(st.st_mode)) {
    return std::nullopt;
  }
  return static_cast<uint64_t>(st.st_size);
}

absl::Status BlobStore::Sync() {
  if (!fsync_writes_ || packs_ == nullptr) return absl::OkStatus();
  return packs_->Sync();
}

absl::StatusOr<bool> BlobStore::Put(Kind kind, absl::string_view hash, absl::string_view bytes) {
  if (kind == Kind::kManifest) {
    // The blobs a manifest lists were uploaded before it: durable first.
    if (absl::Status s = Sync(); !s.ok()) return s;
    return PutLoose(kind, hash, bytes);
  }
  const BlobPut one{hash, bytes};
  absl::StatusOr<std::vector<PutResult>> r = PutBlobs(absl::MakeConstSpan(&one, 1));
  if (!r.ok()) return r.status();
  const PutResult& result = r->front();
  if (result.outcome == PutResult::kHashMismatch) {
    return absl::InvalidArgumentError(
        absl::StrCat("hash mismatch: content hash ", result.content_hash));
  }
  return result.outcome == PutResult::kCreated;
}

absl::StatusOr<std::vector<BlobStore::PutResult>> BlobStore::PutBlobs(
    absl::Span<const BlobPut> blobs) {
  if (packs_ == nullptr) return absl::FailedPreconditionError("BlobStore::Init was not called");
  std::vector<PutResult> results(blobs.size(), PutResult{PutResult::kExisted, ""});
  std::vector<PackStore::Entry> entries;
  std::vector<size_t> entry_of;  // entries[k] is blobs[entry_of[k]]
  entries.reserve(blobs.size());
  entry_of.reserve(blobs.size());
  for (size_t i = 0; i < blobs.size(); ++i) {
    BlobKey key;
    std::string actual = core::Sha256Hex(blobs[i].data);
    if (actual != blobs[i].hash || !ParseBlobKey(blobs[i].hash, &key)) {
      results[i] = PutResult{PutResult::kHashMismatch, std::move(actual)};
      continue;
    }
    // Already stored as a loose file of an earlier version: not stored twice.
    if (legacy_blobs_fd_ >= 0 && LooseSize(Kind::kBlob, blobs[i].hash).has_value()) continue;
    entries.push_back(PackStore::Entry{key, blobs[i].data});
    entry_of.push_back(i);
  }
  absl::StatusOr<std::vector<bool>> created = packs_->Append(entries);
  if (!created.ok()) return created.status();
  for (size_t k = 0; k < entries.size(); ++k) {
    if ((*created)[k]) results[entry_of[k]].outcome = PutResult::kCreated;
  }
  return results;
}

absl::StatusOr<bool> BlobStore::PutLoose(Kind kind, absl::string_view hash,
                                         absl::string_view bytes) {
  const std::string actual = core::Sha256Hex(bytes);
  if (!core::IsLowerHexSha256(hash) || actual != hash) {
    return absl::InvalidArgumentError(absl::StrCat("hash mismatch: content hash ", actual));
  }
  const int dir = DirFd(kind);
  if (dir < 0) return absl::FailedPreconditionError("BlobStore::Init was not called");
  const std::string rel = RelPath(hash);
  static std::atomic<uint64_t> counter{0};
  // The temp file lives beside its final name (same directory: rename is atomic and only the
  // shard's directory lock is taken, instead of every upload contending on one tmp/). Its name
  // is never a valid key, so Exists/Get never see a partial file.
  const std::string tmp = absl::StrCat(hash.substr(0, 2), "/.tmp.", hash.substr(0, 16), ".",
                                       getpid(), ".", counter.fetch_add(1));
  int fd = ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ENOENT) {
    // Shard directory missing (removed behind our back): create it and retry.
    ::mkdirat(dir, std::string(hash.substr(0, 2)).c_str(), 0755);
    fd = ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  }
  if (fd < 0) return absl::InternalError(absl::StrCat("open temp blob: ", strerror(errno)));
  if (!core::WriteFully(fd, bytes.data(), bytes.size())) {
    int e = errno;
    ::close(fd);
    ::unlinkat(dir, tmp.c_str(), 0);
    return absl::InternalError(absl::StrCat("write temp file: ", strerror(e)));
  }
  if (fsync_writes_) ::fsync(fd);
  ::close(fd);
  // No-replace rename: one syscall both publishes the blob and tells whether it already
  // existed (no separate stat per upload).
  if (::renameat2(dir, tmp.c_str(), dir, rel.c_str(), RENAME_NOREPLACE) != 0) {
    int e = errno;
    if (e == EINVAL || e == ENOSYS) {
      // File system without RENAME_NOREPLACE: check, then plain rename.
      const bool existed = Exists(kind, hash);
      if (!existed && ::renameat(dir, tmp.c_str(), dir, rel.c_str()) == 0) return true;
      e = existed ? EEXIST : errno;
    }
    ::unlinkat(dir, tmp.c_str(), 0);
    if (e == EEXIST) return false;
    return absl::InternalError(absl::StrCat("rename blob: ", strerror(e)));
  }
  if (fsync_writes_) {
    int dfd = ::openat(dir, std::string(hash.substr(0, 2)).c_str(),
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  return true;
}

absl::StatusOr<uint64_t> BlobStore::AppendTo(Kind kind, absl::string_view hash,
                                             std::string* out) const {
  if (kind == Kind::kBlob) {
    BlobKey key;
    if (!ParseBlobKey(hash, &key) || packs_ == nullptr) return NotFound(kind);
    if (auto at = packs_->Find(key)) {
      const size_t start = out->size();
      out->resize(start + at->size);
      if (absl::Status s = packs_->Read(*at, out->data() + start); !s.ok()) {
        out->resize(start);
        return s;
      }
      return at->size;
    }
  }
  return LooseAppendTo(kind, hash, out);
}

absl::StatusOr<uint64_t> BlobStore::LooseAppendTo(Kind kind, absl::string_view hash,
                                                  std::string* out) const {
  if (!core::IsLowerHexSha256(hash) || DirFd(kind) < 0) return NotFound(kind);
  int fd = ::openat(DirFd(kind), RelPath(hash).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound(kind);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return NotFound(kind);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  const size_t start = out->size();
  out->resize(start + size);
  const bool ok = core::ReadFullyAt(fd, out->data() + start, size, 0);
  ::close(fd);
  if (!ok) {
    out->resize(start);
    return absl::InternalError(
        absl::StrCat("read ", PathFor(kind, hash), ": short read"));
  }
  return static_cast<uint64_t>(size);
}

absl::StatusOr<std::string> BlobStore::Get(Kind kind, absl::string_view hash) const {
  std::string out;
  absl::StatusOr<uint64_t> n = AppendTo(kind, hash, &out);
  if (!n.ok()) return n.status();
  return out;
}

}  // namespace fastest::server
