// Byte vs ICU (en-US) order of manifest paths against the real ICU library: the comparisons
// PROTOCOLS.md §2.4 lists for localeCompare, detection of each case, and ordered serialization.
// The vectors (the original TypeScript runner's manifests) are in manifest_vectors_test.cc.
#include "core/snapshot/manifest_order.h"

#include <string>
#include <vector>

#include "core/snapshot/manifest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

using ::testing::HasSubstr;

std::vector<FileEntry> Entries(const std::vector<std::string>& paths) {
  std::vector<FileEntry> files;
  for (const std::string& path : paths) {
    FileEntry e;
    e.path = path;
    e.hash = std::string(64, 'a');
    files.push_back(e);
  }
  return files;
}

std::vector<std::string> Paths(const Manifest& manifest) {
  std::vector<std::string> paths;
  for (const FileEntry& e : manifest.files) paths.push_back(e.path);
  return paths;
}

DetectedPathOrder Detect(const std::vector<std::string>& paths) {
  absl::StatusOr<DetectedPathOrder> detected = DetectPathOrder(Entries(paths));
  EXPECT_TRUE(detected.ok()) << detected.status();
  return detected.value_or(DetectedPathOrder::kNeither);
}

int Icu(const std::string& a, const std::string& b) {
  absl::StatusOr<int> r = IcuCompare(a, b);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.value_or(0);
}

TEST(ManifestOrderTest, IcuCompareIsLocaleCompareForEnUs) {
  // Case-insensitive first, lower case first on a tie.
  EXPECT_LT(Icu("main.c", "Makefile"), 0);
  EXPECT_LT(Icu("Makefile", "README.md"), 0);
  EXPECT_LT(Icu("a.txt", "A.txt"), 0);
  // Punctuation `_` < `-` < `.` < `/`, then digits, then letters.
  EXPECT_LT(Icu("_", "-"), 0);
  EXPECT_LT(Icu("-", "."), 0);
  EXPECT_LT(Icu(".", "/"), 0);
  EXPECT_LT(Icu("/", "0"), 0);
  EXPECT_LT(Icu("9", "a"), 0);
  // Accents next to their base letter, digits character-wise, CJK after Latin.
  EXPECT_LT(Icu("e", "\xC3\xA9"), 0);        // é
  EXPECT_LT(Icu("\xC3\xA9", "f"), 0);
  EXPECT_LT(Icu("10.txt", "9.txt"), 0);
  EXPECT_LT(Icu("z", "\xE4\xB8\xAD"), 0);    // 中
  // Byte order disagrees on all of these but the last three.
  EXPECT_GT(std::string("main.c").compare("Makefile"), 0);
  EXPECT_EQ(Icu("x", "x"), 0);
}

TEST(ManifestOrderTest, CanonicallyEquivalentNamesTieAndBytesBreakTheTie) {
  const std::string precomposed = "\xC3\xA1";  // á
  const std::string combining = "a\xCC\x81";   // a + U+0301
  // Equal under collation (V8 turns normalization on); the total order falls back to bytes.
  EXPECT_EQ(Icu(precomposed, combining) < 0, precomposed < combining);
  EXPECT_NE(Icu(precomposed, combining), 0);
  // A tie is no evidence either way: both orders of the pair count as ICU-sorted.
  EXPECT_NE(Detect({"0.txt", precomposed, combining}), DetectedPathOrder::kNeither);
  EXPECT_NE(Detect({"0.txt", combining, precomposed}), DetectedPathOrder::kNeither);
}

TEST(ManifestOrderTest, DetectsByteOrder) {
  EXPECT_EQ(Detect({"Makefile", "README.md", "main.c"}), DetectedPathOrder::kBytes);
  EXPECT_EQ(Detect({"Src/a.c", "docs/Z.md", "docs/a.md"}), DetectedPathOrder::kBytes);
}

