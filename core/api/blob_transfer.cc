// ApiClient's blob transfer: single blobs (memory, files, verified downloads) and the batch
// extension with its per-blob fallback.
#include "core/api/api_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/api/api_client_internal.h"
#include "core/api/blob_batch.h"
#include "core/concurrency/parallel_for.h"
#include "core/encoding/percent_encoding.h"
#include "core/http/http_status.h"
#include "core/retry/backoff.h"
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"

namespace fastest::core {
namespace {

// `hashes` without repeats, in first-seen order; InvalidArgument for one that is not a SHA-256.
absl::StatusOr<std::vector<std::string>> UniqueCheckedHashes(
    const std::vector<std::string>& hashes) {
  std::vector<std::string> unique;
  unique.reserve(hashes.size());
  std::unordered_set<std::string> seen;
  for (const std::string& h : hashes) {
    FASTEST_RETURN_IF_ERROR(CheckHash(h));
    if (seen.insert(h).second) unique.push_back(h);
  }
  return unique;
}

}  // namespace
// ---- Blobs ----

absl::StatusOr<std::vector<std::string>> ApiClient::MissingBlobs(
    const std::vector<std::string>& hashes) {
  FASTEST_ASSIGN_OR_RETURN(std::vector<std::string> unique, UniqueCheckedHashes(hashes));
  std::vector<std::string> missing;
  for (size_t begin = 0; begin < unique.size(); begin += kMaxHashesPerCall) {
    size_t end = std::min(unique.size(), begin + kMaxHashesPerCall);
    nlohmann::json body = {{"hashes", nlohmann::json::array()}};
    for (size_t i = begin; i < end; ++i) body["hashes"].push_back(unique[i]);
    FASTEST_ASSIGN_OR_RETURN(nlohmann::json j, CallJson("POST", "/v1/blobs/exists", &body));
    // Only "existing" is trusted: a hash in neither list (server cap) is treated as missing.
    std::unordered_set<std::string> existing;
    auto it = j.find("existing");
    if (it != j.end() && it->is_array()) {
      for (const auto& h : *it) {
        if (h.is_string()) existing.insert(h.get<std::string>());
      }
    }
    for (size_t i = begin; i < end; ++i) {
      if (existing.count(unique[i]) == 0) missing.push_back(unique[i]);
    }
  }
  return missing;
}

namespace {
absl::StatusOr<BlobUploadResult> ParseUpload(absl::string_view path, const HttpResponse& resp) {
  FASTEST_ASSIGN_OR_RETURN(nlohmann::json j, ParseBody("PUT", path, resp));
  BlobUploadResult r;
  if (j.contains("size") && j["size"].is_number_unsigned()) r.size = j["size"].get<uint64_t>();
  r.created = j.value("created", resp.status == 201);
  return r;
}
}  // namespace

absl::StatusOr<BlobUploadResult> ApiClient::UploadBlob(absl::string_view hash,
                                                       absl::string_view data) {
  FASTEST_RETURN_IF_ERROR(CheckHash(hash));
  std::string path = absl::StrCat("/v1/blobs/upload/", hash);
  auto make = [&]() {
    HttpRequest req;
    req.timeout = ToChrono(retry_.transfer_timeout);
    req.headers.emplace_back("Content-Type", "application/octet-stream");
    req.body = std::string(data);
    return req;
  };
  FASTEST_ASSIGN_OR_RETURN(HttpResponse resp, SendWithRetry("PUT", path, make, true));
  return ParseUpload(path, resp);
}

namespace {
// A file read through HttpRequest::body_reader; reopened for each attempt.
struct FileReader {
  int fd = -1;
  ~FileReader() {
    if (fd >= 0) close(fd);
  }
};
}  // namespace

absl::StatusOr<BlobUploadResult> ApiClient::UploadBlobFromFile(absl::string_view hash,
                                                               const std::string& file) {
  FASTEST_RETURN_IF_ERROR(CheckHash(hash));
  struct stat st;
  if (stat(file.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("stat ", file, ": ", std::strerror(errno)));
  }
  // Small files: one buffered request is cheaper than a streamed one.
  if (st.st_size <= (1 << 20)) {
    std::string data;
    data.resize(st.st_size);
    int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return absl::NotFoundError(absl::StrCat("open ", file, ": ", std::strerror(errno)));
    size_t got = 0;
    while (got < data.size()) {
      ssize_t n = read(fd, &data[got], data.size() - got);
      if (n <= 0) break;
      got += n;
    }
    close(fd);
    data.resize(got);
    return UploadBlob(hash, data);
  }
  std::string path = absl::StrCat("/v1/blobs/upload/", hash);
  auto reader = std::make_shared<FileReader>();
  auto make = [&, reader]() {
    if (reader->fd >= 0) close(reader->fd);
    reader->fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    HttpRequest req;
    req.timeout = ToChrono(retry_.transfer_timeout);
    req.headers.emplace_back("Content-Type", "application/octet-stream");
    req.body_size = st.st_size;
    int fd = reader->fd;
    req.body_reader = [fd](char* buf, size_t max) -> size_t {
      if (fd < 0) return 0;
      ssize_t n = read(fd, buf, max);
      return n > 0 ? static_cast<size_t>(n) : 0;
    };
    return req;
  };
  FASTEST_ASSIGN_OR_RETURN(HttpResponse resp, SendWithRetry("PUT", path, make, true));
  return ParseUpload(path, resp);
}

absl::StatusOr<std::string> ApiClient::DownloadBlob(absl::string_view hash) {
  FASTEST_RETURN_IF_ERROR(CheckHash(hash));
  return GetContent(absl::StrCat("/v1/blobs/download/", hash));
}

absl::StatusOr<std::string> ApiClient::DownloadVerifiedBlob(absl::string_view hash) {
  FASTEST_ASSIGN_OR_RETURN(std::string data, DownloadBlob(hash));
  std::string actual = Sha256Hex(data);
  if (actual != hash) {
    return absl::DataLossError(absl::StrCat("blob ", hash.substr(0, 16), "...: hash mismatch (got ",
                                            actual.substr(0, 16), "...)"));
  }
  return data;
}

absl::StatusOr<uint64_t> ApiClient::DownloadBlobToFile(absl::string_view hash,
                                                       const std::string& file) {
  FASTEST_RETURN_IF_ERROR(CheckHash(hash));
  std::string path = absl::StrCat("/v1/blobs/download/", hash);
  struct State {
    int fd = -1;
    Sha256Hasher hasher;
    uint64_t bytes = 0;
    bool write_failed = false;
    ~State() {
      if (fd >= 0) close(fd);
    }
  };
  auto state = std::make_shared<State>();
  auto make = [&, state]() {
    if (state->fd >= 0) close(state->fd);
    state->fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    state->hasher.Reset();
    state->bytes = 0;
    state->write_failed = state->fd < 0;
    HttpRequest req;
    req.timeout = ToChrono(retry_.transfer_timeout);
    req.on_body_chunk = [state](absl::string_view chunk) {
      if (state->fd < 0) return false;
      state->hasher.Update(chunk.data(), chunk.size());
      size_t off = 0;
      while (off < chunk.size()) {
        ssize_t n = write(state->fd, chunk.data() + off, chunk.size() - off);
        if (n <= 0) {
          state->write_failed = true;
          return false;
        }
        off += n;
      }
      state->bytes += chunk.size();
      return true;
    };
    return req;
  };
  absl::StatusOr<HttpResponse> resp = SendWithRetry("GET", path, make, true);
  auto fail = [&](absl::Status s) {
    unlink(file.c_str());
    return s;
  };
  if (state->write_failed) {
    return fail(absl::InternalError(absl::StrCat("write ", file, ": ", std::strerror(errno))));
  }
  if (!resp.ok()) return fail(resp.status());
  const std::string actual = state->hasher.FinishHex();
  if (actual != hash) {
    return fail(absl::DataLossError(absl::StrCat("blob ", hash.substr(0, 16),
                                                 "...: hash mismatch (got ", actual.substr(0, 16),
                                                 "...)")));
  }
  return state->bytes;
}

// ---- Batch blob transfer ----

namespace {

constexpr char kBatchUploadPath[] = "/v1/blobs/batch-upload";
constexpr char kBatchDownloadPath[] = "/v1/blobs/batch-download";

// Appends the whole file to *out; returns its size.
absl::StatusOr<uint64_t> AppendFile(const std::string& path, std::string* out,
                                    absl::string_view hash) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("stat ", path, ": ", std::strerror(e)));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  *out += BlobFrameHeader(hash, size);
  const size_t start = out->size();
  out->resize(start + size);
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, &(*out)[start + got], size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  if (got != size) {
    return absl::DataLossError(absl::StrCat("read ", path, ": file shrank while uploading"));
  }
  return static_cast<uint64_t>(size);
}

}  // namespace

