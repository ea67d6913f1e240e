// Runs every vector of ../shared/manifest_vectors.json (PROTOCOLS.md §2.8) through the on-disk scanner
// and the in-memory serializer; both must equal the "recommended_cpp" manifest byte for byte.
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "core/snapshot/directory_scan.h"
#include "core/snapshot/manifest.h"
#include "core/snapshot/manifest_order.h"
#include "core/snapshot/sha256.h"
#include "core/snapshot/test_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fastest::core {
namespace {

using nlohmann::json;

bool FileExists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

std::string DirName(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : p.substr(0, slash);
}

// $FASTEST_SHARED_DIR, else <repo>/../shared where <repo> is found by resolving this test's BUILD.bazel
// runfile back to the source tree and walking up to the WORKSPACE file.
std::string FindVectorsFile(std::vector<std::string>* tried) {
  const char* shared = getenv("FASTEST_SHARED_DIR");
  if (shared != nullptr && *shared) {
    std::string p = std::string(shared) + "/manifest_vectors.json";
    tried->push_back(p);
    if (FileExists(p)) return p;
  }
  std::vector<std::string> starts;
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  if (srcdir != nullptr) {
    starts.push_back(std::string(srcdir) + "/" + (workspace ? workspace : "fastest") +
                     "/core/snapshot/BUILD.bazel");
  }
  if (const char* bwd = getenv("BUILD_WORKSPACE_DIRECTORY")) starts.push_back(std::string(bwd) + "/WORKSPACE");
  starts.push_back("core/snapshot/BUILD.bazel");
  for (const std::string& start : starts) {
    char real[PATH_MAX];
    if (realpath(start.c_str(), real) == nullptr) continue;
    for (std::string dir = DirName(real); dir != "/"; dir = DirName(dir)) {
      if (FileExists(dir + "/WORKSPACE")) {
        std::string p = DirName(dir) + "/shared/manifest_vectors.json";
        tried->push_back(p);
        if (FileExists(p)) return p;
        break;
      }
    }
  }
  return "";
}

json LoadVectors() {
  std::vector<std::string> tried;
  std::string path = FindVectorsFile(&tried);
  std::string where;
  for (const auto& t : tried) where += " " + t;
  EXPECT_FALSE(path.empty()) << "manifest_vectors.json not found; tried:" << where
                             << " (set FASTEST_SHARED_DIR)";
  if (path.empty()) return json();
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << path << " is not valid JSON";
  return j;
}

std::vector<std::string> Paths(const Manifest& manifest) {
  std::vector<std::string> paths;
  for (const FileEntry& e : manifest.files) paths.push_back(e.path);
  return paths;
}

// The vector's entries minus its ignored paths, in the vector's order.
Manifest ManifestFromVectorEntries(const json& v) {
  const bool include_mod_time = v["options"].value("includeModTime", false);
  std::set<std::string> ignored;
  for (const json& p : v["ignored_paths"]) ignored.insert(p.get<std::string>());
  Manifest mem;
  for (const json& f : v["files"]) {
    if (ignored.count(f["path"].get<std::string>())) continue;
    FileEntry e;
    e.path = f["path"].get<std::string>();
    e.hash = f["sha256"].get<std::string>();
    e.size = f["size"].get<uint64_t>();
    e.mode = f["mode"].get<uint32_t>();
    if (include_mod_time && f.contains("mod_time")) e.mod_time = f["mod_time"].get<int64_t>();
    mem.files.push_back(e);
  }
  return mem;
}

// The byte-exact manifest the recommended C++ profile must produce.
std::string ExpectedJson(const json& v) {
  const json& rec = v["recommended_cpp"];
  if (rec.contains("manifest_json")) return rec["manifest_json"].get<std::string>();
  if (rec.value("same_as_go_cli", false) && v["go_cli"].contains("manifest_json")) {
    return v["go_cli"]["manifest_json"].get<std::string>();
  }
  if (rec.value("same_as_ts", false) || rec.value("same_as_go_cli", false)) {
    return v["ts"]["manifest_json"].get<std::string>();
  }
  ADD_FAILURE() << "vector " << v["name"] << ": no recommended manifest_json";
  return "";
}

TEST(ManifestVectorsTest, EveryVectorMatchesRecommendedCppProfile) {
  json root = LoadVectors();
  ASSERT_TRUE(root.is_object()) << "could not load manifest vectors";
  const json& vectors = root["vectors"];
  ASSERT_TRUE(vectors.is_array());
  ASSERT_GE(vectors.size(), 9u);
  int checked = 0;
  for (const json& v : vectors) {
    const std::string name = v["name"].get<std::string>();
    SCOPED_TRACE("vector " + name);
    const json& options = v["options"];
    const bool include_mod_time = options.value("includeModTime", false);
    const std::string expected = ExpectedJson(v);
    const std::string expected_sha = v["recommended_cpp"]["manifest_sha256"].get<std::string>();
    ASSERT_EQ(Sha256Hex(expected), expected_sha) << "vector file inconsistent";

    // 1. On disk.
    testing::TempDir dir;
    bool has_fstignore = false;
    for (const json& f : v["files"]) {
      const std::string path = f["path"].get<std::string>();
      std::string bytes;
      ASSERT_TRUE(absl::Base64Unescape(f["content_b64"].get<std::string>(), &bytes)) << path;
      ASSERT_EQ(bytes.size(), f["size"].get<uint64_t>()) << path;
      dir.Write(path, bytes, f["mode"].get<uint32_t>());
      if (f.contains("mod_time")) {
        struct timeval tv[2] = {{f["mod_time"].get<long>(), 0}, {f["mod_time"].get<long>(), 0}};
        ASSERT_EQ(utimes((dir.path() + "/" + path).c_str(), tv), 0) << path;
      }
      if (path == ".fstignore") has_fstignore = true;
    }
    ScanOptions scan;
    scan.include_mod_time = include_mod_time;
    if (options.contains("ignorePatterns") && !has_fstignore) {
      // Same effect as a .fstignore, without adding a .fstignore entry to the manifest.
      for (const json& p : options["ignorePatterns"]) scan.extra_ignore_patterns.push_back(p.get<std::string>());
    }
    auto manifest = BuildManifestFromDirectory(dir.path(), scan);
    ASSERT_TRUE(manifest.ok()) << manifest.status();
    const std::string got = SerializeManifest(*manifest);
    EXPECT_EQ(got, expected);
    EXPECT_EQ(ManifestHash(*manifest), expected_sha);
    std::set<std::string> in_manifest;
    for (const FileEntry& e : manifest->files) in_manifest.insert(e.path);
    for (const json& ignored : v["ignored_paths"]) {
      EXPECT_EQ(in_manifest.count(ignored.get<std::string>()), 0u) << ignored;
    }

    // 2. In memory, from the vector's own entries (minus the ignored ones), in the vector's order.
    Manifest mem = ManifestFromVectorEntries(v);
    EXPECT_EQ(SerializeManifest(mem), expected);
    EXPECT_EQ(ManifestHash(mem), expected_sha);

    // 3. Parse → serialize is the identity on canonical bytes.
    auto parsed = ParseManifest(expected);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(SerializeManifest(*parsed), expected);
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(vectors.size()));
}

// The original TypeScript runner's manifests ("ts": localeCompare under en-US) are what ICU order
// produces, byte for byte; each is detected as ICU order where it differs from byte order, and as
// ambiguous where the two orders agree.
TEST(ManifestVectorsTest, IcuOrderMatchesTheTypeScriptRunner) {
  json root = LoadVectors();
  ASSERT_TRUE(root.is_object()) << "could not load manifest vectors";
  int differing = 0;
  for (const json& v : root["vectors"]) {
    SCOPED_TRACE("vector " + v["name"].get<std::string>());
    const std::string ts_json = v["ts"]["manifest_json"].get<std::string>();
    const std::string ts_sha = v["ts"]["manifest_sha256"].get<std::string>();
    ASSERT_EQ(Sha256Hex(ts_json), ts_sha) << "vector file inconsistent";
    absl::StatusOr<Manifest> ts = ParseManifest(ts_json);
    absl::StatusOr<Manifest> cpp = ParseManifest(ExpectedJson(v));
    ASSERT_TRUE(ts.ok() && cpp.ok());
    std::vector<std::string> ts_sorted = Paths(*ts), cpp_sorted = Paths(*cpp);
    std::sort(ts_sorted.begin(), ts_sorted.end());
    std::sort(cpp_sorted.begin(), cpp_sorted.end());
    if (ts_sorted != cpp_sorted) {
      // Not an order difference: TS rewrites '\\' in names to '/', fastest keeps the name
      // (the recommended profile, PROTOCOLS §2.8). Nothing else may differ.
      for (std::string& path : cpp_sorted) std::replace(path.begin(), path.end(), '\\', '/');
      std::sort(cpp_sorted.begin(), cpp_sorted.end());
      EXPECT_EQ(ts_sorted, cpp_sorted);
      continue;
    }
    Manifest mem = ManifestFromVectorEntries(v);
    absl::StatusOr<std::string> icu_text = SerializeManifestInOrder(mem, PathOrder::kIcuEnUs);
    ASSERT_TRUE(icu_text.ok()) << icu_text.status();
    EXPECT_EQ(*icu_text, ts_json);
    EXPECT_EQ(Sha256Hex(*icu_text), ts_sha);

    absl::StatusOr<DetectedPathOrder> ts_order = DetectPathOrder(ts->files);
    absl::StatusOr<DetectedPathOrder> cpp_order = DetectPathOrder(cpp->files);
    ASSERT_TRUE(ts_order.ok() && cpp_order.ok());
    absl::StatusOr<PathOrder> chosen = SnapshotOrderForBase(&*ts, nullptr);
    ASSERT_TRUE(chosen.ok()) << chosen.status();
    if (Paths(*ts) != Paths(*cpp)) {
      ++differing;
      EXPECT_EQ(*ts_order, DetectedPathOrder::kIcuEnUs);
      EXPECT_EQ(*cpp_order, DetectedPathOrder::kBytes);
      EXPECT_EQ(*chosen, PathOrder::kIcuEnUs);
    } else {
      EXPECT_EQ(*ts_order, DetectedPathOrder::kAmbiguous);
      EXPECT_EQ(*chosen, PathOrder::kBytes);
    }
  }
  EXPECT_GE(differing, 2);  // case-and-punctuation-order, unicode-names, ...
}

TEST(ManifestVectorsTest, EmptyManifestBytes) {
  EXPECT_EQ(SerializeManifest(Manifest()), "{\n  \"version\": \"1\",\n  \"files\": []\n}");
  EXPECT_EQ(ManifestHash(Manifest()), "ae430cc749b673d2f62795880ca53904a19351c271068b31fece8428431b918f");
}

}  // namespace
}  // namespace fastest::core