TEST(ManifestOrderTest, DetectsIcuOrder) {
  EXPECT_EQ(Detect({"main.c", "Makefile", "README.md"}), DetectedPathOrder::kIcuEnUs);
  EXPECT_EQ(Detect({"a_b.txt", "a-b.txt", "a.txt"}), DetectedPathOrder::kIcuEnUs);
}

TEST(ManifestOrderTest, DetectsAmbiguousOrder) {
  // Characters on which both orders agree: decided without ICU.
  EXPECT_EQ(Detect({"docs/guide/intro.md", "notes.txt", "src/main.c", "src/util/a-b.c"}),
            DetectedPathOrder::kAmbiguous);
  // Mixed case that happens to sort the same both ways.
  EXPECT_EQ(Detect({"Makefile", "README.md"}), DetectedPathOrder::kAmbiguous);
  EXPECT_EQ(Detect({"Makefile"}), DetectedPathOrder::kAmbiguous);
  EXPECT_EQ(Detect({}), DetectedPathOrder::kAmbiguous);
}

TEST(ManifestOrderTest, DetectsNeither) {
  EXPECT_EQ(Detect({"b.txt", "a.txt"}), DetectedPathOrder::kNeither);
  EXPECT_EQ(Detect({"README.md", "main.c", "Makefile"}), DetectedPathOrder::kNeither);
}

TEST(ManifestOrderTest, SnapshotOrderForBase) {
  std::string note;
  absl::StatusOr<PathOrder> order = SnapshotOrderForBase(nullptr, &note);
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_EQ(*order, PathOrder::kBytes);
  EXPECT_THAT(note, HasSubstr("new tree"));

  Manifest base;
  base.files = Entries({"main.c", "Makefile", "README.md"});
  order = SnapshotOrderForBase(&base, &note);
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_EQ(*order, PathOrder::kIcuEnUs);
  EXPECT_THAT(note, HasSubstr("ICU (en-US) order"));

  base.files = Entries({"Makefile", "README.md", "main.c"});
  order = SnapshotOrderForBase(&base, &note);
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_EQ(*order, PathOrder::kBytes);
  EXPECT_THAT(note, HasSubstr("byte order"));

  base.files = Entries({"zz", "README.md", "main.c"});
  order = SnapshotOrderForBase(&base, &note);
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_EQ(*order, PathOrder::kBytes);
  EXPECT_THAT(note, HasSubstr("neither by bytes nor by ICU"));
}

TEST(ManifestOrderTest, SortAndSerializeInEitherOrder) {
  Manifest m;
  m.files = Entries({"README.md", "src/Main.java", "main.c", "Makefile", "src/lib.rs", "_x"});
  ASSERT_TRUE(SortManifestInOrder(&m, PathOrder::kIcuEnUs).ok());
  EXPECT_EQ(Paths(m), (std::vector<std::string>{"_x", "main.c", "Makefile", "README.md",
                                                "src/lib.rs", "src/Main.java"}));
  absl::StatusOr<std::string> icu_text = SerializeManifestInOrder(m, PathOrder::kIcuEnUs);
  ASSERT_TRUE(icu_text.ok()) << icu_text.status();
  EXPECT_EQ(*icu_text, SerializeManifestAsGiven(m));

  absl::StatusOr<std::string> byte_text = SerializeManifestInOrder(m, PathOrder::kBytes);
  ASSERT_TRUE(byte_text.ok()) << byte_text.status();
  EXPECT_EQ(*byte_text, SerializeManifest(m));
  EXPECT_NE(*byte_text, *icu_text);
  ASSERT_TRUE(SortManifestInOrder(&m, PathOrder::kBytes).ok());
  EXPECT_EQ(Paths(m), (std::vector<std::string>{"Makefile", "README.md", "_x", "main.c",
                                                "src/Main.java", "src/lib.rs"}));
  // Serialized in ICU order and parsed back, it is detected as ICU order.
  absl::StatusOr<Manifest> parsed = ParseManifest(*icu_text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(Detect(Paths(*parsed)), DetectedPathOrder::kIcuEnUs);
}

}  // namespace
}  // namespace fastest::core