bool ApiClient::NoteBatchUnsupported(const absl::Status& status) {
  std::optional<ApiErrorInfo> info = GetApiErrorInfo(status);
  // The original API has no such route: 404 (or 405 from a proxy in front of it).
  if (info && (info->http_status == 404 || info->http_status == 405)) {
    batch_support_ = BatchSupport::kUnsupported;
    return true;
  }
  return false;
}

absl::StatusOr<BatchUploadResult> ApiClient::UploadPerBlob(
    const std::vector<const BlobFile*>& files, int parallelism) {
  std::atomic<uint64_t> created{0}, bytes{0};
  FASTEST_RETURN_IF_ERROR(ParallelFor(files.size(), parallelism, [&](size_t i) -> absl::Status {
    absl::StatusOr<BlobUploadResult> r = UploadBlobFromFile(files[i]->hash, files[i]->path);
    if (!r.ok()) return Annotate(r.status(), absl::StrCat("upload ", files[i]->path));
    if (r->created) ++created;
    bytes += r->size;
    return absl::OkStatus();
  }));
  BatchUploadResult result;
  result.blobs = files.size();
  result.created = created;
  result.bytes = bytes;
  result.requests = files.size();
  return result;
}

absl::StatusOr<BatchUploadResult> ApiClient::UploadBatchRequest(
    const std::vector<const BlobFile*>& files, const std::string& body) {
  // Sent from our buffer (no copy of several MB per request).
  auto make = [&]() {
    HttpRequest req;
    req.timeout = ToChrono(retry_.transfer_timeout);
    req.headers.emplace_back("Content-Type", kBlobBatchContentType);
    req.body_pieces = {body};
    return req;
  };
  return SendBatchUpload(
      files.size(), make, [&](size_t i) -> absl::string_view { return files[i]->hash; },
      [&](size_t i) { return files[i]->path; });
}

