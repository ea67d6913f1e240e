#include "core/snapshot/manifest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/snapshot/directory_scan.h"
#include "core/snapshot/hash_cache.h"
#include "core/snapshot/ignore_rules.h"
#include "core/snapshot/safe_fs.h"
#include "core/snapshot/sha256.h"
#include "core/snapshot/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

const std::string kHashA = Sha256Hex("a");

std::string Entry(const std::string& path_json, const std::string& rest) {
  return absl::StrCat(R"({"version":"1","files":[{"path":)", path_json, rest, "}]}");
}

std::string GoodRest() { return absl::StrCat(R"(,"hash":")", kHashA, R"(","size":1,"mode":420)"); }

std::vector<std::string> Paths(const Manifest& m) {
  std::vector<std::string> out;
  for (const auto& e : m.files) out.push_back(e.path);
  return out;
}

// Lets the coarse clock move past every file time written so far, so cache entries are not "racy".
void NextTick() { std::this_thread::sleep_for(std::chrono::milliseconds(30)); }

// ---- ParseManifest ----

TEST(ParseManifestTest, AcceptsGoodAndToleratesUnknownFields) {
  auto m = ParseManifest(absl::StrCat(R"({"version":"1","extra":true,"files":[{"path":"a/b\\c.txt","hash":")",
                                      kHashA, R"(","size":1,"mode":493,"mod_time":-5,"x":[1]}]})"));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->files.size(), 1u);
  EXPECT_EQ(m->files[0].path, "a/b\\c.txt");  // backslash is an ordinary byte (V8)
  EXPECT_EQ(m->files[0].mode, 0755u);
  EXPECT_EQ(m->files[0].mod_time, -5);
  auto empty = ParseManifest(R"({"version":"1","files":[]})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->files.empty());
}

TEST(ParseManifestTest, RejectsBadDocuments) {
  for (const std::string& text : std::vector<std::string>{
           "", "not json", "[]", "{}", R"({"version":1,"files":[]})", R"({"version":"2","files":[]})",
           R"({"version":"1"})", R"({"version":"1","files":null})", R"({"version":"1","files":{}})",
           R"({"version":"1","files":[1]})"}) {
    EXPECT_FALSE(ParseManifest(text).ok()) << text;
  }
}

TEST(ParseManifestTest, RejectsUnsafePaths) {
  for (const std::string& p : std::vector<std::string>{
           R"("")", R"("/etc/passwd")", R"("..")", R"("../x")", R"("a/../b")", R"("a/..")", R"(".")",
           R"("./a")", R"("a/./b")", R"("a//b")", R"("a/")", R"("a\u0000b")", "5", "null"}) {
    auto r = ParseManifest(Entry(p, GoodRest()));
    EXPECT_FALSE(r.ok()) << p;
    if (!r.ok()) EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << p;
  }
}

TEST(ParseManifestTest, RejectsDuplicatesAndBadFields) {
  std::string dup = absl::StrCat(R"({"version":"1","files":[{"path":"a","hash":")", kHashA,
                                 R"(","size":1,"mode":420},{"path":"a","hash":")", kHashA,
                                 R"(","size":1,"mode":420}]})");
  auto r = ParseManifest(dup);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "duplicate")) << r.status();

  std::string upper = kHashA;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  const std::vector<std::string> bad_rests = {
      absl::StrCat(R"(,"hash":")", upper, R"(","size":1,"mode":420)"),
      absl::StrCat(R"(,"hash":")", kHashA.substr(1), R"(","size":1,"mode":420)"),
      R"(,"hash":5,"size":1,"mode":420)",
      R"(,"size":1,"mode":420)",
      absl::StrCat(R"(,"hash":")", kHashA, R"(","size":-1,"mode":420)"),
      absl::StrCat(R"(,"hash":")", kHashA, R"(","size":1.5,"mode":420)"),
      absl::StrCat(R"(,"hash":")", kHashA, R"(","size":"1","mode":420)"),
      absl::StrCat(R"(,"hash":")", kHashA, R"(","mode":420)"),
      absl::StrCat(R"(,"hash":")", kHashA, R"(","size":1,"mode":"420")"),
      absl::StrCat(R"(,"hash":")", kHashA, R"(","size":1,"mode":-1)"),
      absl::StrCat(R"(,"hash":")", kHashA, R"(","size":1,"mode":512)"),
      absl::StrCat(R"(,"hash":")", kHashA, R"(","size":1,"mode":420,"mod_time":"x")"),
      absl::StrCat(R"(,"hash":")", kHashA, R"(","size":1,"mode":420,"mod_time":1.5)"),
  };
  for (const std::string& rest : bad_rests) {
    EXPECT_FALSE(ParseManifest(Entry(R"("a")", rest)).ok()) << rest;
  }
}

