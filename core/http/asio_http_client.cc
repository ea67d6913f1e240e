#include "core/http/asio_http_client.h"


#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "core/http/asio_connection.h"
#include "core/http/asio_connection_pool.h"
#include "core/http/http_url.h"

namespace fastest::core {

using asio_internal::Clock;
using asio_internal::Connection;
using asio_internal::ConnectionPool;
using asio_internal::error_code;
using asio_internal::IsConnectionLoss;
using asio_internal::Kind;
using asio_internal::Outcome;
namespace ssl = boost::asio::ssl;

struct AsioHttpClient::Impl {
  AsioHttpClientOptions options;
  ConnectionPool pool;

  // Built on the first https request: loading the CA bundle costs milliseconds the runner should
  // not pay when it only talks plain HTTP.
  std::once_flag tls_once;
  std::unique_ptr<ssl::context> tls_context;
  std::string tls_error;

  ssl::context* TlsContext() {
    std::call_once(tls_once, [this] {
      try {
        auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
        error_code ec;
        // Honours SSL_CERT_FILE / SSL_CERT_DIR.
        context->set_default_verify_paths(ec);
        if (ec) tls_error = absl::StrCat("loading CA certificates: ", ec.message());
        // The runner links OpenSSL statically, so its default paths are the build machine's
        // OPENSSLDIR (/usr/lib/ssl), which slim images (ours included) lack. Without
        // SSL_CERT_FILE, also load the first of the usual system bundles, as Go and curl do.
        if (std::getenv("SSL_CERT_FILE") == nullptr) {
          for (const char* bundle : {"/etc/ssl/certs/ca-certificates.crt",
                                     "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"}) {
            if (access(bundle, R_OK) != 0) continue;
            if (SSL_CTX_load_verify_locations(context->native_handle(), bundle, nullptr) == 1) break;
          }
        }
        context->set_verify_mode(ssl::verify_peer, ec);
        SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
        tls_context = std::move(context);
      } catch (const std::exception& e) {
        tls_error = absl::StrCat("TLS setup: ", e.what());
      }
    });
    return tls_context.get();
  }


  absl::StatusOr<HttpResponse> Send(const HttpRequest& request);
};

namespace {

absl::Status Failure(const HttpRequest& request, absl::StatusCode code, absl::string_view cause) {
  // Method and URL are safe to show; headers and the token never are.
  return absl::Status(code, absl::StrCat(request.method, " ", request.url,
                                         request.unix_socket.empty()
                                             ? ""
                                             : absl::StrCat(" (via ", request.unix_socket, ")"),
                                         ": ", cause));
}

absl::Status OutcomeStatus(const HttpRequest& request, const Outcome& out, bool timed_out,
                           std::chrono::milliseconds limit) {
  if (timed_out) {
    return Failure(request, absl::StatusCode::kDeadlineExceeded,
                   absl::StrCat(out.phase, ": timed out after ", limit.count(), " ms"));
  }
  if (out.aborted) {
    return Failure(request, absl::StatusCode::kCancelled, "stopped by the body reader");
  }
  std::string cause =
      absl::StrCat(out.phase, ": ", out.detail.empty() ? out.ec.message() : out.detail);
  return Failure(request,
                 out.internal ? absl::StatusCode::kInternal : absl::StatusCode::kUnavailable,
                 cause);
}

}  // namespace

absl::StatusOr<HttpResponse> AsioHttpClient::Impl::Send(const HttpRequest& request) {
  const Clock::time_point start = Clock::now();
  Url url;
  if (absl::Status status = ParseUrl(request.url, &url); !status.ok()) {
    return Failure(request, absl::StatusCode::kInvalidArgument, status.message());
  }
  if (!IsToken(request.method)) {
    return Failure(request, absl::StatusCode::kInvalidArgument, "bad method");
  }
  for (const auto& [name, value] : request.headers) {
    if (!IsToken(name) || HasLineBreak(value)) {
      return Failure(request, absl::StatusCode::kInvalidArgument, "bad header");
    }
  }
  if (HasLineBreak(request.bearer_token)) {
    return Failure(request, absl::StatusCode::kInvalidArgument, "bad bearer token");
  }
  Kind kind = Kind::kTcp;
  if (!request.unix_socket.empty()) {
    kind = Kind::kUnix;
    if (request.unix_socket.size() >= sizeof(sockaddr_un::sun_path)) {
      return Failure(request, absl::StatusCode::kInvalidArgument, "unix socket path too long");
    }
  } else if (url.tls) {
    kind = Kind::kTls;
  }
  ssl::context* tls_context = nullptr;
  if (kind == Kind::kTls) {
    tls_context = TlsContext();
    if (tls_context == nullptr) {
      return Failure(request, absl::StatusCode::kInternal, tls_error);
    }
  }

  const auto never = Clock::time_point::max();
  const Clock::time_point deadline = request.timeout.count() > 0 ? start + request.timeout : never;
  Clock::time_point connect_deadline =
      request.connect_timeout.count() > 0 ? start + request.connect_timeout : never;
  connect_deadline = std::min(connect_deadline, deadline);
  const bool connect_limited_by_timeout = connect_deadline == deadline;

  HttpResponse response;
  for (int attempt = 0;; ++attempt) {
    // A retry always gets a fresh connection: other idle ones may be just as stale.
    std::unique_ptr<Connection> connection =
        attempt == 0 ? pool.Take(kind, url.host, url.port, request.unix_socket) : nullptr;
    const bool reused = connection != nullptr;
    if (!reused) {
      connection = std::make_unique<Connection>(kind, tls_context);
      Outcome out = kind == Kind::kUnix ? connection->ConnectUnix(request.unix_socket,
                                                                  connect_deadline)
                                        : connection->ConnectTcp(url, connect_deadline);
      if (out.ec) {
        return OutcomeStatus(request, out, connection->timed_out(),
                             connect_limited_by_timeout ? request.timeout
                                                        : request.connect_timeout);
      }
    }
    connection->set_deadline(deadline);
    response.status = 0;
    response.headers.clear();
    response.body.clear();
    Outcome out = connection->Exchange(request, url, options.user_agent, &response);
    if (!out.ec && !out.aborted && !out.internal && !connection->timed_out()) {
      if (out.keep_alive) pool.Put(std::move(connection), options.max_idle_connections);
      return response;
    }
    if (reused && attempt == 0 && !out.response_started && !out.reader_used && !out.internal &&
        !connection->timed_out() && IsConnectionLoss(out.ec)) {
      continue;  // the server closed the pooled connection; replay once on a new one
    }
    return OutcomeStatus(request, out, connection->timed_out(), request.timeout);
  }
}

AsioHttpClient::AsioHttpClient(AsioHttpClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

AsioHttpClient::~AsioHttpClient() = default;

absl::StatusOr<HttpResponse> AsioHttpClient::Send(const HttpRequest& request) {
  // Asio and OpenSSL wrappers can throw (allocation, rare system errors); none may escape.
  try {
    return impl_->Send(request);
  } catch (const std::exception& e) {
    return Failure(request, absl::StatusCode::kInternal, e.what());
  } catch (...) {
    return Failure(request, absl::StatusCode::kInternal, "unknown exception");
  }
}

}  // namespace fastest::core

