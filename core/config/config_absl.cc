// File: core/config/config_absl.cc
#include "core/config/config_absl.h"

#include "absl/flags/commandlineflag.h"
#include "absl/flags/internal/private_handle_accessor.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace fastest::core {

std::map<std::string, std::string> ExplicitAbslFlags() {
  std::map<std::string, std::string> out;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    // CommandLineFlag::IsSpecifiedOnCommandLine() is private in Abseil 20220623; this accessor is
    // the supported way in that release (it also counts --flagfile and --fromenv).
    if (flag != nullptr &&
        absl::flags_internal::PrivateHandleAccessor::IsSpecifiedOnCommandLine(*flag)) {
      out[std::string(name)] = flag->CurrentValue();
    }
  }
  return out;
}

ConfigKey ConfigKeyFromFlag(const absl::CommandLineFlag& flag, absl::string_view env) {
  const std::string name(flag.Name());
  return ConfigKey{name, name,
                   env.empty() ? absl::StrCat("FASTEST_", absl::AsciiStrToUpper(name))
                               : std::string(env),
                   name, flag.DefaultValue(), /*secret=*/false};
}

}  // namespace fastest::core
