#include "tools/cf_bridge_emulator/bridge_emulator.h"

#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backends/cloudflare/bridge_protocol.h"
#include "core/crypto/secure_random.h"
#include "core/net/responder.h"

namespace fastest::tools::cf_bridge_emulator {
namespace {

namespace cf = ::fastest::backends::cloudflare;
using net::Request;
using net::Response;

Response JsonText(int status, const std::string& body) {
  return Response::Text(status, body, "application/json");
}

Response BridgeError(int status, absl::string_view message, absl::string_view code) {
  return JsonText(status, cf::BridgeErrorJson(message, code));
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The raw (not percent-decoded) path of the request target.
std::string RawPath(const Request& req) {
  std::string target = req.target;
  size_t q = target.find('?');
  if (q != std::string::npos) target.resize(q);
  return target;
}

// The file route's <path>: raw target after "/v1/sandbox/<id>/file/", decodeURI-like.
std::string FileRoutePath(const Request& req) {
  std::string raw = RawPath(req);
  size_t pos = raw.find("/file/");
  if (pos == std::string::npos) return "";
  return cf::DecodeUriPath(raw.substr(pos + 6));
}

std::string RandomSessionId() {
  return "session-" + core::SecureRandomHex(16);
}

// Emits output as the bridge does: UTF-8 re-decoded, base64, one event per chunk (sessionless) or
// per line (session).
class OutputEncoder {
 public:
  OutputEncoder(std::shared_ptr<net::Responder> r, bool line_mode)
      : r_(std::move(r)), line_mode_(line_mode) {}

  bool Add(int stream, absl::string_view bytes) {
    State& s = streams_[stream == 2 ? 1 : 0];
    std::string text = s.utf8.Feed(bytes);
    return Emit(stream, s, text, false);
  }

  bool Finish() {
    for (int i = 0; i < 2; ++i) {
      State& s = streams_[i];
      std::string text = s.utf8.Flush();
      if (!Emit(i == 1 ? 2 : 1, s, text, true)) return false;
    }
    return true;
  }

 private:
  struct State {
    cf::Utf8Sanitizer utf8;
    std::string line;
  };

  bool Send(int stream, absl::string_view text) {
    if (text.empty()) return true;
    return r_->SendEvent(stream == 2 ? "stderr" : "stdout", absl::Base64Escape(text));
  }

  bool Emit(int stream, State& s, const std::string& text, bool final) {
    if (!line_mode_) return Send(stream, text);
    s.line += text;
    size_t start = 0;
    size_t nl;
    while ((nl = s.line.find('\n', start)) != std::string::npos) {
      if (!Send(stream, absl::string_view(s.line).substr(start, nl + 1 - start))) return false;
      start = nl + 1;
    }
    s.line.erase(0, start);
    if (final && !s.line.empty()) {
      std::string rest;
      rest.swap(s.line);
      return Send(stream, rest);
    }
    return true;
  }

  std::shared_ptr<net::Responder> r_;
  bool line_mode_;
  State streams_[2];
};

}  // namespace

absl::StatusOr<FaultRule> ParseFailNextFlag(absl::string_view flag) {
  std::vector<std::string> parts = absl::StrSplit(flag, absl::MaxSplits(':', 2));
  FaultRule rule;
  if (parts.empty() || !absl::SimpleAtoi(parts[0], &rule.status) || rule.status < 100 ||
      rule.status > 599) {
    return absl::InvalidArgumentError(
        absl::StrCat("--fail-next: want STATUS[:COUNT[:PATH]], got \"", flag, "\""));
  }
  if (parts.size() > 1 && (!absl::SimpleAtoi(parts[1], &rule.count) || rule.count < 1)) {
    return absl::InvalidArgumentError("--fail-next: COUNT must be a positive integer");
  }
  if (parts.size() > 2) rule.path = parts[2];
  return rule;
}

BridgeEmulator::BridgeEmulator(EmulatorOptions options, std::unique_ptr<DockerSandboxes> sandboxes)
    : options_(std::move(options)), sandboxes_(std::move(sandboxes)) {}

BridgeEmulator::~BridgeEmulator() { Shutdown(); }

void BridgeEmulator::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  sandboxes_->DestroyAll();  // ends running execs, so their threads finish
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return active_threads_ == 0; };
  mu_.AwaitWithTimeout(absl::Condition(&idle), absl::Seconds(20));
}

