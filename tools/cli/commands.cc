#include "tools/cli/commands.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/snapshot/directory_scan.h"
#include "core/snapshot/manifest.h"
#include "core/snapshot/safe_fs.h"
#include "nlohmann/json.hpp"
#include "tools/cli/docker_logs.h"
#include "tools/cli/log_format.h"
#include "tools/cli/write_back.h"

namespace fastest::cli {
namespace {

using core::ApiClient;
using core::JobStatus;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

std::string HumanBytes(uint64_t n) {
  if (n < 1024) return absl::StrCat(n, " B");
  if (n < 1024 * 1024) return absl::StrFormat("%.1f KB", n / 1024.0);
  return absl::StrFormat("%.1f MB", n / (1024.0 * 1024.0));
}

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d));
}

std::string Plural(size_t n, const char* word) {
  return absl::StrCat(n, " ", word, n == 1 ? "" : "s");
}

void Step(const std::string& text) {
  fprintf(stderr, "==> %s\n", text.c_str());
  fflush(stderr);
}

std::string AbsPath(const std::string& p) {
  char buf[4096];
  if (realpath(p.c_str(), buf)) return buf;
  return p;
}

std::string Basename(const std::string& p) {
  size_t slash = p.rfind('/');
  std::string b = slash == std::string::npos ? p : p.substr(slash + 1);
  return b.empty() ? "workspace" : b;
}

// projects.json: "<server url>|<dir>" -> project id, so reruns on a directory share a project.
nlohmann::json LoadProjects(const std::string& data_dir) {
  std::ifstream in(data_dir + "/projects.json");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

void SaveProjects(const std::string& data_dir, const nlohmann::json& j) {
  if (!core::MakeDirs(data_dir, 0700).ok()) return;
  std::string tmp = data_dir + "/projects.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2);
  }
  rename(tmp.c_str(), (data_dir + "/projects.json").c_str());
}

absl::StatusOr<std::string> ProjectFor(ApiClient& api, const std::string& data_dir,
                                       const std::string& dir) {
  nlohmann::json projects = LoadProjects(data_dir);
  std::string key = absl::StrCat(api.base_url(), "|", dir);
  if (projects.contains(key) && projects[key].is_string()) {
    std::string id = projects[key];
    if (api.GetProject(id).ok()) return id;
  }
  absl::StatusOr<core::Project> p = api.CreateProject(Basename(dir));
  if (!p.ok()) return p.status();
  projects[key] = p->id;
  SaveProjects(data_dir, projects);
  return p->id;
}

// Follows GET /v1/jobs/:id/logs?follow=1 on its own thread and hands complete lines to `on_line`.
// Reconnects (with ?offset=) if the stream ends while the job is still active.
class LogFollower {
 public:
  LogFollower(core::HttpClient& http, const Target& target, std::string job_id,
              std::function<void(const std::string&)> on_line)
      : http_(http), base_url_(target.url), token_(target.token),
        job_id_(std::move(job_id)), on_line_(std::move(on_line)) {}

  void Start() {
    std::packaged_task<void()> task([this] { Loop(); });
    done_ = task.get_future();
    std::thread(std::move(task)).detach();
  }
  // The job is over: drain what is left (bounded), then stop.
  void Finish(absl::Duration grace) {
    job_over_ = true;
    if (done_.valid()) done_.wait_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
    stop_ = true;
  }
  bool unavailable() const { return unavailable_; }
  bool got_any() const { return offset_ > 0; }

 private:
  void Loop() {
    while (!stop_) {
      core::HttpRequest req;
      req.url = absl::StrCat(base_url_, "/v1/jobs/", job_id_, "/logs?follow=1&offset=", offset_.load());
      req.bearer_token = token_;
      req.timeout = std::chrono::milliseconds(0);
      long status = 0;
      bool streaming = false;
      std::string error_body;
      req.on_body_chunk = [&](absl::string_view chunk) {
        if (stop_) return false;
        if (!streaming) {
          // The first chunk tells whether this is the log or an error body.
          streaming = true;
        }
        buffer_.append(chunk.data(), chunk.size());
        size_t nl;
        while ((nl = buffer_.find('\n')) != std::string::npos) {
          std::string line = buffer_.substr(0, nl);
          offset_ += nl + 1;
          buffer_.erase(0, nl + 1);
          on_line_(line);
        }
        return true;
      };
      absl::StatusOr<core::HttpResponse> r = http_.Send(req);
      if (r.ok()) status = r->status;
      if (r.ok() && (status == 404 || status == 405 || status == 501) && offset_ == 0) {
        // Either the job is unknown (cannot be: we just made it) or the route does not exist.
        unavailable_ = true;
        buffer_.clear();
        return;
      }
      if (r.ok() && status >= 400) buffer_.clear();  // an error body, not log text
      if (job_over_ || stop_) {
        if (!buffer_.empty()) on_line_(buffer_);
        buffer_.clear();
        return;
      }
      absl::SleepFor(absl::Milliseconds(500));
    }
  }

