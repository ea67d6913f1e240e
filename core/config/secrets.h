// File: core/config/secrets.h
//
// The environment variables that hold secrets, named once, and the one function that removes
// secret values from text before it is logged or stored (runner log lines, job logs, error
// messages). Values shorter than kMinSecretLength are not redacted: replacing "1" or "yes"
// everywhere would shred the text and reveal nothing worth hiding.
//
// Example:
//   std::vector<std::string> secrets = SecretValues(SystemEnv());
//   log_line = RedactSecrets(std::move(log_line), secrets);  // "token=[redacted]"
#ifndef FASTEST_CORE_CONFIG_SECRETS_H_
#define FASTEST_CORE_CONFIG_SECRETS_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace fastest::core {

// fastest's own credentials: never handed to the agent, never logged.
inline constexpr absl::string_view kCredentialEnvNames[] = {
    "API_TOKEN", "FASTEST_API_TOKEN", "FASTEST_TOKEN", "FASTEST_SERVER_TOKEN"};

// Model provider keys: the agent needs them, logs never show them.
inline constexpr absl::string_view kProviderKeyEnvNames[] = {
    "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GOOGLE_GENERATIVE_AI_API_KEY", "FASTEST_MODEL_API_KEY"};

// Backend credentials (the Cloudflare bridge key).
inline constexpr absl::string_view kBackendKeyEnvNames[] = {"SANDBOX_API_KEY"};

inline constexpr size_t kMinSecretLength = 6;
inline constexpr char kRedactedMarker[] = "[redacted]";

// Every name above, credentials first.
const std::vector<absl::string_view>& SecretEnvNames();
bool IsSecretEnvName(absl::string_view name);
bool IsCredentialEnvName(absl::string_view name);

// SecretValues: the values of the secret variables `lookup` finds set (at least
// kMinSecretLength long), for RedactSecrets.
std::vector<std::string> SecretValues(
    const std::function<std::optional<std::string>(const std::string& name)>& lookup);

// RedactSecrets: every occurrence of each secret (at least kMinSecretLength long) in `text`
// replaced by kRedactedMarker; longer secrets first, so one that contains another is not left
// half visible.
std::string RedactSecrets(std::string text, const std::vector<std::string>& secrets);

}  // namespace fastest::core

#endif  // FASTEST_CORE_CONFIG_SECRETS_H_
