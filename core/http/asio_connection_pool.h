// File: core/http/asio_connection_pool.h
//
// Idle keep-alive connections of one AsioHttpClient, keyed by (kind, host, port, unix socket)
// (internal to core/http). Thread-safe.
#ifndef FASTEST_CORE_HTTP_ASIO_CONNECTION_POOL_H_
#define FASTEST_CORE_HTTP_ASIO_CONNECTION_POOL_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/http/asio_connection.h"

namespace fastest::core::asio_internal {

class ConnectionPool {
 public:
  // The most recently used idle connection to that peer that is still open, or nullptr.
  std::unique_ptr<Connection> Take(Kind kind, absl::string_view host, uint16_t port,
                                   const std::string& unix_path);
  // Keeps `connection` for reuse; the oldest idle one is closed past `max_idle` (<= 0: keep none).
  void Put(std::unique_ptr<Connection> connection, int max_idle);

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // oldest first
};

}  // namespace fastest::core::asio_internal

#endif  // FASTEST_CORE_HTTP_ASIO_CONNECTION_POOL_H_
