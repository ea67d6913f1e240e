#include "server/channel/sandbox_channel.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "server/channel/egress_proxy.h"
#include "server/channel/model_gateway.h"
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"
#include "server/util/log.h"

namespace fastest::server {
namespace {

constexpr size_t kMaxHead = 64 * 1024;
constexpr int kHeadTimeoutMs = 30000;

std::string Errno(absl::string_view what) { return absl::StrCat(what, ": ", strerror(errno)); }

// Equal strings in time independent of where they differ.
bool SameSecret(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// Removes everything below `path` (not following symlinks), then `path` itself.
void RemoveTree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* dir = opendir(path.c_str())) {
      while (struct dirent* entry = readdir(dir)) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        RemoveTree(absl::StrCat(path, "/", entry->d_name));
      }
      closedir(dir);
    }
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

std::string SafeName(absl::string_view key) {
  std::string out;
  for (char c : key) {
    out.push_back(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c
                                                                                             : '_');
  }
  return out.substr(0, 64);
}

}  // namespace



namespace {

// The request-head check with `accepts` deciding on the bearer credentials.
absl::StatusOr<std::string> CheckApiRequestHeadWith(
    absl::string_view head, const std::function<bool(absl::string_view)>& accepts) {
  absl::string_view request_line;
  FASTEST_ASSIGN_OR_RETURN(std::vector<channel_io::HeadLine> headers,
                           channel_io::ParseRequestHead(head, &request_line));
  std::string out = absl::StrCat(request_line, "\r\n");
  int authorizations = 0;
  bool authorized = false;
  for (const channel_io::HeadLine& h : headers) {
    if (h.name == "connection" || h.name == "keep-alive" || h.name == "proxy-connection") continue;
    if (h.name == "authorization") {
      ++authorizations;
      absl::string_view credentials = h.value;
      authorized = absl::ConsumePrefix(&credentials, "Bearer ") && accepts(credentials);
    }
    absl::StrAppend(&out, h.line, "\r\n");
  }
  if (authorizations != 1 || !authorized) {
    return absl::PermissionDeniedError("this channel accepts only its job's token");
  }
  absl::StrAppend(&out, "Connection: close\r\n\r\n");
  return out;
}

}  // namespace

absl::StatusOr<std::string> CheckApiRequestHead(absl::string_view head, absl::string_view token) {
  return CheckApiRequestHeadWith(
      head, [token](absl::string_view credentials) { return SameSecret(credentials, token); });
}

// ---- SandboxChannel ----

SandboxChannel::~SandboxChannel() {
  for (auto& listener : listeners_) listener->Stop();
  listeners_.clear();
  if (dir_fd_ >= 0) close(dir_fd_);
  RemoveTree(dir_);
  if (!hash_file_.empty()) unlink(hash_file_.c_str());
}

void SandboxChannel::AddNote(absl::string_view line) {
  std::lock_guard<std::mutex> lock(notes_mu_);
  if (note_sink_ && note_sink_(line)) return;
  if (notes_.size() < 10000) notes_.emplace_back(line);
}

void SandboxChannel::SetNoteSink(NoteSink sink) {
  std::lock_guard<std::mutex> lock(notes_mu_);
  note_sink_ = std::move(sink);
}

std::vector<std::string> SandboxChannel::TakeNotes() {
  std::lock_guard<std::mutex> lock(notes_mu_);
  std::vector<std::string> out;
  out.swap(notes_);
  return out;
}

absl::Status SandboxChannel::SwitchToken(absl::string_view token) {
  const std::string hashed = core::Sha256Hex(token);
  if (!hash_file_.empty()) {
    // Replaced whole (temp + rename): a restarted server's Reopen() reads the new hash.
    const std::string tmp = hash_file_ + ".tmp";
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return absl::InternalError(Errno("create token hash file"));
    const bool written = channel_io::WriteAll(fd, hashed) && fsync(fd) == 0;
    close(fd);
    if (!written || rename(tmp.c_str(), hash_file_.c_str()) != 0) {
      unlink(tmp.c_str());
      return absl::InternalError(Errno("replace token hash file"));
    }
  }
  std::lock_guard<std::mutex> lock(token_mu_);
  token_sha256_ = hashed;
  return absl::OkStatus();
}

