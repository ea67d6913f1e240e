// File: tests/testing/server_process.h
//
// The real fastest-server binary (from runfiles) as a child process on 127.0.0.1: started with
// --host=127.0.0.1 --port --port_file --data_dir plus the test's flags, ready once its port file
// appears and GET /health answers 200. Restartable (a restart keeps the port), crashable (Kill).
// The one server harness of the server, runner and end-to-end suites.
//
// Example:
//   ServerProcessOptions options;
//   options.data_dir = MakeTempDir("api") + "/data";
//   options.args = {"--backend=none"};
//   options.env = {{"PATH", "/usr/bin:/bin"}, {"FASTEST_API_TOKEN", token}};
//   ServerProcess server(options);
//   ASSERT_TRUE(server.Start().ok());
//   client.Get(server.url("/health"));
#ifndef FASTEST_TESTS_TESTING_SERVER_PROCESS_H_
#define FASTEST_TESTS_TESTING_SERVER_PROCESS_H_

#include <sys/types.h>

#include <csignal>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/testing/child_process.h"

namespace fastest::testing {

struct ServerProcessOptions {
  std::string data_dir;
  // Flags after --host/--port/--port_file/--data_dir (e.g. "--backend=none").
  std::vector<std::string> args;
  // The server's whole environment.
  std::map<std::string, std::string> env;
  // Default: <data_dir>.server.log (appended to across restarts).
  std::string log_path;
  int port = 0;  // 0 = any free port; once bound it is kept across restarts
  absl::Duration start_timeout = absl::Seconds(20);
  // Stop(): SIGKILL after this long.
  absl::Duration stop_grace = absl::Seconds(10);
  // The server is killed when the thread that started it ends (PR_SET_PDEATHSIG): only for
  // servers started from the test's main thread.
  bool die_with_parent = false;
};

class ServerProcess {
 public:
  explicit ServerProcess(ServerProcessOptions options);
  virtual ~ServerProcess();  // Stop()
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the binary and waits until /health answers 200; the log is in the error otherwise.
  absl::Status Start();
  // SIGKILL (a crash: no chance to clean up) and reap.
  void Kill();
  // Sends `sig`, waits up to stop_grace (then SIGKILL); the wait status, or -1 if not running.
  int Stop(int sig = SIGTERM);

  bool running() const { return child_.running(); }
  pid_t pid() const { return child_.pid(); }
  int port() const { return port_; }
  // http://127.0.0.1:<port><path>
  std::string url(absl::string_view path = "") const;
  const std::string& data_dir() const { return options_.data_dir; }
  const std::string& log_path() const { return options_.log_path; }
  std::string Log() const;
  // Flags and environment of the next Start().
  ServerProcessOptions& options() { return options_; }
  const ServerProcessOptions& options() const { return options_; }

 private:
  ServerProcessOptions options_;
  ChildProcess child_;
  int port_ = 0;
  int starts_ = 0;
};

}  // namespace fastest::testing

#endif  // FASTEST_TESTS_TESTING_SERVER_PROCESS_H_
