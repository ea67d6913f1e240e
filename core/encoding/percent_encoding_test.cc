#include "core/encoding/percent_encoding.h"

#include <string>

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

}  // namespace
}  // namespace fastest::core
