#include "core/net/http_server.h"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/asio.hpp"
#include "boost/asio/signal_set.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "core/encoding/percent_encoding.h"

namespace fastest::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

class Session;

// Largest socket read while receiving a body.
constexpr size_t kMaxReadChunk = 1 << 20;
// Largest body buffer a connection keeps for its next request.
constexpr size_t kMaxSpareBody = 16 << 20;
// Bodies up to this size use the connection's small spare buffer, larger ones its large one.
constexpr size_t kSmallBody = 64 << 10;
// A Content-Length body buffer starts at most this large (or the size of a reused spare) and
// doubles as bytes arrive: an announced size costs nothing until the bytes are there.
constexpr size_t kInitialBody = 256 << 10;
// File descriptors kept free for the store, packs, logs and backend sockets.
constexpr int kFdReserve = 64;
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);

}  // namespace

struct HttpServer::Context {
  HttpServerOptions options;
  Router router;
  // One io_context per io thread, each run by that thread alone: a connection lives on one of
  // them, so its handlers and the answers of cheap handlers never cross threads (no strand, no
  // futex wake-up per request). The acceptor lives on the first.
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  size_t next_ioc = 0;  // round-robin for new connections (acceptor's thread only)
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::signal_set> signals;
  std::optional<asio::thread_pool> workers;  // Execution::kWorkerPool handlers

  std::mutex mu;
  std::condition_variable cv;
  bool stop_requested = false;
  bool stopping = false;
  std::map<Session*, std::weak_ptr<Session>> sessions;
  std::map<std::string, int> connections_per_ip;
  int max_connections = 0;  // effective cap (options, RLIMIT_NOFILE)
  std::optional<asio::steady_timer> accept_backoff;
  std::optional<asio::steady_timer> sweep;  // head-read deadlines (SweepIdle)

  explicit Context(HttpServerOptions o) : options(std::move(o)) {}
};

namespace {

// One connection. Lives as long as an async operation or a Responder references it.
class Session : public std::enable_shared_from_this<Session>, public internal::ResponseSink {
 public:
  Session(tcp::socket socket, std::shared_ptr<HttpServer::Context> ctx, std::string ip)
      : ctx_(std::move(ctx)), stream_(std::move(socket)), ip_(std::move(ip)) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = absl::StrCat(ep.address().to_string(), ":", ep.port());
  }

  ~Session() override {
    std::lock_guard<std::mutex> lock(ctx_->mu);
    ctx_->sessions.erase(this);
    if (auto it = ctx_->connections_per_ip.find(ip_);
        registered_ && it != ctx_->connections_per_ip.end() && --it->second <= 0) {
      ctx_->connections_per_ip.erase(it);
    }
    ctx_->cv.notify_all();
  }

  // Registers the session; the caller holds ctx->mu.
  void RegisterLocked() {
    registered_ = true;
    ctx_->sessions[this] = weak_from_this();
    ++ctx_->connections_per_ip[ip_];
  }

