#include "tests/e2e/e2e_harness.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/http/http_client.h"
#include "core/snapshot/directory_scan.h"
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"

namespace fastest::e2e {
namespace {

namespace fs = std::filesystem;
using backends::engine_api::ContainerSpec;
using backends::engine_api::ContainerSummary;
using backends::engine_api::EngineClient;
using backends::engine_api::EngineOptions;

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

}  // namespace

// ---------------------------------------------------------------- files and processes

void WriteFile(const std::string& root, const std::string& rel, const std::string& content,
               unsigned mode) {
  fs::path path = fs::path(root) / rel;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  chmod(path.c_str(), mode);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------- backends

absl::StatusOr<BackendKind> ParseBackendKind(const std::string& name) {
  if (name == "docker") return BackendKind::kDocker;
  if (name == "podman") return BackendKind::kPodman;
  if (name == "cloudflare") return BackendKind::kCloudflare;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown backend '", name, "' (docker, podman or cloudflare)"));
}

std::string BackendName(BackendKind kind) {
  switch (kind) {
    case BackendKind::kDocker: return "docker";
    case BackendKind::kPodman: return "podman";
    case BackendKind::kCloudflare: return "cloudflare";
  }
  return "?";
}

std::string SandboxImage() { return EnvOr("FASTEST_E2E_IMAGE", "fastest/sandbox:0.1.0"); }

EngineTarget EngineFor(BackendKind kind) {
  if (kind == BackendKind::kPodman) {
    return {"Podman", EnvOr("FASTEST_E2E_PODMAN_HOST", "unix:///run/podman/podman.sock"),
            "start the podman service with tools/start_podman.sh"};
  }
  return {"Docker", EnvOr("FASTEST_E2E_DOCKER_HOST", "unix:///var/run/docker.sock"),
          "start dockerd with tools/start_dockerd.sh"};
}

absl::StatusOr<std::unique_ptr<EngineClient>> ConnectEngine(BackendKind kind) {
  EngineTarget target = EngineFor(kind);
  EngineOptions options;
  options.endpoint = target.endpoint;
  options.engine_name = target.engine_name;
  options.start_hint = target.start_hint;
  if (kind == BackendKind::kPodman) {
    options.wait_method = backends::engine_api::WaitMethod::kLibpod;
    options.retry_on_reset = true;
  }
  FASTEST_ASSIGN_OR_RETURN(std::unique_ptr<EngineClient> engine, EngineClient::Create(options));
  absl::Status ping = engine->Ping();
  if (!ping.ok()) {
    return absl::UnavailableError(absl::StrCat(target.engine_name, " engine at ", target.endpoint,
                                               " does not answer (", ping.message(), "): ",
                                               target.start_hint));
  }
  return engine;
}

absl::Status CheckImagePresent(BackendKind kind, const std::string& image) {
  EngineTarget target = EngineFor(kind);
  FASTEST_ASSIGN_OR_RETURN(core::Endpoint ep, core::ParseEndpoint(target.endpoint));
  core::HttpClient http;
  core::HttpRequest req;
  req.url = absl::StrCat(ep.base_url, "/images/", image, "/json");
  req.unix_socket = ep.unix_socket;
  req.timeout = std::chrono::milliseconds(10000);
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse resp, http.Send(req));
  if (resp.status == 200) return absl::OkStatus();
  std::string how = kind == BackendKind::kPodman ? "tools/build_sandbox_image.sh --podman"
                                                 : "tools/build_sandbox_image.sh";
  return absl::FailedPreconditionError(
      absl::StrCat("sandbox image ", image, " is missing in ", target.engine_name, " (", target.endpoint,
                   ", HTTP ", resp.status, "): build it with ", how,
                   " (it packs bazel-bin/runner/fastest-runner; rebuild whenever the runner changes)"));
}

std::string CheckRunnerFreshness(EngineClient& engine, const std::string& image,
                                 const std::string& runner_path) {
  absl::StatusOr<std::string> want = core::Sha256FileHex(runner_path);
  if (!want.ok()) return absl::StrCat("cannot hash ", runner_path, ": ", want.status().message());
  ContainerSpec spec;
  spec.image = image;
  spec.cmd = {"sha256sum", "/usr/local/bin/fastest-runner"};
  spec.network_mode = "none";
  spec.labels = {{"fastest.e2e.probe", "1"}};
  if (engine.options().engine_name == "Podman") {
    spec.runtime = "runc";
    spec.ulimits = {{"nofile", 1024, 1024}, {"nproc", 1000, 1000}};
  }
  absl::StatusOr<std::string> id = engine.CreateContainer(spec);
  if (!id.ok()) return absl::StrCat("cannot probe the image: ", id.status().message());
  std::string out;
  if (engine.StartContainer(*id).ok() && engine.WaitContainer(*id, absl::Seconds(30)).ok()) {
    engine.Logs(*id, {}, [&](int, absl::string_view data) {
      out.append(data.data(), data.size());
      return true;
    }).IgnoreError();
  }
  engine.RemoveContainer(*id).IgnoreError();
  std::string have = out.substr(0, out.find(' '));
  if (have == *want) return "";
  return absl::StrCat("the runner in ", image, " (sha256 ", have.empty() ? "?" : have.substr(0, 12),
                      ") differs from ", runner_path, " (", want->substr(0, 12),
                      "): the image is stale - rebuild it with tools/build_sandbox_image.sh");
}

absl::StatusOr<SandboxEngine> ConnectSandboxEngine(BackendKind kind) {
  SandboxEngine out;
  FASTEST_ASSIGN_OR_RETURN(out.engine, ConnectEngine(kind));
  out.image = SandboxImage();
  FASTEST_RETURN_IF_ERROR(CheckImagePresent(kind, out.image));
  // The probe starts a container: once per engine and image in a test binary.
  static std::mutex mu;
  static std::map<std::string, std::string>* probed = new std::map<std::string, std::string>();
  std::lock_guard<std::mutex> lock(mu);
  const std::string key = absl::StrCat(BackendName(kind), "|", out.image);
  auto it = probed->find(key);
  if (it == probed->end()) {
    it = probed->emplace(key, CheckRunnerFreshness(*out.engine, out.image,
                                                   RunfilePath("runner/fastest-runner")))
             .first;
  }
  out.stale_runner = it->second;
  return out;
}

// ---------------------------------------------------------------- the change fixture

void WriteChangeFixtureTree(const std::string& root) {
  WriteFile(root, "README.md", "# fixture\nhello\n", 0644);
  WriteFile(root, "src/main.sh", "#!/bin/sh\necho main\n", 0755);
  WriteFile(root, "src/lib.txt", "lib v1\n", 0644);
  WriteFile(root, "docs/old.txt", "obsolete\n", 0644);
  WriteFile(root, "tools/run.sh", "#!/bin/sh\necho run\n", 0644);
  WriteFile(root, "data/keep.bin", std::string("\x00\x01\x02\xff binary\n", 12), 0600);
}

const char kChangeAgentScript[] =
    "set -e\n"
    "printf 'fresh file\\n' > added.txt\n"
    "mkdir -p new/dir\n"
    "printf 'deep\\n' > new/dir/deep.txt\n"
    "chmod 644 added.txt new/dir/deep.txt\n"
    "printf 'lib v2\\n' > src/lib.txt\n"
    "rm docs/old.txt\n"
    "chmod 755 tools/run.sh\n";

// ---------------------------------------------------------------- the bridge emulator

// ---------------------------------------------------------------- the server

std::string PluginPath(BackendKind kind) {
  std::string name = BackendName(kind);
  return RunfilePath(absl::StrCat("backends/", name, "/libfastest_backend_", name, ".so"));
}

namespace {

testing::ServerProcessOptions ProcessOptions(std::string data_dir, int port) {
  testing::ServerProcessOptions o;
  o.data_dir = std::move(data_dir);
  o.port = port;
  o.stop_grace = absl::Seconds(30);
  o.die_with_parent = true;  // a crashed test leaves no server behind
  return o;
}

}  // namespace

BackendServer::BackendServer(std::string data_dir, std::string token, ServerOptions options)
    : token_(std::move(token)),
      options_(std::move(options)),
      process_(ProcessOptions(std::move(data_dir), options_.port)) {
  if (options_.image.empty()) options_.image = SandboxImage();
}

absl::Status BackendServer::Start() {
  const std::string& data_dir = process_.data_dir();
  process_.options().args = {
      absl::StrCat("--backend=", PluginPath(options_.backend)),
      absl::StrCat("--backend_config=", options_.backend_config.dump()),
      absl::StrCat("--image=", options_.image),
      absl::StrCat("--max_instances=", options_.max_instances),
      absl::StrCat("--job_timeout=", options_.job_timeout),
  };
  process_.options().args.insert(process_.options().args.end(), options_.extra_flags.begin(),
                                 options_.extra_flags.end());
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/local/bin:/usr/bin:/bin"},
      {"HOME", data_dir},
      {"FASTEST_API_TOKEN", token_},  // imported (hashed) as the admin's token
      {"FASTEST_STATE_DIR", data_dir},
  };
  // The scripted agent reaches the runner only through the server's sandbox env pass-through.
  if (!options_.agent_command.empty()) env["FASTEST_AGENT_COMMAND"] = options_.agent_command;
  for (const auto& [k, v] : options_.extra_env) env[k] = v;
  process_.options().env = std::move(env);
  FASTEST_RETURN_IF_ERROR(process_.Start());
  // The id labels this server's sandboxes (fastest.server_id).
  const std::string log = Log();
  static const std::regex kId("msg=\"?listening\"?[^\n]*server_id=\"?([A-Za-z0-9_-]+)");
  std::string last;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), kId); it != std::sregex_iterator();
       ++it) {
    last = (*it)[1].str();
  }
  server_id_ = last;
  return absl::OkStatus();
}

