// File: backends/cloudflare/cloudflare_backend.h
//
// CloudflareBackend: fastest's SandboxBackend on Cloudflare Containers, driven through the
// Cloudflare Sandbox bridge HTTP API (PROTOCOLS.md §4) the user deploys in their own account
// (backends/cloudflare/deploy/). Built as libfastest_backend_cloudflare.so (cloudflare_plugin.cc).
//
// Config (JSON; every key optional except the bridge URL):
//   "bridge_url"          https://<worker>.workers.dev   (env FASTEST_CLOUDFLARE_BRIDGE_URL)
//   "api_key"             the bridge's SANDBOX_API_KEY   (env SANDBOX_API_KEY; never logged)
//   "instance_type"       lite|basic|standard-1..4 (default standard-1) - must match wrangler.jsonc;
//                         reported as resources in Describe
//   "max_instances"       the container's max_instances (0 = unknown); enforced locally too
//   "request_timeout_ms"  per HTTP request (default 30000)
//   "max_attempts", "backoff_initial_ms", "backoff_cap_ms"   retry policy (5, 200, 5000)
//   "poll_interval_ms"    Wait/ReadLogs(follow) polling period (default 2000)
//   "stall_timeout_ms"    Wait gives up on a bridge that has not answered (timeouts, refused
//                         connections; an HTTP error is an answer) a sandbox's probes for this
//                         long: Unavailable "bridge not answering for Ns" (default 60000)
//   "state_file"          local record of live sandboxes (default
//                         $FASTEST_STATE_DIR/cloudflare-sandboxes.json or
//                         ~/.local/state/fastest/cloudflare-sandboxes.json)
//   "image"               informational: the image tag deployed with the bridge (Describe)
//
// How a job runs (the detached recipe of §4.8), inside the sandbox with R=/tmp/fastest (outside
// /workspace, so a runner that wipes or snapshots /workspace never sees it):
//   1. POST /v1/sandbox -> id; recorded in the local state file at once.
//   2. PUT /workspace/.fastest/{env,labels.json,run.sh}: the env travels in an HTTPS body, never on
//      a command line; `env` holds `export K='v'` lines.
//   3. One idempotent exec: chmod 600, move the three files to R, then
//      `setsid sh -c 'sh R/run.sh; echo $? > R/exit.tmp && mv R/exit.tmp R/exit' >R/log 2>&1 </dev/null &`
//      and `echo $! > R/pid`. run.sh sources and deletes R/env, cd's to the working dir and execs
//      the command, so secrets live only in the job's process environment.
//   4. Wait polls `R/exit` (and liveness of R/pid via /proc) every poll interval until the
//      deadline; each probe is bounded by what is left of the Wait (at least 1 s), so a stalled
//      bridge cannot stretch a short Wait to request_timeout x max_attempts; ReadLogs reads R/log from a byte offset (`tail -c +N | head -c | base64`, so
//      output stays byte-exact despite the bridge's UTF-8 re-decoding); Kill signals the process
//      group (`kill -SIG -- -PGID`); Remove always DELETEs the sandbox.
// Orphans: the bridge cannot list sandboxes, so the local state file is the registry (labels
// copied there and into R/labels.json). List() reads it and probes each sandbox.
//
// Logs: stdout and stderr share R/log (order preserved) and are delivered as stream 1.
#ifndef FASTEST_BACKENDS_CLOUDFLARE_CLOUDFLARE_BACKEND_H_
#define FASTEST_BACKENDS_CLOUDFLARE_CLOUDFLARE_BACKEND_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backends/cloudflare/bridge_client.h"
#include "core/model/instance_types.h"
#include "core/plugin/sandbox_backend.h"
#include "nlohmann/json.hpp"

namespace fastest::backends::cloudflare {

struct CloudflareConfig {
  BridgeClientOptions bridge;
  core::InstanceType instance_type;  // core/model/instance_types.h
  int max_instances = 0;
  absl::Duration poll_interval = absl::Seconds(2);
  absl::Duration stall_timeout = absl::Seconds(60);
  std::string state_file;
  std::string image;
};

// ParseCloudflareConfig: the config document above (+ env fallbacks).
absl::StatusOr<CloudflareConfig> ParseCloudflareConfig(const nlohmann::json& config);

// EnvFileContents: `export K='v'` lines; InvalidArgument for a key that is not a shell name.
absl::StatusOr<std::string> EnvFileContents(const std::map<std::string, std::string>& env);

class CloudflareBackend : public core::SandboxBackend {
 public:
  static absl::StatusOr<std::unique_ptr<CloudflareBackend>> Create(const nlohmann::json& config);
  explicit CloudflareBackend(CloudflareConfig config);

  absl::StatusOr<nlohmann::json> Describe() override;
  absl::StatusOr<core::SandboxInfo> CreateSandbox(const core::SandboxSpec& spec) override;
  absl::StatusOr<core::WaitResult> Wait(const std::string& id, absl::Duration timeout) override;
  absl::Status ReadLogs(const std::string& id, const core::LogOptions& options,
                        std::function<bool(int stream, absl::string_view data)> sink) override;
  absl::Status Kill(const std::string& id, int signal) override;
  absl::Status Remove(const std::string& id) override;
  absl::StatusOr<std::vector<core::SandboxInfo>> List(
      const std::map<std::string, std::string>& labels) override;
  const std::string& name() const override { return name_; }

  BridgeClient& bridge() { return bridge_; }

 private:
  // What the state file remembers per sandbox.
  struct Record {
    std::string name;
    std::map<std::string, std::string> labels;
    std::string created_at;
    int64_t deadline_unix_ms = 0;  // per-job deadline (spec.timeout_ms); 0 = none
    int killed_signal = 0;         // last signal we sent
    bool timed_out = false;        // we killed it at the job deadline
    std::optional<int> exit_code;  // known once exited
  };
  // One probe of the job inside the sandbox.
  struct Probe {
    std::string state;  // "running" | "exited"
    std::optional<int> exit_code;
  };

  // One probe; `deadline` bounds it, retries included.
  absl::StatusOr<Probe> ProbeJob(const std::string& id, absl::Time deadline = absl::InfiniteFuture());
  // When a probe of `id` last got an answer (set to `fallback` if never recorded, e.g. after a
  // restart).
  absl::Time LastContact(const std::string& id, absl::Time fallback);
  void NoteContact(const std::string& id);
  absl::StatusOr<Record> FindRecord(const std::string& id);
  absl::Status SaveStateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadState();
  void UpdateRecord(const std::string& id, const std::function<void(Record&)>& fn);
  absl::StatusOr<Probe> Finish(const std::string& id, Probe probe);
  absl::Status Launch(const std::string& id, const core::SandboxSpec& spec);

  const std::string name_ = "cloudflare";
  CloudflareConfig config_;
  BridgeClient bridge_;
  absl::Mutex mu_;
  std::map<std::string, Record> records_ ABSL_GUARDED_BY(mu_);
  // In memory only: the last successful probe per sandbox (stall detection).
  std::map<std::string, absl::Time> last_contact_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fastest::backends::cloudflare

#endif  // FASTEST_BACKENDS_CLOUDFLARE_CLOUDFLARE_BACKEND_H_