  // Closes an idle connection to make room for a new one; the caller holds ctx->mu. It stops
  // counting as idle at once, so the next accept picks another one.
  void EvictLocked() {
    idle_since_.store(0, std::memory_order_relaxed);
    ForceClose();
  }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoReadHeader(); });
  }

  const std::string& ip() const { return ip_; }
  // Steady-clock nanoseconds since the connection began waiting for a request; 0 while busy.
  int64_t idle_since() const { return idle_since_.load(std::memory_order_relaxed); }

  // Called by the server on Stop(): idle connections close, busy ones finish their request.
  void OnServerStop() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      self->stopping_ = true;
      if (self->idle_) self->Close();
    });
  }

  // Last resort after the grace period.
  void ForceClose() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }

  // ---- ResponseSink (any thread) ----
  // dispatch: on the connection's own io thread (a handler answering at once) the answer is
  // written without a queue round trip; from other threads it is posted.
  void SendResponse(Response response) override {
    asio::dispatch(stream_.get_executor(),
              [self = shared_from_this(), r = std::move(response)]() mutable {
                self->DoWriteResponse(std::move(r), /*drain_after=*/false);
              });
  }

  void SendError(int http_status, std::string code, std::string message) override {
    SendResponse(ctx_->router.Error(http_status, code, message));
  }

  void SendStreamHead(int status, HeaderList headers) override {
    asio::dispatch(stream_.get_executor(),
              [self = shared_from_this(), status, h = std::move(headers)]() mutable {
                self->status_ = status;
                self->Enqueue(self->FormatHead(status, h, /*chunked=*/true, 0));
              });
  }

  void SendStreamChunk(std::string data) override {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this(), d = std::move(data)] {
      char size[32];
      std::snprintf(size, sizeof(size), "%zx\r\n", d.size());
      self->Enqueue(absl::StrCat(size, d, "\r\n"));
    });
  }

  void EndStream() override {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->Enqueue("0\r\n\r\n");
      self->stream_ended_ = true;
      self->MaybeFinishStream();
    });
  }

  bool IsClosed() const override { return closed_.load(); }

 private:
  // ---- reading ----
  void DoReadHeader() {
    if (closed_ || stopping_) return Close();
    idle_ = true;
    idle_since_.store(std::chrono::steady_clock::now().time_since_epoch().count() | 1,
                      std::memory_order_relaxed);
    parser_.emplace();
    parser_->header_limit(64 * 1024);
    // No limit while reading the head: the Content-Length check comes after authentication
    // (OnReadHeader), the chunked limit is set before the body is read (DoReadBody).
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    // The head's deadline is kept by the server's sweep (SweepIdle, from idle_since_), not by a
    // timer per read: arming and cancelling one costs a timer-queue entry and an extra
    // completion per request. So the head is read from the bare socket.
    DisarmDeadline();
    bhttp::async_read_header(
        stream_.socket(), buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnReadHeader(ec); });
  }

  void OnReadHeader(beast::error_code ec) {
    idle_ = false;
    idle_since_.store(0, std::memory_order_relaxed);
    if (ec) return OnReadError(ec);
    start_ = absl::Now();
    auto& req = parser_->get();
    const bool has_body =
        parser_->chunked() || (parser_->content_length() && *parser_->content_length() > 0);
    if (has_body && ctx_->options.admit_body) {
      // Authenticate on the head alone: nothing is allocated for the body, and no
      // `100 Continue` invites it, until the caller is known.
      FillRequestHead(req);
      if (!ctx_->options.admit_body(request_)) {
        keep_alive_ = false;
        return DoWriteResponse(ctx_->router.Error(401, "UNAUTHORIZED", "Authentication required"),
                               /*drain_after=*/true);
      }
    }
    if (auto len = parser_->content_length();
        len && *len > ctx_->options.max_body_bytes) {
      return SendTooLarge();
    }
    if (absl::AsciiStrToLower(std::string(req[bhttp::field::expect])) == "100-continue") {
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      ArmDeadline(ctx_->options.write_timeout);
      asio::async_write(stream_, asio::buffer(*cont),
                       [self = shared_from_this(), cont](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->DoReadBody();
                       });
      return;
    }
    DoReadBody();
  }

  void DoReadBody() {
    // No body (a GET): nothing to read, and no read buffer to grow.
    if (parser_->is_done()) return OnReadBody();
    ArmDeadline(ctx_->options.read_timeout);
    if (auto len = parser_->content_length(); len && !parser_->chunked()) {
      // Straight into the body's own buffer: Beast would read into buffer_ and copy from there
      // (one more pass over every uploaded byte). The previous request's buffer of the same size
      // class is reused: it keeps its size, so resizing zero-fills at most the difference, and a
      // multi-MB upload does not map (and page-fault in) fresh memory every time.
      RecycleBody();
      std::string& spare = *len > kSmallBody ? spare_large_ : spare_small_;
      body_ = std::move(spare);
      spare = std::string();
      body_expected_ = static_cast<size_t>(*len);
      // Room for what the reused buffer already owns (no new memory), else a small start; it
      // grows as bytes arrive (ReadBodyBytes), never ahead of them.
      body_.resize(std::min(body_expected_,
                            std::max({kInitialBody, body_.capacity(), buffer_.size()})));
      const size_t have = std::min<size_t>(buffer_.size(), body_.size());
      asio::buffer_copy(asio::buffer(body_.data(), have), buffer_.data());
      buffer_.consume(have);
      body_read_ = have;
      return ReadBodyBytes();
    }
    parser_->body_limit(ctx_->options.max_body_bytes);
    // Chunked (rare): through the parser, into a fresh string. Beast sizes each socket read by the buffer's free capacity (at
    // least 512 bytes): room for big reads makes that ~100x fewer syscalls.
    if (buffer_.capacity() - buffer_.size() < kMaxReadChunk) {
      buffer_.reserve(buffer_.size() + kMaxReadChunk);
    }
    bhttp::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec,
                                                                                size_t) {
      if (ec) return self->OnReadError(ec);
      self->body_ = std::move(self->parser_->get().body());
      self->OnReadBody();
    });
  }

  // Reads the rest of a Content-Length body (whatever the socket has, up to what is missing).
  void ReadBodyBytes() {
    if (body_read_ == body_expected_) {
      body_.resize(body_expected_);
      return OnReadBody();
    }
    if (body_read_ == body_.size()) {
      // Full: double (the bytes are arriving, so the memory is earned), up to the announced size.
      body_.resize(std::min(body_expected_, std::max(body_.size() * 2, kInitialBody)));
    }
    stream_.async_read_some(
        asio::buffer(body_.data() + body_read_, body_.size() - body_read_),
        [self = shared_from_this()](beast::error_code ec, size_t n) {
          if (ec) return self->Close();  // timeout, reset or EOF in the middle of a body
          self->body_read_ += n;
          self->ReadBodyBytes();
        });
  }

  // The finished request's body buffer goes back to the spare of its size class.
  void RecycleBody() {
    if (request_.body.empty()) return;  // nothing worth keeping (or already recycled)
    const size_t capacity = request_.body.capacity();
    if (capacity > kSmallBody && capacity <= kMaxSpareBody) {
      spare_large_ = std::move(request_.body);
    } else if (capacity <= kSmallBody) {
      spare_small_ = std::move(request_.body);
    }
    request_.body = std::string();
  }

  void OnReadError(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) return SendTooLarge();
    const bool parse_error = ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
                             ec != bhttp::error::end_of_stream &&
                             ec != bhttp::error::partial_message;
    if (!parse_error) return Close();  // timeout, reset, EOF, stop: just drop the connection
    // A real parse error: say so, then close.
    keep_alive_ = false;
    DoWriteResponse(ctx_->router.Error(400, "BAD_REQUEST", "Malformed HTTP request"),
                    /*drain_after=*/false);
  }

  void SendTooLarge() {
    keep_alive_ = false;
    DoWriteResponse(
        ctx_->router.Error(413, "PAYLOAD_TOO_LARGE",
                      absl::StrCat("Request body exceeds the limit of ",
                                   ctx_->options.max_body_bytes, " bytes")),
        /*drain_after=*/true);
  }

  // Method, target, path, query and headers of `msg` into request_ (no body).
  void FillRequestHead(const bhttp::request<bhttp::string_body>& msg) {
    // The previous request's strings are overwritten in place: on a keep-alive connection their
    // memory is reused instead of freed and allocated again.
    RecycleBody();
    request_.body.clear();
    request_.query.clear();
    request_.params.clear();
    const beast::string_view method = msg.method_string();
    request_.method.assign(method.data(), method.size());
    const beast::string_view raw_target = msg.target();
    request_.target.assign(raw_target.data(), raw_target.size());
    request_.remote_address.assign(remote_);
    absl::string_view target = request_.target;
    size_t q = target.find('?');
    const absl::string_view raw_path = target.substr(0, q);
    if (raw_path.find('%') == absl::string_view::npos) {
      request_.path.assign(raw_path.data(), raw_path.size());  // nothing to decode
    } else {
      request_.path = core::PercentDecode(raw_path, /*plus_is_space=*/false);
    }
    if (q != absl::string_view::npos) {
      for (absl::string_view kv : absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
        size_t eq = kv.find('=');
        std::string key = core::PercentDecode(kv.substr(0, eq), true);
        std::string value =
            eq == absl::string_view::npos ? "" : core::PercentDecode(kv.substr(eq + 1), true);
        request_.query.emplace(std::move(key), std::move(value));
      }
    }
    size_t n = 0;
    for (const auto& field : msg) {
      const beast::string_view name = field.name_string();
      const beast::string_view value = field.value();
      if (n == request_.headers.size()) request_.headers.emplace_back();
      auto& [k, v] = request_.headers[n++];
      k.assign(name.data(), name.size());
      absl::AsciiStrToLower(&k);
      v.assign(value.data(), value.size());
    }
    request_.headers.erase(request_.headers.begin() + n, request_.headers.end());
  }

  void OnReadBody() {
    auto msg = parser_->release();
    keep_alive_ = msg.keep_alive();
    // An idle keep-alive connection should not pin the big read buffer.
    if (buffer_.size() == 0 && buffer_.capacity() > 64 * 1024) buffer_.shrink_to_fit();
    DisarmDeadline();
    FillRequestHead(msg);
    request_.body = std::move(body_);
    body_ = std::string();
    Dispatch();
  }

  void Dispatch() {
    auto responder = std::make_shared<Responder>(shared_from_this());
    if (!ctx_->options.cors_origin.empty() && request_.method == "OPTIONS") {
      Response r;
      r.status = 204;
      r.headers = {{"Access-Control-Allow-Methods", "GET,POST,PUT,DELETE,OPTIONS"},
                   {"Access-Control-Allow-Headers", "Content-Type,Authorization"},
                   {"Access-Control-Max-Age", "86400"}};
      responder->Send(std::move(r));
      return;
    }
    bool path_matched = false;
    const Router::Route* route =
        ctx_->router.Match(request_.method, request_.path, &request_.params, &path_matched);
    if (route == nullptr) {
      responder->Send(ctx_->router.NotFound(request_));
      return;
    }
    if (route->execution == Execution::kWorkerPool) {
      // request_ stays as it is until this request is answered: the responder keeps the
      // session alive, and the next request is read only after the answer is written.
      asio::post(*ctx_->workers, [ctx = ctx_, route, &request = request_,
                                  responder = std::move(responder)]() mutable {
        RunHandler(*ctx, *route, request, std::move(responder));
      });
      return;
    }
    RunHandler(*ctx_, *route, request_, std::move(responder));
  }

  static void RunHandler(const HttpServer::Context& ctx, const Router::Route& route,
                         const Request& request, std::shared_ptr<Responder> responder) {
    try {
      route.handler(request, responder);
    } catch (const std::exception& e) {
      // Handlers should not throw; this keeps a bug from killing the process.
      responder->Send(ctx.router.Error(500, "INTERNAL_ERROR", e.what()));
    } catch (...) {
      responder->Send(ctx.router.Error(500, "INTERNAL_ERROR", "unknown error"));
    }
  }

  // ---- writing ----
  std::string FormatHead(int status, const HeaderList& headers, bool chunked,
                         size_t content_length) {
    // The buffer of the previous answer's head (see DoWriteNext): no allocation per answer.
    std::string head = std::move(spare_head_);
    head.clear();
    absl::StrAppend(&head, "HTTP/1.1 ", status, " ", ReasonPhrase(status), "\r\n");
    bool has_ct = false;
    for (const auto& [k, v] : headers) {
      if (absl::EqualsIgnoreCase(k, "content-length") ||
          absl::EqualsIgnoreCase(k, "transfer-encoding") ||
          absl::EqualsIgnoreCase(k, "connection")) {
        continue;
      }
      if (absl::EqualsIgnoreCase(k, "content-type")) has_ct = true;
      absl::StrAppend(&head, k, ": ", v, "\r\n");
    }
    if (!has_ct && (chunked || content_length > 0)) {
      absl::StrAppend(&head, "Content-Type: application/octet-stream\r\n");
    }
    if (!ctx_->options.cors_origin.empty()) {
      absl::StrAppend(&head, "Access-Control-Allow-Origin: ", ctx_->options.cors_origin, "\r\n");
      if (ctx_->options.cors_origin != "*") absl::StrAppend(&head, "Vary: Origin\r\n");
    }
    if (chunked) {
      absl::StrAppend(&head, "Transfer-Encoding: chunked\r\n");
    } else {
      absl::StrAppend(&head, "Content-Length: ", content_length, "\r\n");
    }
    if (stopping_) keep_alive_ = false;
    absl::StrAppend(&head, "Connection: ", keep_alive_ ? "keep-alive" : "close", "\r\n\r\n");
    return head;
  }

  void DoWriteResponse(Response r, bool drain_after) {
    if (closed_) return;
    status_ = r.status;
    drain_after_ = drain_after;
    std::string head = FormatHead(r.status, r.headers, /*chunked=*/false, r.body.size());
    stream_ended_ = true;
    // Head and body go out in one gathered write: a large body is never copied.
    Enqueue(std::move(head), std::move(r.body));
  }

  void Enqueue(std::string bytes, std::string body = std::string()) {
    if (closed_) return;
    out_.push_back(OutBuffer{std::move(bytes), std::move(body)});
    if (!writing_) DoWriteNext();
  }

  void DoWriteNext() {
    // Most answers fit the socket's send buffer: they are written at once, without arming the
    // write deadline or a trip through the event loop. What does not fit goes out asynchronously
    // under the deadline.
    while (!out_.empty()) {
      const OutBuffer& front = out_.front();
      const size_t total = front.head.size() + front.body.size();
      std::array<asio::const_buffer, 2> buffers = {asio::buffer(front.head),
                                                   asio::buffer(front.body)};
      beast::error_code ec;
      auto& socket = stream_.socket();
      if (!socket.non_blocking()) socket.non_blocking(true, ec);
      const size_t written = ec ? 0 : socket.write_some(buffers, ec);
      if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return Close();
      if (written == total) {
        // Stream chunks travel as heads too: a big one is not kept.
        if (front.head.capacity() > spare_head_.capacity() && front.head.capacity() <= 4096) {
          spare_head_ = std::move(out_.front().head);
        }
        out_.pop_front();
        continue;
      }
      writing_ = true;
      ArmDeadline(ctx_->options.write_timeout);
      const size_t head_done = std::min(written, front.head.size());
      buffers = {asio::buffer(front.head) + head_done,
                 asio::buffer(front.body) + (written - head_done)};
      asio::async_write(stream_, buffers,
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return self->Close();
                          self->out_.pop_front();
                          self->DoWriteNext();
                        });
      return;
    }
    writing_ = false;
    MaybeFinishStream();
  }

  void MaybeFinishStream() {
    if (writing_ || !out_.empty() || !stream_ended_ || closed_) return;
    stream_ended_ = false;
    if (ctx_->options.access_log) {
      ctx_->options.access_log(request_, status_, absl::Now() - start_);
    }
    if (drain_after_) return DrainAndClose();
    if (!keep_alive_ || stopping_) return Shutdown();
    DoReadHeader();
  }

  // After an early error response, read (and drop) what the client still sends for a moment,
  // so closing does not reset the connection before it has read our answer.
  void DrainAndClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    drain_buf_.resize(64 * 1024);
    ArmDeadline(absl::Seconds(2));
    DoDrain();
  }

  void DoDrain() {
    stream_.async_read_some(asio::buffer(drain_buf_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->DoDrain();
                            });
  }

  // The stream's timer guards body reads, writes that did not complete at once, and draining.
  void ArmDeadline(absl::Duration d) {
    deadline_armed_ = true;
    stream_.expires_after(ToChrono(d));
  }
  void DisarmDeadline() {
    if (!deadline_armed_) return;
    deadline_armed_ = false;
    stream_.expires_never();
  }

  void Shutdown() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    Close();
  }

  void Close() {
    if (closed_.exchange(true)) return;
    beast::error_code ec;
    stream_.socket().close(ec);
  }

  std::shared_ptr<HttpServer::Context> ctx_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Request request_;
  std::string body_;  // the body being read
  size_t body_read_ = 0;
  size_t body_expected_ = 0;  // its Content-Length
  const std::string ip_;
  bool registered_ = false;  // counted in ctx_->sessions / connections_per_ip
  std::atomic<int64_t> idle_since_{0};
  // Earlier requests' body buffers, kept for the next ones (see DoReadBody).
  std::string spare_small_, spare_large_;
  std::string remote_;
  struct OutBuffer {
    std::string head;
    std::string body;
  };
  std::deque<OutBuffer> out_;
  std::string spare_head_;  // a written head's buffer, reused by the next FormatHead
  std::vector<char> drain_buf_;
  absl::Time start_;
  int status_ = 0;
  bool writing_ = false;
  bool deadline_armed_ = false;
  bool stream_ended_ = false;
  bool keep_alive_ = true;
  bool drain_after_ = false;
  bool idle_ = false;
  bool stopping_ = false;
  std::atomic<bool> closed_{false};
};

