#include "tools/cli/commands.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/http/http_client.h"
#include "core/http/http_status.h"
#include "core/json/json_util.h"
#include "core/snapshot/directory_scan.h"
#include "core/snapshot/manifest.h"
#include "core/snapshot/safe_fs.h"
#include "core/snapshot/sha256.h"
#include "nlohmann/json.hpp"
#include "tools/cli/log_format.h"
#include "tools/cli/review.h"
#include "tools/cli/write_policy.h"

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

// jobs/<id>.json: what `run` uploaded for a job (its directory and base manifest), so that
// `fastest apply` compares against exactly that, not against whatever the server says now.
bool IsSafeJobId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

struct JobRecord {
  std::string server;
  std::string dir;
  std::string base_manifest_hash;
};

void SaveJobRecord(const std::string& data_dir, const std::string& job_id,
                   const JobRecord& record) {
  if (!IsSafeJobId(job_id)) return;
  std::string jobs = data_dir + "/jobs";
  if (!core::MakeDirs(jobs, 0700).ok()) return;
  nlohmann::json j = {{"server", record.server},
                      {"dir", record.dir},
                      {"base_manifest_hash", record.base_manifest_hash}};
  core::WriteFileWithMode(absl::StrCat(jobs, "/", job_id, ".json"), core::DumpJson(j), 0600)
      .IgnoreError();
}