absl::StatusOr<BatchUploadResult> ApiClient::SendBatchUpload(
    size_t count, const std::function<HttpRequest()>& make,
    const std::function<absl::string_view(size_t)>& hash_of,
    const std::function<std::string(size_t)>& name_of) {
  FASTEST_ASSIGN_OR_RETURN(HttpResponse resp, SendWithRetry("POST", kBatchUploadPath, make, true));
  batch_support_ = BatchSupport::kSupported;
  FASTEST_ASSIGN_OR_RETURN(nlohmann::json j, ParseBody("POST", kBatchUploadPath, resp));
  auto it = j.find("results");
  if (it == j.end() || !it->is_array() || it->size() != count) {
    return absl::InternalError(absl::StrCat("POST ", kBatchUploadPath,
                                            ": response lacks one result per blob"));
  }
  BatchUploadResult result;
  result.requests = 1;
  for (size_t i = 0; i < count; ++i) {
    const nlohmann::json& r = (*it)[i];
    auto h = r.is_object() ? r.find("hash") : r.end();
    if (!r.is_object() || h == r.end() || !h->is_string() ||
        h->get_ref<const std::string&>() != hash_of(i)) {
      return absl::InternalError(absl::StrCat("POST ", kBatchUploadPath,
                                              ": results out of order"));
    }
    auto err = r.find("error");
    if (err != r.end()) {
      std::string code = err->is_object() ? err->value("code", "") : "";
      std::string message = err->is_object() ? err->value("message", "") : "";
      absl::Status s(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("POST ", kBatchUploadPath, ": upload ", name_of(i),
                                  ": HTTP 400 ", code, ": ", message));
      s.SetPayload(kPayloadUrl, absl::Cord(absl::StrCat("400 ", code)));
      return s;
    }
    ++result.blobs;
    if (r.value("created", false)) ++result.created;
    auto size = r.find("size");
    if (size != r.end() && size->is_number_unsigned()) result.bytes += size->get<uint64_t>();
  }
  return result;
}