void BridgeEmulator::Spawn(std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    ++active_threads_;
  }
  std::thread([this, fn = std::move(fn)] {
    fn();
    absl::MutexLock lock(&mu_);
    --active_threads_;
  }).detach();
}

void BridgeEmulator::AddFault(const FaultRule& rule) {
  absl::MutexLock lock(&mu_);
  faults_.push_back(rule);
}

void BridgeEmulator::SetStall(int64_t ms, int count) {
  absl::MutexLock lock(&mu_);
  stall_ms_ = ms;
  stall_count_ = count;
}

void BridgeEmulator::SetCut(int count) {
  absl::MutexLock lock(&mu_);
  cut_count_ = count;
}

std::optional<FaultRule> BridgeEmulator::TakeFault(const Request& req) {
  ++requests_;
  absl::MutexLock lock(&mu_);
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (!it->path.empty() && !absl::StrContains(req.path, it->path)) continue;
    if (!it->method.empty() && it->method != req.method) continue;
    FaultRule rule = *it;
    if (--it->count <= 0) faults_.erase(it);
    return rule;
  }
  return std::nullopt;
}

bool BridgeEmulator::Authorized(const Request& req, bool case_insensitive_scheme) const {
  if (options_.api_key.empty()) return true;  // the bridge disables auth without a key
  std::string header = req.Header("authorization");
  constexpr absl::string_view kScheme = "Bearer ";
  if (header.size() < kScheme.size()) return false;
  absl::string_view scheme = absl::string_view(header).substr(0, kScheme.size());
  bool scheme_ok = case_insensitive_scheme ? absl::EqualsIgnoreCase(scheme, kScheme) : scheme == kScheme;
  return scheme_ok && core::ConstantTimeEquals(header.substr(kScheme.size()), options_.api_key);
}

bool BridgeEmulator::Admit(const Request& req, const std::shared_ptr<Responder>& r) {
  if (std::optional<FaultRule> fault = TakeFault(req)) {
    r->Send(BridgeError(fault->status, fault->error, fault->code));
    return false;
  }
  if (!cf::IsValidSandboxId(req.Param("id"))) {
    r->Send(BridgeError(400, "Invalid sandbox ID format", "invalid_request"));
    return false;
  }
  if (!Authorized(req, /*case_insensitive_scheme=*/true)) {
    r->Send(BridgeError(401, "Unauthorized", "unauthorized"));
    return false;
  }
  return true;
}

std::optional<Container> BridgeEmulator::Resolve(const std::string& id,
                                                 const std::shared_ptr<Responder>& r) {
  absl::StatusOr<Container> container = sandboxes_->Ensure(id);
  if (container.ok()) return *container;
  if (absl::IsResourceExhausted(container.status())) {
    r->Send(BridgeError(503, container.status().message(), "capacity_exceeded"));
  } else {
    r->Send(BridgeError(502, absl::StrCat("pool error: ", container.status().message()), "pool_error"));
  }
  return std::nullopt;
}

