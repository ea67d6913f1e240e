#include "server/channel/model_gateway.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/config/secrets.h"
#include "core/http/http_url.h"
#include "core/status/status_macros.h"
#include "server/metrics/metrics.h"

namespace fastest::server {
namespace {

constexpr size_t kMaxHead = 256 * 1024;
constexpr int kHeadTimeoutMs = 60000;

struct ParsedUrl {
  bool tls = false;
  std::string host;         // for connecting and TLS names: an IPv6 literal without brackets
  std::string host_header;  // as the Host header wants it: brackets, and the port unless default
  int port = 0;
  std::string path;  // without a trailing '/'
};

absl::StatusOr<ParsedUrl> ParseBaseUrl(absl::string_view url) {
  core::Url parts;
  if (absl::Status status = core::ParseUrl(url, &parts); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("model base URL: ", status.message()));
  }
  ParsedUrl out;
  out.tls = parts.tls;
  out.host = std::string(parts.host);
  out.port = parts.port;
  out.host_header = parts.ipv6 ? absl::StrCat("[", parts.host, "]") : out.host;
  if (!parts.default_port) absl::StrAppend(&out.host_header, ":", parts.port);
  out.path = std::string(parts.target);
  while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  return out;
}

// One upstream connection, plain or TLS.
class Upstream {
 public:
  Upstream(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~Upstream() {
    if (ssl_ != nullptr) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
    close(fd_);
  }
  int fd() const { return fd_; }
  bool Pending() const { return ssl_ != nullptr && SSL_pending(ssl_) > 0; }
  ssize_t Read(char* buf, size_t n) {
    if (ssl_ == nullptr) return recv(fd_, buf, n, 0);
    int r = SSL_read(ssl_, buf, static_cast<int>(n));
    return r > 0 ? r : (SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1);
  }
  bool WriteAll(absl::string_view data) {
    if (ssl_ == nullptr) return channel_io::WriteAll(fd_, data);
    while (!data.empty()) {
      int r = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
      if (r <= 0) return false;
      data.remove_prefix(static_cast<size_t>(r));
    }
    return true;
  }

 private:
  int fd_;
  SSL* ssl_;
};

}  // namespace

absl::StatusOr<std::optional<ModelGatewayOptions>> ModelGatewayFromEnvironment(
    std::map<std::string, std::string>* env) {
  auto get = [env](const char* name) {
    auto it = env->find(name);
    return it == env->end() ? std::string() : it->second;
  };
  ModelGatewayOptions options;
  std::string key_var;
  if (!get("FASTEST_MODEL_BASE_URL").empty()) {
    options.provider = "openai-compatible";
    options.base_url = get("FASTEST_MODEL_BASE_URL");
    options.api_key = get("FASTEST_MODEL_API_KEY");
    key_var = "FASTEST_MODEL_API_KEY";
  } else if (!get("ANTHROPIC_API_KEY").empty()) {
    options.provider = "anthropic";
    options.base_url = "https://api.anthropic.com/v1";
    options.api_key = get("ANTHROPIC_API_KEY");
    key_var = "ANTHROPIC_API_KEY";
  } else if (!get("OPENAI_API_KEY").empty()) {
    options.provider = "openai";
    options.base_url = "https://api.openai.com/v1";
    options.api_key = get("OPENAI_API_KEY");
    key_var = "OPENAI_API_KEY";
  } else {
    return std::nullopt;
  }
  auto parsed = ParseBaseUrl(options.base_url);
  if (!parsed.ok()) return parsed.status();
  // No real key in the sandbox; the chosen provider's variable holds the placeholder so the
  // runner still picks that provider.
  for (absl::string_view name : core::kProviderKeyEnvNames) env->erase(std::string(name));
  (*env)[key_var] = kModelKeyPlaceholder;
  (*env)["FASTEST_MODEL_GATEWAY"] = parsed->path.empty() ? "/" : parsed->path;
  return options;
}

absl::StatusOr<std::string> GatewayRequestHead(absl::string_view head, absl::string_view base_path,
                                               absl::string_view host_header,
                                               absl::string_view key_header) {
  absl::string_view request_line;
  FASTEST_ASSIGN_OR_RETURN(std::vector<channel_io::HeadLine> headers,
                           channel_io::ParseRequestHead(head, &request_line));
  std::vector<absl::string_view> parts = absl::StrSplit(request_line, ' ');
  if (parts.size() != 3 || !absl::StartsWith(parts[2], "HTTP/1.")) {
    return absl::InvalidArgumentError("not an HTTP/1.x request");
  }
  absl::string_view target = parts[1];
  // Origin-form only, and below the base path: no absolute URLs, no other provider endpoints.
  bool inside = base_path.empty()
                    ? absl::StartsWith(target, "/")
                    : (target == base_path || absl::StartsWith(target, absl::StrCat(base_path, "/")) ||
                       absl::StartsWith(target, absl::StrCat(base_path, "?")));
  // Dot segments, also percent-encoded: the provider may normalise them out of the base path.
  const std::string lower_target = absl::AsciiStrToLower(target);
  if (!inside || absl::StrContains(target, "/../") || absl::EndsWith(target, "/..") ||
      absl::StrContains(lower_target, "%2e") || absl::StrContains(lower_target, "%2f")) {
    return absl::InvalidArgumentError(absl::StrCat("target outside ", base_path, "/"));
  }
  std::string out = absl::StrCat(request_line, "\r\nHost: ", host_header, "\r\n");
  if (!key_header.empty()) absl::StrAppend(&out, key_header, "\r\n");
  for (const channel_io::HeadLine& h : headers) {
    if (h.name == "host" || h.name == "authorization" || h.name == "x-api-key" ||
        h.name == "api-key" || h.name == "connection" || h.name == "keep-alive" ||
        h.name == "upgrade" || h.name == "te" || absl::StartsWith(h.name, "proxy-")) {
      continue;
    }
    absl::StrAppend(&out, h.line, "\r\n");
  }
  absl::StrAppend(&out, "Connection: close\r\n\r\n");
  return out;
}

absl::StatusOr<std::unique_ptr<ModelGateway>> ModelGateway::Create(ModelGatewayOptions options) {
  auto parsed = ParseBaseUrl(options.base_url);
  if (!parsed.ok()) return parsed.status();
  std::unique_ptr<ModelGateway> gateway(new ModelGateway(std::move(options)));
  gateway->tls_ = parsed->tls;
  gateway->host_ = parsed->host;
  gateway->port_ = parsed->port;
  gateway->base_path_ = parsed->path;
  gateway->host_header_ = parsed->host_header;
  const std::string& key = gateway->options_.api_key;
  if (!key.empty()) {
    gateway->key_header_ = gateway->options_.provider == "anthropic"
                               ? absl::StrCat("x-api-key: ", key)
                               : absl::StrCat("Authorization: Bearer ", key);
  }
  if (gateway->tls_) {
    gateway->ssl_ctx_ = SSL_CTX_new(TLS_client_method());
    if (gateway->ssl_ctx_ == nullptr) return absl::InternalError("cannot create a TLS context");
    SSL_CTX_set_default_verify_paths(gateway->ssl_ctx_);
    SSL_CTX_load_verify_locations(gateway->ssl_ctx_, "/etc/ssl/certs/ca-certificates.crt",
                                  nullptr);
    SSL_CTX_set_verify(gateway->ssl_ctx_, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_min_proto_version(gateway->ssl_ctx_, TLS1_2_VERSION);
  }
  return gateway;
}

ModelGateway::~ModelGateway() {
  if (ssl_ctx_ != nullptr) SSL_CTX_free(ssl_ctx_);
}

void ModelGateway::Serve(int client_fd, const std::string& job_id, const ChannelLog& log) {
  auto note = [&](const std::string& line) {
    if (log) log(absl::StrCat("[gateway] ", line));
  };
  std::string head, rest;
  if (!channel_io::ReadHead(client_fd, kMaxHead, kHeadTimeoutMs, &head, &rest).ok()) return;
  std::string request_line = head.substr(0, head.find("\r\n"));
  request_line = request_line.substr(0, request_line.rfind(' '));
  absl::StatusOr<std::string> forward =
      GatewayRequestHead(head, base_path_, host_header_, key_header_);
  if (!forward.ok()) {
    note(absl::StrCat("refused ", request_line.substr(0, 200), ": ", forward.status().message()));
    channel_io::WriteJsonError(client_fd, 400, "Bad Request",
                               "the model gateway refused this request");
    return;
  }
  absl::StatusOr<int> fd = channel_io::ConnectHost(host_, port_, 10000);
  SSL* ssl = nullptr;
  if (fd.ok() && tls_) {
    ssl = SSL_new(ssl_ctx_);
    SSL_set_fd(ssl, *fd);
    SSL_set_tlsext_host_name(ssl, host_.c_str());
    SSL_set1_host(ssl, host_.c_str());
    if (SSL_connect(ssl) != 1) {
      char reason[256];
      ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
      SSL_free(ssl);
      close(*fd);
      fd = absl::UnavailableError(absl::StrCat("TLS with ", host_, " failed: ", reason));
    }
  }
  if (!fd.ok()) {
    note(absl::StrCat(request_line, ": provider unreachable: ", fd.status().message()));
    channel_io::WriteJsonError(client_fd, 502, "Bad Gateway", "the model provider is not reachable");
    return;
  }
  Upstream upstream(*fd, ssl);
  int64_t up = static_cast<int64_t>(rest.size()), down = 0;
  std::string status_line;
  bool ok = upstream.WriteAll(*forward) && upstream.WriteAll(rest);
  // Relay: request body up, answer down as it arrives (SSE included), until the provider closes.
  // The sandbox closing its side ends the exchange (the agent is gone, or the channel closed).
  char buf[64 * 1024];
  while (ok) {
    if (!upstream.Pending()) {
      struct pollfd p[2] = {{upstream.fd(), POLLIN, 0}, {client_fd, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (p[1].revents != 0) {
        ssize_t n = recv(client_fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        up += n;
        if (!upstream.WriteAll(absl::string_view(buf, static_cast<size_t>(n)))) break;
      }
      if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    }
    ssize_t n = upstream.Read(buf, sizeof(buf));
    if (n <= 0) break;
    if (down == 0) {
      absl::string_view first(buf, static_cast<size_t>(n));
      status_line = std::string(first.substr(0, std::min<size_t>(first.find("\r\n"), 64)));
    }
    down += n;
    if (!channel_io::WriteAll(client_fd, absl::string_view(buf, static_cast<size_t>(n)))) break;
  }
  std::vector<absl::string_view> status_parts = absl::StrSplit(status_line, ' ');
  note(absl::StrCat(request_line, " -> ", status_parts.size() > 1 ? status_parts[1] : "no answer",
                    ", ", up + static_cast<int64_t>(forward->size()), " bytes up, ", down,
                    " bytes down"));
  if (options_.metrics != nullptr) {
    options_.metrics->AddModelGatewayRequest(up + static_cast<int64_t>(forward->size()), down);
  }
  (void)job_id;
}

}  // namespace fastest::server