// ---- SerializeManifest ----

TEST(SerializeManifestTest, JsonStringifyEscapingAndByteOrder) {
  Manifest m;
  m.files.push_back({"z\x01\x7f<>&/\xc3\xa9", kHashA, 1, 0644, std::nullopt});
  m.files.push_back({"B\"\\\t\n\r\b\f", kHashA, 2, 0755, 7});
  std::string out = SerializeManifest(m);
  EXPECT_EQ(out, absl::StrCat("{\n  \"version\": \"1\",\n  \"files\": [\n    {\n      \"path\": ",
                              "\"B\\\"\\\\\\t\\n\\r\\b\\f\",\n      \"hash\": \"", kHashA,
                              "\",\n      \"size\": 2,\n      \"mode\": 493,\n      \"mod_time\": 7\n",
                              "    },\n    {\n      \"path\": \"z\\u0001\x7f<>&/\xc3\xa9\",\n",
                              "      \"hash\": \"", kHashA, "\",\n      \"size\": 1,\n      \"mode\": 420\n",
                              "    }\n  ]\n}"));
  EXPECT_EQ(ManifestHash(m), Sha256Hex(out));
}

TEST(SerializeManifestTest, SortsByUnsignedBytes) {
  Manifest m;
  for (const char* p : {"\xc3\xa9", "a", "_", "Z", ".", "-", "a/b", "a.b", "10", "9"}) {
    m.files.push_back({p, kHashA, 1, 0644, std::nullopt});
  }
  SortManifest(&m);
  EXPECT_THAT(Paths(m), ElementsAre("-", ".", "10", "9", "Z", "_", "a", "a.b", "a/b", "\xc3\xa9"));
}

TEST(DiffManifestsTest, AddedModifiedDeleted) {
  Manifest base, cur;
  base.files = {{"keep", kHashA, 1, 0644, {}}, {"mod", kHashA, 1, 0644, {}}, {"gone", kHashA, 4, 0644, {}},
                {"chmod", kHashA, 1, 0644, {}}};
  cur.files = {{"keep", kHashA, 1, 0644, {}}, {"mod", Sha256Hex("bb"), 2, 0644, {}},
               {"new", kHashA, 8, 0644, {}}, {"chmod", kHashA, 1, 0755, {}}};
  ManifestDiff d = DiffManifests(base, cur);
  EXPECT_THAT(d.added, ElementsAre("new"));
  EXPECT_THAT(d.modified, ElementsAre("mod"));
  EXPECT_THAT(d.deleted, ElementsAre("gone"));
  EXPECT_EQ(d.bytes_changed, 8u + 2u + 4u);
}

// ---- IgnoreRules ----

