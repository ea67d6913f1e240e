#include "core/config/secrets.h"

#include <algorithm>

#include "absl/strings/str_replace.h"

namespace fastest::core {

const std::vector<absl::string_view>& SecretEnvNames() {
  static const auto* names = [] {
    auto* out = new std::vector<absl::string_view>();
    for (absl::string_view n : kCredentialEnvNames) out->push_back(n);
    for (absl::string_view n : kProviderKeyEnvNames) out->push_back(n);
    for (absl::string_view n : kBackendKeyEnvNames) out->push_back(n);
    return out;
  }();
  return *names;
}

bool IsSecretEnvName(absl::string_view name) {
  const auto& names = SecretEnvNames();
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool IsCredentialEnvName(absl::string_view name) {
  return std::find(std::begin(kCredentialEnvNames), std::end(kCredentialEnvNames), name) !=
         std::end(kCredentialEnvNames);
}

std::vector<std::string> SecretValues(
    const std::function<std::optional<std::string>(const std::string& name)>& lookup) {
  std::vector<std::string> out;
  for (absl::string_view name : SecretEnvNames()) {
    std::optional<std::string> value = lookup(std::string(name));
    if (value.has_value() && value->size() >= kMinSecretLength) out.push_back(*std::move(value));
  }
  return out;
}

std::string RedactSecrets(std::string text, const std::vector<std::string>& secrets) {
  std::vector<const std::string*> order;
  for (const std::string& s : secrets) {
    if (s.size() >= kMinSecretLength) order.push_back(&s);
  }
  std::sort(order.begin(), order.end(),
            [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
  for (const std::string* s : order) {
    if (text.find(*s) != std::string::npos) {
      text = absl::StrReplaceAll(text, {{*s, kRedactedMarker}});
    }
  }
  return text;
}

}  // namespace fastest::core
