#include "core/json/config_fields.h"

#include "gtest/gtest.h"

namespace fastest::core {
namespace {

TEST(ConfigFieldsTest, MissingAndNullGiveTheFallback) {
  nlohmann::json cfg = {{"n", nullptr}};
  EXPECT_EQ(*OptionalString(cfg, "s", "dflt", "x config"), "dflt");
  EXPECT_EQ(*OptionalString(cfg, "n", "dflt", "x config"), "dflt");
  EXPECT_EQ(*OptionalInt(cfg, "i", 7, "x config"), 7);
  EXPECT_EQ(*OptionalBool(cfg, "b", true, "x config"), true);
}

TEST(ConfigFieldsTest, PresentValuesAreRead) {
  nlohmann::json cfg = {{"s", "v"}, {"i", -3}, {"b", false}};
  EXPECT_EQ(*OptionalString(cfg, "s", "", "x config"), "v");
  EXPECT_EQ(*OptionalInt(cfg, "i", 0, "x config"), -3);
  EXPECT_EQ(*OptionalBool(cfg, "b", true, "x config"), false);
}

TEST(ConfigFieldsTest, WrongTypeNamesTheKey) {
  nlohmann::json cfg = {{"s", 1}, {"i", "1"}, {"f", 1.5}, {"b", "yes"}};
  absl::StatusOr<std::string> s = OptionalString(cfg, "s", "", "docker config");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(), "docker config: \"s\" must be a string");
  EXPECT_EQ(OptionalInt(cfg, "i", 0, "c").status().message(), "c: \"i\" must be an integer");
  EXPECT_FALSE(OptionalInt(cfg, "f", 0, "c").ok());
  EXPECT_EQ(OptionalBool(cfg, "b", false, "c").status().message(), "c: \"b\" must be a boolean");
}

TEST(ConfigFieldsTest, ConfigObjectAcceptsObjectOrNull) {
  EXPECT_TRUE(ConfigObject(nlohmann::json(), "c")->is_object());
  EXPECT_EQ((*ConfigObject(nlohmann::json{{"a", 1}}, "c"))["a"], 1);
  absl::StatusOr<nlohmann::json> bad = ConfigObject(nlohmann::json::array(), "podman config");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "podman config must be a JSON object");
}

}  // namespace
}  // namespace fastest::core
