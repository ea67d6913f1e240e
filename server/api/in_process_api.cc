#include "server/api/in_process_api.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/status/status_macros.h"

namespace fastest::server {

InProcessApi::~InProcessApi() {
  if (server_) server_->Stop();
}

absl::Status InProcessApi::Start(const std::string& dir, const std::string& token,
                                 size_t max_body_bytes) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  FASTEST_ASSIGN_OR_RETURN(store_, Store::Open(dir));
  FASTEST_ASSIGN_OR_RETURN(std::string user, store_->EnsureUser("a@example.test"));
  FASTEST_RETURN_IF_ERROR(store_->ImportToken(user, token));
  blobs_ = std::make_unique<BlobStore>(dir);
  FASTEST_RETURN_IF_ERROR(blobs_->Init());
  access_ = std::make_unique<BlobAccess>(store_.get(), /*quota_bytes=*/0);
  FASTEST_RETURN_IF_ERROR(access_->Init(blobs_.get()));
  net::HttpServerOptions options;
  options.max_body_bytes = max_body_bytes;
  server_ = std::make_unique<net::HttpServer>(options);
  service_ = std::make_unique<ApiService>(store_.get(), blobs_.get(), access_.get(), nullptr,
                                          &metrics_, ApiServiceOptions{});
  service_->Register(server_->router());
  FASTEST_RETURN_IF_ERROR(server_->Start());
  base_url_ = absl::StrCat("http://127.0.0.1:", server_->port());
  return absl::OkStatus();
}

}  // namespace fastest::server
