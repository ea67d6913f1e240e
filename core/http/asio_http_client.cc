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

namespace fastest::core {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Tcp = asio::ip::tcp;
using Unix = asio::local::stream_protocol;

// Per-connection I/O buffer: responses are read into it and uploads staged in it. 64 KiB keeps
// syscalls per 100 MB blob low and stays below malloc's mmap threshold.
constexpr size_t kBufferSize = 64 * 1024;
// Response headers must fit in the buffer with room to read more.
constexpr uint32_t kHeaderLimit = 48 * 1024;
// Room for "<hex size>\r\n" in front of a chunked upload piece.
constexpr size_t kChunkPrefix = 16;
// Bodies up to this size are copied behind the header: one write, one TLS record.
constexpr size_t kInlineBody = 16 * 1024;

// The parts of an absolute URL a request needs; views into HttpRequest::url.
struct Url {
  bool tls = false;
  bool ipv6 = false;  // host was a bracketed literal
  absl::string_view host;
  uint16_t port = 0;
  bool default_port = true;
  absl::string_view target;  // path and query; "" means "/"
};

absl::Status ParseUrl(absl::string_view url, Url* out) {
  for (char c : url) {
    // Whitespace or CR/LF would let a URL inject header lines.
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("URL contains whitespace or control characters");
    }
  }
  absl::string_view rest = url;
  if (absl::StartsWithIgnoreCase(rest, "http://")) {
    rest.remove_prefix(7);
    out->port = 80;
  } else if (absl::StartsWithIgnoreCase(rest, "https://")) {
    rest.remove_prefix(8);
    out->tls = true;
    out->port = 443;
  } else {
    return absl::InvalidArgumentError("unsupported URL scheme (use http:// or https://)");
  }
  size_t end = rest.find_first_of("/?#");
  absl::string_view authority = rest.substr(0, end);
  absl::string_view target = end == absl::string_view::npos ? "" : rest.substr(end);
  target = target.substr(0, target.find('#'));
  if (authority.find('@') != absl::string_view::npos) {
    return absl::InvalidArgumentError("credentials in the URL are not supported");
  }
  absl::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("unterminated '['");
    out->host = authority.substr(1, close - 1);
    out->ipv6 = true;
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return absl::InvalidArgumentError("junk after ']'");
      port = after.substr(1);
      has_port = true;
    }
  } else {
    size_t colon = authority.rfind(':');
    out->host = authority.substr(0, colon);
    if (colon != absl::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (out->host.empty()) return absl::InvalidArgumentError("URL has no host");
  if (has_port && !port.empty()) {
    uint32_t value = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || value > 65535) return absl::InvalidArgumentError("bad port");
      value = value * 10 + (c - '0');
    }
    if (value == 0 || value > 65535) return absl::InvalidArgumentError("bad port");
    out->default_port = value == out->port;
    out->port = static_cast<uint16_t>(value);
  }
  out->target = target;
  return absl::OkStatus();
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == ':') return false;
  }
  return true;
}

bool HasLineBreak(absl::string_view s) { return s.find_first_of("\r\n") != absl::string_view::npos; }

// Parses one response straight into HttpResponse: headers lower-cased in arrival order, body
// appended or handed to on_body_chunk without an intermediate copy.
class ResponseParser final : public http::basic_parser<false> {
 public:
  ResponseParser(const HttpRequest& request, HttpResponse* response)
      : sink_(request.on_body_chunk ? &request.on_body_chunk : nullptr), response_(response) {
    // Blobs are 100 MB+. Not boost::none: Beast 1.74 compares `len > body_limit_` with an
    // optional, and any length is greater than an empty one.
    body_limit(std::numeric_limits<std::uint64_t>::max());
    header_limit(kHeaderLimit);
    eager(true);
    if (request.method == "HEAD") skip(true);
  }

  bool aborted() const { return aborted_; }