  core::HttpClient& http_;
  std::string base_url_;
  std::string token_;
  std::string job_id_;
  std::function<void(const std::string&)> on_line_;
  std::future<void> done_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> job_over_{false};
  std::atomic<bool> unavailable_{false};
  std::atomic<size_t> offset_{0};
  std::string buffer_;
};

// Prints runner log lines as phases + summaries.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool verbose) : verbose_(verbose) {}
  void OnLine(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    if (verbose_) {
      fprintf(stderr, "    | %s\n", line.c_str());
      fflush(stderr);
      return;
    }
    LogLineView v = FormatRunnerLine(line);
    SetPhaseLocked(v.phase);
    if (v.show) {
      fprintf(stderr, "%s\n", v.text.c_str());
      fflush(stderr);
    }
  }
  void SetPhase(Phase p) {
    std::lock_guard<std::mutex> lock(mu_);
    SetPhaseLocked(p);
  }

 private:
  void SetPhaseLocked(Phase p) {
    if (p == Phase::kUnknown || p == phase_ || p == Phase::kFinishing) return;
    phase_ = p;
    Step(std::string(PhaseTitle(p)));
  }
  std::mutex mu_;
  bool verbose_;
  Phase phase_ = Phase::kUnknown;
};

absl::StatusOr<core::Manifest> FetchManifest(ApiClient& api, const std::string& snapshot_id) {
  absl::StatusOr<core::Snapshot> snap = api.GetSnapshot(snapshot_id);
  if (!snap.ok()) return snap.status();
  absl::StatusOr<std::string> text = api.GetManifest(snap->manifest_hash);
  if (!text.ok()) return text.status();
  return core::ParseManifest(*text);
}

}  // namespace

