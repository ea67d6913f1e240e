// File: server/channel/channel_setup.h
//
// SetUpSandboxChannels: everything the server needs for sealed sandboxes, from its settings: the
// model gateway (when a model is configured), the egress proxy (--egress=allowlist), the channel
// hub under <data_dir>/channels, and the sandbox environment without real provider keys.
#ifndef FASTEST_SERVER_CHANNEL_CHANNEL_SETUP_H_
#define FASTEST_SERVER_CHANNEL_CHANNEL_SETUP_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/channel/egress_proxy.h"
#include "server/channel/model_gateway.h"
#include "server/channel/sandbox_channel.h"

namespace fastest::server {

struct SandboxChannelsOptions {
  std::string data_dir;
  std::string host;          // the server's listen address ("0.0.0.0" / "::" -> 127.0.0.1)
  std::string egress;        // "none" | "allowlist" | "open"
  std::string egress_allow;  // host[:port],...
  // What the server passes to sandboxes (provider keys included).
  std::map<std::string, std::string> passthrough_env;
  Metrics* metrics = nullptr;
};

struct SandboxChannels {
  // Declared before the hub, so the hub (whose connections use them) is destroyed first.
  std::unique_ptr<ModelGateway> model_gateway;
  std::unique_ptr<EgressProxy> egress_proxy;
  std::unique_ptr<ChannelHub> hub;
  // passthrough_env as sealed sandboxes get it: placeholder keys, FASTEST_MODEL_GATEWAY,
  // FASTEST_EGRESS_PROXY.
  std::map<std::string, std::string> sealed_env;
};

// InvalidArgument for a bad model base URL or allow-list; Internal when the channel root cannot
// be created.
absl::StatusOr<std::unique_ptr<SandboxChannels>> SetUpSandboxChannels(
    const SandboxChannelsOptions& options);

}  // namespace fastest::server

#endif  // FASTEST_SERVER_CHANNEL_CHANNEL_SETUP_H_