// ---------------------------------------------------------------- API helpers

absl::StatusOr<Fixture> SeedWorkspace(core::ApiClient& api, const std::string& dir,
                                      const std::string& name) {
  Fixture f;
  FASTEST_ASSIGN_OR_RETURN(f.manifest, core::BuildManifestFromDirectory(dir));
  std::vector<std::string> hashes;
  std::map<std::string, std::string> path_of;
  for (const core::FileEntry& e : f.manifest.files) {
    hashes.push_back(e.hash);
    path_of.emplace(e.hash, e.path);
  }
  FASTEST_ASSIGN_OR_RETURN(std::vector<std::string> missing, api.MissingBlobs(hashes));
  for (const std::string& h : missing) {
    FASTEST_RETURN_IF_ERROR(
        api.UploadBlobFromFile(h, (fs::path(dir) / path_of[h]).string()).status());
  }
  const std::string text = core::SerializeManifest(f.manifest);
  const std::string hash = core::ManifestHash(f.manifest);
  FASTEST_RETURN_IF_ERROR(api.UploadManifest(hash, text));
  FASTEST_ASSIGN_OR_RETURN(core::Project project, api.CreateProject(name));
  f.project_id = project.id;
  FASTEST_ASSIGN_OR_RETURN(core::CreateSnapshotResult snap,
                           api.CreateSnapshot(project.id, hash, std::nullopt, "cli"));
  f.snapshot_id = snap.snapshot.id;
  core::CreateWorkspaceRequest w;
  w.name = name + "-ws";
  w.base_snapshot_id = f.snapshot_id;
  FASTEST_ASSIGN_OR_RETURN(core::Workspace ws, api.CreateWorkspace(project.id, w));
  f.workspace_id = ws.id;
  return f;
}