 private:
  void on_request_impl(http::verb, boost::beast::string_view, boost::beast::string_view, int,
                       error_code&) override {}
  void on_response_impl(int code, boost::beast::string_view, int, error_code&) override {
    response_->status = code;
    response_->headers.clear();  // a new status line (after 1xx) starts a fresh header block
  }
  void on_field_impl(http::field, boost::beast::string_view name, boost::beast::string_view value,
                     error_code&) override {
    std::string lower(name.data(), name.size());
    absl::AsciiStrToLower(&lower);
    response_->headers.emplace_back(std::move(lower), std::string(value.data(), value.size()));
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
    if (sink_ == nullptr && length) {
      // Capped so a bogus Content-Length cannot force a huge allocation up front.
      response_->body.reserve(static_cast<size_t>(std::min<std::uint64_t>(*length, 256u << 20)));
    }
  }
  size_t on_body_impl(boost::beast::string_view body, error_code&) override {
    Deliver(body);
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body, error_code&) override {
    Deliver(body);
    return body.size();
  }
  void on_finish_impl(error_code&) override {}

  void Deliver(boost::beast::string_view body) {
    if (aborted_ || body.empty()) return;
    if (sink_ != nullptr) {
      // Keep parsing after an abort: if the rest of the message is already buffered, the
      // response completed and Send reports success.
      if (!(*sink_)(absl::string_view(body.data(), body.size()))) aborted_ = true;
    } else {
      response_->body.append(body.data(), body.size());
    }
  }

  const std::function<bool(absl::string_view)>* sink_;
  HttpResponse* response_;
  bool aborted_ = false;
};

// Why an exchange failed, enough to pick the status code and decide whether to retry.
struct Outcome {
  error_code ec;
  const char* phase = "";
  std::string detail;         // replaces ec.message() when set
  bool response_started = false;  // any response byte was read
  bool reader_used = false;       // body_reader was called (the request cannot be replayed)
  bool aborted = false;           // on_body_chunk returned false before the response completed
  bool keep_alive = false;
  bool internal = false;  // a caller-side problem (short body_reader), not the network
};

// getaddrinfo cannot be interrupted, so it runs on a thread of its own and the caller waits only
// until its deadline: a hung DNS server then costs a timeout, not a hang. An abandoned lookup
// finishes on its own and frees its state.
error_code ResolveWithDeadline(const std::string& host, uint16_t port,
                               std::chrono::steady_clock::time_point deadline,
                               std::vector<asio::ip::tcp::endpoint>* out, std::string* detail) {
  struct Lookup {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    int rc = 0;
    std::vector<asio::ip::tcp::endpoint> endpoints;
  };
  auto lookup = std::make_shared<Lookup>();
  std::thread([lookup, host, port] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* list = nullptr;
    const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &list);
    std::vector<asio::ip::tcp::endpoint> endpoints;
    for (addrinfo* a = list; rc == 0 && a != nullptr; a = a->ai_next) {
      if (a->ai_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
        endpoints.emplace_back(asio::ip::address_v4(ntohl(in->sin_addr.s_addr)), port);
      } else if (a->ai_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
        asio::ip::address_v6::bytes_type bytes;
        std::memcpy(bytes.data(), in6->sin6_addr.s6_addr, bytes.size());
        endpoints.emplace_back(asio::ip::address_v6(bytes, in6->sin6_scope_id), port);
      }
    }
    if (list != nullptr) freeaddrinfo(list);
    std::lock_guard<std::mutex> lock(lookup->mu);
    lookup->rc = rc;
    lookup->endpoints = std::move(endpoints);
    lookup->done = true;
    lookup->cv.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(lookup->mu);
  if (deadline == std::chrono::steady_clock::time_point::max()) {
    lookup->cv.wait(lock, [&] { return lookup->done; });
  } else if (!lookup->cv.wait_until(lock, deadline, [&] { return lookup->done; })) {
    return asio::error::timed_out;
  }
  if (lookup->rc != 0 || lookup->endpoints.empty()) {
    *detail = absl::StrCat("cannot resolve ", host, ": ",
                           lookup->rc != 0 ? gai_strerror(lookup->rc) : "no IPv4/IPv6 address");
    return asio::error::host_not_found;
  }
  *out = std::move(lookup->endpoints);
  return {};
}

enum class Kind { kTcp, kTls, kUnix };

// One connection with its own io_context, so a request runs its async operations on the calling
// thread with a deadline (run_until) and no cross-thread coordination.
class Connection {
 public:
  Connection(Kind kind, ssl::context* tls_context) : kind_(kind) {
    if (kind == Kind::kTls) tls_.emplace(ioc_, *tls_context);
    buffer_.reset(new char[kBufferSize]);
  }

