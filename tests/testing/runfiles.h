// File: tests/testing/runfiles.h
//
// Finding the binaries a test or benchmark drives among its Bazel runfiles.
#ifndef FASTEST_TESTS_TESTING_RUNFILES_H_
#define FASTEST_TESTS_TESTING_RUNFILES_H_

#include <string>

namespace fastest::testing {

// Absolute path of a runfile given its workspace-relative path ("server/fastest-server"). Works
// under `bazel test` (TEST_SRCDIR), `bazel run` (RUNFILES_DIR, <argv0>.runfiles) and from the
// workspace root (the current directory).
std::string RunfilePath(const std::string& workspace_relative);

// A fresh directory under $TEST_TMPDIR (or /tmp) whose name starts with `prefix`.
std::string MakeTempDir(const std::string& prefix);

}  // namespace fastest::testing

#endif  // FASTEST_TESTS_TESTING_RUNFILES_H_
