#include "core/encoding/hex.h"

#include <string>

#include "gtest/gtest.h"

namespace fastest::core {
namespace {

TEST(HexTest, EncodesEveryByteAsTwoLowercaseDigits) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\x0f\xa0\xff", 4)), "000fa0ff");
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  std::string hex = HexEncode(all);
  ASSERT_EQ(hex.size(), 512u);
  EXPECT_EQ(hex.substr(0, 6), "000102");
  EXPECT_EQ(hex.substr(506), "fdfeff");
  EXPECT_EQ(hex.find_first_not_of(kLowerHexDigits), std::string::npos);
}

TEST(HexTest, AppendHexByteAppends) {
  std::string out = "x";
  AppendHexByte(&out, 0x7e);
  EXPECT_EQ(out, "x7e");
}

}  // namespace
}  // namespace fastest::core