TEST(IgnoreRulesTest, Defaults) {
  IgnoreRules r;
  EXPECT_EQ(r.patterns().size(), 18u);
  EXPECT_TRUE(r.IsIgnored(".git", true));
  EXPECT_FALSE(r.IsIgnored(".git", false));  // ".git/" is directory-only
  EXPECT_FALSE(r.IsIgnored(".gitignore", false));
  EXPECT_TRUE(r.IsIgnored(".fst", false));
  EXPECT_TRUE(r.IsIgnored("a/node_modules", true));
  EXPECT_FALSE(r.IsIgnored("vendor/node_modules_readme.txt", false));
  EXPECT_TRUE(r.IsIgnored("lib/libfoo.so", false));
  EXPECT_FALSE(r.IsIgnored("lib/libfoo.so.1", false));
  EXPECT_TRUE(r.IsIgnored("docs/.DS_Store", false));
  EXPECT_TRUE(r.IsIgnored("x/Thumbs.db", false));
  EXPECT_FALSE(r.IsIgnored("src/.env", false));
}

TEST(IgnoreRulesTest, GrammarQuirksAndLastMatchWins) {
  IgnoreRules r = IgnoreRules::Empty();
  r.AddPatternsFromText("# comment\n\n  dist/  \n*.log\n!keep.log\ntmp*\n*cache*\n*\n");
  EXPECT_THAT(r.patterns(), ElementsAre("dist/", "*.log", "!keep.log", "tmp*", "*cache*", "*"));
  EXPECT_TRUE(r.IsIgnored("dist", true));
  EXPECT_TRUE(r.IsIgnored("src/dist", true));
  EXPECT_FALSE(r.IsIgnored("dist", false));
  EXPECT_TRUE(r.IsIgnored("error.log", false));
  EXPECT_FALSE(r.IsIgnored("logs/keep.log", false));  // negated by the later "!keep.log"
  EXPECT_TRUE(r.IsIgnored("tmp", false));
  EXPECT_TRUE(r.IsIgnored("a/tmp/b", false));
  EXPECT_FALSE(r.IsIgnored("tmpfile", false));  // "tmp*" is not a prefix glob
  EXPECT_FALSE(r.IsIgnored("src/tmp_notes.txt", false));
  EXPECT_TRUE(r.IsIgnored("a/my_cache_dir/x", false));
  EXPECT_FALSE(r.IsIgnored("plain.txt", false));  // "*" matches nothing
  IgnoreRules multi = IgnoreRules::Empty();
  multi.AddPattern("src/gen");
  EXPECT_TRUE(multi.IsIgnored("src/gen", true));
  EXPECT_TRUE(multi.IsIgnored("src/gen/a.c", false));
  EXPECT_FALSE(multi.IsIgnored("src/generated.c", false));
}

TEST(IgnoreRulesTest, IsIgnoredPathLooksAtEveryParentDirectory) {
  IgnoreRules r;  // defaults: ".git/" and "node_modules/" are directory-only
  r.AddPatternsFromText("secret.env\nbuild/\n!build/keep.txt\n");
  EXPECT_TRUE(r.IsIgnoredPath(".git/hooks/post-commit"));
  EXPECT_TRUE(r.IsIgnoredPath("sub/.git/HEAD"));
  EXPECT_FALSE(r.IsIgnoredPath(".git"));  // a file named .git: only the directory rule exists
  EXPECT_TRUE(r.IsIgnoredPath("secret.env"));
  EXPECT_TRUE(r.IsIgnoredPath("a/secret.env"));
  EXPECT_TRUE(r.IsIgnoredPath("web/node_modules/x/index.js"));
  // The scanner prunes build/: the negation cannot bring a file below it back.
  EXPECT_TRUE(r.IsIgnoredPath("build/keep.txt"));
  EXPECT_FALSE(r.IsIgnoredPath("src/main.cc"));
  EXPECT_FALSE(r.IsIgnoredPath("buildfile"));
}

// ---- BuildManifestFromDirectory ----