// An empty record when there is none (or it cannot be read).
JobRecord LoadJobRecord(const std::string& data_dir, const std::string& job_id) {
  JobRecord record;
  if (!IsSafeJobId(job_id)) return record;
  std::ifstream in(absl::StrCat(data_dir, "/jobs/", job_id, ".json"));
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<nlohmann::json> j = core::ParseJsonObject(ss.str(), "job record");
  if (!j.ok()) return record;
  auto field = [&j](const char* key) {
    auto it = j->find(key);
    return it != j->end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  record.server = field("server");
  record.dir = field("dir");
  record.base_manifest_hash = field("base_manifest_hash");
  return record;
}

BlobFetcher BlobFetcherFor(ApiClient& api) {
  return [&api](const std::string& h) { return api.DownloadVerifiedBlob(h); };
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

// A job's log through the server: GET /v1/jobs/:id/logs (?offset= pages, ?follow=1 live).
// Bytes are cut into complete lines for `on_line`; `offset_` counts every byte received, so a
// reconnect resumes exactly where the last stream stopped.
class LogReader {
 public:
  LogReader(core::HttpClient& http, const Target& target, std::string job_id,
            std::function<void(const std::string&)> on_line)
      : http_(http), base_url_(absl::StrCat(target.url, "/v1/jobs/", job_id, "/logs")),
        token_(target.token), on_line_(std::move(on_line)) {}

  // Everything there is now (paged by X-Log-Offset-Next). Errors: the server's message.
  absl::Status ReadAvailable() {
    while (true) {
      core::HttpRequest req;
      req.url = absl::StrCat(base_url_, "?offset=", offset_.load());
      req.bearer_token = token_;
      absl::StatusOr<core::HttpResponse> r = http_.Send(req);
      if (!r.ok()) return r.status();
      if (r->status != 200) return HttpError(*r);
      if (r->body.empty()) return absl::OkStatus();
      Feed(r->body);
    }
  }

  // Streams until the server ends the stream (the job is over and its log complete) or `stop`.
  // A broken connection is resumed from the current offset.
  absl::Status Follow(const std::atomic<bool>& stop) {
    int failures = 0;
    while (!stop) {
      core::HttpRequest req;
      req.url = absl::StrCat(base_url_, "?follow=1&offset=", offset_.load());
      req.bearer_token = token_;
      req.timeout = std::chrono::milliseconds(0);  // as long as the job runs
      req.on_body_chunk = [this, &stop](absl::string_view chunk) {
        if (stop) return false;
        Feed(chunk);
        return true;
      };
      absl::StatusOr<core::HttpResponse> r = http_.Send(req);
      if (r.ok() && r->status == 200) {
        FlushPartial();
        return absl::OkStatus();
      }
      if (r.ok()) return HttpError(*r);
      if (stop) break;
      // The connection broke: resume from the offset, unless the server stays unreachable.
      absl::SleepFor(absl::Milliseconds(500));
      absl::Status again = ReadAvailable();
      if (again.ok()) {
        failures = 0;
      } else if (!absl::IsUnavailable(again) || ++failures >= 20) {
        return absl::UnavailableError(absl::StrCat(
            "lost the log stream: the fastest server is not reachable (", again.message(), ")"));
      }
    }
    FlushPartial();
    return absl::OkStatus();
  }

  void FlushPartial() {
    if (!buffer_.empty()) on_line_(buffer_);
    buffer_.clear();
  }
  int64_t offset() const { return offset_; }

 private:
  void Feed(absl::string_view data) {
    offset_ += static_cast<int64_t>(data.size());
    buffer_.append(data.data(), data.size());
    size_t start = 0, nl;
    while ((nl = buffer_.find('\n', start)) != std::string::npos) {
      on_line_(buffer_.substr(start, nl - start));
      start = nl + 1;
    }
    buffer_.erase(0, start);
  }

  static absl::Status HttpError(const core::HttpResponse& r) {
    nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    std::string msg = r.body;
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      msg = j["error"].value("message", r.body);
    }
    if (r.status == 404 && msg == "Route not found") {
      return absl::UnimplementedError("this server has no job logs (GET /v1/jobs/:id/logs)");
    }
    return absl::Status(core::StatusCodeForHttp(r.status), absl::StrCat("HTTP ", r.status, ": ", msg));
  }

  core::HttpClient& http_;
  std::string base_url_;
  std::string token_;
  std::function<void(const std::string&)> on_line_;
  std::atomic<int64_t> offset_{0};
  std::string buffer_;
};

// Follows a job's log on its own thread (for `run`, which polls the job meanwhile).
class LogFollower {
 public:
  LogFollower(core::HttpClient& http, const Target& target, std::string job_id,
              std::function<void(const std::string&)> on_line)
      : reader_(http, target, std::move(job_id), std::move(on_line)) {}

  void Start() {
    std::packaged_task<void()> task([this] {
      absl::Status s = reader_.ReadAvailable();
      if (s.ok()) s = reader_.Follow(stop_);
      std::lock_guard<std::mutex> lock(mu_);
      status_ = s;
    });
    done_ = task.get_future();
    std::thread(std::move(task)).detach();
  }
  // The job is over: the server ends the stream once the log is complete; wait for that
  // (bounded), then stop.
  void Finish(absl::Duration grace) {
    if (done_.valid()) done_.wait_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
    stop_ = true;
  }
  bool got_any() const { return reader_.offset() > 0; }
  // Why the log could not be followed (OK while following or after a normal end).
  absl::Status status() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

 private:
  LogReader reader_;
  std::future<void> done_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  absl::Status status_;
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
  // The host's ignore rules as of now decide both what is uploaded and, later, what the job's
  // output may change: read .fstignore once and hand the same lines to the scanner.
  absl::StatusOr<std::vector<std::string>> ignore_lines = UserIgnoreLines(dir);
  if (!ignore_lines.ok()) {
    fprintf(stderr, "fastest run: %s\n", Msg(ignore_lines.status()).c_str());
    return 1;
  }
  if (!options.include_git) {
    // Last match wins: a "!.git/" in .fstignore does not upload the repository by accident.
    ignore_lines->push_back(".git/");
    ignore_lines->push_back(".git");
  }
  const core::IgnoreRules host_rules = HostIgnoreRules(*ignore_lines);
  core::ScanOptions scan_options;
  scan_options.read_fstignore = false;
  scan_options.extra_ignore_patterns = *ignore_lines;
  core::ScanStats scan;
  absl::StatusOr<core::Manifest> base =
      core::BuildManifestFromDirectory(dir, scan_options, nullptr, &scan);
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
  SaveJobRecord(options.data_dir, job->id, {api.base_url(), dir, manifest_hash});

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
  bool said_queued = false, said_no_logs = false;
  const absl::Time deadline = absl::Now() + options.timeout;
  while (true) {
    absl::StatusOr<core::Job> j = api.GetJob(job->id);
    if (j.ok()) {
      current = *j;
      if (current.status == JobStatus::kPending && !said_queued && !logs.got_any()) {
        said_queued = true;
        Step("queued");
      }
      if (absl::Status ls = logs.status(); !ls.ok() && !said_no_logs) {
        said_no_logs = true;
        Step(absl::StrCat("no live output: ", Msg(ls)));
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
  // The server ends the log stream right after the job's final status: wait for the last lines.
  logs.Finish(absl::Seconds(5));

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
  Step(absl::StrCat("job ", job->id, " completed in ", Seconds(absl::Now() - start)));
  return ReviewAndWriteBack(dir, *base, *output, host_rules, BlobFetcherFor(api), current,
                            options.write_back);
}

int ApplyCommand(ApiClient& api, const ApplyOptions& options) {
  absl::StatusOr<core::Job> job = api.GetJob(options.job_id);
  if (!job.ok()) {
    fprintf(stderr, "fastest apply: %s\n", Msg(job.status()).c_str());
    return 1;
  }
  if (job->status != JobStatus::kCompleted || !job->output_snapshot_id) {
    fprintf(stderr, "fastest apply: job %s is %s%s: nothing to apply\n", job->id.c_str(),
            std::string(core::JobStatusName(job->status)).c_str(),
            job->status == JobStatus::kCompleted ? " without an output snapshot" : "");
    return 1;
  }
  JobRecord record = LoadJobRecord(options.data_dir, job->id);
  if (record.server != api.base_url()) record = JobRecord();
  std::string dir = options.dir.empty() ? record.dir : AbsPath(options.dir);
  struct stat st;
  if (dir.empty()) {
    fprintf(stderr, "fastest apply: no directory recorded for job %s here: pass --dir\n",
            job->id.c_str());
    return 2;
  }
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "fastest apply: %s is not a directory\n", dir.c_str());
    return 2;
  }
  // The base: what `run` uploaded, by the hash it recorded; else the workspace's base snapshot.
  absl::StatusOr<core::Manifest> base = absl::NotFoundError("no base");
  const std::string& recorded_hash = record.base_manifest_hash;
  if (!recorded_hash.empty()) {
    absl::StatusOr<std::string> text = api.GetManifest(recorded_hash);
    if (!text.ok()) {
      base = text.status();
    } else if (core::Sha256Hex(*text) != recorded_hash) {
      base = absl::DataLossError("the server's base manifest does not match the recorded hash");
    } else {
      base = core::ParseManifest(*text);
    }
  } else {
    absl::StatusOr<core::Workspace> ws = api.GetWorkspace(job->workspace_id);
    if (!ws.ok()) {
      base = ws.status();
    } else if (!ws->base_snapshot_id) {
      base = core::Manifest();
    } else {
      base = FetchManifest(api, *ws->base_snapshot_id);
    }
  }
  if (!base.ok()) {
    fprintf(stderr, "fastest apply: fetching the job's base snapshot: %s\n",
            Msg(base.status()).c_str());
    return 1;
  }
  absl::StatusOr<core::Manifest> output = FetchManifest(api, *job->output_snapshot_id);
  if (!output.ok()) {
    fprintf(stderr, "fastest apply: fetching the output snapshot: %s\n",
            Msg(output.status()).c_str());
    return 1;
  }
  // The user's rules as they are now decide what may be written.
  absl::StatusOr<std::vector<std::string>> ignore_lines = UserIgnoreLines(dir);
  if (!ignore_lines.ok()) {
    fprintf(stderr, "fastest apply: %s\n", Msg(ignore_lines.status()).c_str());
    return 1;
  }
  return ReviewAndWriteBack(dir, *base, *output, HostIgnoreRules(*ignore_lines),
                            BlobFetcherFor(api), *job, options.write_back);
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
                const std::string& job_id, bool follow, bool raw) {
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
  LogReader reader(http, target, job_id, print);
  absl::Status s = reader.ReadAvailable();
  // Following ends when the server ends the stream: the job is over and its log complete.
  if (s.ok() && follow && !core::IsTerminal(job->status)) {
    std::atomic<bool> never{false};
    s = reader.Follow(never);
  }
  reader.FlushPartial();
  if (!s.ok()) {
    fprintf(stderr, "fastest logs: %s\n", Msg(s).c_str());
    return 1;
  }
  absl::StatusOr<core::Job> final_job = api.GetJob(job_id);
  if (final_job.ok()) job = final_job;
  if (!core::IsTerminal(job->status)) return 0;  // --nofollow on an active job
  fprintf(stderr, "==> job %s %s\n", job_id.c_str(),
          std::string(core::JobStatusName(job->status)).c_str());
  if (job->error) fprintf(stderr, "error: %s\n", job->error->c_str());
  return job->status == JobStatus::kCompleted ? 0 : 1;
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

namespace {

// The value of the sample `name` (the whole text before the space) in Prometheus text, or -1.
double Sample(const std::string& text, absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.size() > name.size() && absl::StartsWith(line, name) && line[name.size()] == ' ') {
      double v = -1;
      if (absl::SimpleAtod(line.substr(name.size() + 1), &v)) return v;
    }
  }
  return -1;
}

}  // namespace

std::string WarmPoolLine(const std::string& metrics_text) {
  const double ready = Sample(metrics_text, "fastest_warm_pool_sandboxes{state=\"ready\"}");
  if (ready < 0) return "";
  const double booting = Sample(metrics_text, "fastest_warm_pool_sandboxes{state=\"booting\"}");
  const double takes = Sample(metrics_text, "fastest_warm_pool_takes_total");
  const double misses = Sample(metrics_text, "fastest_warm_pool_misses_total");
  const double boot_sum = Sample(metrics_text, "fastest_warm_pool_boot_seconds_sum");
  const double boots = Sample(metrics_text, "fastest_warm_pool_boot_seconds_count");
  std::string line = absl::StrFormat("warm pool: %d ready, %d booting; %d takes, %d misses",
                                     static_cast<int>(ready), static_cast<int>(std::max(0.0, booting)),
                                     static_cast<int>(std::max(0.0, takes)),
                                     static_cast<int>(std::max(0.0, misses)));
  if (boots > 0) {
    absl::StrAppend(&line, absl::StrFormat("; boot %.2f s on average (%d)", boot_sum / boots,
                                           static_cast<int>(boots)));
  }
  return line;
}

std::string FetchWarmPoolLine(core::HttpClient& http, const Target& target) {
  core::HttpRequest req;
  req.url = target.url + "/metrics";
  req.bearer_token = target.token;
  absl::StatusOr<core::HttpResponse> r = http.Send(req);
  if (!r.ok() || r->status != 200) return "";
  return WarmPoolLine(r->body);
}

}  // namespace fastest::cli
