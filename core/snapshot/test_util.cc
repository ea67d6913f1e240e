#include "core/snapshot/test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/snapshot/safe_fs.h"

namespace fastest::core::testing {

TempDir::TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base ? base : "/tmp") + "/fstXXXXXX";
  if (mkdtemp(&tmpl[0]) == nullptr) {
    perror("mkdtemp");
    abort();
  }
  path_ = tmpl;
}

TempDir::~TempDir() { RemoveTree(path_); }

void TempDir::Write(const std::string& rel, absl::string_view bytes, uint32_t mode) const {
  absl::Status s = WriteFileWithMode(path_ + "/" + rel, bytes, mode);
  if (!s.ok()) {
    fprintf(stderr, "write %s: %s\n", rel.c_str(), std::string(s.message()).c_str());
    abort();
  }
}

void RemoveTree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    chmod(path.c_str(), 0700);
    if (DIR* d = opendir(path.c_str())) {
      while (struct dirent* e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        RemoveTree(path + "/" + e->d_name);
      }
      closedir(d);
    }
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

}  // namespace fastest::core::testing