TEST(ScanTest, SkipsSpecialFilesAndKeepsModes) {
  testing::TempDir dir;
  dir.Write("a.txt", "a", 0640);
  dir.Write("bin/run", "#!/bin/sh\n", 0755);
  dir.Write("sub/x", "x");
  ASSERT_EQ(symlink("a.txt", (dir.path() + "/link").c_str()), 0);
  ASSERT_EQ(symlink("/etc", (dir.path() + "/etc_link").c_str()), 0);
  ASSERT_EQ(symlink("sub", (dir.path() + "/sub_link").c_str()), 0);
  ASSERT_EQ(mkfifo((dir.path() + "/fifo").c_str(), 0644), 0);
  ASSERT_EQ(chmod((dir.path() + "/a.txt").c_str(), 04640), 0);  // setuid bit must not leak into mode
  dir.Write("bad\xff.txt", "bad");
  mkdir((dir.path() + "/empty").c_str(), 0755);
  ScanStats stats;
  auto m = BuildManifestFromDirectory(dir.path(), ScanOptions(), nullptr, &stats);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(Paths(*m), ElementsAre("a.txt", "bin/run", "sub/x"));
  EXPECT_EQ(m->files[0].mode, 0640u);
  EXPECT_EQ(m->files[1].mode, 0755u);
  EXPECT_EQ(m->files[1].size, 10u);
  EXPECT_EQ(m->files[1].hash, Sha256Hex("#!/bin/sh\n"));
  EXPECT_FALSE(m->files[0].mod_time.has_value());
  EXPECT_EQ(stats.skipped.size(), 5u);  // 3 symlinks, fifo, non-UTF-8 name
}

TEST(ScanTest, FstignoreOptionAndPruning) {
  testing::TempDir dir;
  dir.Write(".fstignore", "build/\n!build/keep.txt\n*.log\n");
  dir.Write("build/keep.txt", "k");
  dir.Write("x.log", "l");
  dir.Write("src/a.c", "c");
  dir.Write("node_modules/m/index.js", "m");
  auto m = BuildManifestFromDirectory(dir.path());
  ASSERT_TRUE(m.ok());
  // The pruned directory cannot be resurrected by a later negation (Go semantics).
  EXPECT_THAT(Paths(*m), ElementsAre(".fstignore", "src/a.c"));
  ScanOptions no_fstignore;
  no_fstignore.read_fstignore = false;
  no_fstignore.include_mod_time = true;
  auto m2 = BuildManifestFromDirectory(dir.path(), no_fstignore);
  ASSERT_TRUE(m2.ok());
  EXPECT_THAT(Paths(*m2), ElementsAre(".fstignore", "build/keep.txt", "src/a.c", "x.log"));
  EXPECT_TRUE(m2->files[0].mod_time.has_value());
  EXPECT_GT(*m2->files[0].mod_time, 1700000000);
  EXPECT_FALSE(BuildManifestFromDirectory(dir.path() + "/missing").ok());
}

TEST(ScanTest, ParallelEqualsSingleThreaded) {
  testing::TempDir dir;
  for (int i = 0; i < 200; ++i) dir.Write(absl::StrCat("d", i % 7, "/f", i), std::string(i * 97, 'a' + i % 26));
  ScanOptions one, many;
  one.threads = 1;
  many.threads = 8;
  auto a = BuildManifestFromDirectory(dir.path(), one);
  auto b = BuildManifestFromDirectory(dir.path(), many);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->files.size(), 200u);
  EXPECT_EQ(SerializeManifest(*a), SerializeManifest(*b));
}

// ---- HashCache ----

