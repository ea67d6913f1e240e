#include "tools/cli/docker_logs.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace fastest::cli {

void DockerLogDemuxer::Text(absl::string_view text) {
  line_buf_.append(text.data(), text.size());
  size_t nl;
  while ((nl = line_buf_.find('\n')) != std::string::npos) {
    std::string line = line_buf_.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    line_buf_.erase(0, nl + 1);
    on_line_(line);
  }
}

void DockerLogDemuxer::Feed(absl::string_view data) {
  if (raw_ == -1 && !data.empty()) {
    unsigned char c = static_cast<unsigned char>(data[0]);
    raw_ = (c <= 2) ? 0 : 1;
  }
  if (raw_ == 1) {
    Text(data);
    return;
  }
  frame_buf_.append(data.data(), data.size());
  while (frame_buf_.size() >= 8) {
    const unsigned char* h = reinterpret_cast<const unsigned char*>(frame_buf_.data());
    size_t size = (size_t{h[4]} << 24) | (size_t{h[5]} << 16) | (size_t{h[6]} << 8) | h[7];
    if (frame_buf_.size() < 8 + size) break;
    Text(absl::string_view(frame_buf_).substr(8, size));
    frame_buf_.erase(0, 8 + size);
  }
}

void DockerLogDemuxer::Flush() {
  if (!line_buf_.empty()) on_line_(line_buf_);
  line_buf_.clear();
}

DockerLogTail::DockerLogTail(core::HttpClient& http, std::string docker_host, std::string job_id,
                             std::function<void(const std::string&)> on_line)
    : http_(http), docker_host_(std::move(docker_host)), job_id_(std::move(job_id)),
      on_line_(std::move(on_line)) {
  if (docker_host_.empty()) {
    const char* h = getenv("DOCKER_HOST");
    docker_host_ = h && *h ? h : "unix:///var/run/docker.sock";
  }
}

void DockerLogTail::Run(const std::atomic<bool>& stop) {
  absl::StatusOr<core::Endpoint> ep = core::ParseEndpoint(docker_host_);
  if (!ep.ok()) return;
  // filters={"label":["fastest.job_id=<id>"]}
  std::string list_url = absl::StrCat(
      ep->base_url, "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22fastest.job_id%3D",
      job_id_, "%22%5D%7D");
  std::string container;
  while (!stop && container.empty()) {
    core::HttpRequest req;
    req.url = list_url;
    req.unix_socket = ep->unix_socket;
    req.timeout = std::chrono::milliseconds(3000);
    absl::StatusOr<core::HttpResponse> r = http_.Send(req);
    if (r.ok() && r->status == 200) {
      nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
      if (j.is_array() && !j.empty() && j[0].contains("Id")) container = j[0]["Id"];
    }
    if (container.empty()) absl::SleepFor(absl::Milliseconds(200));
  }
  if (container.empty()) return;
  DockerLogDemuxer demux(on_line_);
  core::HttpRequest req;
  req.url = absl::StrCat(ep->base_url, "/containers/", container,
                         "/logs?follow=1&stdout=1&stderr=1");
  req.unix_socket = ep->unix_socket;
  req.timeout = std::chrono::milliseconds(0);
  req.on_body_chunk = [&](absl::string_view chunk) {
    if (stop) return false;
    demux.Feed(chunk);
    return true;
  };
  (void)http_.Send(req);
  demux.Flush();
}

}  // namespace fastest::cli