absl::StatusOr<core::Manifest> FetchSnapshotManifest(core::ApiClient& api,
                                                     const std::string& snapshot_id) {
  FASTEST_ASSIGN_OR_RETURN(core::Snapshot snap, api.GetSnapshot(snapshot_id));
  FASTEST_ASSIGN_OR_RETURN(std::string text, api.GetManifest(snap.manifest_hash));
  return core::ParseManifest(text);
}

absl::StatusOr<nlohmann::json> RunJob(const std::string& base_url, const std::string& token,
                                      const std::string& job_id, bool wait,
                                      absl::Duration timeout) {
  static core::HttpClient* http = new core::HttpClient();
  core::HttpRequest req;
  req.method = "POST";
  req.url = base_url + "/run-job";
  req.bearer_token = token;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = nlohmann::json{{"job_id", job_id}, {"wait", wait}}.dump();
  req.timeout = std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout));
  FASTEST_ASSIGN_OR_RETURN(core::HttpResponse resp, http->Send(req));
  nlohmann::json j = nlohmann::json::parse(resp.body, nullptr, false);
  if (resp.status / 100 != 2 || j.is_discarded()) {
    return absl::InternalError(absl::StrCat("POST /run-job ", job_id, ": HTTP ", resp.status, " ",
                                            resp.body.substr(0, 2000)));
  }
  return j;
}

