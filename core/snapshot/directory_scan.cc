// File: core/snapshot/directory_scan.cc
#include "core/snapshot/directory_scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "core/snapshot/ignore_rules.h"
#include "core/snapshot/sha256.h"

namespace fastest::core {
namespace {

// A directory the walk found, kept open so its files are opened relative to it (one path
// component to resolve instead of the whole path, and no symlink swapped in above the file
// after the walk can redirect the open). Closed when its last file is hashed.
class DirHandle {
 public:
  // At most this many at once (the walk can run far ahead of hashing); beyond, files are
  // opened by their full path.
  static constexpr int kMaxOpen = 256;
  static std::shared_ptr<DirHandle> Dup(int fd) {
    if (open_.fetch_add(1) >= kMaxOpen) {
      --open_;
      return nullptr;
    }
    const int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
      --open_;
      return nullptr;
    }
    return std::shared_ptr<DirHandle>(new DirHandle(copy));
  }
  ~DirHandle() {
    close(fd_);
    --open_;
  }
  int fd() const { return fd_; }

 private:
  explicit DirHandle(int fd) : fd_(fd) {}
  static std::atomic<int> open_;
  const int fd_;
};
std::atomic<int> DirHandle::open_{0};

struct Candidate {
  std::string rel;
  std::shared_ptr<DirHandle> dir;  // with `name`, to open the file relative to its directory
  std::string name;
  struct stat st;
  std::string hash;
  uint64_t size = 0;
  bool need_hash = false;
  bool vanished = false;
  absl::Status status;
};

// Files found by the walk and not yet hashed, consumed by the hashing threads while the walk
// goes on. The candidates live in a deque, so these pointers stay valid while it grows.
class HashQueue {
 public:
  void Push(Candidate* c) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back(c);
    cv_.notify_one();
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  // nullptr once closed and drained.
  Candidate* Pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return closed_ || next_ < items_.size(); });
    return next_ < items_.size() ? items_[next_++] : nullptr;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Candidate*> items_;
  size_t next_ = 0;
  bool closed_ = false;
};

class Walker {
 public:
  // on_file is called for every regular file, right after it is added to *out.
  Walker(const IgnoreRules& rules, std::deque<Candidate>* out, std::vector<std::string>* skipped,
         std::function<void(Candidate*)> on_file)
      : rules_(rules), out_(out), skipped_(skipped), on_file_(std::move(on_file)) {}

  // Walks the directory open at `fd` (owned; closed here). `prefix` is "" or "a/b/".
  absl::Status Walk(int fd, const std::string& prefix) {
    DIR* dir = fdopendir(fd);
    if (dir == nullptr) {
      int err = errno;
      close(fd);
      return absl::InternalError(absl::StrCat("fdopendir ", Display(prefix), ": ", strerror(err)));
    }
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* ent = readdir(dir)) {
      const char* n = ent->d_name;
      if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
      names.emplace_back(n);
    }
    if (errno != 0) {
      int err = errno;
      closedir(dir);
      return absl::InternalError(absl::StrCat("readdir ", Display(prefix), ": ", strerror(err)));
    }
    const int dfd = dirfd(dir);
    std::shared_ptr<DirHandle> handle;  // made for the first regular file
    absl::Status result = absl::OkStatus();
    for (const std::string& name : names) {
      std::string rel = prefix + name;
      if (!IsValidUtf8(name)) {
        skipped_->push_back(absl::StrCat(rel, ": name is not valid UTF-8"));
        continue;
      }
      struct stat st;
      if (fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed while walking
        result = absl::InternalError(absl::StrCat("lstat ", rel, ": ", strerror(errno)));
        break;
      }
      if (S_ISDIR(st.st_mode)) {
        if (rules_.IsIgnored(rel, /*is_dir=*/true)) continue;
        int sub = openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
          if (errno == ENOENT) continue;
          result = absl::InternalError(absl::StrCat("open dir ", rel, ": ", strerror(errno)));
          break;
        }
        result = Walk(sub, rel + "/");
        if (!result.ok()) break;
      } else if (S_ISREG(st.st_mode)) {
        if (rules_.IsIgnored(rel, /*is_dir=*/false)) continue;
        Candidate c;
        c.rel = std::move(rel);
        if (handle == nullptr) handle = DirHandle::Dup(dfd);
        if (handle != nullptr) {
          c.dir = handle;
          c.name = name;
        }
        c.st = st;
        out_->push_back(std::move(c));
        on_file_(&out_->back());
      } else {
        if (rules_.IsIgnored(rel, /*is_dir=*/false)) continue;
        skipped_->push_back(absl::StrCat(rel, ": not a regular file"));
      }
    }
    closedir(dir);
    return result;
  }

 private:
  static std::string Display(const std::string& prefix) { return prefix.empty() ? "." : prefix; }

  const IgnoreRules& rules_;
  std::deque<Candidate>* out_;
  std::vector<std::string>* skipped_;
  std::function<void(Candidate*)> on_file_;
};