void SandboxChannel::HandleApi(int client_fd) {
  std::string head, rest;
  if (!channel_io::ReadHead(client_fd, kMaxHead, kHeadTimeoutMs, &head, &rest).ok()) return;
  std::string expected;
  {
    std::lock_guard<std::mutex> lock(token_mu_);
    expected = token_sha256_;
  }
  absl::StatusOr<std::string> forward =
      CheckApiRequestHeadWith(head, [&expected](absl::string_view credentials) {
        return SameSecret(core::Sha256Hex(credentials), expected);
      });
  if (!forward.ok()) {
    ++api_refused_;
    if (absl::IsPermissionDenied(forward.status())) {
      channel_io::WriteJsonError(client_fd, 401, "Unauthorized", "this channel accepts only its job's token");
    } else {
      channel_io::WriteJsonError(client_fd, 400, "Bad Request", "malformed request head");
    }
    return;
  }
  ++api_requests_;
  // The runner has the token in memory now: the file has done its job.
  if (token_file_present_.exchange(false)) unlinkat(dir_fd_, kTokenFileName, 0);
  absl::StatusOr<int> upstream = channel_io::ConnectTcp(upstream_host_, upstream_port_->load(), 5000);
  if (!upstream.ok()) {
    channel_io::WriteJsonError(client_fd, 502, "Bad Gateway", "fastest-server is not reachable");
    return;
  }
  if (channel_io::WriteAll(*upstream, *forward) && channel_io::WriteAll(*upstream, rest)) {
    channel_io::Pump(client_fd, *upstream);
  }
  close(*upstream);
}

// ---- ChannelHub ----

