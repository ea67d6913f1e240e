#include "server/channel/egress_proxy.h"

#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace fastest::server {
namespace {

constexpr size_t kMaxHead = 16 * 1024;
constexpr int kHeadTimeoutMs = 30000;

// "host:port" / "[v6]:port" / "host" (port 0).
bool SplitHostPort(absl::string_view text, std::string* host, int* port) {
  *port = 0;
  if (absl::ConsumePrefix(&text, "[")) {
    size_t close = text.find(']');
    if (close == absl::string_view::npos) return false;
    *host = std::string(text.substr(0, close));
    text.remove_prefix(close + 1);
    if (text.empty()) return !host->empty();
    if (!absl::ConsumePrefix(&text, ":")) return false;
  } else {
    size_t colon = text.rfind(':');
    *host = std::string(text.substr(0, colon));
    if (colon == absl::string_view::npos) return !host->empty();
    text.remove_prefix(colon + 1);
  }
  return !host->empty() && absl::SimpleAtoi(text, port) && *port > 0 && *port <= 65535;
}

void Answer(int fd, absl::string_view status) {
  channel_io::WriteAll(fd, absl::StrCat("HTTP/1.1 ", status,
                                        "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
}

}  // namespace

absl::StatusOr<std::vector<EgressRule>> ParseEgressAllowList(absl::string_view list) {
  std::vector<EgressRule> rules;
  for (absl::string_view item : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    EgressRule rule;
    if (!SplitHostPort(item, &rule.host, &rule.port)) {
      return absl::InvalidArgumentError(
          absl::StrCat("egress allow-list entry \"", item, "\" is not host[:port]"));
    }
    rule.host = absl::AsciiStrToLower(rule.host);
    rules.push_back(std::move(rule));
  }
  return rules;
}

bool EgressAllowed(const std::vector<EgressRule>& rules, absl::string_view host, int port) {
  std::string lower = absl::AsciiStrToLower(host);
  for (const EgressRule& rule : rules) {
    if (rule.host == lower && (rule.port == 0 || rule.port == port)) return true;
  }
  return false;
}

void EgressProxy::Serve(int client_fd, const ChannelLog& log) {
  auto note = [&](const std::string& line) {
    if (log) log(absl::StrCat("[egress] ", line));
  };
  std::string head, rest;
  if (!channel_io::ReadHead(client_fd, kMaxHead, kHeadTimeoutMs, &head, &rest).ok()) return;
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(head).substr(0, head.find("\r\n")), ' ');
  std::string host;
  int port = 0;
  if (parts.size() != 3 || parts[0] != "CONNECT") {
    note(absl::StrCat("refused ", parts.empty() ? "" : parts[0].substr(0, 16), " ",
                      parts.size() > 1 ? parts[1].substr(0, 200) : "",
                      ": only CONNECT is proxied"));
    Answer(client_fd, "405 Method Not Allowed");
    return;
  }
  if (!SplitHostPort(parts[1], &host, &port) || port == 0) {
    note(absl::StrCat("refused ", parts[1].substr(0, 200), ": not host:port"));
    Answer(client_fd, "400 Bad Request");
    return;
  }
  if (!EgressAllowed(rules_, host, port)) {
    note(absl::StrCat("refused ", host, ":", port));
    Answer(client_fd, "403 Forbidden");
    return;
  }
  absl::StatusOr<int> upstream = channel_io::ConnectHost(host, port, 10000);
  if (!upstream.ok()) {
    note(absl::StrCat(host, ":", port, " unreachable: ", upstream.status().message()));
    Answer(client_fd, "502 Bad Gateway");
    return;
  }
  note(absl::StrCat("CONNECT ", host, ":", port));
  if (channel_io::WriteAll(client_fd, "HTTP/1.1 200 Connection established\r\n\r\n") &&
      channel_io::WriteAll(*upstream, rest)) {
    channel_io::Pump(client_fd, *upstream);
  }
  close(*upstream);
}

}  // namespace fastest::server