void BridgeEmulator::Register(net::Router& router) {
  auto async = [this](void (BridgeEmulator::*method)(const Request&, std::shared_ptr<Responder>)) {
    return [this, method](const Request& req, std::shared_ptr<Responder> r) {
      if (!Admit(req, r)) return;
      Request copy = req;
      Spawn([this, method, copy = std::move(copy), r]() { (this->*method)(copy, r); });
    };
  };

  router.AddSync("GET", "/health", [this](const Request&) {
    absl::Status ping = sandboxes_->Ping();
    if (ping.ok()) return JsonText(200, "{\"ok\":true}");
    nlohmann::json body = {{"ok", false},
                           {"errors", {absl::StrCat("docker: ", ping.message())}}};
    return JsonText(503, Dump(body));
  });

  router.Add("POST", "/v1/sandbox", [this](const Request& req, std::shared_ptr<Responder> r) {
    if (std::optional<FaultRule> fault = TakeFault(req)) {
      r->Send(BridgeError(fault->status, fault->error, fault->code));
      return;
    }
    if (!Authorized(req, true)) {
      r->Send(BridgeError(401, "Unauthorized", "unauthorized"));
      return;
    }
    r->Send(JsonText(200, Dump({{"id", cf::NewSandboxId()}})));
  });

  router.Add("DELETE", "/v1/sandbox/:id", async(&BridgeEmulator::HandleDelete));
  router.Add("POST", "/v1/sandbox/:id/exec", async(&BridgeEmulator::HandleExec));
  router.Add("GET", "/v1/sandbox/:id/file/*", async(&BridgeEmulator::HandleFileGet));
  router.Add("PUT", "/v1/sandbox/:id/file/*", async(&BridgeEmulator::HandleFilePut));
  router.Add("GET", "/v1/sandbox/:id/running", async(&BridgeEmulator::HandleRunning));
  router.Add("POST", "/v1/sandbox/:id/session", async(&BridgeEmulator::HandleSessionCreate));
  router.Add("DELETE", "/v1/sandbox/:id/session/:sid", async(&BridgeEmulator::HandleSessionDelete));

  // Routes of the bridge the emulator does not implement: admitted like the others, then 501.
  auto unimplemented = [this](const Request& req, std::shared_ptr<Responder> r) {
    if (!Admit(req, r)) return;
    r->Send(BridgeError(501, absl::StrCat("not implemented by cf-bridge-emulator: ", req.method, " ",
                                          req.path),
                        "emulator_unimplemented"));
  };
  for (const char* route : {"persist", "hydrate", "mount", "unmount"}) {
    router.Add("POST", absl::StrCat("/v1/sandbox/:id/", route), unimplemented);
  }
  router.Add("GET", "/v1/sandbox/:id/pty", unimplemented);
  router.Add("POST", "/v1/sandbox/:id/tunnel/:port", unimplemented);
  router.Add("DELETE", "/v1/sandbox/:id/tunnel/:port", unimplemented);

  // Pool routes: the scheme word must be exactly "Bearer ".
  auto pool = [this](std::function<Response()> answer) {
    return [this, answer](const Request& req, std::shared_ptr<Responder> r) {
      if (std::optional<FaultRule> fault = TakeFault(req)) {
        r->Send(BridgeError(fault->status, fault->error, fault->code));
        return;
      }
      if (!Authorized(req, false)) {
        r->Send(BridgeError(401, "Unauthorized", "unauthorized"));
        return;
      }
      r->Send(answer());
    };
  };
  router.Add("GET", "/v1/pool/stats", pool([this] {
               int max = sandboxes_->options().max_instances;
               int assigned = sandboxes_->Assigned();
               nlohmann::json body = {
                   {"warm", 0},
                   {"assigned", assigned},
                   {"total", assigned},
                   {"config",
                    {{"warmTarget", 0}, {"refreshInterval", 10000}, {"maxInstances", max},
                     {"scaleBatchSize", 5}}},
                   {"maxInstances", max > 0 ? nlohmann::json(max) : nlohmann::json(nullptr)}};
               return JsonText(200, Dump(body));
             }));
  router.Add("POST", "/v1/pool/shutdown-prewarmed", pool([] { return JsonText(200, "{\"ok\":true}"); }));
  router.Add("POST", "/v1/pool/prime", pool([] { return JsonText(200, "{\"ok\":true}"); }));

  // Emulator control (not part of the bridge).
  router.Add("POST", "/_emulator/faults", [this](const Request& req, std::shared_ptr<Responder> r) {
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      r->Send(BridgeError(400, "faults: body must be a JSON object", "invalid_request"));
      return;
    }
    if (body.contains("fail_next") && body["fail_next"].is_array()) {
      for (const auto& f : body["fail_next"]) {
        if (!f.is_object()) continue;
        FaultRule rule;
        rule.status = f.value("status", 500);
        rule.count = f.value("count", 1);
        rule.path = f.value("path", "");
        rule.method = f.value("method", "");
        rule.code = f.value("code", rule.code);
        rule.error = f.value("error", rule.error);
        AddFault(rule);
      }
    }
    if (body.contains("stall_exec_ms")) {
      SetStall(body.value("stall_exec_ms", int64_t{0}), body.value("stall_count", 1));
    }
    if (body.contains("cut_exec_count")) SetCut(body.value("cut_exec_count", 0));
    r->Send(JsonText(200, Dump(StateJson())));
  });
  router.Add("DELETE", "/_emulator/faults", [this](const Request&, std::shared_ptr<Responder> r) {
    {
      absl::MutexLock lock(&mu_);
      faults_.clear();
      stall_ms_ = 0;
      stall_count_ = 0;
      cut_count_ = 0;
    }
    r->Send(JsonText(200, Dump(StateJson())));
  });
  router.Add("GET", "/_emulator/state", [this](const Request&, std::shared_ptr<Responder> r) {
    r->Send(JsonText(200, Dump(StateJson())));
  });

  // The emulator's own errors in the bridge's shape; unmatched routes as the worker answers them:
  // 404 text under /v1 (Hono's default), 200 "OK" elsewhere (the stock worker).
  router.SetErrorFormatter(
      [](int status, absl::string_view code, absl::string_view message) {
        return BridgeError(status, message, absl::AsciiStrToLower(code));
      });
  router.SetNotFound([](const Request& req) {
    if (req.path == "/v1" || absl::StartsWith(req.path, "/v1/")) {
      return Response::Text(404, "404 Not Found", "text/plain; charset=UTF-8");
    }
    return Response::Text(200, "OK", "text/plain; charset=UTF-8");
  });
}

