// File: server/api/in_process_api.h
//
// Tests: the ApiService on an HttpServer on 127.0.0.1 port 0 inside the test process, with a real
// SQLite store and blob files in `dir` and one user holding `token`. Drive it with core/http's
// client at base_url().
//
// Example:
//   InProcessApi api;
//   ASSERT_TRUE(api.Start(::testing::TempDir() + "/t", "token", /*max_body_bytes=*/4 << 20).ok());
//   request.url = api.base_url() + "/v1/projects";
#ifndef FASTEST_SERVER_API_IN_PROCESS_API_H_
#define FASTEST_SERVER_API_IN_PROCESS_API_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "core/net/http_server.h"
#include "server/api/api_service.h"
#include "server/metrics/metrics.h"
#include "server/store/blob_access.h"
#include "server/store/blob_store.h"
#include "server/store/store.h"

namespace fastest::server {

class InProcessApi {
 public:
  InProcessApi() = default;
  ~InProcessApi();  // stops the server first
  InProcessApi(const InProcessApi&) = delete;
  InProcessApi& operator=(const InProcessApi&) = delete;

  // Empties `dir`, opens the store there, imports `token` for a@example.test, starts the server.
  absl::Status Start(const std::string& dir, const std::string& token, size_t max_body_bytes);

  const std::string& base_url() const { return base_url_; }
  Store* store() { return store_.get(); }
  BlobStore* blobs() { return blobs_.get(); }
  BlobAccess* access() { return access_.get(); }
  // The routes the service registered (after Start()).
  const net::Router& router() const { return server_->router(); }

 private:
  Metrics metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<BlobAccess> access_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<ApiService> service_;
  std::string base_url_;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_API_IN_PROCESS_API_H_