// Reads the whole file (expected `size` bytes) into dst (room for size + 1); false if it holds
// more than that.
bool ReadWhole(int fd, uint64_t size, char* dst, size_t* got, absl::Status* status) {
  // One byte of slack tells "exactly size" from "grew since fstat".
  *got = 0;
  while (*got < size + 1) {
    const size_t want = size + 1 - *got;
    ssize_t n = read(fd, dst + *got, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      *status = absl::InternalError(absl::StrCat("read: ", strerror(errno)));
      return false;
    }
    if (n == 0) return true;
    *got += static_cast<size_t>(n);
    // A short read of a regular file stops at its end: when it leaves exactly `size` bytes,
    // the EOF read (one more syscall per file) is not needed.
    if (static_cast<size_t>(n) < want && *got == size) return true;
  }
  return false;
}

// Reads and hashes one candidate. Uses the fd's fstat for the recorded identity.
void HashOne(const std::string& root, Candidate* c, std::string* buffer, const ScanOptions& options) {
  // O_NONBLOCK: if a fifo was swapped in after the walk, do not hang on it.
  constexpr int kFlags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  int fd = c->dir != nullptr ? openat(c->dir->fd(), c->name.c_str(), kFlags)
                             : open(absl::StrCat(root, "/", c->rel).c_str(), kFlags);
  c->dir.reset();  // the directory closes once its last file is open
  if (fd < 0) {
    if (errno == ENOENT || errno == ELOOP) {
      c->vanished = true;  // deleted or replaced by a symlink since the walk
      return;
    }
    c->status = absl::InternalError(absl::StrCat("open ", c->rel, ": ", strerror(errno)));
    return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    c->vanished = true;
    return;
  }
  c->st = st;
  if (options.on_file_content &&
      static_cast<uint64_t>(st.st_size) <= options.content_max_bytes) {
    const size_t size = static_cast<size_t>(st.st_size);
    char* dst = options.acquire_content_buffer ? options.acquire_content_buffer(size + 1) : nullptr;
    const bool acquired = dst != nullptr;
    if (!acquired) {
      if (buffer->size() < size + 1) buffer->resize(size + 1);
      dst = buffer->data();
    }
    size_t got = 0;
    absl::Status read_status;
    if (ReadWhole(fd, size, dst, &got, &read_status)) {
      close(fd);
      absl::string_view data(dst, got);
      c->hash = Sha256Hex(data);
      c->size = got;
      options.on_file_content(c->rel, c->hash, data);
      return;
    }
    if (acquired) options.release_content_buffer(dst);
    if (!read_status.ok()) {
      close(fd);
      c->status = absl::Status(read_status.code(), absl::StrCat(c->rel, ": ", read_status.message()));
      return;
    }
    // Grew while being read: hash it from the start like any other file.
    if (lseek(fd, 0, SEEK_SET) != 0) {
      c->status = absl::InternalError(absl::StrCat("seek ", c->rel, ": ", strerror(errno)));
      close(fd);
      return;
    }
  }
  if (st.st_size > (1 << 20)) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  uint64_t size = 0;
  auto hash = Sha256Fd(fd, &size, buffer);
  close(fd);
  if (!hash.ok()) {
    c->status = absl::Status(hash.status().code(), absl::StrCat(c->rel, ": ", hash.status().message()));
    return;
  }
  c->hash = *std::move(hash);
  c->size = size;
}

}  // namespace

