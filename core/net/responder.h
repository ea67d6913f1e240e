// File: core/net/responder.h
//
// Responder: how a handler answers one request, now or later, from any thread.
//
//   - Send(Response): a complete response (Content-Length). Only the first Send/StartStream of a
//     Responder counts; later calls are ignored.
//   - StartStream(status, headers) + Write(...)... + End(): a chunked response, e.g.
//     server-sent events (`Content-Type: text/event-stream`, see SendEvent). Write returns false
//     once the client is gone so a producer can stop.
//   - A Responder dropped without an answer sends 500 INTERNAL_ERROR "handler did not respond"
//     (in the router's error shape),
//     and a stream dropped without End() is ended, so a connection is never left hanging.
//
// Thread-safety: all methods may be called from any thread; they post to the connection strand.
//
// Example (answer later from a worker thread):
//   router.Add("POST", "/slow", [&pool](const Request& req, std::shared_ptr<Responder> r) {
//     pool.Schedule([r] { r->Send(Response::Json(200, {{"done", true}})); });
//   });
// Example (SSE):
//   r->StartStream(200, {{"Content-Type", "text/event-stream"}});
//   r->SendEvent("message", "{\"x\":1}");
//   r->End();
#ifndef FASTEST_CORE_NET_RESPONDER_H_
#define FASTEST_CORE_NET_RESPONDER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/net/http_types.h"

namespace fastest::net {

namespace internal {
// Implemented by the connection; every call is thread-safe and asynchronous.
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual void SendResponse(Response response) = 0;
  // An error in the application's error shape (Router::Error).
  virtual void SendError(int http_status, std::string code, std::string message) = 0;
  virtual void SendStreamHead(int status, HeaderList headers) = 0;
  virtual void SendStreamChunk(std::string data) = 0;
  virtual void EndStream() = 0;
  virtual bool IsClosed() const = 0;
};
}  // namespace internal

class Responder {
 public:
  explicit Responder(std::shared_ptr<internal::ResponseSink> sink);
  ~Responder();
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  void Send(Response response);
  // Returns false if a response was already started.
  bool StartStream(int status, HeaderList headers);
  // Returns false if no stream is open or the client disconnected.
  bool Write(absl::string_view data);
  // One server-sent event: "event: <event>\n" (omitted if empty) + "data: <line>\n"... + "\n".
  bool SendEvent(absl::string_view event, absl::string_view data);
  void End();

  bool responded() const;
  bool client_closed() const;

 private:
  enum class State { kNew, kStreaming, kDone };
  // Atomic: a plain Send (the common case) takes no lock; mu_ orders a stream's head, chunks and
  // end against each other.
  absl::Mutex mu_;
  std::atomic<State> state_{State::kNew};
  std::shared_ptr<internal::ResponseSink> sink_;
};

}  // namespace fastest::net

#endif  // FASTEST_CORE_NET_RESPONDER_H_
