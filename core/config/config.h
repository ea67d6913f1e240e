// File: core/config/config.h
//
// One precedence rule for every fastest binary:
//   command-line flag  >  environment variable  >  JSON config file  >  built-in default.
// The config file is named by `--config=<path>` or, failing that, $FASTEST_CONFIG; without either there
// is no file. A named file that is missing or malformed is an error (naming the path).
//
// ConfigResolver knows nothing about Abseil's flag registry: binaries define their own flags and pass
// the ones given explicitly on the command line (see ExplicitAbslFlags() in config_absl.h), so a flag's
// built-in default never hides an environment variable.
//
// Example:
//   FASTEST_ASSIGN_OR_RETURN(ConfigResolver config, ConfigResolver::Create(ExplicitAbslFlags()));
//   FASTEST_ASSIGN_OR_RETURN(std::string url, config.GetString(config_keys::kApiUrl));
//   ConfigKey timeout{"timeout", "timeout", "FASTEST_TIMEOUT", "timeout", "30s"};
//   FASTEST_ASSIGN_OR_RETURN(absl::Duration t, config.GetDuration(timeout));
//   fprintf(stderr, "%s", config.Describe({config_keys::kApiUrl, config_keys::kApiToken, timeout}).c_str());
#ifndef FASTEST_CORE_CONFIG_CONFIG_H_
#define FASTEST_CORE_CONFIG_CONFIG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace fastest::core {

// ConfigSource: where a value came from. Names: "flag", "env", "file", "default", "unset".
enum class ConfigSource { kFlag, kEnv, kFile, kDefault, kUnset };
absl::string_view ConfigSourceName(ConfigSource source);

// ConfigKey: how one setting is looked up. Empty flag/env/json_key = not settable that way.
struct ConfigKey {
  std::string name;      // canonical name, used in messages and Describe()
  std::string flag;      // flag name without dashes, e.g. "api_url"
  std::string env;       // environment variable, e.g. "API_URL"
  std::string json_key;  // key in the config file; '.' descends into objects ("server.port")
  std::optional<std::string> default_value;
  bool secret = false;   // never printed: Describe() and error messages redact it
};

// ConfigValue: the resolved string and its origin.
struct ConfigValue {
  std::optional<std::string> value;  // nullopt when unset and without default
  ConfigSource source = ConfigSource::kUnset;
  std::string origin;  // human-readable: "flag --x", "env X", "file /p (key k)", "default"
};

// EnvLookup: reads one environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup SystemEnv();

// DescribeSecret: a secret as the effective-config listing shows it: "[redacted] (51 chars)" (the
// marker RedactSecrets writes, and the length only); "(empty)" for "".
std::string DescribeSecret(absl::string_view secret);

// Well-known keys shared by the binaries (flag name == json key; env as in the original project).
namespace config_keys {
inline const ConfigKey kApiUrl{"api_url", "api_url", "API_URL", "api_url", std::nullopt, false};
inline const ConfigKey kApiToken{"api_token", "api_token", "API_TOKEN", "api_token", std::nullopt, true};
inline const ConfigKey kAnthropicApiKey{"anthropic_api_key", "anthropic_api_key", "ANTHROPIC_API_KEY",
                                        "anthropic_api_key", std::nullopt, true};
inline const ConfigKey kOpenAiApiKey{"openai_api_key", "openai_api_key", "OPENAI_API_KEY", "openai_api_key",
                                     std::nullopt, true};
inline const ConfigKey kProvider{"provider", "provider", "PROVIDER", "provider", std::nullopt, false};
inline const ConfigKey kModel{"model", "model", "MODEL", "model", std::nullopt, false};
inline const ConfigKey kModelBaseUrl{"model_base_url", "model_base_url", "FASTEST_MODEL_BASE_URL",
                                     "model_base_url", std::nullopt, false};
// The config file location itself: flag --config, env FASTEST_CONFIG.
inline const ConfigKey kConfigFile{"config", "config", "FASTEST_CONFIG", "", std::nullopt, false};
}  // namespace config_keys

class ConfigResolver {
 public:
  // Create: `explicit_flags` = flags given on the command line (name without dashes → value).
  // Reads the config file named by flag "config" or env FASTEST_CONFIG, if any.
  static absl::StatusOr<ConfigResolver> Create(std::map<std::string, std::string> explicit_flags,
                                               EnvLookup env = SystemEnv());

  // FromJson: like Create but with the file contents given (config_path is only used in messages).
  static absl::StatusOr<ConfigResolver> FromJson(std::map<std::string, std::string> explicit_flags,
                                                 EnvLookup env, nlohmann::json file,
                                                 std::string config_path = "");

  // Resolve: flag > env (empty env values count as unset) > file (null counts as unset) > default.
  ConfigValue Resolve(const ConfigKey& key) const;

  // Typed getters. Unset without default → NotFound naming the key and where it may be set.
  // Unparsable → InvalidArgument naming the key and origin (the value too, unless the key is secret).
  absl::StatusOr<std::string> GetString(const ConfigKey& key) const;
  absl::StatusOr<int64_t> GetInt(const ConfigKey& key) const;
  // GetBool: true/false, 1/0, yes/no, on/off (any case).
  absl::StatusOr<bool> GetBool(const ConfigKey& key) const;
  // GetDuration: absl duration syntax ("30s", "1m30s", "250ms") or a bare number of seconds.
  absl::StatusOr<absl::Duration> GetDuration(const ConfigKey& key) const;

  // Describe: one line per key, "name = value (source)"; secrets redacted; unset shown as "(unset)".
  std::string Describe(const std::vector<ConfigKey>& keys) const;

  // The config file in use ("" = none).
  const std::string& config_path() const { return config_path_; }

 private:
  ConfigResolver() = default;
  absl::Status BadValue(const ConfigKey& key, const ConfigValue& v, absl::string_view what) const;

  std::map<std::string, std::string> flags_;
  EnvLookup env_;
  nlohmann::json file_ = nlohmann::json::object();
  std::string config_path_;
};

}  // namespace fastest::core

#endif  // FASTEST_CORE_CONFIG_CONFIG_H_
