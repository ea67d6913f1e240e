// File: core/snapshot/safe_fs.h
//
// Safe restore helpers: resolve a manifest path inside a workspace without ever following a symlink,
// and write a file with an exact mode (umask cannot change it).
//
// Example (runner restore):
//   FASTEST_ASSIGN_OR_RETURN(std::string abs, ResolveInsideWorkspace(root, entry.path));
//   FASTEST_RETURN_IF_ERROR(WriteFileWithMode(abs, bytes, entry.mode));
#ifndef FASTEST_CORE_SNAPSHOT_SAFE_FS_H_
#define FASTEST_CORE_SNAPSHOT_SAFE_FS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fastest::core {

// ResolveInsideWorkspace: validates `relative_path` like ParseManifest (no empty/absolute/"."/".."),
// then lstat()s every existing component under `root`: a symlink anywhere → PermissionDenied; a
// non-directory in the middle or a non-regular final component → FailedPrecondition. Missing
// components are fine (they will be created). Returns root + "/" + relative_path.
absl::StatusOr<std::string> ResolveInsideWorkspace(const std::string& root, absl::string_view relative_path);

// MakeDirs: mkdir -p with `mode` (0755 default) for missing components; an existing non-directory
// component is an error. (Follows symlinks: validate with ResolveInsideWorkspace first.)
absl::Status MakeDirs(const std::string& path, uint32_t mode = 0755);

// WriteFileWithMode: creates parent directories, writes `bytes` to a temporary file beside `path`,
// fchmod()s it to `mode & 07777`, then rename()s it over `path` (so readers never see a partial file
// and an existing symlink at `path` is replaced, not followed).
absl::Status WriteFileWithMode(const std::string& path, absl::string_view bytes, uint32_t mode);

}  // namespace fastest::core

#endif  // FASTEST_CORE_SNAPSHOT_SAFE_FS_H_