int RunJobCommand(core::HttpClient& http, ApiClient& api, const Target& target,
                  const RunOptions& options) {
  const absl::Time start = absl::Now();
  struct stat st;
  if (options.dir.empty() || stat(options.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "fastest run: --dir %s is not a directory\n", options.dir.c_str());
    return 2;
  }
  if (options.prompt.empty()) {
    fprintf(stderr, "fastest run: --prompt is required\n");
    return 2;
  }
  std::string dir = AbsPath(options.dir);

  // ---- snapshot + upload ----
  core::ScanStats scan;
  absl::StatusOr<core::Manifest> base = core::BuildManifestFromDirectory(dir, {}, nullptr, &scan);
  if (!base.ok()) {
    fprintf(stderr, "fastest run: scanning %s: %s\n", dir.c_str(), Msg(base.status()).c_str());
    return 1;
  }
  uint64_t total_bytes = 0;
  std::vector<std::string> hashes;
  std::map<std::string, std::string> path_of;  // hash -> one file with that content
  for (const core::FileEntry& e : base->files) {
    total_bytes += e.size;
    if (path_of.emplace(e.hash, e.path).second) hashes.push_back(e.hash);
  }
  absl::StatusOr<std::vector<std::string>> missing = api.MissingBlobs(hashes);
  if (!missing.ok()) {
    fprintf(stderr, "fastest run: %s\n", Msg(missing.status()).c_str());
    return 1;
  }
  Step(absl::StrCat("uploading ", Plural(base->files.size(), "file"), " (",
                    HumanBytes(total_bytes), "): ", Plural(missing->size(), "new blob"), ", ",
                    hashes.size() - missing->size(), " already stored"));
  for (const std::string& h : *missing) {
    absl::StatusOr<core::BlobUploadResult> up =
        api.UploadBlobFromFile(h, dir + "/" + path_of[h]);
    if (!up.ok()) {
      fprintf(stderr, "fastest run: uploading %s: %s%s\n", path_of[h].c_str(),
              Msg(up.status()).c_str(),
              absl::StrContains(Msg(up.status()), "HASH_MISMATCH")
                  ? " (the file changed during the upload; run again)" : "");
      return 1;
    }
  }
  std::string manifest_hash = core::ManifestHash(*base);
  if (absl::Status s = api.UploadManifest(manifest_hash, core::SerializeManifest(*base)); !s.ok()) {
    fprintf(stderr, "fastest run: uploading the manifest: %s\n", Msg(s).c_str());
    return 1;
  }
  absl::StatusOr<std::string> project_id = ProjectFor(api, options.data_dir, dir);
  if (!project_id.ok()) {
    fprintf(stderr, "fastest run: %s\n", Msg(project_id.status()).c_str());
    return 1;
  }
  absl::StatusOr<core::CreateSnapshotResult> snap =
      api.CreateSnapshot(*project_id, manifest_hash, std::nullopt, "cli");
  if (!snap.ok()) {
    fprintf(stderr, "fastest run: %s\n", Msg(snap.status()).c_str());
    return 1;
  }
  core::CreateWorkspaceRequest ws_req;
  ws_req.name = Basename(dir);
  ws_req.base_snapshot_id = snap->snapshot.id;
  ws_req.local_path = dir;
  absl::StatusOr<core::Workspace> ws = api.CreateWorkspace(*project_id, ws_req);
  if (!ws.ok()) {
    fprintf(stderr, "fastest run: %s\n", Msg(ws.status()).c_str());
    return 1;
  }
  absl::StatusOr<core::Job> job = api.CreateJob(ws->id, options.prompt);
  if (!job.ok()) {
    fprintf(stderr, "fastest run: %s\n", Msg(job.status()).c_str());
    return 1;
  }
  Step(absl::StrCat("job ", job->id, " created (snapshot ", snap->snapshot.id, ")"));

  // ---- dispatch (asynchronous) ----
  nlohmann::json body = {{"job_id", job->id}, {"wait", false}};
  absl::StatusOr<nlohmann::json> dispatched = api.CallJson("POST", "/run-job", &body, false);
  if (!dispatched.ok()) {
    fprintf(stderr, "fastest run: dispatching the job: %s\n", Msg(dispatched.status()).c_str());
    return 1;
  }

  // ---- follow ----
  ProgressPrinter printer(options.verbose);
  LogFollower logs(http, target, job->id, [&](const std::string& l) { printer.OnLine(l); });
  logs.Start();
  core::Job current = *job;
  bool said_queued = false, said_running = false;
  bool docker_tail_started = false;
  std::atomic<bool> docker_stop{false};
  std::future<void> docker_done;
  const absl::Time deadline = absl::Now() + options.timeout;
  while (true) {
    absl::StatusOr<core::Job> j = api.GetJob(job->id);
    if (j.ok()) {
      current = *j;
      if (current.status == JobStatus::kPending && !said_queued && !logs.got_any()) {
        said_queued = true;
        Step("queued");
      }
      if (logs.unavailable() && options.docker_logs_fallback && !docker_tail_started) {
        // No log endpoint on this server: read the sandbox's output from Docker directly.
        docker_tail_started = true;
        std::packaged_task<void()> task([&http, &options, &printer, &docker_stop, id = job->id] {
          DockerLogTail tail(http, options.docker_host, id,
                             [&printer](const std::string& l) { printer.OnLine(l); });
          tail.Run(docker_stop);
        });
        docker_done = task.get_future();
        std::thread(std::move(task)).detach();
      }
      if (current.status == JobStatus::kRunning && !said_running) {
        said_running = true;
        if (logs.unavailable() && !docker_tail_started) {
          Step("running in the sandbox (no live output: the server has no GET /v1/jobs/:id/logs)");
        }
      }
      if (core::IsTerminal(current.status)) break;
    }
    if (absl::Now() > deadline) {
      logs.Finish(absl::ZeroDuration());
      fprintf(stderr, "fastest run: job %s still %s after %s; it keeps running (fastest logs %s)\n",
              job->id.c_str(), std::string(core::JobStatusName(current.status)).c_str(),
              Seconds(options.timeout).c_str(), job->id.c_str());
      return 1;
    }
    absl::SleepFor(absl::Milliseconds(300));
  }
  logs.Finish(absl::Seconds(3));
  if (docker_done.valid()) {
    // The container's exit ends the stream; do not wait long for it.
    docker_done.wait_for(std::chrono::seconds(3));
    docker_stop = true;
  }

  if (current.status == JobStatus::kCancelled) {
    Step(absl::StrCat("job ", job->id, " was cancelled after ", Seconds(absl::Now() - start)));
    return 1;
  }
  if (current.status == JobStatus::kFailed) {
    Step(absl::StrCat("job ", job->id, " failed after ", Seconds(absl::Now() - start)));
    fprintf(stderr, "error: %s\n", current.error.value_or("(no error message)").c_str());
    return 1;
  }
  if (!current.output_snapshot_id) {
    fprintf(stderr, "fastest run: job completed without an output snapshot\n");
    return 1;
  }

  // ---- result ----
  absl::StatusOr<core::Manifest> output = FetchManifest(api, *current.output_snapshot_id);
  if (!output.ok()) {
    fprintf(stderr, "fastest run: fetching the output snapshot: %s\n", Msg(output.status()).c_str());
    return 1;
  }
  BlobFetcher fetch = [&api](const std::string& h) { return api.DownloadVerifiedBlob(h); };
  core::ManifestDiff d = core::DiffManifests(*base, *output);
  std::string changes = absl::StrCat("+", d.added.size(), " ~", d.modified.size(), " -",
                                     d.deleted.size());
  if (options.diff) {
    absl::StatusOr<std::string> text = DiffOutput(*base, *output, fetch);
    if (!text.ok()) {
      fprintf(stderr, "fastest run: building the diff: %s\n", Msg(text.status()).c_str());
      return 1;
    }
    fwrite(text->data(), 1, text->size(), stdout);
    fflush(stdout);
    Step(absl::StrCat("done in ", Seconds(absl::Now() - start), " (", changes,
                      "; --diff: nothing written to ", dir, ")"));
    return 0;
  }
  absl::StatusOr<ApplyResult> applied = ApplyOutput(dir, *base, *output, fetch);
  if (!applied.ok()) {
    fprintf(stderr, "fastest run: writing the result into %s: %s\n", dir.c_str(),
            Msg(applied.status()).c_str());
    return 1;
  }
  for (const std::string& p : applied->added) printf("  A %s\n", p.c_str());
  for (const std::string& p : applied->modified) printf("  M %s\n", p.c_str());
  for (const std::string& p : applied->deleted) printf("  D %s\n", p.c_str());
  for (const std::string& p : applied->mode_changed) printf("  m %s (mode)\n", p.c_str());
  for (const std::string& p : applied->conflicts) printf("  ! %s\n", p.c_str());
  fflush(stdout);
  size_t written = applied->added.size() + applied->modified.size() + applied->deleted.size() +
                   applied->mode_changed.size();
  Step(absl::StrCat("done in ", Seconds(absl::Now() - start), ": ", changes, ", ",
                    written == 0 ? "nothing to write" : absl::StrCat(Plural(written, "change"),
                                                                      " written to ", dir),
                    applied->conflicts.empty() ? ""
                        : absl::StrCat(", ", Plural(applied->conflicts.size(), "conflict"),
                                       " kept local")));
  return applied->conflicts.empty() ? 0 : 1;
}

