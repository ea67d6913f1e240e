// File: core/snapshot/manifest.h
//
// The snapshot manifest, format "1" (PROTOCOLS.md §2): entries, canonical serialization (the bytes
// that are hashed and uploaded), strict parsing, and a path+hash diff.
//
// Example:
//   Manifest m = ...;                                    // e.g. from BuildManifestFromDirectory
//   std::string body = SerializeManifest(m);             // PUT /v1/blobs/manifests/<hash>
//   std::string hash = ManifestHash(m);                  // == Sha256Hex(body)
//   FASTEST_ASSIGN_OR_RETURN(Manifest base, ParseManifest(downloaded_text));
#ifndef FASTEST_CORE_SNAPSHOT_MANIFEST_H_
#define FASTEST_CORE_SNAPSHOT_MANIFEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fastest::core {

// kDefaultFileMode: 0644, the mode of an in-memory entry that has none (serialized as 420).
inline constexpr uint32_t kDefaultFileMode = 0644;

// FileEntry: one regular file. `mode` holds permission bits only (st_mode & 0777).
struct FileEntry {
  std::string path;  // relative, '/'-separated, bytes as on disk
  std::string hash;  // lowercase hex SHA-256 of the content
  uint64_t size = 0;
  uint32_t mode = kDefaultFileMode;
  std::optional<int64_t> mod_time;  // Unix seconds; serialized only when present
};

bool operator==(const FileEntry& a, const FileEntry& b);
inline bool operator!=(const FileEntry& a, const FileEntry& b) { return !(a == b); }

// Manifest: entries sorted by path in byte order (SortManifest); SerializeManifest sorts anyway.
struct Manifest {
  std::vector<FileEntry> files;
};

// SortManifest: byte-wise (unsigned, memcmp) order of `path`, like the Go CLI. Locale-free.
void SortManifest(Manifest* manifest);

// SerializeManifest: canonical bytes of §2.2 — 2-space pretty JSON, keys version/files and
// path/hash/size/mode[/mod_time], JSON.stringify string escaping (non-ASCII raw, `<>&/` raw),
// `"files": []` when empty, no trailing newline. Entries are written in byte order of path (the
// CLI's order; a runner uses its base manifest's order, see manifest_order.h).
std::string SerializeManifest(const Manifest& manifest);

// SerializeManifestAsGiven: the same bytes with the entries in their given order, for a manifest
// sorted in another order on purpose (manifest_order.h: a runner keeps its base's ICU order).
std::string SerializeManifestAsGiven(const Manifest& manifest);

// ManifestHash: lowercase hex SHA-256 of SerializeManifest(manifest).
std::string ManifestHash(const Manifest& manifest);

// ValidateManifestPath: what a restore may write. Rejects empty, absolute (leading '/'), empty
// components ("a//b", trailing '/'), "." and ".." components, NUL and other invalid UTF-8.
// Backslashes and other bytes are allowed (they are ordinary name bytes on POSIX).
absl::Status ValidateManifestPath(absl::string_view path);

// ParseManifest: strict reader. Requires {"version":"1","files":[...]}; every entry needs a valid path
// (ValidateManifestPath), a 64-char lowercase hex hash, a non-negative integer size, an integer mode
// in 0..0777 and, if present, an integer mod_time. Duplicate paths are rejected. Unknown fields are
// ignored. Entries keep their order in the text. Never throws.
absl::StatusOr<Manifest> ParseManifest(absl::string_view text);

// ManifestDiff: path+hash comparison (mode-only changes are not "modified", as in the original).
struct ManifestDiff {
  std::vector<std::string> added;
  std::vector<std::string> modified;
  std::vector<std::string> deleted;
  uint64_t bytes_changed = 0;  // size of added + modified (new size) + deleted (old size) entries
};
ManifestDiff DiffManifests(const Manifest& base, const Manifest& current);

// IsValidUtf8: strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(absl::string_view s);

}  // namespace fastest::core

#endif  // FASTEST_CORE_SNAPSHOT_MANIFEST_H_