// The session that has waited longest for a request (of `ip`, or of anyone if empty), or null.
// Caller holds ctx->mu.
std::shared_ptr<Session> OldestIdleLocked(HttpServer::Context& ctx, const std::string& ip) {
  std::shared_ptr<Session> oldest;
  int64_t oldest_since = 0;
  for (auto& [ptr, weak] : ctx.sessions) {
    const int64_t since = ptr->idle_since();
    if (since == 0 || (!ip.empty() && ptr->ip() != ip)) continue;
    if (oldest == nullptr || since < oldest_since) {
      if (auto s = weak.lock()) {
        oldest = std::move(s);
        oldest_since = since;
      }
    }
  }
  return oldest;
}

void DoAccept(std::shared_ptr<HttpServer::Context> ctx);

// How often the head-read deadline is checked: a fraction of read_timeout, within [10 ms, 1 s].
std::chrono::steady_clock::duration SweepPeriod(const HttpServerOptions& options) {
  return ToChrono(std::clamp(options.read_timeout / 4, absl::Milliseconds(10), absl::Seconds(1)));
}

// Closes connections that have waited longer than read_timeout for (the rest of) a request head,
// then runs again one period later. Weak: a pending sweep does not keep the server alive.
void SweepIdle(std::weak_ptr<HttpServer::Context> weak) {
  std::shared_ptr<HttpServer::Context> ctx = weak.lock();
  if (ctx == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(ctx->mu);
    if (ctx->stopping) return;
    const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    const int64_t limit = ToChrono(ctx->options.read_timeout).count();
    for (auto& [ptr, session_weak] : ctx->sessions) {
      const int64_t since = ptr->idle_since();
      if (since == 0 || now - since < limit) continue;
      if (auto s = session_weak.lock()) s->EvictLocked();
    }
  }
  ctx->sweep->expires_after(SweepPeriod(ctx->options));
  ctx->sweep->async_wait([weak](beast::error_code ec) {
    if (ec == asio::error::operation_aborted) return;
    SweepIdle(weak);
  });
}

