#include "core/http/asio_resolver.h"

#include <netdb.h>

#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fastest::core::asio_internal {

namespace asio = boost::asio;
using boost::system::error_code;

// getaddrinfo cannot be interrupted, so it runs on a thread of its own and the caller waits only
// until its deadline: a hung DNS server then costs a timeout, not a hang. An abandoned lookup
// finishes on its own and frees its state.
error_code ResolveWithDeadline(const std::string& host, uint16_t port,
                               std::chrono::steady_clock::time_point deadline,
                               std::vector<asio::ip::tcp::endpoint>* out, std::string* detail) {
  struct Lookup {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    int rc = 0;
    std::vector<asio::ip::tcp::endpoint> endpoints;
  };
  auto lookup = std::make_shared<Lookup>();
  std::thread([lookup, host, port] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* list = nullptr;
    const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &list);
    std::vector<asio::ip::tcp::endpoint> endpoints;
    for (addrinfo* a = list; rc == 0 && a != nullptr; a = a->ai_next) {
      if (a->ai_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
        endpoints.emplace_back(asio::ip::address_v4(ntohl(in->sin_addr.s_addr)), port);
      } else if (a->ai_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
        asio::ip::address_v6::bytes_type bytes;
        std::memcpy(bytes.data(), in6->sin6_addr.s6_addr, bytes.size());
        endpoints.emplace_back(asio::ip::address_v6(bytes, in6->sin6_scope_id), port);
      }
    }
    if (list != nullptr) freeaddrinfo(list);
    std::lock_guard<std::mutex> lock(lookup->mu);
    lookup->rc = rc;
    lookup->endpoints = std::move(endpoints);
    lookup->done = true;
    lookup->cv.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(lookup->mu);
  if (deadline == std::chrono::steady_clock::time_point::max()) {
    lookup->cv.wait(lock, [&] { return lookup->done; });
  } else if (!lookup->cv.wait_until(lock, deadline, [&] { return lookup->done; })) {
    return asio::error::timed_out;
  }
  if (lookup->rc != 0 || lookup->endpoints.empty()) {
    *detail = absl::StrCat("cannot resolve ", host, ": ",
                           lookup->rc != 0 ? gai_strerror(lookup->rc) : "no IPv4/IPv6 address");
    return asio::error::host_not_found;
  }
  *out = std::move(lookup->endpoints);
  return {};
}

}  // namespace fastest::core::asio_internal
