// File: server/channel/model_gateway.h
//
// ModelGateway: the sandbox's way to its model provider. The agent's model requests arrive on a
// sandbox's model.sock (the runner exposes it inside the sandbox on 127.0.0.1), are forwarded to
// the configured provider (Anthropic, OpenAI or any OpenAI-compatible base URL, http or https)
// with the real key added here, and the answer is relayed byte for byte as it arrives, so
// server-sent event streams flow through unbuffered. The agent only ever holds a placeholder key.
//
// Each connection carries one request (the head is rewritten to "Connection: close"). The request
// target must lie below the base URL's path (e.g. /v1/...): the gateway is no general proxy for
// the provider's other endpoints. Authorization / x-api-key headers from the sandbox are dropped.
// One line per request goes to the job's log ("[gateway] POST /v1/chat/completions -> 200, N bytes
// up, M bytes down"), and the counts to /metrics.
#ifndef FASTEST_SERVER_CHANNEL_MODEL_GATEWAY_H_
#define FASTEST_SERVER_CHANNEL_MODEL_GATEWAY_H_

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/channel/sandbox_channel.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace fastest::server {

class Metrics;

struct ModelGatewayOptions {
  // "anthropic" (key in x-api-key), "openai" or "openai-compatible" (Authorization: Bearer).
  std::string provider;
  // Upstream base URL, e.g. "https://api.anthropic.com/v1" or "http://127.0.0.1:9999/v1".
  std::string base_url;
  std::string api_key;  // secret: never logged; empty = no key header
  Metrics* metrics = nullptr;
};

// The placeholder the agent holds instead of a provider key.
inline constexpr char kModelKeyPlaceholder[] = "fastest-model-gateway";

// From the server's sandbox pass-through environment: the gateway to run (nullopt when no model
// is configured, or only a provider the gateway does not serve), with `sandbox_env` rewritten so
// the sandbox holds no real key: provider keys replaced by kModelKeyPlaceholder and
// FASTEST_MODEL_GATEWAY set to the base URL's path (the runner serves the gateway there).
// Precedence like the runner's: FASTEST_MODEL_BASE_URL (+ FASTEST_MODEL_API_KEY), then
// ANTHROPIC_API_KEY, then OPENAI_API_KEY. InvalidArgument for a base URL that is not http(s).
absl::StatusOr<std::optional<ModelGatewayOptions>> ModelGatewayFromEnvironment(
    std::map<std::string, std::string>* sandbox_env);

// The rewritten request head for the provider, or InvalidArgument (not a request, or a target
// outside `base_path`). Exposed for unit tests.
absl::StatusOr<std::string> GatewayRequestHead(absl::string_view head, absl::string_view base_path,
                                               absl::string_view host_header,
                                               absl::string_view key_header);

class ModelGateway {
 public:
  static absl::StatusOr<std::unique_ptr<ModelGateway>> Create(ModelGatewayOptions options);
  ~ModelGateway();

  // Serves one connection from a sandbox of `job_id`; `log` gets the job-log line.
  void Serve(int client_fd, const std::string& job_id, const ChannelLog& log);

  const ModelGatewayOptions& options() const { return options_; }

 private:
  explicit ModelGateway(ModelGatewayOptions options) : options_(std::move(options)) {}

  ModelGatewayOptions options_;
  bool tls_ = false;
  std::string host_;
  int port_ = 0;
  std::string base_path_;    // "" or "/v1"
  std::string host_header_;  // "api.openai.com" or "127.0.0.1:9999"
  std::string key_header_;   // "x-api-key: ..." / "Authorization: Bearer ..." / ""
  SSL_CTX* ssl_ctx_ = nullptr;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_CHANNEL_MODEL_GATEWAY_H_