absl::StatusOr<BatchUploadResult> ApiClient::UploadBlobs(const std::vector<BlobData>& blobs,
                                                         int fallback_parallelism) {
  for (const BlobData& b : blobs) FASTEST_RETURN_IF_ERROR(CheckHash(b.hash));
  BatchUploadResult total;
  auto per_blob = [&](size_t begin, size_t end) -> absl::StatusOr<BatchUploadResult> {
    std::atomic<uint64_t> created{0}, bytes{0};
    FASTEST_RETURN_IF_ERROR(
        ParallelFor(end - begin, fallback_parallelism, [&](size_t k) -> absl::Status {
          const BlobData& b = blobs[begin + k];
          absl::StatusOr<BlobUploadResult> r = UploadBlob(b.hash, b.data);
          if (!r.ok()) {
            return Annotate(r.status(), absl::StrCat("upload blob ", b.hash.substr(0, 16)));
          }
          if (r->created) ++created;
          bytes += r->size;
          return absl::OkStatus();
        }));
    BatchUploadResult r;
    r.blobs = end - begin;
    r.created = created;
    r.bytes = bytes;
    r.requests = end - begin;
    return r;
  };
  size_t begin = 0;
  while (begin < blobs.size()) {
    // One request: up to kMaxBlobsPerBatch blobs / kMaxBatchBodyBytes (at least one blob).
    size_t end = begin;
    uint64_t body_size = 0;
    std::vector<std::string> headers;  // frame headers of blobs[begin, end)
    while (end < blobs.size() && end - begin < kMaxBlobsPerBatch) {
      std::string header = BlobFrameHeader(blobs[end].hash, blobs[end].data.size());
      const uint64_t frame = header.size() + blobs[end].data.size();
      if (end > begin && body_size + frame > kMaxBatchBodyBytes) break;
      body_size += frame;
      headers.push_back(std::move(header));
      ++end;
    }
    absl::StatusOr<BatchUploadResult> r;
    if (batch_support_.load() != BatchSupport::kUnsupported) {
      // Gathered straight from the caller's buffers: each frame's header, then its bytes.
      auto make = [&]() {
        HttpRequest req;
        req.timeout = ToChrono(retry_.transfer_timeout);
        req.headers.emplace_back("Content-Type", kBlobBatchContentType);
        req.body_pieces.reserve(2 * headers.size());
        for (size_t i = begin; i < end; ++i) {
          req.body_pieces.push_back(headers[i - begin]);
          req.body_pieces.push_back(blobs[i].data);
        }
        return req;
      };
      r = SendBatchUpload(
          end - begin, make,
          [&, begin](size_t i) -> absl::string_view { return blobs[begin + i].hash; },
          [&, begin](size_t i) {
            return absl::StrCat("blob ", blobs[begin + i].hash.substr(0, 16), "...");
          });
      if (!r.ok() && NoteBatchUnsupported(r.status())) r = per_blob(begin, end);
    } else {
      r = per_blob(begin, end);
    }
    FASTEST_RETURN_IF_ERROR(r.status());
    total.Add(*r);
    begin = end;
  }
  return total;
}

