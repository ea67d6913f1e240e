#include "core/api/blob_batch.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fastest::core {
namespace {

bool IsHashHex(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status Malformed(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("malformed blob batch: ", why));
}

}  // namespace

void AppendBlobFrame(std::string* out, absl::string_view hash, absl::string_view data) {
  absl::StrAppend(out, hash, " ", data.size(), "\n");
  out->append(data.data(), data.size());
}

void AppendMissingFrame(std::string* out, absl::string_view hash) {
  absl::StrAppend(out, hash, " missing\n");
}

std::string BlobFrameHeader(absl::string_view hash, uint64_t size) {
  return absl::StrCat(hash, " ", size, "\n");
}

BlobBatchReader::BlobBatchReader(uint64_t max_frame_bytes, bool allow_missing)
    : max_frame_bytes_(max_frame_bytes), allow_missing_(allow_missing) {}

void BlobBatchReader::Reset() {
  pending_.clear();
  frames_ = 0;
  error_ = absl::OkStatus();
}

absl::Status BlobBatchReader::ParseFrom(absl::string_view data, size_t* consumed,
                                        const FrameCallback& on_frame) {
  size_t pos = 0;
  while (pos < data.size()) {
    absl::string_view rest = data.substr(pos);
    size_t nl = rest.substr(0, kMaxBlobBatchHeaderBytes).find('\n');
    if (nl == absl::string_view::npos) {
      if (rest.size() >= kMaxBlobBatchHeaderBytes) return Malformed("header line too long");
      break;  // header not complete yet
    }
    absl::string_view header = rest.substr(0, nl);
    if (header.size() < 66 || header[64] != ' ' || !IsHashHex(header.substr(0, 64))) {
      return Malformed("a frame must start with \"<sha256 hex> <size>\\n\"");
    }
    BlobFrame frame;
    frame.hash = header.substr(0, 64);
    absl::string_view count = header.substr(65);
    if (count == "missing") {
      if (!allow_missing_) return Malformed("\"missing\" frame in an upload");
      frame.missing = true;
      ++frames_;
      if (absl::Status s = on_frame(frame); !s.ok()) return s;
      pos += nl + 1;
      continue;
    }
    uint64_t size = 0;
    if (count.empty() || count.size() > 19 || count[0] < '0' || count[0] > '9' ||
        !absl::SimpleAtoi(count, &size)) {
      return Malformed("bad size in frame header");
    }
    for (char c : count) {
      if (c < '0' || c > '9') return Malformed("bad size in frame header");
    }
    if (size > max_frame_bytes_) {
      return Malformed(absl::StrCat("frame of ", size, " bytes exceeds ", max_frame_bytes_));
    }
    if (rest.size() - (nl + 1) < size) break;  // body not complete yet
    frame.data = rest.substr(nl + 1, size);
    ++frames_;
    if (absl::Status s = on_frame(frame); !s.ok()) return s;
    pos += nl + 1 + size;
  }
  *consumed = pos;
  return absl::OkStatus();
}

absl::Status BlobBatchReader::Feed(absl::string_view chunk, const FrameCallback& on_frame) {
  if (!error_.ok()) return error_;
  size_t consumed = 0;
  if (pending_.empty()) {
    // Fast path: frames inside `chunk` are handed out without a copy.
    error_ = ParseFrom(chunk, &consumed, on_frame);
    if (!error_.ok()) return error_;
    pending_.assign(chunk.data() + consumed, chunk.size() - consumed);
    return absl::OkStatus();
  }
  // Complete the carried-over frame first, copying only what it still needs when possible.
  pending_.append(chunk.data(), chunk.size());
  error_ = ParseFrom(pending_, &consumed, on_frame);
  if (!error_.ok()) return error_;
  pending_.erase(0, consumed);
  return absl::OkStatus();
}

absl::Status BlobBatchReader::Finish() const {
  if (!error_.ok()) return error_;
  if (!pending_.empty()) return Malformed("body ends inside a frame");
  return absl::OkStatus();
}

}  // namespace fastest::core
