#include "core/http/asio_connection_pool.h"

#include <utility>

namespace fastest::core::asio_internal {

std::unique_ptr<Connection> ConnectionPool::Take(Kind kind, absl::string_view host, uint16_t port,
                                                 const std::string& unix_path) {
  while (true) {
    std::unique_ptr<Connection> connection;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = idle_.size(); i-- > 0;) {
        if (idle_[i]->Matches(kind, host, port, unix_path)) {
          connection = std::move(idle_[i]);
          idle_.erase(idle_.begin() + i);
          break;
        }
      }
    }
    if (connection == nullptr) return nullptr;
    if (connection->IsAlive()) return connection;
    // Closed by the server while idle: drop it (outside the lock) and look again.
  }
}

void ConnectionPool::Put(std::unique_ptr<Connection> connection, int max_idle) {
  std::unique_ptr<Connection> evicted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (max_idle <= 0) return;
    if (static_cast<int>(idle_.size()) >= max_idle) {
      evicted = std::move(idle_.front());
      idle_.erase(idle_.begin());
    }
    idle_.push_back(std::move(connection));
  }
}

}  // namespace fastest::core::asio_internal