  bool Matches(Kind kind, absl::string_view host, uint16_t port,
               const std::string& unix_path) const {
    if (kind_ != kind) return false;
    if (kind == Kind::kUnix) return unix_path_ == unix_path;
    return port_ == port && host_ == host;
  }

  // An idle HTTP connection must have nothing to read: readable means the server closed it (or
  // sent junk), so it must not be reused.
  bool IsAlive() {
    pollfd p{NativeHandle(), POLLIN, 0};
    return p.fd >= 0 && poll(&p, 1, 0) == 0;
  }

  bool timed_out() const { return timed_out_; }
  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; }

  Outcome ConnectTcp(const Url& url, Clock::time_point deadline) {
    deadline_ = deadline;
    host_.assign(url.host.data(), url.host.size());
    port_ = url.port;
    Outcome out;
    Tcp::socket& socket = kind_ == Kind::kTls ? tls_->next_layer() : tcp_;
    error_code ec;
    asio::ip::address address = asio::ip::make_address(host_, ec);
    const bool is_ip = !ec;
    if (is_ip) {
      Tcp::endpoint endpoint(address, port_);
      out.ec = Run([&](auto handler) { socket.async_connect(endpoint, std::move(handler)); });
    } else {
      std::vector<Tcp::endpoint> endpoints;
      ec = ResolveWithDeadline(host_, port_, deadline_, &endpoints, &out.detail);
      if (ec) {
        if (ec == asio::error::timed_out) timed_out_ = true;
        out.ec = ec;
        out.phase = "resolve host";
        return out;
      }
      out.ec = Run([&](auto handler) {
        asio::async_connect(socket, endpoints, std::move(handler));
      });
    }
    if (out.ec) {
      out.phase = "connect";
      return out;
    }
    socket.set_option(Tcp::no_delay(true), ec);
    if (kind_ == Kind::kTls) {
      SSL* ssl = tls_->native_handle();
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(param, host_.c_str());
      } else {
        SSL_set_tlsext_host_name(ssl, host_.c_str());  // SNI
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set1_host(ssl, host_.c_str());
      }
      out.ec = Run([&](auto handler) {
        tls_->async_handshake(ssl::stream_base::client, std::move(handler));
      });
      if (out.ec) {
        out.phase = "TLS handshake";
        long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) {
          out.detail = absl::StrCat(out.ec.message(), ": ", X509_verify_cert_error_string(verify));
        }
      }
    }
    return out;
  }

  Outcome ConnectUnix(const std::string& path, Clock::time_point deadline) {
    deadline_ = deadline;
    unix_path_ = path;
    Outcome out;
    Unix::endpoint endpoint(path);
    out.ec = Run([&](auto handler) { unix_.async_connect(endpoint, std::move(handler)); });
    if (out.ec) out.phase = "connect";
    return out;
  }

  // Writes the request and reads the response into `response`.
  Outcome Exchange(const HttpRequest& request, const Url& url, const std::string& user_agent,
                   HttpResponse* response) {
    Outcome out;
    begin_ = end_ = 0;
    const bool has_body = request.method != "GET" && request.method != "HEAD";
    const bool streaming = has_body && static_cast<bool>(request.body_reader);
    const bool gathered = has_body && !streaming && !request.body_pieces.empty();
    const bool request_close = BuildHead(request, url, user_agent, has_body, streaming);
    if (streaming) {
      out.reader_used = true;  // the reader cannot be rewound: no replay
      WriteStreaming(request.body_reader, request.body_size, &out);
    } else if (gathered && kind_ == Kind::kTls) {
      // TLS encrypts into records anyway: staging the pieces costs no extra pass, and small
      // pieces do not each become a record.
      BodyPiecesReader pieces(request.body_pieces);
      auto reader = [&pieces](char* buf, size_t max) { return pieces.Read(buf, max); };
      WriteStreaming(reader, static_cast<long long>(BodyPiecesSize(request)), &out);
    } else if (gathered) {
      std::vector<asio::const_buffer> buffers;
      buffers.reserve(request.body_pieces.size() + 1);
      buffers.push_back(asio::buffer(head_));
      for (absl::string_view piece : request.body_pieces) {
        if (!piece.empty()) buffers.push_back(asio::buffer(piece.data(), piece.size()));
      }
      out.ec = Write(buffers);
      if (out.ec) out.phase = "send request";
    } else {
      absl::string_view body = has_body ? absl::string_view(request.body) : absl::string_view();
      if (body.size() <= kInlineBody) {
        head_.append(body.data(), body.size());
        body = absl::string_view();
      }
      std::array<asio::const_buffer, 2> buffers{asio::buffer(head_),
                                                asio::buffer(body.data(), body.size())};
      out.ec = Write(buffers);
      if (out.ec) out.phase = "send request";
    }
    // The head holds the token; don't leave it in the reused buffer.
    if (!request.bearer_token.empty()) std::fill(head_.begin(), head_.end(), '\0');
    head_.clear();
    if (out.internal || timed_out_) return out;
    // Even when the write failed the server may have answered (e.g. rejected an upload early).
    Outcome write_failure = out;
    ReadResponse(request, response, &out);
    if (write_failure.ec && out.ec) {
      write_failure.response_started = out.response_started;
      return write_failure;
    }
    if (write_failure.ec) out.keep_alive = false;
    if (request_close) out.keep_alive = false;
    return out;
  }

 private:
  // Runs one async operation on this connection's io_context until it completes or the deadline
  // passes; on timeout the socket is closed (the connection is then unusable).
  template <typename Start>
  error_code Run(Start&& start, size_t* bytes = nullptr) {
    struct Result {
      error_code ec;
      size_t bytes = 0;
      bool done = false;
    } result;
    struct Handler {
      Result* r;
      void operator()(const error_code& ec) const {
        r->ec = ec;
        r->done = true;
      }
      void operator()(const error_code& ec, size_t n) const {
        r->ec = ec;
        r->bytes = n;
        r->done = true;
      }
      void operator()(const error_code& ec, const Tcp::endpoint&) const {
        r->ec = ec;
        r->done = true;
      }
    };
    start(Handler{&result});
    ioc_.restart();
    if (deadline_ == Clock::time_point::max()) {
      ioc_.run();
    } else {
      ioc_.run_until(deadline_);
    }
    if (!result.done) {
      timed_out_ = true;
      CloseSocket();
      ioc_.restart();
      ioc_.run();  // lets the aborted operation finish before `result` goes away
      return asio::error::timed_out;
    }
    if (bytes != nullptr) *bytes = result.bytes;
    return result.ec;
  }

  template <typename Buffers>
  error_code Write(const Buffers& buffers) {
    // asio's transfer_all caps every write at 64 KiB; a large gathered body goes out in fewer,
    // larger sendmsg calls with this.
    auto large_writes = [](const error_code& ec, size_t) -> size_t { return ec ? 0 : 4u << 20; };
    switch (kind_) {
      case Kind::kTls:
        return Run([&](auto h) { asio::async_write(*tls_, buffers, std::move(h)); });
      case Kind::kUnix:
        return Run([&](auto h) { asio::async_write(unix_, buffers, large_writes, std::move(h)); });
      case Kind::kTcp:
        break;
    }
    return Run([&](auto h) { asio::async_write(tcp_, buffers, large_writes, std::move(h)); });
  }

  error_code ReadSome(char* data, size_t size, size_t* n) {
    asio::mutable_buffer buffer(data, size);
    switch (kind_) {
      case Kind::kTls:
        return Run([&](auto h) { tls_->async_read_some(buffer, std::move(h)); }, n);
      case Kind::kUnix:
        return Run([&](auto h) { unix_.async_read_some(buffer, std::move(h)); }, n);
      case Kind::kTcp:
        break;
    }
    return Run([&](auto h) { tcp_.async_read_some(buffer, std::move(h)); }, n);
  }

  int NativeHandle() {
    switch (kind_) {
      case Kind::kTls:
        return tls_->next_layer().native_handle();
      case Kind::kUnix:
        return unix_.native_handle();
      case Kind::kTcp:
        break;
    }
    return tcp_.native_handle();
  }

  void CloseSocket() {
    error_code ignored;
    if (kind_ == Kind::kTls) tls_->next_layer().close(ignored);
    tcp_.close(ignored);
    unix_.close(ignored);
  }

  // Request line and headers into head_. Returns whether the caller asked for Connection: close.
  bool BuildHead(const HttpRequest& request, const Url& url, const std::string& user_agent,
                 bool has_body, bool streaming) {
    bool user_host = false, user_agent_set = false, user_type = false, user_length = false;
    bool request_close = false;
    for (const auto& [name, value] : request.headers) {
      if (absl::EqualsIgnoreCase(name, "host")) user_host = true;
      if (absl::EqualsIgnoreCase(name, "user-agent")) user_agent_set = true;
      if (absl::EqualsIgnoreCase(name, "content-type")) user_type = true;
      if (absl::EqualsIgnoreCase(name, "content-length") ||
          absl::EqualsIgnoreCase(name, "transfer-encoding")) {
        user_length = true;
      }
      if (absl::EqualsIgnoreCase(name, "connection") &&
          absl::StrContains(absl::AsciiStrToLower(value), "close")) {
        request_close = true;
      }
    }
    head_.clear();
    const bool slash = url.target.empty() || url.target[0] == '?';
    absl::StrAppend(&head_, request.method, " ", slash ? "/" : "", url.target, " HTTP/1.1\r\n");
    if (!user_host) {
      absl::StrAppend(&head_, "Host: ", url.ipv6 ? "[" : "", url.host, url.ipv6 ? "]" : "");
      if (!url.default_port) absl::StrAppend(&head_, ":", url.port);
      head_.append("\r\n");
    }
    if (!user_agent_set && !user_agent.empty()) {
      absl::StrAppend(&head_, "User-Agent: ", user_agent, "\r\n");
    }
    for (const auto& [name, value] : request.headers) {
      if (value.empty()) continue;  // like libcurl: "Name:" with no value means "don't send"
      absl::StrAppend(&head_, name, ": ", value, "\r\n");
    }
    if (has_body && !user_type) head_.append("Content-Type: application/octet-stream\r\n");
    if (!request.bearer_token.empty()) {
      absl::StrAppend(&head_, "Authorization: Bearer ", request.bearer_token, "\r\n");
    }
    if (has_body && !user_length) {
      if (!streaming) {
        absl::StrAppend(&head_, "Content-Length: ",
                        request.body_pieces.empty() ? request.body.size()
                                                    : BodyPiecesSize(request),
                        "\r\n");
      } else if (request.body_size >= 0) {
        absl::StrAppend(&head_, "Content-Length: ", request.body_size, "\r\n");
      } else {
        head_.append("Transfer-Encoding: chunked\r\n");
      }
    }
    head_.append("\r\n");
    return request_close;
  }

  // Streams a reader's bytes, staged in buffer_ (the response has not started yet). The first
  // piece goes out together with the head. body_size < 0: chunked.
  void WriteStreaming(const std::function<size_t(char*, size_t)>& reader, long long body_size,
                      Outcome* out) {
    const bool chunked = body_size < 0;
    const uint64_t total = chunked ? 0 : static_cast<uint64_t>(body_size);
    uint64_t sent = 0;
    bool first = true;
    bool finished = false;
    while (!finished) {
      char* data = buffer_.get() + kChunkPrefix;
      size_t capacity = kBufferSize - kChunkPrefix - 8;  // room for "\r\n" / "0\r\n\r\n"
      if (!chunked) capacity = static_cast<size_t>(std::min<uint64_t>(capacity, total - sent));
      size_t n = 0;
      if (capacity > 0) {
        n = std::min(reader(data, capacity), capacity);
      }
      char* start = data;
      size_t length = n;
      if (chunked) {
        if (n > 0) {
          static constexpr char kHex[] = "0123456789abcdef";
          *--start = '\n';
          *--start = '\r';
          for (size_t v = n; v > 0; v >>= 4) *--start = kHex[v & 15];
          std::memcpy(data + n, "\r\n", 2);
          length = static_cast<size_t>(data + n + 2 - start);
        } else {
          std::memcpy(data, "0\r\n\r\n", 5);
          length = 5;
          finished = true;
        }
      } else {
        sent += n;
        if (n == 0 && sent < total) {
          out->internal = true;
          out->phase = "send request body";
          out->detail = absl::StrCat("body_reader ended after ", sent, " of ", total, " bytes");
          return;
        }
        finished = sent == total;
      }
      std::array<asio::const_buffer, 2> buffers{
          asio::buffer(first ? head_.data() : nullptr, first ? head_.size() : 0),
          asio::buffer(start, length)};
      first = false;
      out->ec = Write(buffers);
      if (out->ec) {
        out->phase = "send request body";
        return;
      }
    }
  }

  void ReadResponse(const HttpRequest& request, HttpResponse* response, Outcome* out) {
    std::optional<ResponseParser> parser;
    parser.emplace(request, response);
    char* const buffer = buffer_.get();
    while (true) {
      if (begin_ < end_) {
        error_code ec;
        size_t used = parser->put(asio::const_buffer(buffer + begin_, end_ - begin_), ec);
        begin_ += used;
        if (ec && ec != http::error::need_more) {
          out->ec = ec;
          out->phase = "parse response";
          return;
        }
        if (parser->is_done()) {
          const long status = response->status;
          if (status >= 100 && status < 200 && status != 101) {
            parser.emplace(request, response);  // interim response; the real one follows
            continue;
          }
          out->aborted = false;
          // Bytes past the response mean the stream is out of sync: don't reuse it.
          out->keep_alive = parser->keep_alive() && begin_ == end_ && status != 101;
          out->ec = {};
          return;
        }
        if (parser->aborted()) {
          out->aborted = true;
          return;
        }
        if (!ec && used > 0) continue;
      }
      // Need more input: compact what is left, then read behind it.
      if (begin_ > 0) {
        std::memmove(buffer, buffer + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (end_ == kBufferSize) {  // cannot happen with kHeaderLimit < kBufferSize
        out->ec = http::error::header_limit;
        out->phase = "parse response";
        return;
      }
      size_t n = 0;
      error_code ec = ReadSome(buffer + end_, kBufferSize - end_, &n);
      end_ += n;
      if (n > 0) out->response_started = true;
      if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
        if (n > 0) continue;  // parse what arrived with the EOF first
        if (!parser->got_some()) {
          out->ec = asio::error::eof;
          out->phase = out->response_started ? "receive response" : "receive response (empty reply)";
          return;
        }
        error_code eof_ec;
        parser->put_eof(eof_ec);
        if (!eof_ec && parser->is_done()) {
          out->keep_alive = false;
          out->ec = {};
          return;
        }
        out->ec = eof_ec ? eof_ec : error_code(asio::error::eof);
        out->phase = "receive response (connection closed early)";
        return;
      }
      if (ec) {
        out->ec = ec;
        out->phase = "receive response";
        return;
      }
    }
  }

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

bool IsConnectionLoss(const error_code& ec) {
  return ec == asio::error::eof || ec == ssl::error::stream_truncated ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted;
}

}  // namespace

