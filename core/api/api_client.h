// File: core/api/api_client.h
//
// ApiClient: a typed client of the Fastest /v1 API (PROTOCOLS.md §1) on top of an HttpTransport. Used by
// the runner, the server in remote mode and the CLI.
//
// - Every call returns absl::Status/StatusOr. A server error body {"error":{"code","message"}}
//   becomes a status whose message is "<METHOD> <path>: HTTP <n> <CODE>: <message>"; the HTTP status
//   and the server's code are also attached (ApiErrorInfo reads them back).
//   HTTP -> absl code as core/http/http_status.h says (400/413/422 InvalidArgument, 401
//   Unauthenticated, 403 PermissionDenied, 404 NotFound, 409 AlreadyExists, 429 ResourceExhausted,
//   500 Internal, other 5xx Unavailable), plus 422 INVALID_STATE -> FailedPrecondition.
// - Transient failures (connection refused/reset, timeouts, 5xx, 429) are retried with exponential
//   backoff, +-jitter and a cap (RetryPolicy, run by core/retry/backoff.h). 4xx is never retried. Calls that create rows
//   (project, workspace, job) are retried only when the request cannot have been processed
//   (connection refused, 429, 503).
// - The bearer token is never part of a message or a log line.
// - Thread-safe if the transport is (both are): the runner downloads/uploads blobs from several threads.
//
// Example:
//   fastest::core::HttpClient http;
//   fastest::core::ApiClient api(http, "http://127.0.0.1:8788", token);
//   FASTEST_ASSIGN_OR_RETURN(Job job, api.GetJob(job_id));
//   FASTEST_ASSIGN_OR_RETURN(std::vector<std::string> missing, api.MissingBlobs(hashes));
#ifndef FASTEST_CORE_API_API_CLIENT_H_
#define FASTEST_CORE_API_API_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/http/http_transport.h"
#include "core/retry/backoff.h"
#include "core/model/model.h"
#include "nlohmann/json.hpp"

namespace fastest::core {

// Exponential backoff: attempt k (1-based) waits min(initial * multiplier^(k-1), max) scaled by a
// random factor in [1 - jitter, 1 + jitter]. Stops after max_attempts tries or when the next wait
// would pass max_elapsed since the first try.
struct RetryPolicy {
  int max_attempts = 8;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  double multiplier = 2.0;
  double jitter = 0.2;
  absl::Duration max_elapsed = absl::Seconds(60);
  // Per-request timeout for ordinary JSON calls (blob transfers use transfer_timeout).
  absl::Duration request_timeout = absl::Seconds(30);
  absl::Duration transfer_timeout = absl::Minutes(10);

  static RetryPolicy NoRetry() {
    RetryPolicy p;
    p.max_attempts = 1;
    return p;
  }

  // The same schedule as core/retry's policy (the one retry loop of fastest's clients).
  BackoffPolicy Backoff() const;
};

// What the server said about a failed call; read back from a status made by ApiClient.
struct ApiErrorInfo {
  long http_status = 0;     // 0 = transport failure (no response)
  std::string code;         // "VALIDATION_ERROR", ... or "" when the body was not error JSON
};
std::optional<ApiErrorInfo> GetApiErrorInfo(const absl::Status& status);

struct CreateWorkspaceRequest {
  std::string name;
  std::optional<std::string> base_snapshot_id;
  std::optional<std::string> machine_id;
  std::optional<std::string> local_path;
};

struct CreateSnapshotResult {
  Snapshot snapshot;
  bool created = false;  // false: a snapshot with this manifest hash already existed
};

struct ProjectDetails {
  Project project;
  std::vector<Workspace> workspaces;
  std::vector<Snapshot> snapshots;
};

struct JobFilter {
  std::optional<std::string> workspace_id;
  std::optional<std::string> project_id;
  std::optional<JobStatus> status;
  int limit = 20;  // server caps at 100
};

struct BlobUploadResult {
  uint64_t size = 0;
  bool created = false;  // false: already stored
};

// A blob to upload from a file (its content must hash to `hash`).
struct BlobFile {
  std::string hash;
  std::string path;
};

// A blob whose bytes are already in memory (`data` must stay valid during the call).
struct BlobData {
  std::string hash;
  absl::string_view data;
};

struct BatchUploadResult {
  uint64_t blobs = 0;    // stored (new or already present)
  uint64_t created = 0;  // newly created
  uint64_t bytes = 0;
  uint64_t requests = 0;  // HTTP requests used (batch or per-blob)