int JobsCommand(ApiClient& api, int limit, const std::string& status) {
  core::JobFilter filter;
  filter.limit = limit;
  if (!status.empty()) {
    absl::StatusOr<JobStatus> st = core::ParseJobStatus(status);
    if (!st.ok()) {
      fprintf(stderr, "fastest jobs: unknown --status %s\n", status.c_str());
      return 2;
    }
    filter.status = *st;
  }
  absl::StatusOr<std::vector<core::Job>> jobs = api.ListJobs(filter);
  if (!jobs.ok()) {
    fprintf(stderr, "fastest jobs: %s\n", Msg(jobs.status()).c_str());
    return 1;
  }
  printf("%-26s  %-9s  %-24s  %-8s  %s\n", "JOB", "STATUS", "CREATED", "TOOK", "PROMPT");
  for (const core::Job& j : *jobs) {
    std::string took = "-";
    if (j.started_at && j.completed_at) {
      absl::StatusOr<absl::Time> a = core::ParseTimestamp(*j.started_at);
      absl::StatusOr<absl::Time> b = core::ParseTimestamp(*j.completed_at);
      if (a.ok() && b.ok()) took = Seconds(*b - *a);
    }
    std::string prompt = j.prompt.size() > 50 ? j.prompt.substr(0, 50) + "..." : j.prompt;
    for (char& c : prompt) {
      if (c == '\n') c = ' ';
    }
    printf("%-26s  %-9s  %-24s  %-8s  %s\n", j.id.c_str(),
           std::string(core::JobStatusName(j.status)).c_str(), j.created_at.c_str(), took.c_str(),
           prompt.c_str());
    if (j.status == JobStatus::kFailed && j.error) {
      std::string e = j.error->substr(0, j.error->find('\n'));
      printf("%28s error: %s\n", "", e.substr(0, 100).c_str());
    }
  }
  return 0;
}

