// File: tools/cli/docker_logs.h
//
// DockerLogTail: live job output straight from the Docker engine, used by `fastest run` when the
// server has no job-log endpoint and the local server runs the Docker backend. Finds the job's
// sandbox by its label (fastest.job_id=<id>), follows its logs (GET /containers/<id>/logs
// ?follow=1, 8-byte multiplexed frames demuxed) and hands out complete lines.
#ifndef FASTEST_TOOLS_CLI_DOCKER_LOGS_H_
#define FASTEST_TOOLS_CLI_DOCKER_LOGS_H_

#include <atomic>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "core/http/http_client.h"

namespace fastest::cli {

// Splits Docker's multiplexed log stream (header: stream byte, 3 zero bytes, big-endian u32 size)
// into lines. Feed() may get any chunking; a stream that does not start like a frame header is
// treated as raw text (TTY containers).
class DockerLogDemuxer {
 public:
  explicit DockerLogDemuxer(std::function<void(const std::string&)> on_line)
      : on_line_(std::move(on_line)) {}
  void Feed(absl::string_view data);
  void Flush();

 private:
  void Text(absl::string_view text);
  std::function<void(const std::string&)> on_line_;
  std::string frame_buf_, line_buf_;
  int raw_ = -1;  // -1 unknown, 0 framed, 1 raw
};

class DockerLogTail {
 public:
  DockerLogTail(core::HttpClient& http, std::string docker_host, std::string job_id,
                std::function<void(const std::string&)> on_line);
  // Blocks: waits for the container (until `stop`), then follows it until it exits or `stop`.
  void Run(const std::atomic<bool>& stop);

 private:
  core::HttpClient& http_;
  std::string docker_host_;
  std::string job_id_;
  std::function<void(const std::string&)> on_line_;
};

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_DOCKER_LOGS_H_