  void Add(const BatchUploadResult& other) {
    blobs += other.blobs;
    created += other.created;
    bytes += other.bytes;
    requests += other.requests;
  }
};

// Whether the server has the batch blob extension (POST /v1/blobs/batch-*).
enum class BatchSupport { kUnknown, kSupported, kUnsupported };

class ApiClient {
 public:
  // `base_url` like "http://127.0.0.1:8788" (a trailing '/' is dropped). `http` must outlive this.
  ApiClient(HttpTransport& http, std::string base_url, std::string token,
            RetryPolicy retry = RetryPolicy());

  const std::string& base_url() const { return base_url_; }

  // GET /health (unauthenticated). OK when the server answers 2xx.
  absl::Status Health();

  // Projects.
  absl::StatusOr<Project> CreateProject(absl::string_view name);
  absl::StatusOr<ProjectDetails> GetProject(absl::string_view project_id);
  absl::StatusOr<std::vector<Project>> ListProjects();

  // Workspaces.
  absl::StatusOr<Workspace> CreateWorkspace(absl::string_view project_id,
                                            const CreateWorkspaceRequest& request);
  absl::StatusOr<Workspace> GetWorkspace(absl::string_view workspace_id);
  absl::StatusOr<std::vector<Workspace>> ListWorkspaces(absl::string_view project_id);

  // Snapshots. CreateSnapshot is idempotent per (project, manifest_hash).
  absl::StatusOr<CreateSnapshotResult> CreateSnapshot(
      absl::string_view project_id, absl::string_view manifest_hash,
      const std::optional<std::string>& parent_snapshot_id, absl::string_view source);
  absl::StatusOr<Snapshot> GetSnapshot(absl::string_view snapshot_id);
  absl::StatusOr<std::vector<Snapshot>> ListSnapshots(absl::string_view project_id, int limit = 50);

  // Jobs.
  absl::StatusOr<Job> CreateJob(absl::string_view workspace_id, absl::string_view prompt);
  absl::StatusOr<Job> GetJob(absl::string_view job_id);
  // Oldest pending job, or nullopt when there is none ({"job":null}).
  absl::StatusOr<std::optional<Job>> NextJob();
  absl::StatusOr<std::vector<Job>> ListJobs(const JobFilter& filter = JobFilter());
  absl::StatusOr<Job> CancelJob(absl::string_view job_id);
  absl::StatusOr<Job> UpdateJobStatus(absl::string_view job_id, JobStatus status,
                                      const std::optional<std::string>& output_snapshot_id = {},
                                      const std::optional<std::string>& error = {});

  // Blobs. Returns the hashes (deduplicated, in first-seen input order) the server does not have.
  // Sends at most kMaxHashesPerCall per exists call; a hash in neither returned list counts as
  // missing.
  static constexpr size_t kMaxHashesPerCall = 100;
  absl::StatusOr<std::vector<std::string>> MissingBlobs(const std::vector<std::string>& hashes);
  absl::StatusOr<BlobUploadResult> UploadBlob(absl::string_view hash, absl::string_view data);
  // Streams the file's bytes (no full read into memory).
  absl::StatusOr<BlobUploadResult> UploadBlobFromFile(absl::string_view hash,
                                                      const std::string& path);
  // Downloads into memory. Does not verify the hash (use DownloadVerifiedBlob for that).
  absl::StatusOr<std::string> DownloadBlob(absl::string_view hash);
  // Downloads and checks SHA-256(body) == hash; kDataLoss "hash mismatch" otherwise.
  absl::StatusOr<std::string> DownloadVerifiedBlob(absl::string_view hash);
  // Streams into `path` (created/truncated, mode 0600), hashing on the fly; on a hash mismatch the
  // file is removed and kDataLoss "hash mismatch" is returned. Returns the byte count.
  absl::StatusOr<uint64_t> DownloadBlobToFile(absl::string_view hash, const std::string& path);

  // ---- Batch blob transfer: a fastest extension (server/README.md, core/api/blob_batch.h) ----
  // Far fewer requests for many small blobs. Against a server without it (the original API
  // answers the batch path with 404/405) both calls fall back to the per-blob endpoints, and the
  // client remembers that, so later calls go straight to the per-blob path.
  static constexpr size_t kMaxBlobsPerBatch = 1000;           // server limit per request
  static constexpr uint64_t kMaxBatchBodyBytes = 32ull << 20;  // upload body size we send

