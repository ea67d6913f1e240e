// File: core/config/config_absl.h
//
// Bridge from Abseil flags to ConfigResolver: the flags that were given explicitly on the command
// line, so that a flag's built-in default never beats an environment variable or the config file
// (call after absl::ParseCommandLine()), and ConfigKeys derived from flags.
#ifndef FASTEST_CORE_CONFIG_CONFIG_ABSL_H_
#define FASTEST_CORE_CONFIG_CONFIG_ABSL_H_

#include <map>
#include <string>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/strings/string_view.h"
#include "core/config/config.h"

namespace fastest::core {

// ExplicitAbslFlags: name → current value of every registered flag set on the command line.
std::map<std::string, std::string> ExplicitAbslFlags();

// ConfigKeyFromFlag: the ConfigKey of a setting declared as an Abseil flag, so that a setting is
// written once. The flag's name is also the setting's name and config-file key, the flag's
// default (as the flag prints it: "30m", "8787", "true") the setting's default; `env` is its
// environment variable, FASTEST_<NAME> when empty.
//
// Example:
//   ABSL_FLAG(int, port, 8787, "TCP port. Env FASTEST_PORT.");
//   const ConfigKey kPort = ConfigKeyFromFlag(FLAGS_port);  // port, FASTEST_PORT, "8787"
ConfigKey ConfigKeyFromFlag(const absl::CommandLineFlag& flag, absl::string_view env = "");
template <typename T>
ConfigKey ConfigKeyFromFlag(const absl::Flag<T>& flag, absl::string_view env = "") {
  return ConfigKeyFromFlag(absl::GetFlagReflectionHandle(flag), env);
}

}  // namespace fastest::core

#endif  // FASTEST_CORE_CONFIG_CONFIG_ABSL_H_