// Out of file descriptors: accepting again at once fails again and spins. Make room (close the
// longest-idle connection) and retry a little later.
void BackOffAccept(std::shared_ptr<HttpServer::Context> ctx) {
  {
    std::lock_guard<std::mutex> lock(ctx->mu);
    if (auto victim = OldestIdleLocked(*ctx, "")) victim->EvictLocked();
  }
  ctx->accept_backoff->expires_after(kAcceptBackoff);
  ctx->accept_backoff->async_wait([ctx](beast::error_code ec) {
    if (ec == asio::error::operation_aborted || !ctx->acceptor->is_open()) return;
    DoAccept(ctx);
  });
}

void DoAccept(std::shared_ptr<HttpServer::Context> ctx) {
  ctx->acceptor->async_accept(
      *ctx->iocs[ctx->next_ioc++ % ctx->iocs.size()],
      [ctx](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !ctx->acceptor->is_open()) return;
        {
          std::lock_guard<std::mutex> lock(ctx->mu);
          if (ctx->stopping) return;
        }
        if (ec == asio::error::no_descriptors || ec.value() == ENFILE ||
            ec == asio::error::no_buffer_space || ec == asio::error::no_memory) {
          return BackOffAccept(ctx);
        }
        if (!ec) {
          beast::error_code ignored;
          socket.set_option(tcp::no_delay(true), ignored);
          auto ep = socket.remote_endpoint(ignored);
          std::string ip = ignored ? std::string() : ep.address().to_string();
          std::shared_ptr<Session> victim;
          bool admit = true;
          auto session = std::make_shared<Session>(std::move(socket), ctx, ip);
          {
            std::lock_guard<std::mutex> lock(ctx->mu);
            auto per_ip = ctx->connections_per_ip.find(ip);
            if (per_ip != ctx->connections_per_ip.end() &&
                per_ip->second >= ctx->options.max_connections_per_ip) {
              victim = OldestIdleLocked(*ctx, ip);
              admit = victim != nullptr;
            } else if (static_cast<int>(ctx->sessions.size()) >= ctx->max_connections) {
              victim = OldestIdleLocked(*ctx, "");
              admit = victim != nullptr;
            }
            if (victim) victim->EvictLocked();
            // Counted at once, so a burst of accepts sees the caps.
            if (admit) session->RegisterLocked();
          }
          if (admit) session->Start();
          // Not admitted: the session (and its socket) is destroyed here.
        }
        DoAccept(ctx);
      });
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions options)
    : ctx_(std::make_shared<Context>(std::move(options))) {
  const int n = std::max(1, ctx_->options.threads);
  for (int i = 0; i < n; ++i) ctx_->iocs.push_back(std::make_unique<asio::io_context>(1));
}