int LogsCommand(core::HttpClient& http, ApiClient& api, const Target& target,
                const std::string& job_id, bool follow, bool raw, bool docker_fallback) {
  absl::StatusOr<core::Job> job = api.GetJob(job_id);
  if (!job.ok()) {
    fprintf(stderr, "fastest logs: %s\n", Msg(job.status()).c_str());
    return 1;
  }
  auto print = [raw](const std::string& line) {
    if (raw) {
      printf("%s\n", line.c_str());
    } else {
      LogLineView v = FormatRunnerLine(line);
      if (v.show) printf("%s\n", v.text.c_str());
      else if (v.phase == Phase::kUnknown && !line.empty() && line[0] != '=') printf("%s\n", line.c_str());
    }
    fflush(stdout);
  };
  if (!follow || core::IsTerminal(job->status)) {
    core::HttpRequest req;
    req.url = absl::StrCat(target.url, "/v1/jobs/", job_id, "/logs");
    req.bearer_token = target.token;
    absl::StatusOr<core::HttpResponse> r = http.Send(req);
    if (!r.ok() || r->status != 200) {
      fprintf(stderr, "fastest logs: %s\n",
              r.ok() ? (r->status == 404 ? "this server has no job logs (GET /v1/jobs/:id/logs)"
                                         : absl::StrCat("HTTP ", r->status, ": ", r->body).c_str())
                     : Msg(r.status()).c_str());
      if (job->error) fprintf(stderr, "job %s error: %s\n", job_id.c_str(), job->error->c_str());
      return 1;
    }
    std::stringstream ss(r->body);
    std::string line;
    while (std::getline(ss, line)) print(line);
    return 0;
  }
  LogFollower logs(http, target, job_id, print);
  logs.Start();
  std::atomic<bool> docker_stop{false};
  std::future<void> docker_done;
  while (true) {
    absl::StatusOr<core::Job> j = api.GetJob(job_id);
    if (logs.unavailable() && docker_fallback && !docker_done.valid()) {
      std::packaged_task<void()> task([&http, &print, &docker_stop, job_id] {
        DockerLogTail tail(http, "", job_id, print);
        tail.Run(docker_stop);
      });
      docker_done = task.get_future();
      std::thread(std::move(task)).detach();
    }
    if (j.ok() && core::IsTerminal(j->status)) {
      logs.Finish(absl::Seconds(3));
      if (docker_done.valid()) {
        docker_done.wait_for(std::chrono::seconds(3));
        docker_stop = true;
      }
      fprintf(stderr, "==> job %s %s\n", job_id.c_str(),
              std::string(core::JobStatusName(j->status)).c_str());
      if (j->error) fprintf(stderr, "error: %s\n", j->error->c_str());
      return j->status == JobStatus::kCompleted ? 0 : 1;
    }
    if (logs.unavailable() && !docker_fallback) {
      fprintf(stderr, "fastest logs: this server has no job logs (GET /v1/jobs/:id/logs)\n");
      return 1;
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
}

int CancelCommand(ApiClient& api, const std::string& job_id) {
  absl::StatusOr<core::Job> job = api.CancelJob(job_id);
  if (!job.ok()) {
    fprintf(stderr, "fastest cancel: %s\n", Msg(job.status()).c_str());
    return 1;
  }
  printf("job %s %s\n", job->id.c_str(), std::string(core::JobStatusName(job->status)).c_str());
  return 0;
}

}  // namespace fastest::cli
