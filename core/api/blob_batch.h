// File: core/api/blob_batch.h
//
// The framing of fastest's batch blob transfer (a fastest extension of the /v1 API; see
// server/README.md "Batch blob transfer"):
//
//   POST /v1/blobs/batch-upload     request body  = frames
//   POST /v1/blobs/batch-download   response body = frames
//
// A frame is an ASCII header line, then the raw bytes:
//
//   <64 lowercase hex sha256> SP <decimal byte count> LF <exactly that many bytes>
//   <64 lowercase hex sha256> SP "missing" LF                 (download only: not stored)
//
// Frames follow each other with nothing in between; the body ends after the last frame. The
// decimal count has no sign, no leading '+', at most 19 digits; the header line is at most
// kMaxHeaderBytes long.
//
// BlobBatchReader parses frames incrementally (bytes may arrive in any chunking) and hands out each
// complete frame once; a frame fully inside one Feed() chunk is not copied.
//
// Example:
//   std::string body;
//   AppendBlobFrame(&body, Sha256Hex("hello"), "hello");
//   BlobBatchReader reader(64 << 20);
//   FASTEST_RETURN_IF_ERROR(reader.Feed(body, [](const BlobFrame& f) { ...; return absl::OkStatus(); }));
//   FASTEST_RETURN_IF_ERROR(reader.Finish());
#ifndef FASTEST_CORE_API_BLOB_BATCH_H_
#define FASTEST_CORE_API_BLOB_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fastest::core {

inline constexpr char kBlobBatchContentType[] = "application/x-fastest-blob-batch";
inline constexpr size_t kMaxBlobBatchHeaderBytes = 96;

struct BlobFrame {
  absl::string_view hash;  // 64 lowercase hex chars
  bool missing = false;    // a "missing" frame (no data)
  absl::string_view data;  // valid only during the callback
};

// Appends one data frame / one "missing" frame to *out.
void AppendBlobFrame(std::string* out, absl::string_view hash, absl::string_view data);
void AppendMissingFrame(std::string* out, absl::string_view hash);
// The header line of a data frame (for writing the bytes yourself after it).
std::string BlobFrameHeader(absl::string_view hash, uint64_t size);

class BlobBatchReader {
 public:
  using FrameCallback = std::function<absl::Status(const BlobFrame&)>;

  // Frames larger than max_frame_bytes are malformed (protects against absurd allocations).
  // allow_missing: whether "missing" frames are legal (download responses only).
  explicit BlobBatchReader(uint64_t max_frame_bytes, bool allow_missing = true);

  // Parses what `chunk` completes. InvalidArgument("malformed blob batch: ...") on bad framing;
  // a callback error is returned as is. After an error the reader stays failed.
  absl::Status Feed(absl::string_view chunk, const FrameCallback& on_frame);
  // InvalidArgument if the input ended inside a frame.
  absl::Status Finish() const;

  uint64_t frames() const { return frames_; }
  void Reset();

 private:
  // Parses frames at the front of `data`; returns bytes consumed or an error.
  absl::Status ParseFrom(absl::string_view data, size_t* consumed, const FrameCallback& on_frame);

  uint64_t max_frame_bytes_;
  bool allow_missing_;
  std::string pending_;  // an incomplete frame carried over to the next Feed()
  uint64_t frames_ = 0;
  absl::Status error_;
};

}  // namespace fastest::core

#endif  // FASTEST_CORE_API_BLOB_BATCH_H_