HttpServer::~HttpServer() { Stop(); }

Router& HttpServer::router() { return ctx_->router; }

const Router& HttpServer::router() const { return ctx_->router; }

absl::Status HttpServer::Start() {
  if (started_) return absl::FailedPreconditionError("server already started");
  beast::error_code ec;
  auto address = asio::ip::make_address(ctx_->options.host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad host '", ctx_->options.host, "'"));
  tcp::endpoint endpoint(address, static_cast<uint16_t>(ctx_->options.port));
  ctx_->acceptor.emplace(*ctx_->iocs[0]);
  auto& acc = *ctx_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", ctx_->options.host, ":",
                                               ctx_->options.port, ": ", ec.message()));
  }
  port_ = acc.local_endpoint(ec).port();
  ctx_->max_connections = std::max(1, ctx_->options.max_connections);
  if (struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    const int fd_room = static_cast<int>(rl.rlim_cur) - kFdReserve;
    ctx_->max_connections = std::max(8, std::min(ctx_->max_connections, fd_room));
  }
  ctx_->accept_backoff.emplace(ctx_->acceptor->get_executor());
  ctx_->workers.emplace(static_cast<size_t>(std::max(1, ctx_->options.worker_threads)));
  started_ = true;
  ctx_->sweep.emplace(*ctx_->iocs[0]);
  SweepIdle(ctx_);
  DoAccept(ctx_);
  for (size_t i = 0; i < ctx_->iocs.size(); ++i) {
    threads_.emplace_back([ctx = ctx_, i] {
      // run() returns once stop() is called; the work guard keeps an idle io_context running.
      asio::io_context& ioc = *ctx->iocs[i];
      auto guard = asio::make_work_guard(ioc);
      ioc.run();
    });
  }
  return absl::OkStatus();
}

