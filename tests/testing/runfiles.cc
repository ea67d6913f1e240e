#include "tests/testing/runfiles.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"

namespace fastest::testing {
namespace {

constexpr char kWorkspaceName[] = "fastest";

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

}  // namespace

std::string RunfilePath(const std::string& rel) {
  if (const char* srcdir = std::getenv("TEST_SRCDIR"); srcdir != nullptr) {
    std::string p = absl::StrCat(srcdir, "/", EnvOr("TEST_WORKSPACE", kWorkspaceName), "/", rel);
    if (Exists(p)) return p;
  }
  if (const char* dir = std::getenv("RUNFILES_DIR"); dir != nullptr) {
    std::string p = absl::StrCat(dir, "/", kWorkspaceName, "/", rel);
    if (Exists(p)) return p;
  }
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    std::string p = absl::StrCat(exe, ".runfiles/", kWorkspaceName, "/", rel);
    if (Exists(p)) return p;
  }
  std::error_code ec;
  return (std::filesystem::current_path(ec) / rel).string();
}

std::string MakeTempDir(const std::string& prefix) {
  std::string base = EnvOr("TEST_TMPDIR", "/tmp");
  std::string tmpl = absl::StrCat(base, "/", prefix, "XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) return absl::StrCat(base, "/", prefix, getpid());
  return std::string(buf.data());
}

}  // namespace fastest::testing
