// File: core/snapshot/directory_scan.h
//
// BuildManifestFromDirectory: walks a workspace with lstat (never following symlinks), applies the
// ignore rules (pruning ignored directories), keeps regular files only (symlinks, fifos, sockets and
// devices are skipped, as are names that are not valid UTF-8), and hashes the files in parallel.
// A HashCache, when given, supplies hashes of unchanged files and is updated in place (entries of
// hashed files refreshed, entries of files that are gone dropped).
//
// Example:
//   HashCache cache;
//   ScanStats stats;
//   FASTEST_ASSIGN_OR_RETURN(Manifest m, BuildManifestFromDirectory("/work", ScanOptions(), &cache, &stats));
#ifndef FASTEST_CORE_SNAPSHOT_DIRECTORY_SCAN_H_
#define FASTEST_CORE_SNAPSHOT_DIRECTORY_SCAN_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/snapshot/hash_cache.h"
#include "core/snapshot/manifest.h"

namespace fastest::core {

struct ScanOptions {
  // Append <root>/.fstignore lines after the default patterns (the Go CLI does; the TS runner did not).
  bool read_fstignore = true;
  // Emit "mod_time" (st_mtime seconds) in every entry. The runner never does.
  bool include_mod_time = false;
  // Hashing threads; 0 = std::thread::hardware_concurrency().
  int threads = 0;
  // Appended after the defaults and .fstignore.
  std::vector<std::string> extra_ignore_patterns;
  // Read-once snapshots: when set, every file of at most `content_max_bytes` that the scan reads
  // is read whole into memory, hashed, and handed here with its hash (`data` valid only during
  // the call), so the caller can upload exactly the hashed bytes without reading the file again.
  // Called from the hashing threads, possibly concurrently; may block (back-pressure). Files read
  // as they change (grown past the size fstat gave) and larger files are hashed but not handed out.
  std::function<void(const std::string& rel_path, const std::string& hash, absl::string_view data)>
      on_file_content;
  uint64_t content_max_bytes = 8ull << 20;
  // Optional, with on_file_content: where to read a file, so the caller keeps the bytes without
  // copying them (e.g. straight into an upload batch). Called with the bytes needed (file size
  // + 1); nullptr means "use the scan's own buffer". A buffer it returns is given back through
  // on_file_content (`data` points into it) or, if the file is not handed over (it changed while
  // being read, or reading failed), through release_content_buffer.
  std::function<char*(size_t bytes)> acquire_content_buffer;
  std::function<void(char* buffer)> release_content_buffer;
};

struct ScanStats {
  uint64_t files = 0;         // entries in the manifest
  uint64_t hashed = 0;        // files read and hashed
  uint64_t reused = 0;        // hashes taken from the cache
  uint64_t bytes_hashed = 0;
  std::vector<std::string> hashed_paths;  // which files were read (sorted)
  std::vector<std::string> skipped;       // "<path>: <reason>" for special files and bad names
};

absl::StatusOr<Manifest> BuildManifestFromDirectory(const std::string& root,
                                                    const ScanOptions& options = ScanOptions(),
                                                    HashCache* cache = nullptr, ScanStats* stats = nullptr);

}  // namespace fastest::core

#endif  // FASTEST_CORE_SNAPSHOT_DIRECTORY_SCAN_H_