nlohmann::json BridgeEmulator::StateJson() {
  nlohmann::json faults = nlohmann::json::array();
  absl::MutexLock lock(&mu_);
  for (const auto& f : faults_) {
    faults.push_back({{"status", f.status}, {"count", f.count}, {"path", f.path}, {"method", f.method}});
  }
  return {{"sandboxes", sandboxes_->SandboxIds()},
          {"fail_next", faults},
          {"stall_exec_ms", stall_ms_},
          {"stall_count", stall_count_},
          {"cut_exec_count", cut_count_},
          {"requests", requests_.load()}};
}

void BridgeEmulator::HandleDelete(const Request& req, std::shared_ptr<Responder> r) {
  std::string id = req.Param("id");
  absl::Status destroyed = sandboxes_->Destroy(id);
  {
    absl::MutexLock lock(&mu_);
    sessions_.erase(id);
  }
  if (!destroyed.ok()) {
    r->Send(BridgeError(502, absl::StrCat("pool error: ", destroyed.message()), "pool_error"));
    return;
  }
  Response response;
  response.status = 204;
  r->Send(std::move(response));
}

void BridgeEmulator::HandleExec(const Request& req, std::shared_ptr<Responder> r) {
  std::string id = req.Param("id");
  std::optional<Container> container = Resolve(id, r);
  if (!container) return;

  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    r->Send(BridgeError(400, "Invalid JSON body", "invalid_request"));
    return;
  }
  std::vector<std::string> argv;
  bool argv_ok = body.contains("argv") && body["argv"].is_array() && !body["argv"].empty();
  if (argv_ok) {
    for (const auto& a : body["argv"]) {
      if (!a.is_string()) {
        argv_ok = false;
        break;
      }
      argv.push_back(a.get<std::string>());
    }
  }
  if (!argv_ok) {
    r->Send(BridgeError(400, "argv must be a non-empty array", "invalid_request"));
    return;
  }
  int64_t timeout_ms = 0;
  if (body.contains("timeout_ms") && !body["timeout_ms"].is_null()) {
    if (!body["timeout_ms"].is_number() || body["timeout_ms"].get<double>() <= 0) {
      r->Send(BridgeError(400, "timeout_ms must be a positive number", "invalid_request"));
      return;
    }
    timeout_ms = static_cast<int64_t>(body["timeout_ms"].get<double>());
  }
  std::string cwd = "/workspace";
  if (body.contains("cwd") && !body["cwd"].is_null()) {
    if (!body["cwd"].is_string()) {
      r->Send(BridgeError(400, "cwd must be a string", "invalid_request"));
      return;
    }
    absl::StatusOr<std::string> resolved = cf::ResolveCwd(body["cwd"].get<std::string>());
    if (!resolved.ok()) {
      r->Send(BridgeError(403, resolved.status().message(), "invalid_request"));
      return;
    }
    cwd = *resolved;
  }
  std::string session_id = req.Header("session-id");
  ExecSpec spec;
  if (!session_id.empty()) {
    if (!cf::IsValidSessionId(session_id)) {
      r->Send(BridgeError(400, "Invalid session ID format", "invalid_request"));
      return;
    }
    absl::MutexLock lock(&mu_);
    Session& session = sessions_[id][session_id];  // unknown ids are created on first use
    for (const auto& [k, v] : session.env) spec.env.push_back(absl::StrCat(k, "=", v));
    if (!body.contains("cwd") && !session.cwd.empty()) cwd = session.cwd;
  }
  spec.cmd = {container->shell, "-c", cf::QuoteArgvForBridge(argv)};
  spec.working_dir = cwd;
  // §4.4: the session streaming path does not apply timeout_ms.
  if (session_id.empty() && timeout_ms > 0) spec.timeout = absl::Milliseconds(timeout_ms);

  int64_t stall = 0;
  bool cut = false;
  {
    absl::MutexLock lock(&mu_);
    if (stall_count_ > 0) {
      --stall_count_;
      stall = stall_ms_;
    }
    if (cut_count_ > 0) {
      --cut_count_;
      cut = true;
    }
  }
  if (stall > 0) absl::SleepFor(absl::Milliseconds(stall));

  r->StartStream(200, {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}});
  OutputEncoder encoder(r, /*line_mode=*/!session_id.empty());
  absl::StatusOr<ExecOutcome> outcome =
      sandboxes_->Exec(*container, spec, [&](int stream, absl::string_view data) {
        return encoder.Add(stream, data);
      });
  if (outcome.ok() && outcome->aborted) {
    r->End();
    return;
  }
  encoder.Finish();
  if (cut) {  // injected transport failure: no terminal event
    r->End();
    return;
  }
  if (!outcome.ok()) {
    r->SendEvent("error", Dump({{"error", std::string(outcome.status().message())},
                                {"code", "exec_error"}}));
  } else if (outcome->timed_out) {
    r->SendEvent("stderr", absl::Base64Escape(absl::StrCat("Command timed out after ", timeout_ms, "ms\n")));
    r->SendEvent("exit", "{\"exit_code\":124}");
  } else {
    r->SendEvent("exit", Dump({{"exit_code", outcome->exit_code}}));
  }
  r->End();
}