  // Uploads the files (split into requests of <= kMaxBlobsPerBatch blobs / kMaxBatchBodyBytes;
  // a file larger than that goes alone, streamed). The server verifies every blob; the first
  // rejected one fails the call with InvalidArgument "... HASH_MISMATCH ..." (the others of the
  // same request are stored). `fallback_parallelism` threads are used for per-blob uploads.
  absl::StatusOr<BatchUploadResult> UploadBlobFiles(const std::vector<BlobFile>& files,
                                                    int fallback_parallelism = 4);

  // Like UploadBlobFiles for blobs already in memory (a snapshot that kept the bytes it hashed):
  // the request body is streamed from `blobs` with no copy into a framed body. Split at
  // kMaxBlobsPerBatch / kMaxBatchBodyBytes; falls back to per-blob PUTs like UploadBlobFiles.
  absl::StatusOr<BatchUploadResult> UploadBlobs(const std::vector<BlobData>& blobs,
                                                int fallback_parallelism = 4);

  // Called once per distinct hash with its verified bytes (valid only during the call). In the
  // per-blob fallback it may be called from several threads at once. An error stops the download
  // and is returned.
  using BlobSink = std::function<absl::Status(const std::string& hash, absl::string_view data)>;
  // Downloads the blobs (duplicates asked once), verifying SHA-256 of each before `sink` sees it
  // (kDataLoss "hash mismatch" otherwise); kNotFound "Blob not found" if the server lacks one.
  // Streams: blobs are handed to `sink` while the response is still arriving. A transient failure
  // retries only the blobs not yet delivered. Requests are split at kMaxBlobsPerBatch, and halved
  // when the server says a response would be too large (413).
  absl::Status DownloadBlobs(const std::vector<std::string>& hashes, const BlobSink& sink,
                             int fallback_parallelism = 4);

  BatchSupport batch_support() const { return batch_support_.load(); }

  // Manifests (raw canonical text; see core/snapshot for parsing).
  absl::Status UploadManifest(absl::string_view hash, absl::string_view text);
  absl::StatusOr<std::string> GetManifest(absl::string_view hash);

  // Low-level: one JSON call with this client's auth, retries and error mapping. `body` null = no
  // body. `idempotent` = false retries only when the request cannot have been processed.
  absl::StatusOr<nlohmann::json> CallJson(absl::string_view method, absl::string_view path,
                                          const nlohmann::json* body, bool idempotent = true);

 private:
  // GET of a content-addressed body (blob or manifest), retried, with the transfer timeout.
  absl::StatusOr<std::string> GetContent(const std::string& path);

  // Sends `request` (URL/auth filled in here) with retries; returns the final 2xx response or an
  // error status. `make_request` is called for every attempt (bodies read from files restart).
  // `streamed_error_body` (for requests with on_body_chunk, whose body is not kept): returns the
  // bytes of the last attempt's body, to build the error status of a non-2xx answer.
  absl::StatusOr<HttpResponse> SendWithRetry(
      absl::string_view method, absl::string_view path,
      const std::function<HttpRequest()>& make_request, bool idempotent,
      const std::function<std::string()>& streamed_error_body = nullptr);

  absl::StatusOr<BatchUploadResult> UploadBatchRequest(const std::vector<const BlobFile*>& files,
                                                       const std::string& body);
  // One batch-upload request; `make` builds each attempt's request (body streamed), `hash_of(i)` /
  // `name_of(i)` describe blob i for checking the answer and for error messages.
  absl::StatusOr<BatchUploadResult> SendBatchUpload(
      size_t count, const std::function<HttpRequest()>& make,
      const std::function<absl::string_view(size_t)>& hash_of,
      const std::function<std::string(size_t)>& name_of);
  absl::Status DownloadBatchRequest(const std::vector<std::string>& hashes, const BlobSink& sink,
                                    int fallback_parallelism);
  absl::Status DownloadPerBlob(const std::vector<std::string>& hashes, const BlobSink& sink,
                               int parallelism);
  absl::StatusOr<BatchUploadResult> UploadPerBlob(const std::vector<const BlobFile*>& files,
                                                  int parallelism);
  // Records the answer of a batch endpoint; true if `status` says the server lacks the extension.
  bool NoteBatchUnsupported(const absl::Status& status);

  HttpTransport& http_;
  std::string base_url_;
  std::string token_;
  RetryPolicy retry_;
  std::atomic<BatchSupport> batch_support_{BatchSupport::kUnknown};
};

// Builds the status for a non-2xx response (exposed for tests and other clients).
absl::Status StatusFromHttpError(absl::string_view method, absl::string_view path,
                                 const HttpResponse& response);

}  // namespace fastest::core

#endif  // FASTEST_CORE_API_API_CLIENT_H_
