#include "tools/cf_bridge_emulator/docker_sandboxes.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "backends/engine_api/engine_requests.h"
#include "backends/engine_api/log_demuxer.h"
#include "core/crypto/secure_random.h"
#include "core/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace fastest::tools::cf_bridge_emulator {
namespace {

namespace engine = ::fastest::backends::engine_api;

constexpr char kApiPrefix[] = "/v1.41";

void WriteOctal(char* field, size_t width, uint64_t value) {
  // width-1 octal digits, NUL-terminated.
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
}

std::string TarHeader(absl::string_view name, uint64_t size, unsigned mode, char type) {
  std::string header(512, '\0');
  std::memcpy(&header[0], name.data(), std::min<size_t>(name.size(), 100));
  WriteOctal(&header[100], 8, mode);
  WriteOctal(&header[108], 8, 0);
  WriteOctal(&header[116], 8, 0);
  WriteOctal(&header[124], 12, size);
  WriteOctal(&header[136], 12, static_cast<uint64_t>(time(nullptr)));
  header[156] = type;
  std::memcpy(&header[257], "ustar\0" "00", 8);
  std::memset(&header[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : header) sum += c;
  std::snprintf(&header[148], 8, "%06o", sum);
  header[155] = ' ';
  return header;
}

void PadTo512(std::string* out) {
  size_t rem = out->size() % 512;
  if (rem != 0) out->append(512 - rem, '\0');
}

// Parent PIDs of every process on the host.
std::map<int, int> ParentMap() {
  std::map<int, int> parents;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return parents;
  while (struct dirent* entry = readdir(dir)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    size_t close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::vector<std::string> fields = absl::StrSplit(text.substr(close + 2), ' ');
    int ppid = 0;
    if (fields.size() > 1 && absl::SimpleAtoi(fields[1], &ppid)) parents[pid] = ppid;
  }
  closedir(dir);
  return parents;
}

}  // namespace

std::string BuildTar(absl::string_view name, absl::string_view bytes, unsigned mode) {
  std::string out;
  if (name.size() > 99) {
    // GNU long name: a pseudo entry whose data is the real name.
    std::string long_name(name);
    long_name.push_back('\0');
    out += TarHeader("././@LongLink", long_name.size(), 0644, 'L');
    out += long_name;
    PadTo512(&out);
  }
  out += TarHeader(name.substr(0, 99), bytes.size(), mode, '0');
  out.append(bytes.data(), bytes.size());
  PadTo512(&out);
  out.append(1024, '\0');
  return out;
}

int KillProcessTree(int root) {
  std::map<int, int> parents = ParentMap();
  std::set<int> tree = {root};
  bool grew = true;
  while (grew) {
    grew = false;
    for (const auto& [pid, ppid] : parents) {
      if (tree.count(ppid) && !tree.count(pid)) {
        tree.insert(pid);
        grew = true;
      }
    }
  }
  int killed = 0;
  for (int pid : tree) {
    if (pid > 1 && ::kill(pid, SIGKILL) == 0) ++killed;
  }
  return killed;
}

absl::StatusOr<std::unique_ptr<DockerSandboxes>> DockerSandboxes::Create(
    DockerSandboxesOptions options) {
  engine::EngineOptions engine_options;
  engine_options.endpoint = options.endpoint;
  FASTEST_ASSIGN_OR_RETURN(std::unique_ptr<engine::EngineClient> client,
                           engine::EngineClient::Create(engine_options));
  FASTEST_ASSIGN_OR_RETURN(core::Endpoint endpoint, core::ParseEndpoint(options.endpoint));
  return std::unique_ptr<DockerSandboxes>(
      new DockerSandboxes(std::move(options), std::move(client), std::move(endpoint)));
}

DockerSandboxes::DockerSandboxes(DockerSandboxesOptions options,
                                 std::unique_ptr<engine::EngineClient> engine_client,
                                 core::Endpoint endpoint)
    : options_(std::move(options)),
      engine_(std::move(engine_client)),
      endpoint_(std::move(endpoint)),
      instance_(core::SecureRandomHex(8)) {}

DockerSandboxes::~DockerSandboxes() { DestroyAll(); }

absl::Status DockerSandboxes::Ping() { return engine_->Ping(); }

absl::StatusOr<core::HttpResponse> DockerSandboxes::Call(
    const std::string& method, const std::string& path, const std::string& body,
    std::chrono::milliseconds timeout, std::function<bool(absl::string_view)> on_chunk) {
  core::HttpRequest request;
  request.method = method;
  request.url = absl::StrCat(endpoint_.base_url, kApiPrefix, path);
  request.unix_socket = endpoint_.unix_socket;
  request.timeout = timeout;
  if (!body.empty()) {
    request.body = body;
    request.headers.emplace_back("Content-Type", "application/json");
  }
  request.on_body_chunk = std::move(on_chunk);
  return http_.Send(request);
}

bool DockerSandboxes::Has(const std::string& sandbox_id) {
  absl::MutexLock lock(&mu_);
  return containers_.count(sandbox_id) > 0;
}

int DockerSandboxes::Assigned() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(containers_.size());
}

