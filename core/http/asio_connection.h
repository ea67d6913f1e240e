// File: core/http/asio_connection.h
//
// One HTTP/1.1 connection of AsioHttpClient (TCP, TLS or unix socket) and the outcome of an
// exchange on it (internal to core/http).
#ifndef FASTEST_CORE_HTTP_ASIO_CONNECTION_H_
#define FASTEST_CORE_HTTP_ASIO_CONNECTION_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "absl/strings/string_view.h"
#include "core/http/http_url.h"
#include "core/http/http_transport.h"

namespace fastest::core::asio_internal {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Tcp = asio::ip::tcp;
using Unix = asio::local::stream_protocol;

// Why an exchange failed, enough to pick the status code and decide whether to retry.
struct Outcome {
  error_code ec;
  const char* phase = "";
  std::string detail;             // replaces ec.message() when set
  bool response_started = false;  // any response byte was read
  bool reader_used = false;       // body_reader was called (the request cannot be replayed)
  bool aborted = false;           // on_body_chunk returned false before the response completed
  bool keep_alive = false;
  bool internal = false;  // a caller-side problem (short body_reader), not the network
};

enum class Kind { kTcp, kTls, kUnix };

// One connection with its own io_context, so a request runs its async operations on the calling
// thread with a deadline (run_until) and no cross-thread coordination.
class Connection {
 public:
  Connection(Kind kind, ssl::context* tls_context);

  bool Matches(Kind kind, absl::string_view host, uint16_t port,
               const std::string& unix_path) const;

  // An idle HTTP connection must have nothing to read: readable means the server closed it (or
  // sent junk), so it must not be reused.
  bool IsAlive();

  bool timed_out() const { return timed_out_; }
  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; }

  Outcome ConnectTcp(const Url& url, Clock::time_point deadline);

  Outcome ConnectUnix(const std::string& path, Clock::time_point deadline);

  // Writes the request and reads the response into `response`.
  Outcome Exchange(const HttpRequest& request, const Url& url, const std::string& user_agent,
                   HttpResponse* response);

 private:
  // Runs one async operation on this connection's io_context until it completes or the deadline
  // passes; on timeout the socket is closed (the connection is then unusable).
  template <typename Start>
  error_code Run(Start&& start, size_t* bytes = nullptr);

  template <typename Buffers>
  error_code Write(const Buffers& buffers);

  error_code ReadSome(char* data, size_t size, size_t* n);

  int NativeHandle();

  void CloseSocket();

  // Request line and headers into head_. Returns whether the caller asked for Connection: close.
  bool BuildHead(const HttpRequest& request, const Url& url, const std::string& user_agent,
                 bool has_body, bool streaming);

  // Streams a reader's bytes, staged in buffer_ (the response has not started yet). The first
  // piece goes out together with the head. body_size < 0: chunked.
  void WriteStreaming(const std::function<size_t(char*, size_t)>& reader, long long body_size,
                      Outcome* out);

  void ReadResponse(const HttpRequest& request, HttpResponse* response, Outcome* out);

  // ioc_ first: the sockets are destroyed before it.
  asio::io_context ioc_{1};
  Kind kind_;
  Tcp::socket tcp_{ioc_};
  Unix::socket unix_{ioc_};
  std::optional<ssl::stream<Tcp::socket>> tls_;
  std::string host_;
  uint16_t port_ = 0;
  std::string unix_path_;
  std::unique_ptr<char[]> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  std::string head_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timed_out_ = false;
};

// Whether `ec` says the peer closed or reset the connection.
bool IsConnectionLoss(const error_code& ec);

}  // namespace fastest::core::asio_internal

#endif  // FASTEST_CORE_HTTP_ASIO_CONNECTION_H_
