#include "server/store/pack_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/io/fd_io.h"

namespace fastest::server {
namespace {

constexpr char kIndexMagic[8] = {'F', 'S', 'T', 'P', 'A', 'C', 'K', '1'};
constexpr size_t kIndexHeaderBytes = 16;
constexpr size_t kRecordBytes = 64;

uint64_t Fnv1a64(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void PutLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint64_t GetLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

void EncodeRecord(const BlobKey& key, uint64_t offset, uint64_t size, uint8_t* out) {
  std::memcpy(out, key.data(), 32);
  PutLe64(out + 32, offset);
  PutLe64(out + 40, size);
  PutLe64(out + 48, 0);
  PutLe64(out + 56, Fnv1a64(out, 56));
}

std::string IndexHeader() {
  std::string h(kIndexHeaderBytes, '\0');
  std::memcpy(h.data(), kIndexMagic, sizeof(kIndexMagic));
  h[8] = static_cast<char>(kRecordBytes);
  return h;
}

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Writes all of `iov` at `offset`, IOV_MAX pieces per call, resuming after short writes.
bool PwritevFully(int fd, std::vector<iovec> iov, uint64_t offset) {
  size_t first = 0;
  while (first < iov.size()) {
    const int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
    ssize_t n = ::pwritev(fd, &iov[first], count, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    offset += static_cast<uint64_t>(n);
    size_t left = static_cast<size_t>(n);
    while (left > 0 && first < iov.size()) {
      if (left >= iov[first].iov_len) {
        left -= iov[first].iov_len;
        ++first;
      } else {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
        left = 0;
      }
    }
    while (first < iov.size() && iov[first].iov_len == 0) ++first;
  }
  return true;
}

void SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

bool ParseBlobKey(absl::string_view hex, BlobKey* key) {
  if (hex.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*key)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

struct PackStore::Pack {
  uint32_t number = 0;
  int dat_fd = -1;
  int idx_fd = -1;        // O_APPEND
  uint64_t reserved_end = 0;  // next free offset in the data file (write_mu_)
  uint64_t idx_size = 0;      // bytes of whole records + header (write_mu_)
  bool unsynced = false;      // appended to since the last Sync (write_mu_)
  ~Pack() {
    if (dat_fd >= 0) ::close(dat_fd);
    if (idx_fd >= 0) ::close(idx_fd);
  }
};

size_t PackStore::KeyHash::operator()(const BlobKey& k) const {
  size_t h;
  std::memcpy(&h, k.data(), sizeof(h));
  return h;
}

PackStore::PackStore(std::string dir, Options options)
    : dir_(std::move(dir)), options_(options) {}

PackStore::~PackStore() {
  packs_.clear();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

std::string PackStore::PackPath(uint32_t number, const char* ext) const {
  return absl::StrFormat("%s/pack-%06u.%s", dir_, number, ext);
}

absl::Status PackStore::Open() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot create ", dir_, ": ", ec.message()));
  const std::string lock_path = dir_ + "/LOCK";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return Errno("open", lock_path);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the blob store in ", dir_,
          " is in use by another process (is another fastest-server running on this data "
          "directory?)"));
    }
    return absl::InternalError(absl::StrCat("lock ", lock_path, ": ", std::strerror(err)));
  }
  std::vector<uint32_t> numbers;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    uint32_t n = 0;
    if (name.size() == 15 && name.rfind("pack-", 0) == 0 && name.substr(11) == ".idx" &&
        absl::SimpleAtoi(name.substr(5, 6), &n) && n > 0) {
      numbers.push_back(n);
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("list ", dir_, ": ", ec.message()));
  std::sort(numbers.begin(), numbers.end());
  for (uint32_t n : numbers) {
    if (absl::Status s = LoadPack(n); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status PackStore::LoadPack(uint32_t number) {
  auto pack = std::make_unique<Pack>();
  pack->number = number;
  const std::string dat_path = PackPath(number, "dat"), idx_path = PackPath(number, "idx");
  pack->dat_fd = ::open(dat_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (pack->dat_fd < 0) return Errno("open", dat_path);
  struct stat st;
  if (::fstat(pack->dat_fd, &st) != 0) return Errno("stat", dat_path);
  const uint64_t dat_size = static_cast<uint64_t>(st.st_size);
  pack->reserved_end = dat_size;

  std::string idx;
  {
    int fd = ::open(idx_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("open", idx_path);
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return Errno("stat", idx_path);
    }
    idx.resize(static_cast<size_t>(st.st_size));
    const bool ok = core::ReadFullyAt(fd, idx.data(), idx.size(), 0);
    ::close(fd);
    if (!ok) return Errno("read", idx_path);
  }
  if (!idx.empty() && (idx.size() < kIndexHeaderBytes ||
                       std::memcmp(idx.data(), kIndexMagic, sizeof(kIndexMagic)) != 0)) {
    return absl::DataLossError(absl::StrCat(idx_path, " is not a fastest pack index"));
  }
  const uint32_t slot = static_cast<uint32_t>(packs_.size());
  std::string kept = IndexHeader();
  bool rewrite = idx.size() < kIndexHeaderBytes;
  for (size_t pos = kIndexHeaderBytes; pos < idx.size(); pos += kRecordBytes) {
    if (idx.size() - pos < kRecordBytes) {  // torn last record
      rewrite = true;
      break;
    }
    const auto* rec = reinterpret_cast<const uint8_t*>(idx.data() + pos);
    if (GetLe64(rec + 56) != Fnv1a64(rec, 56)) {  // torn write: nothing after it is trusted
      dropped_records_ += (idx.size() - pos) / kRecordBytes;
      rewrite = true;
      break;
    }
    const uint64_t offset = GetLe64(rec + 32), size = GetLe64(rec + 40);
    if (offset > dat_size || size > dat_size - offset) {  // its data never reached the file
      ++dropped_records_;
      rewrite = true;
      continue;
    }
    BlobKey key;
    std::memcpy(key.data(), rec, 32);
    index_.try_emplace(key, Location{slot, offset, size});
    kept.append(reinterpret_cast<const char*>(rec), kRecordBytes);
  }
  if (rewrite) {
    // Without the bad records, so later appends to the data file can never make one valid.
    const std::string tmp = idx_path + ".rewrite";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("open", tmp);
    const bool ok = core::WriteFully(fd, kept.data(), kept.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), idx_path.c_str()) != 0) return Errno("rewrite", idx_path);
    SyncDirectory(dir_);
  }
  pack->idx_fd = ::open(idx_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (pack->idx_fd < 0) return Errno("open", idx_path);
  pack->idx_size = kept.size();
  std::unique_lock<std::shared_mutex> lock(index_mu_);
  packs_.push_back(std::move(pack));
  return absl::OkStatus();
}

absl::StatusOr<PackStore::Pack*> PackStore::StartPack(uint32_t number) {
  auto pack = std::make_unique<Pack>();
  pack->number = number;
  const std::string dat_path = PackPath(number, "dat"), idx_path = PackPath(number, "idx");
  pack->dat_fd = ::open(dat_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (pack->dat_fd < 0) return Errno("create", dat_path);
  // The index is created complete (header included) under its final name via rename, so a
  // crash never leaves a header-less index behind.
  const std::string tmp = idx_path + ".new";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("create", tmp);
  const std::string header = IndexHeader();
  bool ok = core::WriteFully(fd, header.data(), header.size());
  if (ok && options_.fsync) ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), idx_path.c_str()) != 0) return Errno("create", idx_path);
  if (options_.fsync) SyncDirectory(dir_);
  pack->idx_fd = ::open(idx_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (pack->idx_fd < 0) return Errno("open", idx_path);
  pack->idx_size = header.size();
  Pack* raw = pack.get();
  std::unique_lock<std::shared_mutex> lock(index_mu_);
  packs_.push_back(std::move(pack));
  return raw;
}

std::optional<PackStore::Location> PackStore::Find(const BlobKey& key) const {
  std::shared_lock<std::shared_mutex> lock(index_mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

size_t PackStore::blob_count() const {
  std::shared_lock<std::shared_mutex> lock(index_mu_);
  return index_.size();
}

size_t PackStore::pack_count() const {
  std::shared_lock<std::shared_mutex> lock(index_mu_);
  return packs_.size();
}

absl::Status PackStore::Read(const Location& location, char* dst) const {
  int fd;
  {
    std::shared_lock<std::shared_mutex> lock(index_mu_);
    if (location.pack >= packs_.size()) return absl::InternalError("bad pack location");
    fd = packs_[location.pack]->dat_fd;
  }
  errno = 0;  // a short read leaves it alone
  if (!core::ReadFullyAt(fd, dst, location.size, location.offset)) {
    return absl::InternalError(absl::StrCat("read blob from pack: ",
                                            errno != 0 ? std::strerror(errno) : "short read"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<bool>> PackStore::Append(absl::Span<const Entry> entries) {
  std::vector<bool> created(entries.size(), false);
  // What to write: entries not stored yet, each key once.
  std::vector<size_t> todo;
  uint64_t total = 0;
  {
    absl::flat_hash_set<BlobKey, KeyHash> seen;
    std::shared_lock<std::shared_mutex> lock(index_mu_);
    for (size_t i = 0; i < entries.size(); ++i) {
      if (index_.contains(entries[i].key) || !seen.insert(entries[i].key).second) continue;
      todo.push_back(i);
      total += entries[i].data.size();
    }
  }
  if (todo.empty()) return created;

  // Reserve a range of the current pack; the bytes are written outside the lock, so concurrent
  // batches copy in parallel.
  Pack* pack = nullptr;
  uint32_t slot = 0;
  uint64_t offset = 0;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (packs_.empty() || (packs_.back()->reserved_end > 0 &&
                           packs_.back()->reserved_end + total > options_.rotate_bytes)) {
      const uint32_t next = packs_.empty() ? 1 : packs_.back()->number + 1;
      absl::StatusOr<Pack*> started = StartPack(next);
      if (!started.ok()) return started.status();
    }
    pack = packs_.back().get();
    slot = static_cast<uint32_t>(packs_.size() - 1);
    offset = pack->reserved_end;
    pack->reserved_end += total;
  }
  std::vector<iovec> iov;
  iov.reserve(todo.size());
  for (size_t i : todo) {
    if (entries[i].data.empty()) continue;
    iov.push_back(iovec{const_cast<char*>(entries[i].data.data()), entries[i].data.size()});
  }
  errno = 0;
  if (!PwritevFully(pack->dat_fd, std::move(iov), offset)) {
    return Errno("write", PackPath(pack->number, "dat"));
  }
  // Start the disk writeback now (without waiting), so a later Sync() has little left to do.
  if (options_.fsync) {
    ::sync_file_range(pack->dat_fd, static_cast<off_t>(offset), static_cast<off_t>(total),
                      SYNC_FILE_RANGE_WRITE);
  }

  std::lock_guard<std::mutex> lock(write_mu_);
  // Another batch may have stored some of these keys meanwhile: their bytes stay unreferenced.
  std::string records;
  records.reserve(todo.size() * kRecordBytes);
  std::vector<std::pair<size_t, Location>> added;
  {
    std::shared_lock<std::shared_mutex> read_lock(index_mu_);
    uint64_t at = offset;
    for (size_t i : todo) {
      const uint64_t size = entries[i].data.size();
      if (!index_.contains(entries[i].key)) {
        uint8_t rec[kRecordBytes];
        EncodeRecord(entries[i].key, at, size, rec);
        records.append(reinterpret_cast<const char*>(rec), kRecordBytes);
        added.emplace_back(i, Location{slot, at, size});
      }
      at += size;
    }
  }
  pack->unsynced = true;
  if (!core::WriteFully(pack->idx_fd, records.data(), records.size())) {
    absl::Status error = Errno("write", PackPath(pack->number, "idx"));
    // A partial record would shift every later one: cut the index back to whole records.
    if (::ftruncate(pack->idx_fd, static_cast<off_t>(pack->idx_size)) != 0) {
      error = absl::InternalError(absl::StrCat(error.message(), "; and truncating it failed"));
    }
    return error;
  }
  pack->idx_size += records.size();
  std::unique_lock<std::shared_mutex> write_lock(index_mu_);
  for (const auto& [i, location] : added) {
    index_.emplace(entries[i].key, location);
    created[i] = true;
  }
  return created;
}

absl::Status PackStore::Sync() {
  // Held throughout: no index record can be added between syncing the data and the index, so
  // every synced record's bytes are synced too.
  std::lock_guard<std::mutex> lock(write_mu_);
  for (const auto& pack : packs_) {
    if (!pack->unsynced) continue;
    if (::fdatasync(pack->dat_fd) != 0) return Errno("sync", PackPath(pack->number, "dat"));
    if (::fdatasync(pack->idx_fd) != 0) return Errno("sync", PackPath(pack->number, "idx"));
    pack->unsynced = false;
  }
  return absl::OkStatus();
}

}  // namespace fastest::server
