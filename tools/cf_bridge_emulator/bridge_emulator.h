// File: tools/cf_bridge_emulator/bridge_emulator.h
//
// BridgeEmulator: the Cloudflare Sandbox bridge HTTP API (PROTOCOLS.md §4) served locally, with
// each sandbox a Docker container (DockerSandboxes). Registers its routes on a
// core/net HttpServer router. Endpoints, status codes, error JSON, SSE framing, base64, the
// 32 MiB file limit, /workspace confinement, auth and capacity follow §4.1-§4.4; the limits of the
// emulation are listed in tools/cf_bridge_emulator/README.md.
//
// Fault injection (tests): POST /_emulator/faults with
//   {"fail_next":[{"status":429,"count":2,"path":"/exec","method":"POST","code":"...","error":"..."}],
//    "stall_exec_ms":3000,"stall_count":1,"cut_exec_count":1}
// - fail_next: the next `count` /v1 requests whose path contains `path` (and method matches, if
//   given) are answered with `status` and {"error","code"} before anything else happens;
// - stall_exec_ms/stall_count: the next exec streams start only after that delay;
// - cut_exec_count: the next exec streams end after the command's output WITHOUT a terminal event.
// DELETE /_emulator/faults clears them; GET /_emulator/state shows sandboxes, faults and counters.
#ifndef FASTEST_TOOLS_CF_BRIDGE_EMULATOR_BRIDGE_EMULATOR_H_
#define FASTEST_TOOLS_CF_BRIDGE_EMULATOR_BRIDGE_EMULATOR_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "core/net/router.h"
#include "tools/cf_bridge_emulator/docker_sandboxes.h"

namespace fastest::tools::cf_bridge_emulator {

struct FaultRule {
  int status = 500;
  int count = 1;
  std::string path;    // substring of the request path; empty = any /v1 request
  std::string method;  // empty = any
  std::string code = "injected_fault";
  std::string error = "fault injected by the emulator";
};

// ParseFailNextFlag: "429:2" or "500:1:/exec" -> FaultRule.
absl::StatusOr<FaultRule> ParseFailNextFlag(absl::string_view flag);

struct EmulatorOptions {
  std::string api_key;  // SANDBOX_API_KEY; empty = auth disabled (like the bridge)
};

class BridgeEmulator {
 public:
  BridgeEmulator(EmulatorOptions options, std::unique_ptr<DockerSandboxes> sandboxes);
  // Waits for request threads; removes every container.
  ~BridgeEmulator();

  void Register(net::Router& router);

  void AddFault(const FaultRule& rule);
  void SetStall(int64_t ms, int count);
  void SetCut(int count);
  // Shutdown: removes containers (ending running execs) and waits for request threads.
  void Shutdown();

 private:
  struct Session {
    std::map<std::string, std::string> env;
    std::string cwd;
  };
  using Responder = net::Responder;
  using Request = net::Request;

  // Runs `fn` on its own thread (Docker calls block); tracked for shutdown.
  void Spawn(std::function<void()> fn);
  std::optional<FaultRule> TakeFault(const Request& req);
  bool Authorized(const Request& req, bool case_insensitive_scheme) const;
  // The common front of /v1/sandbox/:id/... routes: faults, id format, auth. False = answered.
  bool Admit(const Request& req, const std::shared_ptr<Responder>& r);
  // Pool resolution; answers 503/502 itself on failure.
  std::optional<Container> Resolve(const std::string& id, const std::shared_ptr<Responder>& r);

  void HandleExec(const Request& req, std::shared_ptr<Responder> r);
  // The file routes' shared checks: known sandbox, valid Session-Id, path inside /workspace.
  // Answers the error itself and returns nullopt when one fails.
  struct FileTarget {
    Container container;
    std::string path;
  };
  std::optional<FileTarget> ResolveFileTarget(const Request& req, const std::shared_ptr<Responder>& r);
  void HandleFileGet(const Request& req, std::shared_ptr<Responder> r);
  void HandleFilePut(const Request& req, std::shared_ptr<Responder> r);
  void HandleRunning(const Request& req, std::shared_ptr<Responder> r);
  void HandleSessionCreate(const Request& req, std::shared_ptr<Responder> r);
  void HandleSessionDelete(const Request& req, std::shared_ptr<Responder> r);
  void HandleDelete(const Request& req, std::shared_ptr<Responder> r);
  nlohmann::json StateJson();

  EmulatorOptions options_;
  std::unique_ptr<DockerSandboxes> sandboxes_;
  std::atomic<int64_t> requests_{0};
  absl::Mutex mu_;
  std::vector<FaultRule> faults_ ABSL_GUARDED_BY(mu_);
  int64_t stall_ms_ ABSL_GUARDED_BY(mu_) = 0;
  int stall_count_ ABSL_GUARDED_BY(mu_) = 0;
  int cut_count_ ABSL_GUARDED_BY(mu_) = 0;
  int active_threads_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::map<std::string, Session>> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fastest::tools::cf_bridge_emulator

#endif  // FASTEST_TOOLS_CF_BRIDGE_EMULATOR_BRIDGE_EMULATOR_H_