std::optional<BridgeEmulator::FileTarget> BridgeEmulator::ResolveFileTarget(
    const Request& req, const std::shared_ptr<Responder>& r) {
  std::optional<Container> container = Resolve(req.Param("id"), r);
  if (!container) return std::nullopt;
  std::string session_id = req.Header("session-id");
  if (!session_id.empty() && !cf::IsValidSessionId(session_id)) {
    r->Send(BridgeError(400, "Invalid session ID format", "invalid_request"));
    return std::nullopt;
  }
  absl::StatusOr<std::string> path = cf::ResolveWorkspacePath(FileRoutePath(req));
  if (!path.ok()) {
    int status = absl::IsPermissionDenied(path.status()) ? 403 : 400;
    r->Send(BridgeError(status, path.status().message(), "invalid_request"));
    return std::nullopt;
  }
  return FileTarget{*std::move(container), *std::move(path)};
}

void BridgeEmulator::HandleFileGet(const Request& req, std::shared_ptr<Responder> r) {
  std::optional<FileTarget> target = ResolveFileTarget(req, r);
  if (!target) return;
  const Container& container = target->container;
  const std::string& path = target->path;
  ExecSpec check;
  check.cmd = {"sh", "-c", "[ -f \"$1\" ]", "sh", path};
  absl::StatusOr<ExecOutcome> exists =
      sandboxes_->Exec(container, check, [](int, absl::string_view) { return true; });
  if (!exists.ok()) {
    r->Send(BridgeError(502, absl::StrCat("read failed: ", exists.status().message()),
                        "exec_transport_error"));
    return;
  }
  if (exists->exit_code != 0) {
    r->Send(BridgeError(404, absl::StrCat("File not found: ", path), "workspace_read_not_found"));
    return;
  }
  // Streamed like the bridge (chunked, no Content-Length); bytes are exact.
  r->StartStream(200, {{"Content-Type", "application/octet-stream"}});
  ExecSpec cat;
  cat.cmd = {"cat", "--", path};
  sandboxes_->Exec(container, cat, [&](int stream, absl::string_view data) {
    return stream != 1 || r->Write(data);
  }).IgnoreError();
  r->End();
}

