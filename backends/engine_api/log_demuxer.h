// File: backends/engine_api/log_demuxer.h
//
// LogDemuxer: splits the Engine API's multiplexed log stream (container without a TTY) into
// stdout/stderr pieces. Each frame is an 8-byte header [stream, 0, 0, 0, size as uint32 big
// endian] followed by `size` payload bytes; stream 1 = stdout, 2 = stderr (0 = stdin, delivered as
// stdout). Chunks from the socket may split a header or a payload anywhere, so the demuxer keeps the
// partial header between Feed() calls and hands payload bytes on as soon as they arrive (a frame's
// payload may reach the sink in several pieces, always in order).
//
// Example:
//   LogDemuxer demux([&](int stream, absl::string_view data) { out[stream] += data; return true; });
//   for (chunk : chunks) if (!demux.Feed(chunk)) break;   // false: the sink asked to stop
//   if (!demux.AtFrameBoundary()) ... truncated stream
#ifndef FASTEST_BACKENDS_ENGINE_API_LOG_DEMUXER_H_
#define FASTEST_BACKENDS_ENGINE_API_LOG_DEMUXER_H_

#include <cstddef>
#include <cstdint>
#include <functional>

#include "absl/strings/string_view.h"

namespace fastest::backends::engine_api {

class LogDemuxer {
 public:
  // Returns false to stop; Feed then returns false and ignores further input.
  using Sink = std::function<bool(int stream, absl::string_view data)>;

  explicit LogDemuxer(Sink sink);

  // Feed: consumes one chunk. False once the sink returned false.
  bool Feed(absl::string_view chunk);

  // AtFrameBoundary: true when no header or payload is half-read (a clean end of stream).
  bool AtFrameBoundary() const { return header_len_ == 0 && remaining_ == 0; }

  // stopped: the sink asked to stop.
  bool stopped() const { return stopped_; }

 private:
  Sink sink_;
  unsigned char header_[8];
  size_t header_len_ = 0;   // header bytes collected so far
  uint32_t remaining_ = 0;  // payload bytes still to deliver for the current frame
  int stream_ = 1;
  bool stopped_ = false;
};

}  // namespace fastest::backends::engine_api

#endif  // FASTEST_BACKENDS_ENGINE_API_LOG_DEMUXER_H_
