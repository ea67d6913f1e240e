#include "runner/workspace_restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/concurrency/parallel_for.h"
#include "core/snapshot/safe_fs.h"
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"

namespace fastest::runner {
namespace {

// Download batches: a few MB each so several are in flight and a retry refetches little.
constexpr size_t kBatchMaxBlobs = 500;
constexpr uint64_t kBatchMaxBytes = 8ull << 20;
constexpr int kBatchStreams = 3;

constexpr char kEmptyHash[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Existing {
  bool present = false;  // a regular file is at the path already
  uint64_t size = 0;
  uint32_t mode = 0;
};

// Removes everything under root/rel_dir that the manifest does not need. `files` are manifest
// paths, `dirs` their parent directories. Never follows symlinks.
absl::Status Prune(const std::string& root, const std::string& rel_dir,
                   const std::unordered_map<std::string, size_t>& files,
                   const std::unordered_set<std::string>& dirs, std::vector<Existing>* existing,
                   uint64_t* deleted) {
  std::string abs_dir = rel_dir.empty() ? root : absl::StrCat(root, "/", rel_dir);
  DIR* d = opendir(abs_dir.c_str());
  if (d == nullptr) return absl::InternalError(absl::StrCat("opendir ", abs_dir, ": ", std::strerror(errno)));
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  closedir(d);
  for (const std::string& name : names) {
    std::string rel = rel_dir.empty() ? name : absl::StrCat(rel_dir, "/", name);
    std::string abs = absl::StrCat(root, "/", rel);
    struct stat st;
    if (lstat(abs.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode) && dirs.count(rel) > 0) {
      FASTEST_RETURN_IF_ERROR(Prune(root, rel, files, dirs, existing, deleted));
      continue;
    }
    auto it = files.find(rel);
    if (S_ISREG(st.st_mode) && it != files.end()) {
      Existing& ex = (*existing)[it->second];
      ex.present = true;
      ex.size = static_cast<uint64_t>(st.st_size);
      ex.mode = st.st_mode & 07777;
      continue;
    }
    std::error_code ec;
    std::filesystem::remove_all(abs, ec);  // does not follow symlinks
    if (ec) return absl::InternalError(absl::StrCat("remove ", rel, ": ", ec.message()));
    ++*deleted;
  }
  return absl::OkStatus();
}

// Writes a file that does not exist yet (the path was validated and pruned): one create, no
// temp+rename. O_EXCL|O_NOFOLLOW refuse anything that appeared there meanwhile, symlinks included.
absl::Status WriteNewFile(const std::string& path, absl::string_view data, uint32_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("create ", path, ": ", std::strerror(errno)));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      close(fd);
      unlink(path.c_str());
      return absl::InternalError(absl::StrCat("write ", path, ": ", std::strerror(err)));
    }
    off += static_cast<size_t>(n);
  }
  // Explicit chmod: the creation mode is subject to umask.
  if (fchmod(fd, mode & 07777) != 0 || close(fd) != 0) {
    int err = errno;
    unlink(path.c_str());
    return absl::InternalError(absl::StrCat("chmod/close ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RestoreStats> RestoreWorkspace(core::ApiClient& api, const core::Manifest& manifest,
                                              const std::string& root, core::HashCache* cache,
                                              int parallelism, const RestoreProgress& progress) {
  const absl::Time start = absl::Now();
  RestoreStats stats;
  const size_t n = manifest.files.size();
  stats.files = n;

  // 1. Validate everything first: nothing is written or deleted for a hostile manifest.
  struct stat root_st;
  if (lstat(root.c_str(), &root_st) != 0) {
    FASTEST_RETURN_IF_ERROR(core::MakeDirs(root));
  } else if (!S_ISDIR(root_st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("workspace ", root, " is not a directory"));
  }
  std::unordered_map<std::string, size_t> files;
  std::unordered_set<std::string> dirs;
  files.reserve(n);
  std::vector<std::string> abs_paths(n);
  for (size_t i = 0; i < n; ++i) {
    const core::FileEntry& e = manifest.files[i];
    absl::StatusOr<std::string> abs = core::ResolveInsideWorkspace(root, e.path);
    if (!abs.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unsafe manifest entry \"", e.path, "\": ", abs.status().message()));
    }
    if (!core::IsLowerHexSha256(e.hash)) {
      return absl::InvalidArgumentError(absl::StrCat("bad hash for \"", e.path, "\""));
    }
    if (!files.emplace(e.path, i).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate manifest path \"", e.path, "\""));
    }
    abs_paths[i] = std::move(*abs);
    for (size_t slash = e.path.find('/'); slash != std::string::npos;
         slash = e.path.find('/', slash + 1)) {
      dirs.insert(e.path.substr(0, slash));
    }
  }
  for (const std::string& d : dirs) {
    if (files.count(d) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("manifest path \"", d, "\" is both a file and a directory"));
    }
  }

  // 2. Remove what the manifest does not have; note files that may be reusable.
  std::vector<Existing> existing(n);
  FASTEST_RETURN_IF_ERROR(Prune(root, "", files, dirs, &existing, &stats.deleted));

  // 3. Create the directories once (parents first), so workers only create files.
  {
    std::vector<std::string> sorted(dirs.begin(), dirs.end());
    std::sort(sorted.begin(), sorted.end());
    for (const std::string& d : sorted) {
      std::string abs = absl::StrCat(root, "/", d);
      if (mkdir(abs.c_str(), 0755) != 0 && errno != EEXIST) {
        return absl::InternalError(absl::StrCat("mkdir ", d, ": ", std::strerror(errno)));
      }
    }
  }

  // 4. Reuse files that already have the right content (local reads only, in parallel).
  std::vector<char> reused_flag(n, 0);
  std::atomic<uint64_t> done{0}, downloaded{0}, reused{0}, bytes{0};
  std::mutex progress_mu;
  auto note_done = [&]() {
    uint64_t d = ++done;
    if (progress && (d % 1000 == 0 || d == n)) {
      std::lock_guard<std::mutex> lock(progress_mu);
      progress(d, n);
    }
  };
  std::vector<size_t> present;
  for (size_t i = 0; i < n; ++i) {
    if (existing[i].present && existing[i].size == manifest.files[i].size) present.push_back(i);
  }
  FASTEST_RETURN_IF_ERROR(core::ParallelFor(present.size(), parallelism, [&](size_t k) -> absl::Status {
    const size_t i = present[k];
    const core::FileEntry& e = manifest.files[i];
    absl::StatusOr<std::string> h = core::Sha256FileHex(abs_paths[i]);
    if (!h.ok() || *h != e.hash) return absl::OkStatus();  // stale: downloaded below
    reused_flag[i] = 1;
    if (existing[i].mode != (e.mode & 07777) && chmod(abs_paths[i].c_str(), e.mode & 07777) != 0) {
      return absl::InternalError(absl::StrCat("chmod ", e.path, ": ", std::strerror(errno)));
    }
    ++reused;
    if (cache != nullptr) FASTEST_RETURN_IF_ERROR(cache->RecordFile(root, e.path, e.hash));
    note_done();
    return absl::OkStatus();
  }));

  // 5. Everything else: group the files by blob (a blob is fetched once however many files
  // share it), then fetch the blobs in batches, a few batches at a time, writing each file as its
  // blob arrives (verified by the ApiClient before we see it).
  auto write_entry = [&](size_t i, absl::string_view data) -> absl::Status {
    const core::FileEntry& e = manifest.files[i];
    if (data.size() != e.size) {
      return absl::DataLossError(absl::StrCat("restore \"", e.path, "\": size ", data.size(),
                                              " != manifest size ", e.size));
    }
    // A stale file is replaced atomically; a new one is simply created.
    absl::Status s = existing[i].present ? core::WriteFileWithMode(abs_paths[i], data, e.mode)
                                         : WriteNewFile(abs_paths[i], data, e.mode);
    if (!s.ok()) return core::Annotate(s, absl::StrCat("restore \"", e.path, "\""));
    if (cache != nullptr) FASTEST_RETURN_IF_ERROR(cache->RecordFile(root, e.path, e.hash));
    ++downloaded;
    bytes += data.size();
    note_done();
    return absl::OkStatus();
  };
  std::unordered_map<std::string, std::vector<size_t>> files_of;
  std::vector<std::string> order;  // distinct hashes, manifest order
  for (size_t i = 0; i < n; ++i) {
    if (reused_flag[i]) continue;
    const core::FileEntry& e = manifest.files[i];
    if (e.hash == kEmptyHash) {
      FASTEST_RETURN_IF_ERROR(write_entry(i, absl::string_view()));
      continue;
    }
    auto [it, inserted] = files_of.try_emplace(e.hash);
    if (inserted) order.push_back(e.hash);
    it->second.push_back(i);
  }
  std::vector<std::vector<std::string>> batches;
  uint64_t batch_bytes = 0;
  for (const std::string& h : order) {
    const uint64_t size = manifest.files[files_of[h][0]].size;
    if (batches.empty() || batches.back().size() >= kBatchMaxBlobs ||
        (batch_bytes + size > kBatchMaxBytes && !batches.back().empty())) {
      batches.emplace_back();
      batch_bytes = 0;
    }
    batches.back().push_back(h);
    batch_bytes += size;
  }
  const core::ApiClient::BlobSink sink = [&](const std::string& hash,
                                             absl::string_view data) -> absl::Status {
    auto it = files_of.find(hash);
    if (it == files_of.end()) return absl::InternalError("unexpected blob");
    for (size_t i : it->second) FASTEST_RETURN_IF_ERROR(write_entry(i, data));
    return absl::OkStatus();
  };
  // In the per-blob fallback (a server without batches) each batch fans out itself.
  const int streams = std::max(1, std::min(parallelism, kBatchStreams));
  const int fallback = std::max(1, parallelism / streams);
  absl::Status fetched = core::ParallelFor(batches.size(), streams, [&](size_t b) -> absl::Status {
    absl::Status s = api.DownloadBlobs(batches[b], sink, fallback);
    if (!s.ok() && !absl::StrContains(s.message(), "restore \"")) {
      // Name a file of the failing blob when the error does not already.
      for (const std::string& h : batches[b]) {
        if (absl::StrContains(s.message(), h.substr(0, 16))) {
          return core::Annotate(
              s, absl::StrCat("restore \"", manifest.files[files_of.at(h)[0]].path, "\""));
        }
      }
      return core::Annotate(s, "restore");
    }
    return s;
  });
  if (!fetched.ok()) return fetched;
  if (cache != nullptr) cache->Seal();
  stats.downloaded = downloaded;
  stats.reused = reused;
  stats.bytes_downloaded = bytes;
  stats.duration = absl::Now() - start;
  return stats;
}

}  // namespace fastest::runner