TEST(HashCacheTest, ReusesUnchangedFilesAndRehashesChangedOnes) {
  testing::TempDir dir;
  dir.Write("a.txt", "aaaa");
  dir.Write("b/b.txt", "bbbb");
  dir.Write("c.txt", "cccc");
  NextTick();
  HashCache cache;
  ScanStats s1;
  auto m1 = BuildManifestFromDirectory(dir.path(), ScanOptions(), &cache, &s1);
  ASSERT_TRUE(m1.ok());
  EXPECT_EQ(s1.hashed, 3u);
  EXPECT_EQ(cache.size(), 3u);

  ScanStats s2;
  auto m2 = BuildManifestFromDirectory(dir.path(), ScanOptions(), &cache, &s2);
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(s2.hashed, 0u);
  EXPECT_EQ(s2.reused, 3u);
  EXPECT_EQ(SerializeManifest(*m1), SerializeManifest(*m2));

  NextTick();
  dir.Write("b/b.txt", "BBBB");  // same size, new content
  NextTick();  // else the fresh entry is racy and s4 would (correctly) re-hash it again
  ScanStats s3;
  auto m3 = BuildManifestFromDirectory(dir.path(), ScanOptions(), &cache, &s3);
  ASSERT_TRUE(m3.ok());
  EXPECT_THAT(s3.hashed_paths, ElementsAre("b/b.txt"));
  EXPECT_EQ(s3.reused, 2u);
  EXPECT_EQ(m3->files[1].hash, Sha256Hex("BBBB"));

  // In-place edit (same inode), then a removed file drops out of the cache.
  NextTick();
  {
    int fd = open((dir.path() + "/a.txt").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "A", 1, 0), 1);
    close(fd);
  }
  ASSERT_EQ(unlink((dir.path() + "/c.txt").c_str()), 0);
  ScanStats s4;
  auto m4 = BuildManifestFromDirectory(dir.path(), ScanOptions(), &cache, &s4);
  ASSERT_TRUE(m4.ok());
  EXPECT_THAT(s4.hashed_paths, ElementsAre("a.txt"));
  EXPECT_EQ(m4->files[0].hash, Sha256Hex("Aaaa"));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.Get("c.txt").has_value());
}

TEST(HashCacheTest, RacyEntriesAreNotTrusted) {
  testing::TempDir dir;
  dir.Write("f", "data");
  struct stat st;
  ASSERT_EQ(lstat((dir.path() + "/f").c_str(), &st), 0);
  int64_t mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  int64_t ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
  int64_t newest = std::max(mtime_ns, ctime_ns);
  HashCache cache;
  cache.Record("f", st, Sha256Hex("data"), newest);  // recorded in the same tick as the write
  EXPECT_FALSE(cache.Lookup("f", st).has_value());
  cache.Record("f", st, Sha256Hex("data"), newest + 1);
  EXPECT_EQ(cache.Lookup("f", st), Sha256Hex("data"));
  struct stat other = st;
  other.st_size += 1;
  EXPECT_FALSE(cache.Lookup("f", other).has_value());
  other = st;
  other.st_ino += 1;
  EXPECT_FALSE(cache.Lookup("f", other).has_value());
  EXPECT_FALSE(cache.Lookup("g", st).has_value());
}

TEST(HashCacheTest, RecordedRestoreIsUsedOnlyAfterSeal) {
  testing::TempDir dir;
  dir.Write("r/x.txt", "restored", 0600);
  HashCache cache;
  ASSERT_TRUE(cache.RecordFile(dir.path(), "r/x.txt", Sha256Hex("restored")).ok());
  EXPECT_FALSE(cache.RecordFile(dir.path(), "nope", Sha256Hex("")).ok());
  EXPECT_FALSE(cache.RecordFile(dir.path(), "r", Sha256Hex("")).ok());
  ScanStats before;
  ASSERT_TRUE(BuildManifestFromDirectory(dir.path(), ScanOptions(), &cache, &before).ok());
  EXPECT_EQ(before.hashed, 1u);  // pending entry not trusted

  HashCache restored;
  ASSERT_TRUE(restored.RecordFile(dir.path(), "r/x.txt", Sha256Hex("restored")).ok());
  NextTick();
  restored.Seal();
  ScanStats after;
  auto m = BuildManifestFromDirectory(dir.path(), ScanOptions(), &restored, &after);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(after.hashed, 0u);
  EXPECT_EQ(after.reused, 1u);
  EXPECT_EQ(m->files[0].hash, Sha256Hex("restored"));
  EXPECT_EQ(m->files[0].mode, 0600u);

  // The serialized cache keeps working in another process.
  auto copy = HashCache::Parse(restored.Serialize());
  ASSERT_TRUE(copy.ok()) << copy.status();
  ScanStats again;
  ASSERT_TRUE(BuildManifestFromDirectory(dir.path(), ScanOptions(), &*copy, &again).ok());
  EXPECT_EQ(again.reused, 1u);
  EXPECT_FALSE(HashCache::Parse("{").ok());
}

