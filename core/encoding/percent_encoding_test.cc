#include "core/encoding/percent_encoding.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fastest::core {
namespace {

TEST(PercentEncodingTest, KeepsUnreservedEncodesTheRestUppercase) {
  EXPECT_EQ(PercentEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(PercentEncode("a b/c?d=e&f%"), "a%20b%2Fc%3Fd%3De%26f%25");
  EXPECT_EQ(PercentEncode(std::string("\x00\xff", 2)), "%00%FF");
  EXPECT_EQ(PercentEncode("é"), "%C3%A9");
}

TEST(PercentEncodingTest, AlsoKeepLeavesTheGivenCharacters) {
  EXPECT_EQ(PercentEncode("workspace/a b/é", "/"), "workspace/a%20b/%C3%A9");
  EXPECT_EQ(PercentEncode("a/b", ""), "a%2Fb");
}

TEST(PercentEncodingTest, DecodeTakesBothCasesAndLeavesBrokenEscapes) {
  EXPECT_EQ(PercentDecode("a%20b%2fc%2F"), "a b/c/");
  EXPECT_EQ(PercentDecode("%C3%a9"), "\xC3\xA9");
  EXPECT_EQ(PercentDecode("bad%zz%4"), "bad%zz%4");
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%00", false), std::string(1, '\0'));
}

TEST(PercentEncodingTest, DecodePlusOnlyInQueriesAndKeepEncodedStays) {
  EXPECT_EQ(PercentDecode("a+b%2B"), "a+b+");
  EXPECT_EQ(PercentDecode("a+b%2B", /*plus_is_space=*/true), "a b+");
  EXPECT_EQ(PercentDecode("a%2Fb%20c%3f", false, "/?"), "a%2Fb c%3f");
}

TEST(PercentEncodingTest, DecodeUndoesEncode) {
  for (const std::string& s : std::vector<std::string>{"", "plain", "a b/c?d=e&f%", "é+",
                                                       std::string("\x00\xff", 2)}) {
    EXPECT_EQ(PercentDecode(PercentEncode(s)), s);
    EXPECT_EQ(PercentDecode(PercentEncode(s, "/")), s);
  }
}

}  // namespace
}  // namespace fastest::core
