#include "server/channel/model_gateway.h"

#include <utility>

namespace fastest::server {

ModelGateway::ModelGateway(ModelGatewayOptions options) : options_(std::move(options)) {}
ModelGateway::~ModelGateway() = default;

void ModelGateway::Serve(int client_fd, const std::string& job_id, const ChannelLog& log) {
  (void)client_fd;
  (void)job_id;
  (void)log;
}

}  // namespace fastest::server
