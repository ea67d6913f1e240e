#include "core/json/json_util.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fastest::core {

std::string DumpJson(const nlohmann::json& json) {
  return json.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<nlohmann::json> ParseJsonObject(absl::string_view text, absl::string_view what) {
  nlohmann::json json =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, ": not valid JSON"));
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": expected a JSON object"));
  }
  return json;
}

}  // namespace fastest::core
