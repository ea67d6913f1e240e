#include "core/http/asio_connection.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
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

#include "core/encoding/hex.h"
#include "core/http/asio_resolver.h"

namespace fastest::core::asio_internal {

namespace {

namespace http = boost::beast::http;

// Per-connection I/O buffer: responses are read into it and uploads staged in it. 64 KiB keeps
// syscalls per 100 MB blob low and stays below malloc's mmap threshold.
constexpr size_t kBufferSize = 64 * 1024;
// Response headers must fit in the buffer with room to read more.
constexpr uint32_t kHeaderLimit = 48 * 1024;
// Room for "<hex size>\r\n" in front of a chunked upload piece.
constexpr size_t kChunkPrefix = 16;
// Bodies up to this size are copied behind the header: one write, one TLS record.
constexpr size_t kInlineBody = 16 * 1024;

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

}  // namespace

Connection::Connection(Kind kind, ssl::context* tls_context) : kind_(kind) {
  if (kind == Kind::kTls) tls_.emplace(ioc_, *tls_context);
  buffer_.reset(new char[kBufferSize]);
}

bool Connection::Matches(Kind kind, absl::string_view host, uint16_t port,
                         const std::string& unix_path) const {
  if (kind_ != kind) return false;
  if (kind == Kind::kUnix) return unix_path_ == unix_path;
  return port_ == port && host_ == host;
}

bool Connection::IsAlive() {
  pollfd p{NativeHandle(), POLLIN, 0};
  return p.fd >= 0 && poll(&p, 1, 0) == 0;
}

Outcome Connection::ConnectTcp(const Url& url, Clock::time_point deadline) {
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
    out.ec = Run([&](auto handler) { asio::async_connect(socket, endpoints, std::move(handler)); });
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
    out.ec = Run(
        [&](auto handler) { tls_->async_handshake(ssl::stream_base::client, std::move(handler)); });
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

Outcome Connection::ConnectUnix(const std::string& path, Clock::time_point deadline) {
  deadline_ = deadline;
  unix_path_ = path;
  Outcome out;
  Unix::endpoint endpoint(path);
  out.ec = Run([&](auto handler) { unix_.async_connect(endpoint, std::move(handler)); });
  if (out.ec) out.phase = "connect";
  return out;
}

Outcome Connection::Exchange(const HttpRequest& request, const Url& url,
                             const std::string& user_agent, HttpResponse* response) {
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

template <typename Start>
error_code Connection::Run(Start&& start, size_t* bytes) {
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
error_code Connection::Write(const Buffers& buffers) {
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

error_code Connection::ReadSome(char* data, size_t size, size_t* n) {
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

int Connection::NativeHandle() {
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

void Connection::CloseSocket() {
  error_code ignored;
  if (kind_ == Kind::kTls) tls_->next_layer().close(ignored);
  tcp_.close(ignored);
  unix_.close(ignored);
}

bool Connection::BuildHead(const HttpRequest& request, const Url& url,
                           const std::string& user_agent, bool has_body, bool streaming) {
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
                      request.body_pieces.empty() ? request.body.size() : BodyPiecesSize(request),
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

void Connection::WriteStreaming(const std::function<size_t(char*, size_t)>& reader,
                                long long body_size, Outcome* out) {
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
        *--start = '\n';
        *--start = '\r';
        for (size_t v = n; v > 0; v >>= 4) *--start = kLowerHexDigits[v & 15];
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

void Connection::ReadResponse(const HttpRequest& request, HttpResponse* response, Outcome* out) {
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

bool IsConnectionLoss(const error_code& ec) {
  return ec == asio::error::eof || ec == ssl::error::stream_truncated ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted;
}

}  // namespace fastest::core::asio_internal
