// File: core/http/asio_resolver.h
//
// Host name resolution with a deadline for AsioHttpClient (internal to core/http).
#ifndef FASTEST_CORE_HTTP_ASIO_RESOLVER_H_
#define FASTEST_CORE_HTTP_ASIO_RESOLVER_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

namespace fastest::core::asio_internal {

// Resolves `host` to TCP endpoints on `port`, waiting at most until `deadline`
// (asio::error::timed_out then; host_not_found with `detail` set when it cannot be resolved).
boost::system::error_code ResolveWithDeadline(const std::string& host, uint16_t port,
                                              std::chrono::steady_clock::time_point deadline,
                                              std::vector<boost::asio::ip::tcp::endpoint>* out,
                                              std::string* detail);

}  // namespace fastest::core::asio_internal

#endif  // FASTEST_CORE_HTTP_ASIO_RESOLVER_H_
