// File: server/channel/sandbox_channel.h
//
// Sandbox channels: the only ways out of a sealed sandbox (network mode "none"). Each sandbox gets
// a host directory `<root>/<id>/` (mode 0700, bind-mounted read-only at /run/fastest) holding
//
//   token      the job's API token (0600). The runner reads it; the file is deleted as soon as
//              the first request authenticated with it arrives, so it never outlives start-up.
//   api.sock   the API channel: each connection is relayed to the server's own HTTP listener
//              after its request head was checked — exactly one `Authorization: Bearer <this job's
//              token>` header, or 401 here. The head is rewritten to `Connection: close`, so the
//              server answers one request per connection and later bytes on it are never
//              parsed: every request through the socket carries the job's token.
//   model.sock the model gateway (when configured, see model_gateway.h).
//   egress.sock the allow-list CONNECT proxy (--egress=allowlist, see egress_proxy.h).
//
// Only the runner's uid inside the sandbox can open the directory (the agent runs as another
// uid). Sockets are bound through /proc/self/fd/<dirfd>/, so a long data directory never hits the
// 108-byte sun_path limit.
//
// Thread-safe. One accept thread per channel, one thread per connection (a sandbox makes a few
// dozen at most); closing a channel shuts every connection down and joins the threads.
//
// Example:
//   ChannelHub hub({.root = data_dir + "/channels", .api_port = 8787});
//   FASTEST_ASSIGN_OR_RETURN(std::unique_ptr<SandboxChannel> ch, hub.Open(name, job_id, token));
//   spec.channel_dir = ch->dir();  // mounted at /run/fastest
#ifndef FASTEST_SERVER_CHANNEL_SANDBOX_CHANNEL_H_
#define FASTEST_SERVER_CHANNEL_SANDBOX_CHANNEL_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/channel/relay_io.h"

namespace fastest::server {

class EgressProxy;
class ModelGateway;

// Where the sandbox sees its channel directory, and the names inside it.
inline constexpr char kChannelMountPoint[] = "/run/fastest";
inline constexpr char kApiSocketName[] = "api.sock";
inline constexpr char kModelSocketName[] = "model.sock";
inline constexpr char kEgressSocketName[] = "egress.sock";
inline constexpr char kTokenFileName[] = "token";

// A line for the job's log (e.g. "[gateway] ..."). May be called from any channel thread.
using ChannelLog = std::function<void(absl::string_view line)>;

class SandboxChannel {
 public:
  ~SandboxChannel();  // closes the sockets and removes the directory
  // The host directory to mount at kChannelMountPoint.
  const std::string& dir() const { return dir_; }
  // Requests the API socket relayed (and refused) so far.
  int64_t api_requests() const { return api_requests_.load(); }
  int64_t api_refused() const { return api_refused_.load(); }
  // Lines for the job's log from the gateway and the egress proxy since the last call.
  std::vector<std::string> TakeNotes();
  // Where a new note goes first: a sink that returns true took it (the job's log, while it is
  // followed live); otherwise it is kept for TakeNotes(). Null: every note is kept. No sink call
  // is under way once this returns.
  using NoteSink = std::function<bool(absl::string_view line)>;
  void SetNoteSink(NoteSink sink);
  // From now on the API socket accepts `token` instead of the one it was opened with (a warm
  // sandbox's standby credential gives way to its job's token), also after a Reopen().
  absl::Status SwitchToken(absl::string_view token);

 private:
  friend class ChannelHub;
  SandboxChannel() = default;
  void HandleApi(int client_fd);
  void AddNote(absl::string_view line);

  std::string dir_;
  std::string hash_file_;  // <root>/<key>.sha256: the token's hash, for Reopen()
  int dir_fd_ = -1;
  std::mutex token_mu_;
  std::string token_sha256_;  // the job's token, hashed: all a bearer check needs (token_mu_)
  std::string upstream_host_;
  // The server's HTTP port, read at each connection (a re-adopted channel opens before it is known).
  std::shared_ptr<std::atomic<int>> upstream_port_;
  std::atomic<bool> token_file_present_{true};
  std::atomic<int64_t> api_requests_{0};
  std::atomic<int64_t> api_refused_{0};
  std::mutex notes_mu_;
  std::vector<std::string> notes_;  // notes_mu_
  NoteSink note_sink_;              // notes_mu_
  std::vector<std::unique_ptr<SocketListener>> listeners_;
};

struct ChannelHubOptions {
  std::string root;  // e.g. <data_dir>/channels; emptied at start (one server owns a data dir)
  std::string api_host = "127.0.0.1";
  int api_port = 0;  // the server's own HTTP listener
  // Serves model.sock when set (not owned).
  ModelGateway* model_gateway = nullptr;
  // Serves egress.sock when set (not owned): --egress=allowlist.
  EgressProxy* egress_proxy = nullptr;
};

class ChannelHub {
 public:
  // Creates `root` (0700). What a previous server left in it stays until RemoveStale(): the
  // channels of sandboxes it re-adopts are reopened in place.
  static absl::StatusOr<std::unique_ptr<ChannelHub>> Create(ChannelHubOptions options);

  void set_api_port(int port) { api_port_->store(port); }

  // A channel for one sandbox: directory, token file and sockets. `key` names the directory
  // (sanitised).
  absl::StatusOr<std::unique_ptr<SandboxChannel>> Open(absl::string_view key,
                                                       absl::string_view job_id,
                                                       absl::string_view token);
  // The channel of a sandbox a previous server process opened with Open(key, ...): the same
  // directory (the sandbox's mount points at it), its sockets bound anew, accepting the same
  // token (checked against the hash Open() kept; the plain token is never stored). NotFound when
  // there is no such channel.
  absl::StatusOr<std::unique_ptr<SandboxChannel>> Reopen(absl::string_view key,
                                                         absl::string_view job_id);
  // Removes every channel a previous server left except those of `keep_keys` (dead: nothing
  // listens on their sockets).
  void RemoveStale(const std::set<std::string>& keep_keys);
  bool has_model_gateway() const { return options_.model_gateway != nullptr; }

 private:
  explicit ChannelHub(ChannelHubOptions options)
      : options_(std::move(options)),
        api_port_(std::make_shared<std::atomic<int>>(options_.api_port)) {}
  absl::Status StartListeners(SandboxChannel* channel, absl::string_view job_id);

  ChannelHubOptions options_;
  std::shared_ptr<std::atomic<int>> api_port_;
};

// The request-head check of the API channel, exposed for unit tests. Given a complete head
// (request line + headers, ending in "\r\n\r\n"), returns the head to forward (Connection and
// Keep-Alive headers replaced by "Connection: close"), or PermissionDenied when the head does not
// carry exactly one "Authorization: Bearer <token>" with this token, InvalidArgument when it is
// not an HTTP/1.x request head.
absl::StatusOr<std::string> CheckApiRequestHead(absl::string_view head, absl::string_view token);



}  // namespace fastest::server

#endif  // FASTEST_SERVER_CHANNEL_SANDBOX_CHANNEL_H_
