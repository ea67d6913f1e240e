// File: core/config/config.cc
#include "core/config/config.h"

#include <stdlib.h>

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/config/secrets.h"

namespace fastest::core {
namespace {

using nlohmann::json;

// Captures the parser's message (with byte position) without exceptions.
class ErrorCatcher : public nlohmann::json_sax<json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string& token,
                   const nlohmann::detail::exception& ex) override {
    message = absl::StrCat("at byte ", position, " near '", token.substr(0, 20), "': ", ex.what());
    return false;
  }
  std::string message;
};

std::string JsonScalarToString(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

const json* FindJsonKey(const json& root, const std::string& key) {
  if (key.empty() || !root.is_object()) return nullptr;
  auto direct = root.find(key);
  if (direct != root.end()) return &*direct;
  if (key.find('.') == std::string::npos) return nullptr;
  const json* node = &root;
  for (absl::string_view part : absl::StrSplit(key, '.')) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(std::string(part));
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

}  // namespace

absl::string_view ConfigSourceName(ConfigSource source) {
  switch (source) {
    case ConfigSource::kFlag: return "flag";
    case ConfigSource::kEnv: return "env";
    case ConfigSource::kFile: return "file";
    case ConfigSource::kDefault: return "default";
    case ConfigSource::kUnset: return "unset";
  }
  return "unset";
}

EnvLookup SystemEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::string DescribeSecret(absl::string_view secret) {
  if (secret.empty()) return "(empty)";
  return absl::StrCat(kRedactedMarker, " (", secret.size(), " chars)");
}

absl::StatusOr<ConfigResolver> ConfigResolver::FromJson(std::map<std::string, std::string> explicit_flags,
                                                        EnvLookup env, json file, std::string config_path) {
  if (!file.is_object() && !file.is_null()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", config_path, ": top level must be a JSON object"));
  }
  ConfigResolver r;
  r.flags_ = std::move(explicit_flags);
  r.env_ = env ? std::move(env) : SystemEnv();
  r.file_ = file.is_null() ? json::object() : std::move(file);
  r.config_path_ = std::move(config_path);
  return r;
}

absl::StatusOr<ConfigResolver> ConfigResolver::Create(std::map<std::string, std::string> explicit_flags,
                                                      EnvLookup env) {
  if (!env) env = SystemEnv();
  std::string path;
  auto flag = explicit_flags.find(config_keys::kConfigFile.flag);
  if (flag != explicit_flags.end()) {
    path = flag->second;
  } else if (auto from_env = env(config_keys::kConfigFile.env); from_env && !from_env->empty()) {
    path = *from_env;
  }
  if (path.empty()) return FromJson(std::move(explicit_flags), std::move(env), json::object());

  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("config file ", path, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  json parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded()) {
    ErrorCatcher catcher;
    json::sax_parse(text, &catcher);
    return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": malformed JSON ", catcher.message));
  }
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": top level must be a JSON object"));
  }
  return FromJson(std::move(explicit_flags), std::move(env), std::move(parsed), path);
}

ConfigValue ConfigResolver::Resolve(const ConfigKey& key) const {
  ConfigValue v;
  if (!key.flag.empty()) {
    auto it = flags_.find(key.flag);
    if (it != flags_.end()) {
      v.value = it->second;
      v.source = ConfigSource::kFlag;
      v.origin = absl::StrCat("flag --", key.flag);
      return v;
    }
  }
  if (!key.env.empty()) {
    std::optional<std::string> e = env_(key.env);
    if (e.has_value() && !e->empty()) {
      v.value = *std::move(e);
      v.source = ConfigSource::kEnv;
      v.origin = absl::StrCat("env ", key.env);
      return v;
    }
  }
  if (const json* j = FindJsonKey(file_, key.json_key); j != nullptr && !j->is_null()) {
    v.value = JsonScalarToString(*j);
    v.source = ConfigSource::kFile;
    v.origin = absl::StrCat("file ", config_path_, " (key ", key.json_key, ")");
    return v;
  }
  if (key.default_value.has_value()) {
    v.value = key.default_value;
    v.source = ConfigSource::kDefault;
    v.origin = "default";
  }
  return v;
}

absl::Status ConfigResolver::BadValue(const ConfigKey& key, const ConfigValue& v, absl::string_view what) const {
  std::string shown = key.secret ? DescribeSecret(*v.value) : absl::StrCat("'", *v.value, "'");
  return absl::InvalidArgumentError(
      absl::StrCat("config ", key.name, " (from ", v.origin, "): not ", what, ": ", shown));
}

absl::StatusOr<std::string> ConfigResolver::GetString(const ConfigKey& key) const {
  ConfigValue v = Resolve(key);
  if (!v.value.has_value()) {
    std::vector<std::string> ways;
    if (!key.flag.empty()) ways.push_back(absl::StrCat("--", key.flag));
    if (!key.env.empty()) ways.push_back(absl::StrCat("$", key.env));
    if (!key.json_key.empty()) ways.push_back(absl::StrCat("config file key \"", key.json_key, "\""));
    return absl::NotFoundError(
        absl::StrCat("config ", key.name, " is not set (set ", absl::StrJoin(ways, ", "), ")"));
  }
  return *v.value;
}

absl::StatusOr<int64_t> ConfigResolver::GetInt(const ConfigKey& key) const {
  auto s = GetString(key);
  if (!s.ok()) return s.status();
  int64_t out;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*s), &out)) return BadValue(key, Resolve(key), "an integer");
  return out;
}

absl::StatusOr<bool> ConfigResolver::GetBool(const ConfigKey& key) const {
  auto s = GetString(key);
  if (!s.ok()) return s.status();
  std::string v = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*s));
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return BadValue(key, Resolve(key), "a boolean");
}

absl::StatusOr<absl::Duration> ConfigResolver::GetDuration(const ConfigKey& key) const {
  auto s = GetString(key);
  if (!s.ok()) return s.status();
  std::string v(absl::StripAsciiWhitespace(*s));
  absl::Duration d;
  double seconds;
  if (absl::ParseDuration(v, &d)) return d;
  if (absl::SimpleAtod(v, &seconds) && seconds >= 0) return absl::Seconds(seconds);
  return BadValue(key, Resolve(key), "a duration");
}

std::string ConfigResolver::Describe(const std::vector<ConfigKey>& keys) const {
  std::string out;
  for (const ConfigKey& key : keys) {
    ConfigValue v = Resolve(key);
    std::string shown = !v.value.has_value() ? "(unset)"
                        : key.secret         ? DescribeSecret(*v.value)
                                             : *v.value;
    absl::StrAppend(&out, key.name, " = ", shown, " (", ConfigSourceName(v.source), ")\n");
  }
  return out;
}

}  // namespace fastest::core
