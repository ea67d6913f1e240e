// File: core/snapshot/safe_fs.cc
#include "core/snapshot/safe_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/snapshot/manifest.h"

namespace fastest::core {
namespace {

std::string ParentOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

absl::StatusOr<std::string> ResolveInsideWorkspace(const std::string& root_in,
                                                   absl::string_view relative_path) {
  absl::Status valid = ValidateManifestPath(relative_path);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("unsafe path: ", valid.message()));
  }
  std::string root = root_in;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (root.empty()) return absl::InvalidArgumentError("empty workspace root");
  std::vector<absl::string_view> parts = absl::StrSplit(relative_path, '/');
  std::string current = root;
  for (size_t i = 0; i < parts.size(); ++i) {
    absl::StrAppend(&current, "/", parts[i]);
    struct stat st;
    if (lstat(current.c_str(), &st) != 0) {
      if (errno == ENOENT) break;  // the rest does not exist yet
      return absl::InternalError(absl::StrCat("lstat ", current, ": ", strerror(errno)));
    }
    if (S_ISLNK(st.st_mode)) {
      return absl::PermissionDeniedError(
          absl::StrCat("refusing to follow symlink '", current.substr(root.size() + 1), "'"));
    }
    bool last = i + 1 == parts.size();
    if (!last && !S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", current.substr(root.size() + 1), "' is not a directory"));
    }
    if (last && !S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", relative_path, "' exists and is not a regular file"));
    }
  }
  return absl::StrCat(root, "/", relative_path);
}

absl::Status MakeDirs(const std::string& path, uint32_t mode) {
  struct stat st;
  // stat, not lstat: the root itself may legitimately sit behind a symlink; refusing symlinks inside
  // the workspace is ResolveInsideWorkspace's job.
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a directory"));
  }
  if (errno != ENOENT) return absl::InternalError(absl::StrCat("stat ", path, ": ", strerror(errno)));
  std::string parent = ParentOf(path);
  if (parent != path && parent != "." && parent != "/") {
    absl::Status s = MakeDirs(parent, mode);
    if (!s.ok()) return s;
  }
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("mkdir ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status WriteFileWithMode(const std::string& path, absl::string_view bytes, uint32_t mode) {
  std::string parent = ParentOf(path);
  absl::Status dirs = MakeDirs(parent);
  if (!dirs.ok()) return dirs;
  size_t slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  thread_local absl::BitGen gen;
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 8 && fd < 0; ++attempt) {
    tmp = absl::StrCat(parent, "/.", base.substr(0, 200), ".fsttmp.", absl::Uniform<uint64_t>(gen));
    fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return absl::InternalError(absl::StrCat("create ", tmp, ": ", strerror(errno)));
  auto fail = [&](absl::string_view what) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat(what, " ", path, ": ", strerror(err)));
  };
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write");
    }
    off += static_cast<size_t>(n);
  }
  // Explicit chmod after the write: the creation mode is subject to umask.
  if (fchmod(fd, mode & 07777) != 0) return fail("chmod");
  if (close(fd) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("close ", path, ": ", strerror(err)));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("rename to ", path, ": ", strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace fastest::core
