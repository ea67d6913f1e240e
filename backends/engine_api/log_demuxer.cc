#include "backends/engine_api/log_demuxer.h"

#include <algorithm>
#include <utility>

namespace fastest::backends::engine_api {

LogDemuxer::LogDemuxer(Sink sink) : sink_(std::move(sink)) {}

bool LogDemuxer::Feed(absl::string_view chunk) {
  if (stopped_) return false;
  while (!chunk.empty()) {
    if (remaining_ == 0) {
      // Collect the 8-byte header, possibly across chunks.
      size_t take = std::min(sizeof(header_) - header_len_, chunk.size());
      std::copy(chunk.begin(), chunk.begin() + take, header_ + header_len_);
      header_len_ += take;
      chunk.remove_prefix(take);
      if (header_len_ < sizeof(header_)) return true;
      header_len_ = 0;
      stream_ = header_[0] == 2 ? 2 : 1;  // stdin (0) never carries output; treat as stdout
      remaining_ = (static_cast<uint32_t>(header_[4]) << 24) |
                   (static_cast<uint32_t>(header_[5]) << 16) |
                   (static_cast<uint32_t>(header_[6]) << 8) | static_cast<uint32_t>(header_[7]);
      continue;  // a zero-size frame is legal: nothing to deliver
    }
    size_t take = std::min<size_t>(remaining_, chunk.size());
    remaining_ -= static_cast<uint32_t>(take);
    if (!sink_(stream_, chunk.substr(0, take))) {
      stopped_ = true;
      return false;
    }
    chunk.remove_prefix(take);
  }
  return true;
}

}  // namespace fastest::backends::engine_api
