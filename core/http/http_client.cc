#include "core/http/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace fastest::core {
namespace {

// curl_global_init is not thread-safe; run it once before the first handle.
void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct TransferState {
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  bool sink_aborted = false;
  std::optional<BodyPiecesReader> pieces;  // set for a gathered body
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  size_t bytes = size * count;
  absl::string_view line(data, bytes);
  line = absl::StripTrailingAsciiWhitespace(line);
  // A new status line (redirect, 100-continue) starts a fresh header block.
  if (absl::StartsWith(line, "HTTP/")) {
    state->response->headers.clear();
    return bytes;
  }
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    state->response->headers.emplace_back(std::move(name), std::move(value));
  }
  return bytes;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  size_t bytes = size * count;
  if (state->request->on_body_chunk) {
    if (!state->request->on_body_chunk(absl::string_view(data, bytes))) {
      state->sink_aborted = true;
      return 0;  // makes curl fail the transfer with CURLE_WRITE_ERROR
    }
    return bytes;
  }
  state->response->body.append(data, bytes);
  return bytes;
}

size_t OnUpload(char* buffer, size_t size, size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  if (state->request->body_reader) return state->request->body_reader(buffer, size * count);
  // body_pieces: libcurl wants the bytes copied into its buffer.
  return state->pieces->Read(buffer, size * count);
}

absl::Status CurlError(CURLcode code, const HttpRequest& request, const char* detail) {
  // Never include headers or the token; the method and URL are safe to show.
  std::string what = absl::StrCat(request.method, " ", request.url,
                                   request.unix_socket.empty()
                                       ? ""
                                       : absl::StrCat(" (via ", request.unix_socket, ")"),
                                   ": ", detail[0] ? detail : curl_easy_strerror(code));
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(what);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(what);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
      return absl::UnavailableError(what);
    default:
      return absl::UnavailableError(what);
  }
}

}  // namespace

// Idle easy handles keep their connection cache, so reusing them reuses connections.
struct HttpClient::Pool {
  std::mutex mu;
  std::vector<CURL*> idle;
  CURLSH* share = nullptr;
  std::mutex share_mu[CURL_LOCK_DATA_LAST];

  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Pool*>(user)->share_mu[data].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Pool*>(user)->share_mu[data].unlock();
  }
};

HttpClient::HttpClient(HttpClientOptions options)
    : pool_(std::make_unique<Pool>()), options_(std::move(options)) {
  GlobalInitOnce();
  // Share DNS results across handles; connections stay per handle (simple and thread-safe).
  pool_->share = curl_share_init();
  curl_share_setopt(pool_->share, CURLSHOPT_LOCKFUNC, &Pool::Lock);
  curl_share_setopt(pool_->share, CURLSHOPT_UNLOCKFUNC, &Pool::Unlock);
  curl_share_setopt(pool_->share, CURLSHOPT_USERDATA, pool_.get());
  curl_share_setopt(pool_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
}

HttpClient::~HttpClient() {
  for (CURL* handle : pool_->idle) curl_easy_cleanup(handle);
  curl_share_cleanup(pool_->share);
}

absl::StatusOr<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  CURL* curl = nullptr;
  {
    std::lock_guard<std::mutex> lock(pool_->mu);
    if (!pool_->idle.empty()) {
      curl = pool_->idle.back();
      pool_->idle.pop_back();
    }
  }
  if (curl == nullptr) {
    curl = curl_easy_init();
    if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  } else {
    curl_easy_reset(curl);
  }

  HttpResponse response;
  TransferState state{&request, &response, false};
  if (!request.body_reader && !request.body_pieces.empty()) {
    state.pieces.emplace(request.body_pieces);
  }
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_slist* header_list = nullptr;

  curl_easy_setopt(curl, CURLOPT_SHARE, pool_->share);
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // we are multi-threaded
  curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &state);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  if (!request.unix_socket.empty()) {
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, request.unix_socket.c_str());
  }

  const std::string& method = request.method;
  if (method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (request.body_reader || !request.body_pieces.empty()) {
      curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl, CURLOPT_READFUNCTION, &OnUpload);
      curl_easy_setopt(curl, CURLOPT_READDATA, &state);
      const long long size =
          request.body_reader ? request.body_size
                              : static_cast<long long>(BodyPiecesSize(request));
      if (size >= 0) {
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
      }
      // CURLOPT_UPLOAD implies PUT; CUSTOMREQUEST above restores the real method.
    } else {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
  }

  bool has_content_type = false;
  for (const auto& [name, value] : request.headers) {
    if (absl::EqualsIgnoreCase(name, "content-type")) has_content_type = true;
    header_list = curl_slist_append(header_list, absl::StrCat(name, ": ", value).c_str());
  }
  if (!has_content_type && method != "GET" && method != "HEAD") {
    // libcurl would otherwise send application/x-www-form-urlencoded.
    header_list = curl_slist_append(header_list, "Content-Type: application/octet-stream");
  }
  // Suppress "Expect: 100-continue": it costs a round trip on every upload.
  header_list = curl_slist_append(header_list, "Expect:");
  std::string auth_header;
  if (!request.bearer_token.empty()) {
    auth_header = absl::StrCat("Authorization: Bearer ", request.bearer_token);
    header_list = curl_slist_append(header_list, auth_header.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);

  CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  response.status = status;

  curl_slist_free_all(header_list);
  // Scrub the copy of the token before the string is freed.
  std::fill(auth_header.begin(), auth_header.end(), '\0');

  absl::Status result = absl::OkStatus();
  if (code != CURLE_OK) {
    if (state.sink_aborted) {
      result = absl::CancelledError(absl::StrCat(request.method, " ", request.url,
                                                 ": stopped by the body reader"));
    } else {
      result = CurlError(code, request, error_buffer);
    }
  }

  {
    std::lock_guard<std::mutex> lock(pool_->mu);
    if (code == CURLE_OK &&
        static_cast<int>(pool_->idle.size()) < options_.max_idle_handles) {
      pool_->idle.push_back(curl);
      curl = nullptr;
    }
  }
  if (curl != nullptr) curl_easy_cleanup(curl);

  if (!result.ok()) return result;
  return response;
}

}  // namespace fastest::core
