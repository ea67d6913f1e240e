#include "tests/runner/e2e_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/http/http_client.h"
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"
#include "runner/workspace_snapshot.h"

namespace fastest::testing {
namespace {

std::string Runfile(const std::string& rel) {
  // Tests and `bazel run` start in the runfiles tree; a binary started directly finds it beside
  // itself (<exe>.runfiles/fastest).
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = 0;
    std::string candidate = absl::StrCat(exe, ".runfiles/fastest/", rel);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return rel;
  return absl::StrCat(cwd, "/", rel);
}

}  // namespace

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

void WriteTestFile(const std::string& root, const std::string& rel, const std::string& content,
                   unsigned mode) {
  std::string path = root + "/" + rel;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  chmod(path.c_str(), mode);
}

std::string ReadTestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<ServerProcess> MakeServer(const std::string& data_dir, const std::string& token,
                                          int port) {
  ServerProcessOptions options;
  options.data_dir = data_dir;
  options.port = port;
  options.args = {"--backend=none"};
  options.env = {{"PATH", "/usr/bin:/bin"}, {"FASTEST_API_TOKEN", token}};
  options.stop_grace = absl::Seconds(2);
  return std::make_unique<ServerProcess>(std::move(options));
}

RunnerRun RunRunner(const std::map<std::string, std::string>& env_in, int timeout_s) {
  static int counter = 0;
  std::string base = absl::StrCat(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp",
                                  "/runner_run_", getpid(), "_", counter++);
  SpawnOptions options;
  options.binary = Runfile("runner/fastest-runner");
  options.env = env_in;
  if (options.env.count("PATH") == 0) options.env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  options.stdout_path = base + ".out";
  options.stderr_path = base + ".err";
  RunnerRun run;
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(options);
  if (!child.ok()) {
    run.stderr_text = child.status().ToString();
    return run;
  }
  // On timeout exit_code stays -1 and the runner is killed.
  absl::StatusOr<int> status = child->Wait(absl::Seconds(timeout_s));
  if (status.ok()) run.exit_code = ExitCode(*status);
  child->Kill();
  run.stdout_text = ReadTestFile(base + ".out");
  run.stderr_text = ReadTestFile(base + ".err");
  return run;
}

absl::StatusOr<SeededJob> SeedJob(core::ApiClient& api, const std::string& tree_dir,
                                  const std::string& prompt) {
  SeededJob s;
  FASTEST_ASSIGN_OR_RETURN(core::Project p, api.CreateProject("e2e"));
  s.project_id = p.id;
  core::CreateWorkspaceRequest w;
  w.name = "ws";
  if (!tree_dir.empty()) {
    runner::SnapshotRequest req;
    req.root = tree_dir;
    req.project_id = p.id;
    req.source = "cli";
    FASTEST_ASSIGN_OR_RETURN(runner::SnapshotResult snap, runner::SnapshotWorkspace(api, req));
    s.base_snapshot_id = snap.snapshot.id;
    s.base_manifest = snap.manifest;
    w.base_snapshot_id = snap.snapshot.id;
  }
  FASTEST_ASSIGN_OR_RETURN(core::Workspace ws, api.CreateWorkspace(p.id, w));
  s.workspace_id = ws.id;
  FASTEST_ASSIGN_OR_RETURN(core::Job job, api.CreateJob(ws.id, prompt));
  s.job_id = job.id;
  return s;
}

absl::StatusOr<SeededJob> SeedJobWithManifestText(core::ApiClient& api, const std::string& text,
                                                  const std::string& prompt) {
  SeededJob s;
  FASTEST_ASSIGN_OR_RETURN(core::Project p, api.CreateProject("hostile"));
  s.project_id = p.id;
  std::string hash = core::Sha256Hex(text);
  FASTEST_RETURN_IF_ERROR(api.UploadManifest(hash, text));
  FASTEST_ASSIGN_OR_RETURN(core::CreateSnapshotResult snap,
                           api.CreateSnapshot(p.id, hash, std::nullopt, "cli"));
  s.base_snapshot_id = snap.snapshot.id;
  core::CreateWorkspaceRequest w;
  w.name = "ws";
  w.base_snapshot_id = snap.snapshot.id;
  FASTEST_ASSIGN_OR_RETURN(core::Workspace ws, api.CreateWorkspace(p.id, w));
  s.workspace_id = ws.id;
  FASTEST_ASSIGN_OR_RETURN(core::Job job, api.CreateJob(ws.id, prompt));
  s.job_id = job.id;
  return s;
}

absl::StatusOr<core::Manifest> FetchManifest(core::ApiClient& api, const std::string& snapshot_id) {
  FASTEST_ASSIGN_OR_RETURN(core::Snapshot snap, api.GetSnapshot(snapshot_id));
  FASTEST_ASSIGN_OR_RETURN(std::string text, api.GetManifest(snap.manifest_hash));
  return core::ParseManifest(text);
}

}  // namespace fastest::testing
