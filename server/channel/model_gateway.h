// File: server/channel/model_gateway.h
//
// ModelGateway: the sandbox's way to its model provider. The agent's model requests arrive on a
// sandbox's model.sock (the runner exposes it inside the sandbox on 127.0.0.1), are forwarded to
// the configured provider (Anthropic, OpenAI or any OpenAI-compatible base URL) with the real key
// added here, and the answer streams back as it arrives (server-sent events included). The agent
// only ever holds a placeholder key. Per-job request and byte counts go to the job's log and to
// /metrics.
#ifndef FASTEST_SERVER_CHANNEL_MODEL_GATEWAY_H_
#define FASTEST_SERVER_CHANNEL_MODEL_GATEWAY_H_

#include <string>

#include "server/channel/sandbox_channel.h"

namespace fastest::server {

class Metrics;

struct ModelGatewayOptions {
  // "anthropic", "openai" or "openai-compatible".
  std::string provider;
  // Upstream base URL without a trailing '/', e.g. "https://api.anthropic.com" or
  // "http://127.0.0.1:9999/v1" (the path the agent requests is appended).
  std::string base_url;
  std::string api_key;  // secret: never logged
  Metrics* metrics = nullptr;
};

class ModelGateway {
 public:
  explicit ModelGateway(ModelGatewayOptions options);
  ~ModelGateway();

  // Serves one connection from a sandbox of `job_id` (HTTP/1.1 requests until it closes).
  void Serve(int client_fd, const std::string& job_id, const ChannelLog& log);

  const ModelGatewayOptions& options() const { return options_; }

 private:
  ModelGatewayOptions options_;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_CHANNEL_MODEL_GATEWAY_H_
