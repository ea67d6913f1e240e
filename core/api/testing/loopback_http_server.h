// File: core/api/testing/loopback_http_server.h
//
// LoopbackHttpServer: a tiny blocking HTTP/1.1 server on 127.0.0.1:<ephemeral> for client tests.
// One thread accepts connections, reads one request (headers + Content-Length body), calls the
// handler and answers with "Connection: close". Test-only; no TLS, no chunked request bodies.
#ifndef FASTEST_CORE_API_TESTING_LOOPBACK_HTTP_SERVER_H_
#define FASTEST_CORE_API_TESTING_LOOPBACK_HTTP_SERVER_H_

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fastest::core::testing {

struct TestRequest {
  std::string method;
  std::string target;  // path + query
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& lower_name) const;
};

struct TestResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class LoopbackHttpServer {
 public:
  using Handler = std::function<TestResponse(const TestRequest&)>;
  explicit LoopbackHttpServer(Handler handler);
  ~LoopbackHttpServer();

  int port() const { return port_; }
  std::string base_url() const;
  // Every request seen so far, in order.
  std::vector<TestRequest> requests();

 private:
  void Serve();
  void HandleConnection(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<TestRequest> requests_;
};

}  // namespace fastest::core::testing

#endif  // FASTEST_CORE_API_TESTING_LOOPBACK_HTTP_SERVER_H_
