// File: server/channel/egress_proxy.h
//
// EgressProxy: the sandbox's only way to the network besides the API and the model gateway, when
// the server runs with --egress=allowlist. An HTTP CONNECT proxy served on each sandbox's
// egress.sock (the runner exposes it inside the sandbox on 127.0.0.1 and gives the agent
// HTTP(S)_PROXY): a CONNECT to an allow-listed host[:port] is tunnelled, anything else is
// answered 403 (405 for other methods) and written to the job's log with the host:
// "[egress] refused evil.example:443".
#ifndef FASTEST_SERVER_CHANNEL_EGRESS_PROXY_H_
#define FASTEST_SERVER_CHANNEL_EGRESS_PROXY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/channel/sandbox_channel.h"

namespace fastest::server {

struct EgressRule {
  std::string host;  // lower-case name or address
  int port = 0;      // 0 = any port
};

// Parses "host[:port],host[:port],..." (IPv6 in brackets: "[::1]:443"). InvalidArgument for an
// empty host or a bad port.
absl::StatusOr<std::vector<EgressRule>> ParseEgressAllowList(absl::string_view list);

// Whether `host`:`port` matches a rule (host compared case-insensitively).
bool EgressAllowed(const std::vector<EgressRule>& rules, absl::string_view host, int port);

class EgressProxy {
 public:
  explicit EgressProxy(std::vector<EgressRule> rules) : rules_(std::move(rules)) {}
  // Serves one proxy connection; `log` gets the job-log lines.
  void Serve(int client_fd, const ChannelLog& log);

 private:
  std::vector<EgressRule> rules_;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_CHANNEL_EGRESS_PROXY_H_