absl::StatusOr<BatchUploadResult> ApiClient::UploadBlobFiles(const std::vector<BlobFile>& files,
                                                             int fallback_parallelism) {
  for (const BlobFile& f : files) FASTEST_RETURN_IF_ERROR(CheckHash(f.hash));
  BatchUploadResult total;
  std::vector<const BlobFile*> pending;
  std::vector<const BlobFile*> alone;  // too large for a batch: streamed one by one
  // Reused by the thread's later calls: no fresh multi-MB allocation (and page faults) per batch.
  thread_local std::string body;
  body.clear();
  // Sends what is pending as one batch (or per blob once the server is known not to have it).
  auto flush = [&]() -> absl::Status {
    if (pending.empty()) return absl::OkStatus();
    absl::StatusOr<BatchUploadResult> r;
    if (batch_support_.load() != BatchSupport::kUnsupported) {
      r = UploadBatchRequest(pending, body);
      if (!r.ok() && NoteBatchUnsupported(r.status())) r = UploadPerBlob(pending, fallback_parallelism);
    } else {
      r = UploadPerBlob(pending, fallback_parallelism);
    }
    pending.clear();
    body.clear();
    FASTEST_RETURN_IF_ERROR(r.status());
    total.Add(*r);
    return absl::OkStatus();
  };
  for (const BlobFile& f : files) {
    if (batch_support_.load() == BatchSupport::kUnsupported) {
      pending.push_back(&f);  // no body needed
      continue;
    }
    struct stat st;
    if (stat(f.path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) > kMaxBatchBodyBytes) {
      alone.push_back(&f);
      continue;
    }
    if (!pending.empty() &&
        (pending.size() >= kMaxBlobsPerBatch ||
         body.size() + static_cast<uint64_t>(st.st_size) > kMaxBatchBodyBytes)) {
      FASTEST_RETURN_IF_ERROR(flush());
    }
    FASTEST_RETURN_IF_ERROR(AppendFile(f.path, &body, f.hash).status());
    pending.push_back(&f);
  }
  FASTEST_RETURN_IF_ERROR(flush());
  if (!alone.empty()) {
    FASTEST_ASSIGN_OR_RETURN(BatchUploadResult r, UploadPerBlob(alone, fallback_parallelism));
    total.Add(r);
  }
  return total;
}

absl::Status ApiClient::DownloadPerBlob(const std::vector<std::string>& hashes,
                                        const BlobSink& sink, int parallelism) {
  return ParallelFor(hashes.size(), parallelism, [&](size_t i) -> absl::Status {
    FASTEST_ASSIGN_OR_RETURN(std::string data, DownloadVerifiedBlob(hashes[i]));
    return sink(hashes[i], data);
  });
}