absl::StatusOr<core::Job> WaitForJob(core::ApiClient& api, const std::string& job_id,
                                     const std::function<bool(const core::Job&)>& pred,
                                     absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last = "(none)";
  while (true) {
    absl::StatusOr<core::Job> job = api.GetJob(job_id);
    if (job.ok()) {
      if (pred(*job)) return job;
      last = std::string(core::JobStatusName(job->status));
      if (job->error) absl::StrAppend(&last, " (error: ", *job->error, ")");
    } else {
      last = job.status().ToString();
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("job ", job_id, " did not reach the expected state in ",
                                                  absl::FormatDuration(timeout), "; last: ", last));
}

absl::StatusOr<core::Job> WaitForTerminal(core::ApiClient& api, const std::string& job_id,
                                          absl::Duration timeout) {
  return WaitForJob(api, job_id, [](const core::Job& j) { return core::IsTerminal(j.status); },
                    timeout);
}

// ---------------------------------------------------------------- sandbox observation

absl::StatusOr<std::vector<ContainerSummary>> ListLabelled(
    EngineClient& engine, const std::map<std::string, std::string>& labels) {
  return engine.ListContainers(labels);
}

absl::Status WaitNoContainers(EngineClient& engine, const std::map<std::string, std::string>& labels,
                              absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<ContainerSummary> left;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(left, engine.ListContainers(labels));
    if (left.empty()) return absl::OkStatus();
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::vector<std::string> names;
  for (const auto& c : left) names.push_back(absl::StrCat(c.name, " (", c.state, ")"));
  std::vector<std::string> sel;
  for (const auto& [k, v] : labels) sel.push_back(k + "=" + v);
  return absl::FailedPreconditionError(
      absl::StrCat(left.size(), " container(s) labelled ", absl::StrJoin(sel, ","),
                   " still exist after ", absl::FormatDuration(timeout), ": ",
                   absl::StrJoin(names, ", ")));
}

absl::Status StopServerLeavingNoContainers(BackendServer& server, EngineClient& engine,
                                           absl::Duration timeout) {
  server.Stop();
  if (server.server_id().empty()) return absl::OkStatus();  // never came up
  return WaitNoContainers(engine, {{"fastest.server_id", server.server_id()}}, timeout);
}

std::string ServerLogTail(const BackendServer& server, size_t max_bytes) {
  std::string log = server.Log();
  if (log.size() > max_bytes) log = log.substr(log.size() - max_bytes);
  return absl::StrCat("---- server log (", server.data_dir(), ") ----\n", log, "\n");
}

absl::StatusOr<ContainerSummary> WaitForContainer(EngineClient& engine,
                                                  const std::map<std::string, std::string>& labels,
                                                  absl::Duration timeout, absl::Duration poll) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    FASTEST_ASSIGN_OR_RETURN(std::vector<ContainerSummary> found, engine.ListContainers(labels));
    if (!found.empty()) return found.front();
    if (absl::Now() >= deadline) break;
    absl::SleepFor(poll);
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no container appeared within ", absl::FormatDuration(timeout)));
}

double MetricSample(core::HttpClient& http, const std::string& base_url, const std::string& token,
                    const std::string& sample) {
  core::HttpRequest req;
  req.url = base_url + "/metrics";
  req.bearer_token = token;
  absl::StatusOr<core::HttpResponse> r = http.Send(req);
  if (!r.ok() || r->status != 200) return -1;
  for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
    if (absl::StartsWith(line, sample + " ")) {
      double v = -1;
      if (absl::SimpleAtod(line.substr(sample.size() + 1), &v)) return v;
    }
  }
  return -1;
}

}  // namespace fastest::e2e
