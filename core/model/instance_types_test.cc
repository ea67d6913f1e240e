#include "core/model/instance_types.h"

#include "gtest/gtest.h"

namespace fastest::core {
namespace {

TEST(InstanceTypesTest, MatchesTheLimitsTable) {
  ASSERT_EQ(InstanceTypes().size(), 6u);
  EXPECT_EQ(LookupInstanceType("lite")->memory_mib(), 256);
  EXPECT_DOUBLE_EQ(LookupInstanceType("lite")->vcpu(), 1.0 / 16);
  EXPECT_EQ(LookupInstanceType("lite")->disk_mb(), 2000);
  EXPECT_EQ(LookupInstanceType("basic")->memory_mib(), 1024);
  EXPECT_EQ(LookupInstanceType("standard-1")->nano_cpus, 500000000);
  EXPECT_EQ(LookupInstanceType("standard-1")->memory_bytes, 4LL << 30);
  EXPECT_EQ(LookupInstanceType("standard-2")->vcpu(), 1);
  EXPECT_EQ(LookupInstanceType("standard-3")->disk_mb(), 16000);
  EXPECT_EQ(LookupInstanceType("standard-4")->memory_mib(), 12288);
  EXPECT_EQ(LookupInstanceType("basic")->pids_limit, 256);
  EXPECT_EQ(LookupInstanceType("standard-4")->pids_limit, 1024);
}

TEST(InstanceTypesTest, UnknownNameListsTheValidOnes) {
  EXPECT_FALSE(FindInstanceType("standard-9").has_value());
  absl::StatusOr<InstanceType> bad = LookupInstanceType("standard-9");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("standard-9"), absl::string_view::npos);
  EXPECT_NE(bad.status().message().find("lite, basic, standard-1"), absl::string_view::npos);
}

}  // namespace
}  // namespace fastest::core