absl::Status ApiClient::DownloadBatchRequest(const std::vector<std::string>& hashes,
                                             const BlobSink& sink, int fallback_parallelism) {
  // Shared by every attempt: what was delivered stays delivered, a retry asks only for the rest.
  struct State {
    std::unordered_map<std::string, bool> delivered;  // requested hash -> handed to the sink
    std::unordered_set<std::string> missing;
    BlobBatchReader reader{64ull << 20};
    std::string head;  // first bytes of the attempt's body, for an error status
    absl::Status sink_error;
  };
  auto state = std::make_shared<State>();
  for (const std::string& h : hashes) state->delivered.emplace(h, false);
  BlobBatchReader::FrameCallback on_frame = [&](const BlobFrame& f) -> absl::Status {
    std::string hash(f.hash);
    auto it = state->delivered.find(hash);
    if (it == state->delivered.end()) {
      return absl::DataLossError(absl::StrCat("POST ", kBatchDownloadPath,
                                              ": answer holds a blob that was not asked for"));
    }
    batch_support_ = BatchSupport::kSupported;  // a well-formed frame: the server has batches
    if (it->second) return absl::OkStatus();  // a retry re-sent it
    if (f.missing) {
      state->missing.insert(hash);
      return absl::OkStatus();
    }
    std::string actual = Sha256Hex(f.data);
    if (actual != hash) {
      return absl::DataLossError(absl::StrCat("blob ", hash.substr(0, 16),
                                              "...: hash mismatch (got ", actual.substr(0, 16),
                                              "...)"));
    }
    it->second = true;
    absl::Status s = sink(hash, f.data);
    if (!s.ok()) {
      state->sink_error = s;
      return absl::CancelledError("stopped by the blob sink");
    }
    return absl::OkStatus();
  };
  auto make = [&, state]() {
    state->reader.Reset();
    state->head.clear();
    state->missing.clear();
    nlohmann::json body = {{"hashes", nlohmann::json::array()}};
    for (const std::string& h : hashes) {
      if (!state->delivered[h]) body["hashes"].push_back(h);
    }
    HttpRequest req;
    req.timeout = ToChrono(retry_.transfer_timeout);
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = body.dump();
    req.on_body_chunk = [state, &on_frame](absl::string_view chunk) {
      if (state->head.size() < 4096) {
        state->head.append(chunk.data(), std::min(chunk.size(), 4096 - state->head.size()));
      }
      absl::Status s = state->reader.Feed(chunk, on_frame);
      if (s.ok()) return true;
      // Not our framing (an error body, say): keep reading; the status decides afterwards
      // (Finish() reports it for a 2xx answer). A sink or verification failure stops the transfer.
      if (absl::IsInvalidArgument(s) && state->sink_error.ok()) return true;
      if (state->sink_error.ok()) state->sink_error = s;
      return false;
    };
    return req;
  };
  absl::StatusOr<HttpResponse> resp =
      SendWithRetry("POST", kBatchDownloadPath, make, true, [state] { return state->head; });
  if (!state->sink_error.ok()) return state->sink_error;
  if (!resp.ok()) {
    if (NoteBatchUnsupported(resp.status())) {
      std::vector<std::string> rest;
      for (const std::string& h : hashes) {
        if (!state->delivered[h]) rest.push_back(h);
      }
      return DownloadPerBlob(rest, sink, fallback_parallelism);
    }
    std::optional<ApiErrorInfo> info = GetApiErrorInfo(resp.status());
    if (info && info->http_status == 413) {
      // Too much for one answer: halve what is left; a single blob goes the per-blob way.
      std::vector<std::string> rest;
      for (const std::string& h : hashes) {
        if (!state->delivered[h]) rest.push_back(h);
      }
      if (rest.size() <= 1) return DownloadPerBlob(rest, sink, 1);
      std::vector<std::string> a(rest.begin(), rest.begin() + rest.size() / 2);
      std::vector<std::string> b(rest.begin() + rest.size() / 2, rest.end());
      FASTEST_RETURN_IF_ERROR(DownloadBatchRequest(a, sink, fallback_parallelism));
      return DownloadBatchRequest(b, sink, fallback_parallelism);
    }
    return resp.status();
  }
  batch_support_ = BatchSupport::kSupported;
  if (absl::Status s = state->reader.Finish(); !s.ok()) {
    return absl::DataLossError(absl::StrCat("POST ", kBatchDownloadPath, ": ", s.message()));
  }
  for (const std::string& h : hashes) {
    if (state->delivered[h]) continue;
    if (state->missing.count(h) > 0) {
      absl::Status s = absl::NotFoundError(
          absl::StrCat("POST ", kBatchDownloadPath, ": blob ", h.substr(0, 16),
                       "...: HTTP 404 NOT_FOUND: Blob not found"));
      s.SetPayload(kPayloadUrl, absl::Cord("404 NOT_FOUND"));
      return s;
    }
    return absl::DataLossError(absl::StrCat("POST ", kBatchDownloadPath, ": answer lacks blob ",
                                            h.substr(0, 16), "..."));
  }
  return absl::OkStatus();
}

absl::Status ApiClient::DownloadBlobs(const std::vector<std::string>& hashes,
                                      const BlobSink& sink, int fallback_parallelism) {
  FASTEST_ASSIGN_OR_RETURN(std::vector<std::string> unique, UniqueCheckedHashes(hashes));
  for (size_t begin = 0; begin < unique.size(); begin += kMaxBlobsPerBatch) {
    std::vector<std::string> part(
        unique.begin() + begin, unique.begin() + std::min(unique.size(), begin + kMaxBlobsPerBatch));
    if (batch_support_.load() == BatchSupport::kUnsupported) {
      FASTEST_RETURN_IF_ERROR(DownloadPerBlob(part, sink, fallback_parallelism));
    } else {
      FASTEST_RETURN_IF_ERROR(DownloadBatchRequest(part, sink, fallback_parallelism));
    }
  }
  return absl::OkStatus();
}

}  // namespace fastest::core