absl::StatusOr<std::unique_ptr<ChannelHub>> ChannelHub::Create(ChannelHubOptions options) {
  if (options.root.empty()) return absl::InvalidArgumentError("channel root is empty");
  if (mkdir(options.root.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(Errno(absl::StrCat("mkdir ", options.root)));
  }
  chmod(options.root.c_str(), 0700);
  return std::unique_ptr<ChannelHub>(new ChannelHub(std::move(options)));
}

absl::StatusOr<std::unique_ptr<SandboxChannel>> ChannelHub::Open(absl::string_view key,
                                                                 absl::string_view job_id,
                                                                 absl::string_view token) {
  if (api_port_->load() <= 0) return absl::FailedPreconditionError("API port unknown");
  std::unique_ptr<SandboxChannel> channel(new SandboxChannel());
  channel->dir_ = absl::StrCat(options_.root, "/", SafeName(key));
  RemoveTree(channel->dir_);
  if (mkdir(channel->dir_.c_str(), 0700) != 0) {
    return absl::InternalError(Errno(absl::StrCat("mkdir ", channel->dir_)));
  }
  channel->dir_fd_ = open(channel->dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (channel->dir_fd_ < 0) return absl::InternalError(Errno("open channel dir"));
  channel->token_sha256_ = core::Sha256Hex(token);
  channel->upstream_host_ = options_.api_host;
  channel->upstream_port_ = api_port_;

  // The hash outlives this process (outside the mounted directory): a restarted server reopens
  // the channel of a sandbox it re-adopts with it.
  channel->hash_file_ = absl::StrCat(options_.root, "/", SafeName(key), ".sha256");
  int hash_fd = open(channel->hash_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (hash_fd < 0) return absl::InternalError(Errno("create token hash file"));
  bool hashed = channel_io::WriteAll(hash_fd, channel->token_sha256_);
  close(hash_fd);
  if (!hashed) return absl::InternalError(Errno("write token hash file"));

  int dir_fd = open(channel->dir_.c_str(), O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return absl::InternalError(Errno("open channel dir"));
  int token_fd = openat(dir_fd, kTokenFileName, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  close(dir_fd);
  if (token_fd < 0) return absl::InternalError(Errno("create token file"));
  bool written = channel_io::WriteAll(token_fd, token);
  close(token_fd);
  if (!written) return absl::InternalError(Errno("write token file"));

  FASTEST_RETURN_IF_ERROR(StartListeners(channel.get(), job_id));
  return channel;
}

absl::StatusOr<std::unique_ptr<SandboxChannel>> ChannelHub::Reopen(absl::string_view key,
                                                                   absl::string_view job_id) {
  std::unique_ptr<SandboxChannel> channel(new SandboxChannel());
  channel->dir_ = absl::StrCat(options_.root, "/", SafeName(key));
  channel->hash_file_ = absl::StrCat(options_.root, "/", SafeName(key), ".sha256");
  FILE* f = fopen(channel->hash_file_.c_str(), "re");
  if (f == nullptr) {
    channel->hash_file_.clear();
    channel->dir_.clear();  // not ours to remove
    return absl::NotFoundError(absl::StrCat("no channel to reopen for ", key));
  }
  char buf[65] = {0};
  size_t n = fread(buf, 1, 64, f);
  fclose(f);
  channel->token_sha256_.assign(buf, n);
  if (channel->token_sha256_.size() != 64) {
    return absl::DataLossError(absl::StrCat("token hash of channel ", key, " is damaged"));
  }
  channel->dir_fd_ = open(channel->dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (channel->dir_fd_ < 0) return absl::NotFoundError(Errno("open channel dir"));
  channel->upstream_host_ = options_.api_host;
  channel->upstream_port_ = api_port_;
  // The sockets of the dead process are files still: bind anew in their place.
  for (const char* name : {kApiSocketName, kModelSocketName, kEgressSocketName}) {
    unlinkat(channel->dir_fd_, name, 0);
  }
  struct stat st;
  channel->token_file_present_ = fstatat(channel->dir_fd_, kTokenFileName, &st, 0) == 0;
  FASTEST_RETURN_IF_ERROR(StartListeners(channel.get(), job_id));
  return channel;
}

void ChannelHub::RemoveStale(const std::set<std::string>& keep_keys) {
  std::set<std::string> keep;
  for (const std::string& key : keep_keys) {
    keep.insert(SafeName(key));
    keep.insert(SafeName(key) + ".sha256");
  }
  DIR* dir = opendir(options_.root.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (struct dirent* entry = readdir(dir)) {
    if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
    if (keep.count(entry->d_name) == 0) stale.push_back(entry->d_name);
  }
  closedir(dir);
  for (const std::string& name : stale) RemoveTree(absl::StrCat(options_.root, "/", name));
}

absl::Status ChannelHub::StartListeners(SandboxChannel* channel, absl::string_view job_id) {
  SandboxChannel* raw = channel;
  auto api = SocketListener::Start(channel->dir_fd_, kApiSocketName,
                                   [raw](int fd) { raw->HandleApi(fd); });
  if (!api.ok()) return api.status();
  channel->listeners_.push_back(std::move(*api));
  if (options_.model_gateway != nullptr) {
    ModelGateway* gateway = options_.model_gateway;
    std::string job(job_id);
    auto model = SocketListener::Start(
        channel->dir_fd_, kModelSocketName,
        [gateway, job, raw](int fd) {
          gateway->Serve(fd, job, [raw](absl::string_view line) { raw->AddNote(line); });
        });
    if (!model.ok()) return model.status();
    channel->listeners_.push_back(std::move(*model));
  }
  if (options_.egress_proxy != nullptr) {
    EgressProxy* proxy = options_.egress_proxy;
    auto egress = SocketListener::Start(channel->dir_fd_, kEgressSocketName, [proxy, raw](int fd) {
      proxy->Serve(fd, [raw](absl::string_view line) { raw->AddNote(line); });
    });
    if (!egress.ok()) return egress.status();
    channel->listeners_.push_back(std::move(*egress));
  }
  return absl::OkStatus();
}

}  // namespace fastest::server
