#include "server/channel/channel_setup.h"

#include <utility>

#include "core/status/status_macros.h"

namespace fastest::server {

absl::StatusOr<std::unique_ptr<SandboxChannels>> SetUpSandboxChannels(
    const SandboxChannelsOptions& options) {
  auto channels = std::make_unique<SandboxChannels>();
  channels->sealed_env = options.passthrough_env;
  ChannelHubOptions hub;
  FASTEST_ASSIGN_OR_RETURN(std::optional<ModelGatewayOptions> gateway,
                           ModelGatewayFromEnvironment(&channels->sealed_env));
  if (gateway.has_value()) {
    gateway->metrics = options.metrics;
    FASTEST_ASSIGN_OR_RETURN(channels->model_gateway, ModelGateway::Create(*gateway));
    hub.model_gateway = channels->model_gateway.get();
  }
  if (options.egress == "allowlist") {
    FASTEST_ASSIGN_OR_RETURN(std::vector<EgressRule> rules,
                             ParseEgressAllowList(options.egress_allow));
    channels->egress_proxy = std::make_unique<EgressProxy>(std::move(rules));
    hub.egress_proxy = channels->egress_proxy.get();
    channels->sealed_env["FASTEST_EGRESS_PROXY"] = "1";
  }
  hub.root = options.data_dir + "/channels";
  if (options.host != "0.0.0.0" && options.host != "::" && !options.host.empty()) {
    hub.api_host = options.host;
  }
  FASTEST_ASSIGN_OR_RETURN(channels->hub, ChannelHub::Create(hub));
  return channels;
}

}  // namespace fastest::server
