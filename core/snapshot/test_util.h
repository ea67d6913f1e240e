// File: core/snapshot/test_util.h — temp directories for the snapshot tests.
#ifndef FASTEST_CORE_SNAPSHOT_TEST_UTIL_H_
#define FASTEST_CORE_SNAPSHOT_TEST_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace fastest::core::testing {

// TempDir: a fresh directory under $TEST_TMPDIR (or /tmp), removed recursively on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes root/rel with `mode` (parents created); aborts the test process on failure.
  void Write(const std::string& rel, absl::string_view bytes, uint32_t mode = 0644) const;

 private:
  std::string path_;
};

// RemoveTree: rm -rf without following symlinks.
void RemoveTree(const std::string& path);

}  // namespace fastest::core::testing

#endif  // FASTEST_CORE_SNAPSHOT_TEST_UTIL_H_
