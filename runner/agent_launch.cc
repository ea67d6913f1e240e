#include "runner/agent_launch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/config/secrets.h"
#include "core/model/model.h"
#include "core/status/status_macros.h"
#include "nlohmann/json.hpp"
#include "runner/opencode_serve.h"

namespace fastest::runner {
namespace {

namespace fs = std::filesystem;

std::string Get(const Environment& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

absl::Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", ec.message()));
  chmod(dir.c_str(), 0700);
  return absl::OkStatus();
}

absl::Status WriteFile(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", tmp, ": ", std::strerror(errno)));
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

struct ModelChoice {
  std::string provider;
  std::string model;
  nlohmann::json provider_config;  // null unless a custom provider is needed
};

std::string DefaultModel(const std::string& provider) {
  if (provider == "openai") return "gpt-4o";
  if (provider == "google") return "gemini-2.0-flash";
  return "claude-sonnet-4-20250514";
}

std::string KeyVar(const std::string& provider) {
  if (provider == "anthropic") return "ANTHROPIC_API_KEY";
  if (provider == "openai") return "OPENAI_API_KEY";
  if (provider == "google") return "GOOGLE_GENERATIVE_AI_API_KEY";
  return "";
}

absl::StatusOr<ModelChoice> ChooseModel(const Environment& env) {
  ModelChoice c;
  std::string provider = Get(env, "PROVIDER");
  std::string model = Get(env, "MODEL");
  // MODEL may carry the provider: "openai/gpt-4o".
  if (provider.empty() && model.find('/') != std::string::npos) {
    provider = model.substr(0, model.find('/'));
    model = model.substr(model.find('/') + 1);
  }
  std::string base_url = Get(env, "FASTEST_MODEL_BASE_URL");
  // The sandbox's model gateway (the runner's relay to the server, which adds the real key).
  const std::string gateway_url = Get(env, "FASTEST_MODEL_GATEWAY_URL");
  if (!base_url.empty() && !gateway_url.empty()) base_url = gateway_url;
  if (!base_url.empty()) {
    c.provider = provider.empty() ? "fastest" : provider;
    c.model = model.empty() ? "fastest-model" : model;
    nlohmann::json options = {{"baseURL", base_url}};
    // Referenced, not copied: the key stays out of the generated file.
    if (!Get(env, "FASTEST_MODEL_API_KEY").empty()) {
      options["apiKey"] = "{env:FASTEST_MODEL_API_KEY}";
    } else {
      options["apiKey"] = "none";
    }
    c.provider_config = {{"npm", "@ai-sdk/openai-compatible"},
                         {"name", c.provider},
                         {"options", options},
                         {"models", {{c.model, {{"name", c.model}}}}}};
    return c;
  }
  if (provider.empty()) {
    if (!Get(env, "ANTHROPIC_API_KEY").empty()) {
      provider = "anthropic";
    } else if (!Get(env, "OPENAI_API_KEY").empty()) {
      provider = "openai";
    } else if (!Get(env, "GOOGLE_GENERATIVE_AI_API_KEY").empty()) {
      provider = "google";
    } else {
      return absl::FailedPreconditionError(
          "No model configured: set ANTHROPIC_API_KEY, OPENAI_API_KEY or FASTEST_MODEL_BASE_URL");
    }
  }
  std::string key_var = KeyVar(provider);
  if (!key_var.empty() && Get(env, key_var).empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("No API key provided for provider: ", provider, " (set ", key_var, ")"));
  }
  c.provider = provider;
  c.model = model.empty() ? DefaultModel(provider) : model;
  if (!gateway_url.empty()) c.provider_config = {{"options", {{"baseURL", gateway_url}}}};
  return c;
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& OpenCodeSpeedSettings() {
  // Work OpenCode would do at start or at every step that a one-shot job in a sandbox does not
  // need: a file watcher on the workspace (the runner snapshots it afterwards), LSP server
  // downloads and update checks (no network), default npm plugins (provider OAuth helpers; keys
  // come from the environment), reading ~/.claude (there is none).
  static const auto* settings = new std::vector<std::pair<std::string, std::string>>{
      {"OPENCODE_EXPERIMENTAL_DISABLE_FILEWATCHER", "1"},
      {"OPENCODE_DISABLE_LSP_DOWNLOAD", "1"},
      {"OPENCODE_DISABLE_AUTOUPDATE", "1"},
      {"OPENCODE_DISABLE_DEFAULT_PLUGINS", "1"},
      {"OPENCODE_DISABLE_CLAUDE_CODE", "1"},
  };
  return *settings;
}

absl::Status ChownTree(const std::string& root, int uid, int gid) {
  std::error_code ec;
  auto chown_one = [&](const std::filesystem::path& path) -> absl::Status {
    if (lchown(path.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0) {
      return absl::InternalError(absl::StrCat("chown ", path.string(), ": ", strerror(errno)));
    }
    return absl::OkStatus();
  };
  FASTEST_RETURN_IF_ERROR(chown_one(root));
  std::filesystem::recursive_directory_iterator it(
      root, std::filesystem::directory_options::none, ec), end;
  if (ec) return absl::InternalError(absl::StrCat("list ", root, ": ", ec.message()));
  for (; it != end; it.increment(ec)) {
    if (ec) return absl::InternalError(absl::StrCat("list ", root, ": ", ec.message()));
    FASTEST_RETURN_IF_ERROR(chown_one(it->path()));
  }
  return absl::OkStatus();
}

bool IsRunnerCredential(const std::string& name) {
  return core::IsCredentialEnvName(name) || name == "API_TOKEN_FILE" || name == "API_URL";
}

absl::StatusOr<AgentLaunch> PrepareAgentLaunch(const RunnerConfig& config,
                                               const std::string& prompt) {
  AgentLaunch launch;
  for (const auto& [k, v] : config.env) {
    if (!IsRunnerCredential(k)) launch.env[k] = v;
  }
  const std::string& home = config.agent_home;
  const std::string dirs[] = {home + "/config", home + "/data", home + "/cache", home + "/state",
                              home + "/home"};
  for (const std::string& d : dirs) {
    if (absl::Status s = MakeDirs(d); !s.ok()) return s;
  }
  if (auto gw = config.env.find("FASTEST_MODEL_GATEWAY_URL"); gw != config.env.end()) {
    // Scripted agents find the gateway where a configured endpoint would be.
    if (launch.env.count("FASTEST_MODEL_BASE_URL")) launch.env["FASTEST_MODEL_BASE_URL"] = gw->second;
  }
  launch.uid = config.agent_uid;
  launch.gid = config.agent_gid;
  launch.env["XDG_CONFIG_HOME"] = home + "/config";
  launch.env["XDG_DATA_HOME"] = home + "/data";
  launch.env["XDG_CACHE_HOME"] = home + "/cache";
  launch.env["XDG_STATE_HOME"] = home + "/state";
  launch.env["HOME"] = home + "/home";
  if (launch.env["PATH"].empty()) launch.env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  launch.env["FASTEST_PROMPT"] = prompt;
  launch.env["FASTEST_WORKSPACE_DIR"] = config.work_dir;

  if (!config.agent_command.empty()) {
    launch.argv = {"/bin/sh", "-c", config.agent_command, "fastest-agent", prompt};
    launch.description = "custom agent command (FASTEST_AGENT_COMMAND)";
    if (launch.uid >= 0) FASTEST_RETURN_IF_ERROR(ChownTree(home, launch.uid, launch.gid));
    return launch;
  }

  absl::StatusOr<ModelChoice> choice = ChooseModel(config.env);
  if (!choice.ok()) return choice.status();
  nlohmann::json cfg = {{"$schema", "https://opencode.ai/config.json"},
                        {"model", absl::StrCat(choice->provider, "/", choice->model)},
                        {"permission", "allow"},
                        {"autoupdate", false},
                        {"share", "disabled"},
                        // fastest snapshots the workspace itself; OpenCode's own git snapshot of
                        // the workspace around every step costs 0.3-0.5 s per tool step.
                        {"snapshot", false}};
  cfg["provider"] = nlohmann::json::object();
  if (!choice->provider_config.is_null()) {
    cfg["provider"][choice->provider] = choice->provider_config;
  }
  if (Get(config.env, "FASTEST_OPENCODE_MODE") != "run") {
    // The scripted model OpenCodeServer::Warm runs its warm-up session against (served by the
    // runner on the loopback; the port is known only when the server starts, hence {env:}).
    cfg["provider"][kWarmupProvider] = {
        {"npm", "@ai-sdk/openai-compatible"},
        {"name", "fastest warm-up (scripted, no model)"},
        {"options", {{"baseURL", absl::StrCat("{env:", kWarmupUrlEnv, "}")}, {"apiKey", "none"}}},
        {"models", {{kWarmupModel, {{"name", kWarmupModel}}}}}};
  }
  if (cfg["provider"].empty()) cfg.erase("provider");
  std::string dir = home + "/config/opencode";
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  launch.config_path = dir + "/opencode.json";
  if (absl::Status s = WriteFile(launch.config_path, cfg.dump(2)); !s.ok()) return s;
  launch.env["OPENCODE_CONFIG"] = launch.config_path;
  launch.env["OPENCODE_PERMISSION"] = "\"allow\"";
  // An opencode.json (or .opencode/) inside the workspace must not override the generated
  // permissions and provider: the workspace is user content. (Both names checked in OpenCode
  // 1.18's binary.)
  launch.env["OPENCODE_DISABLE_PROJECT_CONFIG"] = "1";
  // No fetch of models.dev at start: sandboxes may have no internet, and the model is ours.
  launch.env["OPENCODE_DISABLE_MODELS_FETCH"] = "1";
  for (const auto& [name, value] : OpenCodeSpeedSettings()) launch.env[name] = value;
  // A prompt starting with '-' would be parsed as a flag.
  std::string message = absl::StartsWith(prompt, "-") ? " " + prompt : prompt;
  launch.provider_id = choice->provider;
  launch.model_id = choice->model;
  if (Get(config.env, "FASTEST_OPENCODE_MODE") == "run") {
    launch.argv = {config.opencode_bin, "run", "--format", "json", "--model",
                   absl::StrCat(choice->provider, "/", choice->model), message};
  } else {
    launch.serve = true;
    launch.argv = {config.opencode_bin, "serve", "--hostname", "127.0.0.1", "--port", "0"};
  }
  launch.description = absl::StrCat("opencode (", choice->provider, "/", choice->model, ")");
  if (launch.uid >= 0) FASTEST_RETURN_IF_ERROR(ChownTree(home, launch.uid, launch.gid));
  return launch;
}

}  // namespace fastest::runner