void BridgeEmulator::HandleFilePut(const Request& req, std::shared_ptr<Responder> r) {
  std::optional<FileTarget> target = ResolveFileTarget(req, r);
  if (!target) return;
  const Container& container = target->container;
  const std::string& path = target->path;
  if (req.body.size() > cf::kMaxFileBytes) {
    r->Send(BridgeError(413,
                        absl::StrCat("File too large: ", req.body.size(), " bytes exceeds the ",
                                     cf::kMaxFileBytes, "-byte limit"),
                        "payload_too_large"));
    return;
  }
  if (path == cf::kWorkspaceRoot) {
    r->Send(BridgeError(502, "write failed: /workspace is a directory", "workspace_archive_write_error"));
    return;
  }
  absl::Status written = sandboxes_->PutFile(container, path, req.body);
  if (!written.ok()) {
    r->Send(BridgeError(502, absl::StrCat("write failed: ", written.message()),
                        "workspace_archive_write_error"));
    return;
  }
  r->Send(JsonText(200, "{\"ok\":true}"));
}

void BridgeEmulator::HandleRunning(const Request& req, std::shared_ptr<Responder> r) {
  std::optional<Container> container = Resolve(req.Param("id"), r);
  if (!container) return;
  ExecSpec spec;
  spec.cmd = {"true"};
  absl::StatusOr<ExecOutcome> outcome =
      sandboxes_->Exec(*container, spec, [](int, absl::string_view) { return true; });
  bool running = outcome.ok() && outcome->exit_code == 0;
  r->Send(JsonText(200, running ? "{\"running\":true}" : "{\"running\":false}"));
}

void BridgeEmulator::HandleSessionCreate(const Request& req, std::shared_ptr<Responder> r) {
  std::string id = req.Param("id");
  std::optional<Container> container = Resolve(id, r);
  if (!container) return;
  nlohmann::json body = nlohmann::json::object();
  if (!absl::StripAsciiWhitespace(req.body).empty()) {
    body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      r->Send(BridgeError(400, "Invalid JSON body", "invalid_request"));
      return;
    }
  }
  Session session;
  std::string sid = body.contains("id") && body["id"].is_string() ? body["id"].get<std::string>()
                                                                   : RandomSessionId();
  if (!cf::IsValidSessionId(sid)) {
    r->Send(BridgeError(502, "session create failed: invalid session id", "session_error"));
    return;
  }
  if (body.contains("cwd") && body["cwd"].is_string()) session.cwd = body["cwd"].get<std::string>();
  if (body.contains("env") && body["env"].is_object()) {
    for (const auto& [k, v] : body["env"].items()) {
      if (v.is_string()) session.env[k] = v.get<std::string>();
    }
  }
  absl::MutexLock lock(&mu_);
  auto& by_id = sessions_[id];
  if (by_id.count(sid)) {
    r->Send(BridgeError(502, absl::StrCat("session create failed: session '", sid, "' already exists"),
                        "session_error"));
    return;
  }
  by_id[sid] = std::move(session);
  r->Send(JsonText(200, Dump({{"id", sid}})));
}

void BridgeEmulator::HandleSessionDelete(const Request& req, std::shared_ptr<Responder> r) {
  std::string id = req.Param("id");
  std::string sid = req.Param("sid");
  std::optional<Container> container = Resolve(id, r);
  if (!container) return;
  if (sid.empty()) {
    r->Send(BridgeError(400, "Session ID is required", "invalid_request"));
    return;
  }
  if (sid == "default") {
    r->Send(BridgeError(502, "session delete failed: cannot delete the default session", "session_error"));
    return;
  }
  absl::MutexLock lock(&mu_);
  auto& by_id = sessions_[id];
  if (by_id.erase(sid) == 0) {
    r->Send(BridgeError(502, absl::StrCat("session delete failed: session '", sid, "' not found"),
                        "session_error"));
    return;
  }
  r->Send(JsonText(200, Dump({{"success", true}, {"sessionId", sid}})));
}

}  // namespace fastest::tools::cf_bridge_emulator