// ---- ResolveInsideWorkspace / WriteFileWithMode ----

TEST(ResolveInsideWorkspaceTest, RefusesEscapes) {
  testing::TempDir dir, outside;
  dir.Write("ok/file.txt", "x");
  outside.Write("secret.txt", "s");
  ASSERT_EQ(symlink(outside.path().c_str(), (dir.path() + "/evil").c_str()), 0);
  ASSERT_EQ(symlink((outside.path() + "/secret.txt").c_str(), (dir.path() + "/ok/leaf").c_str()), 0);

  auto good = ResolveInsideWorkspace(dir.path(), "ok/file.txt");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(*good, dir.path() + "/ok/file.txt");
  auto fresh = ResolveInsideWorkspace(dir.path() + "/", "new/deep/f");
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(*fresh, dir.path() + "/new/deep/f");

  for (const char* bad : {"../x", "ok/../../x", "/etc/passwd", "", "a//b", "./a"}) {
    auto r = ResolveInsideWorkspace(dir.path(), bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  auto via_dir = ResolveInsideWorkspace(dir.path(), "evil/secret.txt");
  ASSERT_FALSE(via_dir.ok());
  EXPECT_EQ(via_dir.status().code(), absl::StatusCode::kPermissionDenied);
  auto via_new = ResolveInsideWorkspace(dir.path(), "evil/new.txt");
  EXPECT_FALSE(via_new.ok());
  auto leaf = ResolveInsideWorkspace(dir.path(), "ok/leaf");
  ASSERT_FALSE(leaf.ok());
  EXPECT_EQ(leaf.status().code(), absl::StatusCode::kPermissionDenied);
  auto through_file = ResolveInsideWorkspace(dir.path(), "ok/file.txt/x");
  ASSERT_FALSE(through_file.ok());
  EXPECT_EQ(through_file.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(ResolveInsideWorkspace(dir.path(), "ok").ok());  // a directory, not a file
}

TEST(WriteFileWithModeTest, ExactModeDespiteUmaskAndNoSymlinkFollow) {
  testing::TempDir dir, outside;
  mode_t old = umask(077);
  ASSERT_TRUE(WriteFileWithMode(dir.path() + "/a/b/run.sh", "#!/bin/sh\n", 0755).ok());
  ASSERT_TRUE(WriteFileWithMode(dir.path() + "/ro.txt", "ro", 0444).ok());
  umask(old);
  struct stat st;
  ASSERT_EQ(stat((dir.path() + "/a/b/run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(stat((dir.path() + "/ro.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);
  auto h = Sha256FileHex(dir.path() + "/a/b/run.sh");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, Sha256Hex("#!/bin/sh\n"));

  // Overwriting replaces an existing symlink instead of writing through it.
  outside.Write("target.txt", "keep");
  ASSERT_EQ(symlink((outside.path() + "/target.txt").c_str(), (dir.path() + "/l").c_str()), 0);
  ASSERT_TRUE(WriteFileWithMode(dir.path() + "/l", "new", 0644).ok());
  EXPECT_EQ(*Sha256FileHex(outside.path() + "/target.txt"), Sha256Hex("keep"));
  ASSERT_EQ(lstat((dir.path() + "/l").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  // No temp files left behind.
  auto m = BuildManifestFromDirectory(dir.path());
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(Paths(*m), ElementsAre("a/b/run.sh", "l", "ro.txt"));
  EXPECT_FALSE(WriteFileWithMode(dir.path() + "/ro.txt/x", "x", 0644).ok());
}

}  // namespace

// Read-once scans: every file read (up to content_max_bytes) is handed over whole with its hash.
TEST(DirectoryScanTest, OnFileContentGetsExactlyTheHashedBytes) {
  testing::TempDir dir;
  dir.Write("a.txt", "alpha");
  dir.Write("sub/b.bin", std::string(100000, 'z'));
  dir.Write("big.bin", std::string(5000, 'q'));
  std::mutex mu;
  std::map<std::string, std::string> got;
  ScanOptions options;
  options.content_max_bytes = 4096;  // big.bin is hashed but not handed over
  options.on_file_content = [&](const std::string& rel, const std::string& hash,
                                absl::string_view data) {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(hash, Sha256Hex(data));
    got[rel] = std::string(data);
  };
  HashCache cache;
  auto m = BuildManifestFromDirectory(dir.path(), options, &cache);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->files.size(), 3u);
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(got["a.txt"], "alpha");
  options.content_max_bytes = 1 << 20;
  got.clear();
  auto m2 = BuildManifestFromDirectory(dir.path(), options, nullptr);
  ASSERT_TRUE(m2.ok()) << m2.status();
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(got["sub/b.bin"], std::string(100000, 'z'));
  EXPECT_EQ(ManifestHash(*m), ManifestHash(*m2));
}

// Read-once scans into caller buffers: the bytes handed over are in the buffer the caller gave.
TEST(DirectoryScanTest, ReadsIntoAcquiredBuffers) {
  testing::TempDir dir;
  for (int i = 0; i < 40; ++i) {
    dir.Write("d" + std::to_string(i % 4) + "/f" + std::to_string(i), std::string(100 + i, 'a' + i % 26));
  }
  std::mutex mu;
  std::vector<std::unique_ptr<std::string>> buffers;
  std::set<const char*> outstanding;
  int handed = 0, inside = 0;
  ScanOptions options;
  options.threads = 3;
  options.acquire_content_buffer = [&](size_t bytes) -> char* {
    std::lock_guard<std::mutex> lock(mu);
    buffers.push_back(std::make_unique<std::string>(bytes, '\0'));
    outstanding.insert(buffers.back()->data());
    return buffers.back()->data();
  };
  options.release_content_buffer = [&](char* at) {
    std::lock_guard<std::mutex> lock(mu);
    outstanding.erase(at);
  };
  options.on_file_content = [&](const std::string&, const std::string& hash, absl::string_view data) {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(hash, Sha256Hex(data));
    ++handed;
    if (outstanding.erase(data.data()) == 1) ++inside;
  };
  auto m = BuildManifestFromDirectory(dir.path(), options);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->files.size(), 40u);
  EXPECT_EQ(handed, 40);
  EXPECT_EQ(inside, 40);  // every file was read into a buffer it acquired
  EXPECT_TRUE(outstanding.empty());
  // Same manifest as a plain scan.
  auto plain = BuildManifestFromDirectory(dir.path());
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(ManifestHash(*m), ManifestHash(*plain));
}

// More directories than the scan keeps open at once: files beyond the cap are opened by path.
TEST(DirectoryScanTest, ManyDirectoriesAllHashed) {
  testing::TempDir dir;
  std::map<std::string, std::string> want;
  for (int i = 0; i < 400; ++i) {
    const std::string rel = "d" + std::to_string(i) + "/x/f.txt";
    dir.Write(rel, "content " + std::to_string(i));
    want[rel] = Sha256Hex("content " + std::to_string(i));
  }
  ScanOptions options;
  options.threads = 2;
  auto m = BuildManifestFromDirectory(dir.path(), options);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->files.size(), want.size());
  for (const auto& e : m->files) EXPECT_EQ(e.hash, want[e.path]) << e.path;
}

}  // namespace fastest::core