struct AsioHttpClient::Impl {
  AsioHttpClientOptions options;
  std::mutex mu;
  std::vector<std::unique_ptr<Connection>> idle;  // oldest first

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

  std::unique_ptr<Connection> TakeIdle(Kind kind, absl::string_view host, uint16_t port,
                                       const std::string& unix_path) {
    while (true) {
      std::unique_ptr<Connection> connection;
      {
        std::lock_guard<std::mutex> lock(mu);
        for (size_t i = idle.size(); i-- > 0;) {
          if (idle[i]->Matches(kind, host, port, unix_path)) {
            connection = std::move(idle[i]);
            idle.erase(idle.begin() + i);
            break;
          }
        }
      }
      if (connection == nullptr) return nullptr;
      if (connection->IsAlive()) return connection;
      // Closed by the server while idle: drop it (outside the lock) and look again.
    }
  }

  void PutIdle(std::unique_ptr<Connection> connection) {
    std::unique_ptr<Connection> evicted;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (options.max_idle_connections <= 0) return;
      if (static_cast<int>(idle.size()) >= options.max_idle_connections) {
        evicted = std::move(idle.front());
        idle.erase(idle.begin());
      }
      idle.push_back(std::move(connection));
    }
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
        attempt == 0 ? TakeIdle(kind, url.host, url.port, request.unix_socket) : nullptr;
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
      if (out.keep_alive) PutIdle(std::move(connection));
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
