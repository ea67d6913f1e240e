// File: core/snapshot/hash_cache.h
//
// HashCache: path → (stat identity, content hash), so a re-snapshot does not re-read files that did
// not change since they were hashed or restored. An entry is reused only when size, mtime, ctime,
// inode and device all match AND the file's mtime is strictly older than the (coarse) clock tick in
// which the entry was recorded — a write in that same tick could otherwise leave every stat field
// unchanged (the "racy git" problem), so such entries are re-hashed. Thread-safe.
//
// Files the caller wrote itself (restore) are recorded with RecordFile() as "pending" and become
// usable only after Seal(), which the runner calls once the restore is complete and before anything
// else (the agent) may write: a file written in the same tick as Seal() is still re-hashed later.
//
// Example (runner):
//   HashCache cache;
//   for each restored file: WriteFileWithMode(abs, bytes, mode); cache.RecordFile(root, rel, hash);
//   cache.Seal();
//   ... agent runs ...
//   FASTEST_ASSIGN_OR_RETURN(Manifest m, BuildManifestFromDirectory(root, opts, &cache));
#ifndef FASTEST_CORE_SNAPSHOT_HASH_CACHE_H_
#define FASTEST_CORE_SNAPSHOT_HASH_CACHE_H_

#include <sys/stat.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fastest::core {

struct HashCacheEntry {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t inode = 0;
  uint64_t device = 0;
  std::string hash;
  // CLOCK_REALTIME_COARSE when the content was known to be the hashed one; 0 = pending (unsealed).
  int64_t recorded_ns = 0;
};

class HashCache {
 public:
  HashCache() = default;
  HashCache(const HashCache& other);
  HashCache& operator=(const HashCache& other);

  // NowNs: the clock recorded_ns is measured with (CLOCK_REALTIME_COARSE, the clock the kernel
  // stamps file times with). Take it BEFORE reading the file whose hash you record.
  static int64_t NowNs();

  // Lookup: the cached hash if `st` (an lstat/fstat of the file now) still matches and is not racy.
  std::optional<std::string> Lookup(const std::string& rel_path, const struct stat& st) const;

  // Record: remembers `hash` for the file as described by `st`; recorded_ns from NowNs().
  void Record(const std::string& rel_path, const struct stat& st, std::string hash, int64_t recorded_ns);

  // RecordFile: lstat()s root/rel_path (must be a regular file) and records `hash` for it as pending.
  // For the runner after writing a restored file whose content it verified. Call Seal() afterwards.
  absl::Status RecordFile(const std::string& root, const std::string& rel_path, const std::string& hash);

  // Seal: pending entries get recorded_ns = NowNs(). The caller promises that nobody but itself wrote
  // those files between their RecordFile() and now.
  void Seal();

  // RetainOnly: drops entries whose path is not in `paths` (files that disappeared).
  void RetainOnly(const std::unordered_set<std::string>& paths);

  void Erase(const std::string& rel_path);
  void Clear();
  size_t size() const;
  std::optional<HashCacheEntry> Get(const std::string& rel_path) const;

  // Serialize / Parse: a JSON form, to keep the cache across processes (optional).
  std::string Serialize() const;
  static absl::StatusOr<HashCache> Parse(absl::string_view text);

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, HashCacheEntry> entries_;
};

}  // namespace fastest::core

#endif  // FASTEST_CORE_SNAPSHOT_HASH_CACHE_H_