absl::StatusOr<Manifest> BuildManifestFromDirectory(const std::string& root_in, const ScanOptions& options,
                                                    HashCache* cache, ScanStats* stats) {
  std::string root = root_in;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  ScanStats local_stats;
  if (stats == nullptr) stats = &local_stats;
  *stats = ScanStats();

  IgnoreRules rules;
  if (options.read_fstignore) {
    absl::Status s = rules.AddFstignoreFile(root);
    if (!s.ok()) return s;
  }
  for (const std::string& p : options.extra_ignore_patterns) rules.AddPattern(p);

  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string msg = absl::StrCat("open workspace ", root, ": ", strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg);
  }
  // Recording time is taken before any content is read (see HashCache).
  const int64_t recorded_ns = HashCache::NowNs();
  const unsigned threads = options.threads > 0 ? static_cast<unsigned>(options.threads)
                                               : std::max(1u, std::thread::hardware_concurrency());
  // With several threads, files are hashed while the walk is still finding more.
  HashQueue queue;
  std::vector<Candidate*> inline_hash;  // one thread: hashed after the walk, on this thread
  std::deque<Candidate> files;
  Walker walker(rules, &files, &stats->skipped, [&](Candidate* c) {
    std::optional<std::string> cached;
    if (cache != nullptr) cached = cache->Lookup(c->rel, c->st);
    if (cached.has_value()) {
      c->dir.reset();  // not opened
      c->hash = *std::move(cached);
      c->size = static_cast<uint64_t>(c->st.st_size);
      ++stats->reused;
      return;
    }
    c->need_hash = true;
    if (threads > 1) {
      queue.Push(c);
    } else {
      inline_hash.push_back(c);
    }
  });
  std::vector<std::thread> pool;
  if (threads > 1) {
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        std::string buffer;
        while (Candidate* c = queue.Pop()) HashOne(root, c, &buffer, options);
      });
    }
  }
  absl::Status walked = walker.Walk(fd, "");
  queue.Close();
  for (std::thread& t : pool) t.join();
  if (!walked.ok()) return walked;
  {
    std::string buffer;
    for (Candidate* c : inline_hash) HashOne(root, c, &buffer, options);
  }

  Manifest manifest;
  manifest.files.reserve(files.size());
  std::unordered_set<std::string> present;
  for (Candidate& c : files) {
    if (!c.status.ok()) return c.status;
    if (c.vanished) continue;
    if (c.need_hash) {
      ++stats->hashed;
      stats->bytes_hashed += c.size;
      stats->hashed_paths.push_back(c.rel);
      if (cache != nullptr) cache->Record(c.rel, c.st, c.hash, recorded_ns);
    }
    if (cache != nullptr) present.insert(c.rel);
    FileEntry e;
    e.path = std::move(c.rel);
    e.hash = std::move(c.hash);
    e.size = c.size;
    e.mode = static_cast<uint32_t>(c.st.st_mode & 0777);
    if (options.include_mod_time) e.mod_time = static_cast<int64_t>(c.st.st_mtim.tv_sec);
    manifest.files.push_back(std::move(e));
  }
  if (cache != nullptr) cache->RetainOnly(present);
  SortManifest(&manifest);
  std::sort(stats->hashed_paths.begin(), stats->hashed_paths.end());
  stats->files = manifest.files.size();
  return manifest;
}

}  // namespace fastest::core