std::vector<std::string> DockerSandboxes::SandboxIds() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const auto& [id, c] : containers_) ids.push_back(id);
  return ids;
}

absl::StatusOr<Container> DockerSandboxes::Ensure(const std::string& sandbox_id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(sandbox_id);
    if (it != containers_.end()) return it->second;
  }
  absl::MutexLock create_lock(&create_mu_);
  int assigned = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(sandbox_id);
    if (it != containers_.end()) return it->second;
    assigned = static_cast<int>(containers_.size());
  }
  if (options_.max_instances > 0 && assigned >= options_.max_instances) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "capacity exceeded: instance limit reached (", assigned, "/", options_.max_instances, ")"));
  }
  engine::ContainerSpec spec;
  spec.name = absl::StrCat("fastest-cfemu-", sandbox_id.substr(0, 40), "-", instance_.substr(0, 6));
  spec.image = options_.image;
  spec.cmd = {"sleep", "2147483647"};
  spec.labels = {{"fastest.emulator", "1"},
                 {"fastest.emulator.sandbox", sandbox_id},
                 {"fastest.emulator.instance", instance_}};
  spec.working_dir = "/";
  spec.network_mode = "host";
  spec.init = true;
  absl::StatusOr<std::string> id = engine_->CreateContainer(spec);
  if (!id.ok()) return core::Annotate(id.status(), "pool error: create container");
  absl::Status started = engine_->StartContainer(*id);
  if (!started.ok()) {
    engine_->RemoveContainer(*id).IgnoreError();
    return core::Annotate(started, "pool error: start container");
  }
  Container container;
  container.id = *id;
  container.shell = "sh";
  // /workspace must exist (the bridge's base image has it); detect bash for exec's `bash -c`.
  ExecSpec probe;
  probe.cmd = {"sh", "-c", "mkdir -p /workspace; if [ -x /bin/bash ]; then echo bash; else echo sh; fi"};
  std::string out;
  absl::StatusOr<ExecOutcome> outcome = Exec(container, probe, [&](int stream, absl::string_view d) {
    if (stream == 1) out.append(d.data(), d.size());
    return true;
  });
  if (!outcome.ok()) {
    engine_->RemoveContainer(*id).IgnoreError();
    return core::Annotate(outcome.status(), "pool error: prepare container");
  }
  if (out.find("bash") != std::string::npos) container.shell = "bash";
  absl::MutexLock lock(&mu_);
  containers_[sandbox_id] = container;
  return container;
}