void HttpServer::StopOnSignals() {
  ctx_->signals.emplace(*ctx_->iocs[0], SIGINT, SIGTERM);
  ctx_->signals->async_wait([this](beast::error_code ec, int) {
    if (!ec) RequestStop();
  });
}

void HttpServer::RequestStop() {
  std::lock_guard<std::mutex> lock(ctx_->mu);
  ctx_->stop_requested = true;
  ctx_->cv.notify_all();
}

void HttpServer::WaitForStopRequest() {
  std::unique_lock<std::mutex> lock(ctx_->mu);
  ctx_->cv.wait(lock, [&] { return ctx_->stop_requested; });
}

void HttpServer::Wait() {
  WaitForStopRequest();
  Stop();
}

void HttpServer::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard<std::mutex> lock(ctx_->mu);
    ctx_->stopping = true;
    ctx_->stop_requested = true;
    for (auto& [ptr, weak] : ctx_->sessions) {
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
    }
  }
  asio::post(ctx_->acceptor->get_executor(), [ctx = ctx_] {
    beast::error_code ec;
    ctx->acceptor->close(ec);
    if (ctx->accept_backoff) ctx->accept_backoff->cancel();
    if (ctx->sweep) ctx->sweep->cancel();
    if (ctx->signals) ctx->signals->cancel(ec);
  });
  for (auto& s : sessions) s->OnServerStop();
  sessions.clear();
  {
    std::unique_lock<std::mutex> lock(ctx_->mu);
    ctx_->cv.wait_for(lock, ToChrono(ctx_->options.stop_grace),
                      [&] { return ctx_->sessions.empty(); });
    for (auto& [ptr, weak] : ctx_->sessions) {
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
    }
  }
  for (auto& s : sessions) s->ForceClose();
  sessions.clear();
  // Give forced closes a moment to run their completion handlers, then stop the threads.
  {
    std::unique_lock<std::mutex> lock(ctx_->mu);
    ctx_->cv.wait_for(lock, std::chrono::milliseconds(500),
                      [&] { return ctx_->sessions.empty(); });
  }
  for (auto& ioc : ctx_->iocs) ioc->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  ctx_->workers->join();  // handlers still running finish; their answers go nowhere
}

int HttpServer::open_connections() const {
  std::lock_guard<std::mutex> lock(ctx_->mu);
  return static_cast<int>(ctx_->sessions.size());
}

}  // namespace fastest::net
