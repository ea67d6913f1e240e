// File: tools/cli/local_server.h
//
// LocalServer: the embedded fastest-server the CLI starts (or reuses) on this machine.
//
// State lives in the data directory (--data_dir, else $FASTEST_DATA_DIR, else ~/.fastest):
//   server.json   {"pid","url","backend","fingerprint","started_at"} of the running server
//   token         the local API token (0600), created once; given to the server as
//                 FASTEST_API_TOKEN so it imports it at start
//   server.log    the server's stdout/stderr (appended)
//   server.port   port file written by the server (--port=0 --port_file)
//   store/        the server's own data dir (SQLite + blobs)
//
// A server is reused when its pid is alive, it answers /health and an authenticated call, and it
// was started with the same backend, image and model environment (provider keys, PROVIDER, MODEL,
// FASTEST_MODEL_BASE_URL: the sandbox env is fixed at server start); otherwise it is stopped
// (only when it has no active job) and started again. The server runs in its own session so it
// outlives the CLI; `fastest server stop` ends it.
#ifndef FASTEST_TOOLS_CLI_LOCAL_SERVER_H_
#define FASTEST_TOOLS_CLI_LOCAL_SERVER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/http/http_client.h"

namespace fastest::cli {

struct ServerTarget {
  std::string url;
  std::string token;
  bool started = false;  // this call started it
};

struct LocalServerOptions {
  std::string data_dir;     // resolved; see DefaultDataDir
  std::string backend = "docker";
  std::string image = "fastest/sandbox:0.1.0";
  // Sandbox resources (server --instance_type). The server's default, standard-1, is half a vCPU
  // (Cloudflare parity), which makes OpenCode ~2.5x slower to start; locally we give it 2 vCPUs.
  std::string instance_type = "standard-3";
  std::string server_bin;   // "" = next to this binary / bazel-bin / PATH
  bool quiet = false;
};

std::string DefaultDataDir();

class LocalServer {
 public:
  LocalServer(core::HttpClient& http, LocalServerOptions options);

  // Reuses or starts the server. Progress goes to stderr unless quiet.
  absl::StatusOr<ServerTarget> Ensure();
  // The running server, if any (no start).
  absl::StatusOr<ServerTarget> Find();
  // SIGTERM to the recorded server, waits for it to exit.
  absl::Status Stop();
  // The token (created when missing).
  absl::StatusOr<std::string> Token();

  std::string LogPath() const;

 private:
  absl::StatusOr<ServerTarget> Start(const std::string& token);
  std::string Fingerprint() const;
  absl::StatusOr<std::string> FindServerBinary() const;
  bool Healthy(const std::string& url, const std::string& token);

  core::HttpClient& http_;
  LocalServerOptions options_;
};

// The directory of the running executable (/proc/self/exe), for finding sibling binaries.
std::string SelfDir();

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_LOCAL_SERVER_H_