absl::StatusOr<ExecOutcome> DockerSandboxes::Exec(
    const Container& container, const ExecSpec& spec,
    const std::function<bool(int, absl::string_view)>& sink) {
  nlohmann::json create = {{"AttachStdin", false}, {"AttachStdout", true}, {"AttachStderr", true},
                           {"Tty", false},         {"Cmd", spec.cmd}};
  if (!spec.env.empty()) create["Env"] = spec.env;
  if (!spec.working_dir.empty()) create["WorkingDir"] = spec.working_dir;
  FASTEST_ASSIGN_OR_RETURN(
      core::HttpResponse created,
      Call("POST", absl::StrCat("/containers/", container.id, "/exec"),
           create.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
           std::chrono::milliseconds(30000)));
  if (created.status != 201 && created.status != 200) {
    return engine::EngineHttpError(engine::EngineOp::kStart, created.status, created.body, "Docker",
                                   container.id);
  }
  nlohmann::json created_body = nlohmann::json::parse(created.body, nullptr, false);
  if (created_body.is_discarded() || !created_body.contains("Id")) {
    return absl::InternalError("docker exec create: no Id");
  }
  std::string exec_id = created_body["Id"].get<std::string>();

  ExecOutcome outcome;
  absl::Notification done;
  std::thread watcher;
  if (spec.timeout > absl::ZeroDuration()) {
    watcher = std::thread([&] {
      if (done.WaitForNotificationWithTimeout(spec.timeout)) return;
      outcome.timed_out = true;
      absl::StatusOr<core::HttpResponse> inspect =
          Call("GET", absl::StrCat("/exec/", exec_id, "/json"), "", std::chrono::milliseconds(10000));
      if (!inspect.ok()) return;
      nlohmann::json body = nlohmann::json::parse(inspect->body, nullptr, false);
      if (!body.is_discarded() && body.contains("Pid") && body["Pid"].is_number_integer()) {
        int pid = body["Pid"].get<int>();
        if (pid > 1) KillProcessTree(pid);
      }
    });
  }
  engine::LogDemuxer demux([&](int stream, absl::string_view data) {
    if (outcome.timed_out) return true;  // output after the deadline is dropped, like the bridge
    if (!sink(stream == 2 ? 2 : 1, data)) {
      outcome.aborted = true;
      return false;
    }
    return true;
  });
  nlohmann::json start = {{"Detach", false}, {"Tty", false}};
  // No overall deadline: the command may run for hours; a timeout is enforced by the watcher.
  absl::StatusOr<core::HttpResponse> started =
      Call("POST", absl::StrCat("/exec/", exec_id, "/start"), start.dump(),
           std::chrono::milliseconds(0), [&](absl::string_view chunk) { return demux.Feed(chunk); });
  done.Notify();
  if (watcher.joinable()) watcher.join();
  if (outcome.aborted) {
    // The client went away: stop the command like a broken RPC stream would.
    absl::StatusOr<core::HttpResponse> inspect =
        Call("GET", absl::StrCat("/exec/", exec_id, "/json"), "", std::chrono::milliseconds(10000));
    if (inspect.ok()) {
      nlohmann::json body = nlohmann::json::parse(inspect->body, nullptr, false);
      if (!body.is_discarded() && body.value("Running", false) && body.contains("Pid") &&
          body["Pid"].is_number_integer() && body["Pid"].get<int>() > 1) {
        KillProcessTree(body["Pid"].get<int>());
      }
    }
    return outcome;
  }
  if (!started.ok()) return core::Annotate(started.status(), "docker exec start");
  if (started->status != 200) {
    return engine::EngineHttpError(engine::EngineOp::kStart, started->status, started->body,
                                   "Docker", container.id);
  }
  // The attach stream ends when the process closes its output; the exit code may lag briefly.
  for (int i = 0; i < 100; ++i) {
    FASTEST_ASSIGN_OR_RETURN(core::HttpResponse inspect,
                             Call("GET", absl::StrCat("/exec/", exec_id, "/json"), "",
                                  std::chrono::milliseconds(10000)));
    nlohmann::json body = nlohmann::json::parse(inspect.body, nullptr, false);
    if (body.is_discarded()) return absl::InternalError("docker exec inspect: bad JSON");
    if (!body.value("Running", false) && body.contains("ExitCode") &&
        body["ExitCode"].is_number_integer()) {
      outcome.exit_code = body["ExitCode"].get<int>();
      return outcome;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::InternalError("docker exec: no exit code after the stream ended");
}

absl::Status DockerSandboxes::PutFile(const Container& container, const std::string& path,
                                      const std::string& bytes) {
  size_t slash = path.rfind('/');
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  std::string name = path.substr(slash + 1);
  ExecSpec mkdir;
  mkdir.cmd = {"mkdir", "-p", dir};
  std::string err;
  FASTEST_ASSIGN_OR_RETURN(ExecOutcome made, Exec(container, mkdir, [&](int, absl::string_view d) {
                             err.append(d.data(), d.size());
                             return true;
                           }));
  if (made.exit_code != 0) return absl::InternalError(absl::StrCat("mkdir failed: ", err));
  core::HttpRequest request;
  request.method = "PUT";
  request.url = absl::StrCat(endpoint_.base_url, kApiPrefix, "/containers/", container.id,
                             "/archive?path=", engine::UrlEncode(dir));
  request.unix_socket = endpoint_.unix_socket;
  request.headers.emplace_back("Content-Type", "application/x-tar");
  request.body = BuildTar(name, bytes, 0644);
  request.timeout = std::chrono::milliseconds(120000);
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse response, http_.Send(request));
  if (response.status != 200) {
    return absl::InternalError(absl::StrCat("archive upload: HTTP ", response.status, ": ",
                                            engine::EngineMessage(response.body)));
  }
  return absl::OkStatus();
}

absl::Status DockerSandboxes::Destroy(const std::string& sandbox_id) {
  Container container;
  {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(sandbox_id);
    if (it == containers_.end()) return absl::OkStatus();
    container = it->second;
    containers_.erase(it);
  }
  absl::Status removed = engine_->RemoveContainer(container.id);
  if (absl::IsNotFound(removed)) return absl::OkStatus();
  return removed;
}

void DockerSandboxes::DestroyAll() {
  for (const std::string& id : SandboxIds()) Destroy(id).IgnoreError();
  // Also anything of this instance that slipped through (e.g. created while shutting down).
  absl::StatusOr<std::vector<engine::ContainerSummary>> left =
      engine_->ListContainers({{"fastest.emulator.instance", instance_}});
  if (left.ok()) {
    for (const auto& c : *left) engine_->RemoveContainer(c.id).IgnoreError();
  }
}

}  // namespace fastest::tools::cf_bridge_emulator
