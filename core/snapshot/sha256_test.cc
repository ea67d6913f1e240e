#include "core/snapshot/sha256.h"

#include <string>

#include "core/snapshot/test_util.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("hello"), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
}

TEST(Sha256Test, IncrementalEqualsOneShotAndResets) {
  Sha256Hasher h;
  h.Update("hel");
  h.Update(std::string("lo"));
  EXPECT_EQ(h.FinishHex(), Sha256Hex("hello"));
  h.Reset();
  EXPECT_EQ(h.FinishHex(), Sha256Hex(""));
}

TEST(Sha256Test, FileHashLargerThanBuffer) {
  testing::TempDir dir;
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + 7);
  dir.Write("big.bin", big);
  auto h = Sha256FileHex(dir.path() + "/big.bin");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, Sha256Hex(big));
  auto missing = Sha256FileHex(dir.path() + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(missing.status().message()).find("nope"), std::string::npos);
}

TEST(Sha256Test, IsLowerHexSha256) {
  EXPECT_TRUE(IsLowerHexSha256(Sha256Hex("x")));
  EXPECT_FALSE(IsLowerHexSha256(std::string(64, 'A')));
  EXPECT_FALSE(IsLowerHexSha256(std::string(63, 'a')));
  EXPECT_FALSE(IsLowerHexSha256(std::string(64, 'g')));
}

}  // namespace
}  // namespace fastest::core
