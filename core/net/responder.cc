#include "core/net/responder.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fastest::net {

Responder::Responder(std::shared_ptr<internal::ResponseSink> sink) : sink_(std::move(sink)) {}

Responder::~Responder() {
  const State state = state_.load();
  if (state == State::kNew) {
    sink_->SendError(500, "INTERNAL_ERROR", "handler did not respond");
  } else if (state == State::kStreaming) {
    sink_->EndStream();
  }
}

void Responder::Send(Response response) {
  State expected = State::kNew;
  if (!state_.compare_exchange_strong(expected, State::kDone)) return;
  sink_->SendResponse(std::move(response));
}

bool Responder::StartStream(int status, HeaderList headers) {
  absl::MutexLock lock(&mu_);  // a Write from another thread waits for the head
  State expected = State::kNew;
  if (!state_.compare_exchange_strong(expected, State::kStreaming)) return false;
  sink_->SendStreamHead(status, std::move(headers));
  return true;
}

bool Responder::Write(absl::string_view data) {
  absl::MutexLock lock(&mu_);
  if (state_.load() != State::kStreaming || sink_->IsClosed()) return false;
  if (data.empty()) return true;  // an empty chunk would end the stream
  sink_->SendStreamChunk(std::string(data));
  return true;
}

bool Responder::SendEvent(absl::string_view event, absl::string_view data) {
  std::string frame;
  if (!event.empty()) absl::StrAppend(&frame, "event: ", event, "\n");
  for (absl::string_view line : absl::StrSplit(data, '\n')) {
    absl::StrAppend(&frame, "data: ", line, "\n");
  }
  frame += "\n";
  return Write(frame);
}

void Responder::End() {
  {
    absl::MutexLock lock(&mu_);
    if (state_.load() != State::kStreaming) return;
    state_.store(State::kDone);
  }
  sink_->EndStream();
}

bool Responder::responded() const { return state_.load() != State::kNew; }

bool Responder::client_closed() const { return sink_->IsClosed(); }

}  // namespace fastest::net
