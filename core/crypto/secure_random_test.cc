#include "core/crypto/secure_random.h"

#include <array>
#include <cmath>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

TEST(SecureRandomTest, HexHasRequestedLengthAndAlphabet) {
  for (size_t bytes : {0u, 1u, 16u, 24u, 100u}) {
    std::string hex = SecureRandomHex(bytes);
    ASSERT_EQ(hex.size(), bytes * 2);
    for (char c : hex) {
      EXPECT_TRUE(absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f')) << hex;
    }
  }
}

TEST(SecureRandomTest, TokensNeverRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(seen.insert(SecureRandomHex(24)).second);
}

// A seeded PRNG with a 32-bit seed would still pass uniqueness; a frequency and a
// transition check catch output that is far from uniform (stuck bits, a constant, a counter).
TEST(SecureRandomTest, BytesLookUniform) {
  constexpr size_t kN = 1 << 20;
  std::string buf(kN, '\0');
  ASSERT_TRUE(SecureRandomBytes(buf.data(), buf.size()).ok());
  std::array<int64_t, 256> counts{};
  int64_t ones = 0;
  for (unsigned char b : buf) {
    ++counts[b];
    ones += __builtin_popcount(b);
  }
  // Chi-square with 255 degrees of freedom: mean 255, sd ~22.6; 400 is > 6 sd out.
  const double expected = static_cast<double>(kN) / 256;
  double chi2 = 0;
  for (int64_t c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 400) << "byte histogram far from uniform";
  // Bit balance: 8M bits, sd ~1448; allow 8 sd.
  EXPECT_NEAR(static_cast<double>(ones), kN * 4.0, 8 * std::sqrt(kN * 8 * 0.25));
  // Consecutive 16-byte tokens share no prefix more often than chance.
  int equal_prefix = 0;
  for (size_t i = 16; i + 16 <= kN; i += 16) {
    if (buf.compare(i, 4, buf, i - 16, 4) == 0) ++equal_prefix;
  }
  EXPECT_LE(equal_prefix, 2);
}

TEST(SecureRandomTest, StringUsesWholeAlphabetWithoutBias) {
  const std::string alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string s = SecureRandomString(alphabet, 360000);
  ASSERT_EQ(s.size(), 360000u);
  std::array<int, 256> counts{};
  for (unsigned char c : s) ++counts[c];
  for (char c : alphabet) {
    // Expected 10000 each, sd ~99; modulo bias (256 % 36 = 4) would add ~+1100 to 4 symbols.
    EXPECT_NEAR(counts[static_cast<unsigned char>(c)], 10000, 600) << c;
  }
  int outside = 0;
  for (int i = 0; i < 256; ++i) {
    if (alphabet.find(static_cast<char>(i)) == std::string::npos) outside += counts[i];
  }
  EXPECT_EQ(outside, 0);
}

TEST(SecureRandomTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "xbc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0c", 3), std::string("a\0d", 3)));
}

}  // namespace
}  // namespace fastest::core
