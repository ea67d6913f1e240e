// File: core/config/config_absl.h
//
// Bridge from Abseil flags to ConfigResolver: the flags that were given explicitly on the command
// line, so that a flag's built-in default never beats an environment variable or the config file.
// Call after absl::ParseCommandLine().
#ifndef FASTEST_CORE_CONFIG_CONFIG_ABSL_H_
#define FASTEST_CORE_CONFIG_CONFIG_ABSL_H_

#include <map>
#include <string>

namespace fastest::core {

// ExplicitAbslFlags: name → current value of every registered flag set on the command line.
std::map<std::string, std::string> ExplicitAbslFlags();

}  // namespace fastest::core

#endif  // FASTEST_CORE_CONFIG_CONFIG_ABSL_H_
