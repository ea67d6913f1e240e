// fastest-server: the sandbox worker endpoints, the embedded Fastest /v1 API (SQLite + blob
// files) and the job dispatcher in one binary.
//
//   fastest-server [flags]                 serve
//   fastest-server token create [--email]  mint an API token, print it once on stdout
//   fastest-server token approve CODE      approve a device login code for the --email user
//
// Every setting resolves as flag > environment (FASTEST_<NAME>) > config file (--config /
// $FASTEST_CONFIG, JSON, same key names) > default. First token: FASTEST_API_TOKEN (or API_TOKEN)
// is imported at start-up (hashed) for the admin user, or use `token create`. Remote mode
// (--api_url): jobs come from that external API, FASTEST_API_TOKEN authenticates against it.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "core/api/api_client.h"
#include "core/config/config.h"
#include "core/http/http_client.h"
#include "core/config/config_absl.h"
#include "core/plugin/backend.h"
#include "core/status/status_macros.h"
#include "server/api/api_service.h"
#include "server/api/job_logs.h"
#include "server/channel/channel_setup.h"
#include "server/dashboard/dashboard.h"
#include "server/dispatch/dispatcher.h"
#include "server/dispatch/instance_types.h"
#include "server/dispatch/job_log_hub.h"
#include "server/dispatch/job_source.h"
#include "core/net/http_server.h"
#include "server/metrics/metrics.h"
#include "server/store/blob_access.h"
#include "server/store/blob_store.h"
#include "server/store/store.h"
#include "server/util/log.h"

ABSL_FLAG(int, port, 8787, "TCP port (0 = any free port; see --port_file). Env FASTEST_PORT.");
ABSL_FLAG(std::string, host, "127.0.0.1", "Address to listen on. Env FASTEST_HOST.");
ABSL_FLAG(std::string, data_dir, "./.fastest",
          "SQLite database, blobs and manifests. Env FASTEST_DATA_DIR.");
ABSL_FLAG(std::string, backend, "docker",
          "Sandbox backend: docker|podman|cloudflare|/path/to/libfastest_backend_x.so|none. "
          "Env FASTEST_BACKEND.");
ABSL_FLAG(std::string, backend_config, "{}",
          "Backend config JSON (e.g. {\"host\":\"unix:///var/run/docker.sock\"}). "
          "Env FASTEST_BACKEND_CONFIG.");
ABSL_FLAG(std::string, image, "fastest/sandbox:0.1.0", "Sandbox image. Env FASTEST_IMAGE.");
ABSL_FLAG(std::string, runner_command, "fastest-runner",
          "Command run in the sandbox, argv separated by commas. Env FASTEST_RUNNER_COMMAND.");
ABSL_FLAG(int, max_instances, 10, "Sandboxes running at once. Env FASTEST_MAX_INSTANCES.");
ABSL_FLAG(bool, auto_dispatch, false,
          "Run pending jobs without a /run-next trigger. Env FASTEST_AUTO_DISPATCH.");
ABSL_FLAG(absl::Duration, job_timeout, absl::Minutes(30),
          "Per-job timeout; the sandbox is killed and the job failed. Env FASTEST_JOB_TIMEOUT.");
ABSL_FLAG(int64_t, max_body_bytes, 100 * 1024 * 1024,
          "Largest request body (413 above). Env FASTEST_MAX_BODY_BYTES.");
ABSL_FLAG(absl::Duration, read_timeout, absl::Seconds(30),
          "Deadline for reading one request. Env FASTEST_READ_TIMEOUT.");
ABSL_FLAG(int, threads, 2, "HTTP io threads. Env FASTEST_THREADS.");
ABSL_FLAG(bool, fsync_blobs, true,
          "Answer a manifest upload only once it and every blob stored before it are on disk "
          "(a couple of fdatasyncs per snapshot); false skips syncing for a throwaway store. "
          "Env FASTEST_FSYNC_BLOBS.");
ABSL_FLAG(std::string, sandbox_api_url, "",
          "API_URL given to sandboxes (default http://127.0.0.1:<port>, for host networking). "
          "Env FASTEST_SANDBOX_API_URL.");
ABSL_FLAG(std::string, instance_type, "standard-1",
          "Sandbox resources: lite|basic|standard-1..4. Env FASTEST_INSTANCE_TYPE.");
ABSL_FLAG(std::string, network_mode, "",
          "Sandbox network mode (host|none|bridge; empty = backend default: none for docker and "
          "podman). Env FASTEST_NETWORK_MODE.");
// Sandbox egress (server/channel/egress_proxy.h).
ABSL_FLAG(std::string, egress, "none",
          "Sandbox network egress: none (only the API and the model gateway), allowlist (CONNECT "
          "proxy to --egress_allow hosts, refusals in the job log) or open (UNSAFE: host network, "
          "the sandbox can reach everything the host can). Env FASTEST_EGRESS.");
ABSL_FLAG(std::string, egress_allow, "",
          "host[:port],... reachable with --egress=allowlist. Env FASTEST_EGRESS_ALLOW.");
ABSL_FLAG(std::string, api_url, "",
          "Remote mode: dispatch jobs of this external Fastest API instead of the embedded one; "
          "FASTEST_API_TOKEN / API_TOKEN is the token for it. Env FASTEST_REMOTE_API_URL.");
ABSL_FLAG(std::string, port_file, "",
          "Write the bound port here once listening (for port 0). Env FASTEST_PORT_FILE.");
ABSL_FLAG(std::string, email, "admin@localhost",
          "User of the admin token (token create, FASTEST_API_TOKEN). Env FASTEST_ADMIN_EMAIL.");
ABSL_FLAG(std::string, config, "", "JSON config file. Env FASTEST_CONFIG.");
ABSL_FLAG(bool, share_remote_token_with_sandboxes, false,
          "Remote mode only: the original API cannot mint per-job tokens, so a sandbox would get "
          "the server's own FASTEST_API_TOKEN (full access of that user, readable by the agent). "
          "Without this flag remote mode with a backend refuses to start. "
          "Env FASTEST_SHARE_REMOTE_TOKEN_WITH_SANDBOXES.");
ABSL_FLAG(std::string, cors_origin, "",
          "Allow this origin cross-origin (e.g. https://app.example or *); empty = no CORS. "
          "Env FASTEST_CORS_ORIGIN.");
ABSL_FLAG(int, max_connections, 4096,
          "Open connections at most (also kept below RLIMIT_NOFILE). Env FASTEST_MAX_CONNECTIONS.");
ABSL_FLAG(int, max_connections_per_ip, 512,
          "Open connections per client IP at most. Env FASTEST_MAX_CONNECTIONS_PER_IP.");
ABSL_FLAG(int64_t, upload_quota_bytes, int64_t{100} << 30,
          "Distinct blob/manifest bytes one user may upload (413 QUOTA_EXCEEDED above; 0 = no "
          "limit). Env FASTEST_UPLOAD_QUOTA_BYTES.");
ABSL_FLAG(int, warm_pool, 0,
          "Warm sandboxes kept started with their runner standing by (agent booted), counted in "
          "--max_instances; 0 = every job starts its sandbox cold. Not with cloudflare (its "
          "bridge keeps its own pool) or remote mode. Env FASTEST_WARM_POOL.");
ABSL_FLAG(absl::Duration, warm_pool_ttl, absl::Minutes(10),
          "An idle warm sandbox older than this is replaced by a fresh one. "
          "Env FASTEST_WARM_POOL_TTL.");
ABSL_FLAG(absl::Duration, warm_pool_refill_delay, absl::Seconds(3),
          "After a job takes a warm sandbox, start its replacement this much later, so the "
          "replacement's agent boot does not compete for CPU with that job. "
          "Env FASTEST_WARM_POOL_REFILL_DELAY.");
// For tests: how long a device login code stays valid.
ABSL_FLAG(absl::Duration, device_code_ttl, absl::Seconds(900),
          "Lifetime of a device login code (tests only).");

namespace fastest::server {
namespace {

using core::ConfigKey;

// Each setting is declared once, as its ABSL_FLAG above: its ConfigKey takes the flag's name
// (also the config-file key) and default; the environment variable is FASTEST_<NAME> unless
// named here.
const ConfigKey kPort = core::ConfigKeyFromFlag(FLAGS_port);
const ConfigKey kHost = core::ConfigKeyFromFlag(FLAGS_host);
const ConfigKey kDataDir = core::ConfigKeyFromFlag(FLAGS_data_dir);
const ConfigKey kBackend = core::ConfigKeyFromFlag(FLAGS_backend);
const ConfigKey kBackendConfig = core::ConfigKeyFromFlag(FLAGS_backend_config);
const ConfigKey kImage = core::ConfigKeyFromFlag(FLAGS_image);
const ConfigKey kRunnerCommand = core::ConfigKeyFromFlag(FLAGS_runner_command);
const ConfigKey kMaxInstances = core::ConfigKeyFromFlag(FLAGS_max_instances);
const ConfigKey kAutoDispatch = core::ConfigKeyFromFlag(FLAGS_auto_dispatch);
const ConfigKey kJobTimeout = core::ConfigKeyFromFlag(FLAGS_job_timeout);
const ConfigKey kMaxBody = core::ConfigKeyFromFlag(FLAGS_max_body_bytes);
const ConfigKey kReadTimeout = core::ConfigKeyFromFlag(FLAGS_read_timeout);
const ConfigKey kThreads = core::ConfigKeyFromFlag(FLAGS_threads);
const ConfigKey kFsyncBlobs = core::ConfigKeyFromFlag(FLAGS_fsync_blobs);
const ConfigKey kSandboxApiUrl = core::ConfigKeyFromFlag(FLAGS_sandbox_api_url);
const ConfigKey kInstanceType = core::ConfigKeyFromFlag(FLAGS_instance_type);
const ConfigKey kNetworkMode = core::ConfigKeyFromFlag(FLAGS_network_mode);
const ConfigKey kEgress = core::ConfigKeyFromFlag(FLAGS_egress);
const ConfigKey kEgressAllow = core::ConfigKeyFromFlag(FLAGS_egress_allow);
const ConfigKey kRemoteApiUrl = core::ConfigKeyFromFlag(FLAGS_api_url, "FASTEST_REMOTE_API_URL");
const ConfigKey kPortFile = core::ConfigKeyFromFlag(FLAGS_port_file);
const ConfigKey kEmail = core::ConfigKeyFromFlag(FLAGS_email, "FASTEST_ADMIN_EMAIL");
const ConfigKey kShareRemoteToken = core::ConfigKeyFromFlag(FLAGS_share_remote_token_with_sandboxes);
const ConfigKey kCorsOrigin = core::ConfigKeyFromFlag(FLAGS_cors_origin);
const ConfigKey kMaxConnections = core::ConfigKeyFromFlag(FLAGS_max_connections);
const ConfigKey kMaxConnectionsPerIp = core::ConfigKeyFromFlag(FLAGS_max_connections_per_ip);
const ConfigKey kUploadQuota = core::ConfigKeyFromFlag(FLAGS_upload_quota_bytes);
const ConfigKey kWarmPool = core::ConfigKeyFromFlag(FLAGS_warm_pool);
const ConfigKey kWarmPoolTtl = core::ConfigKeyFromFlag(FLAGS_warm_pool_ttl);
const ConfigKey kWarmPoolRefillDelay = core::ConfigKeyFromFlag(FLAGS_warm_pool_refill_delay);
// A token only for GET /metrics (a scraper needs no API access). Env or config file only.
const ConfigKey kMetricsToken{"metrics_token", "", "FASTEST_METRICS_TOKEN", "metrics_token",
                              std::nullopt, true};
// The first token: FASTEST_API_TOKEN, else API_TOKEN (env or config file only).
const ConfigKey kFirstToken{"api_token", "", "FASTEST_API_TOKEN", "api_token", std::nullopt, true};
const ConfigKey kFirstTokenCompat{"api_token", "", "API_TOKEN", "", std::nullopt, true};

// Environment passed through to every sandbox (values never logged).
const char* const kPassthroughEnv[] = {
    "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GOOGLE_GENERATIVE_AI_API_KEY", "PROVIDER", "MODEL",
    "FASTEST_MODEL", "FASTEST_MODEL_BASE_URL", "FASTEST_MODEL_API_KEY", "OPENCODE_PERMISSION",
    // A server-wide agent (instead of OpenCode) and its deadline, read by the runner.
    "FASTEST_AGENT_COMMAND", "FASTEST_AGENT_TIMEOUT",
};

struct Settings {
  int port;
  std::string host, data_dir, backend, image, sandbox_api_url, network_mode, remote_api_url,
      port_file, email, cors_origin, metrics_token, egress, egress_allow;
  bool share_remote_token = false;
  int max_connections = 4096, max_connections_per_ip = 512;
  int64_t upload_quota_bytes = 0;
  nlohmann::json backend_config;
  std::vector<std::string> runner_command;
  int max_instances, threads;
  int warm_pool = 0;
  absl::Duration warm_pool_ttl;
  absl::Duration warm_pool_refill_delay;
  bool auto_dispatch, fsync_blobs;
  absl::Duration job_timeout, read_timeout;
  int64_t max_body_bytes;
  InstanceType instance_type;
  std::string first_token;
};

absl::StatusOr<Settings> LoadSettings() {
  FASTEST_ASSIGN_OR_RETURN(core::ConfigResolver c,
                           core::ConfigResolver::Create(core::ExplicitAbslFlags()));
  Settings s;
  FASTEST_ASSIGN_OR_RETURN(int64_t port, c.GetInt(kPort));
  s.port = static_cast<int>(port);
  FASTEST_ASSIGN_OR_RETURN(s.host, c.GetString(kHost));
  FASTEST_ASSIGN_OR_RETURN(s.data_dir, c.GetString(kDataDir));
  FASTEST_ASSIGN_OR_RETURN(s.backend, c.GetString(kBackend));
  FASTEST_ASSIGN_OR_RETURN(std::string backend_config, c.GetString(kBackendConfig));
  s.backend_config = nlohmann::json::parse(backend_config, nullptr, false);
  if (s.backend_config.is_discarded() || !s.backend_config.is_object()) {
    return absl::InvalidArgumentError("--backend_config must be a JSON object");
  }
  if (!s.backend_config.contains("schema")) s.backend_config["schema"] = 1;
  FASTEST_ASSIGN_OR_RETURN(s.image, c.GetString(kImage));
  FASTEST_ASSIGN_OR_RETURN(std::string cmd, c.GetString(kRunnerCommand));
  s.runner_command = absl::StrSplit(cmd, ',', absl::SkipEmpty());
  if (s.runner_command.empty()) return absl::InvalidArgumentError("--runner_command is empty");
  FASTEST_ASSIGN_OR_RETURN(int64_t max_instances, c.GetInt(kMaxInstances));
  s.max_instances = static_cast<int>(max_instances);
  FASTEST_ASSIGN_OR_RETURN(s.auto_dispatch, c.GetBool(kAutoDispatch));
  FASTEST_ASSIGN_OR_RETURN(int64_t warm_pool, c.GetInt(kWarmPool));
  if (warm_pool < 0) return absl::InvalidArgumentError("--warm_pool must be >= 0");
  s.warm_pool = static_cast<int>(warm_pool);
  FASTEST_ASSIGN_OR_RETURN(s.warm_pool_ttl, c.GetDuration(kWarmPoolTtl));
  FASTEST_ASSIGN_OR_RETURN(s.warm_pool_refill_delay, c.GetDuration(kWarmPoolRefillDelay));
  if (s.warm_pool_refill_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--warm_pool_refill_delay must not be negative");
  }
  if (s.warm_pool_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--warm_pool_ttl must be positive");
  }
  FASTEST_ASSIGN_OR_RETURN(s.job_timeout, c.GetDuration(kJobTimeout));
  FASTEST_ASSIGN_OR_RETURN(s.max_body_bytes, c.GetInt(kMaxBody));
  FASTEST_ASSIGN_OR_RETURN(s.read_timeout, c.GetDuration(kReadTimeout));
  FASTEST_ASSIGN_OR_RETURN(int64_t threads, c.GetInt(kThreads));
  s.threads = static_cast<int>(threads);
  FASTEST_ASSIGN_OR_RETURN(s.fsync_blobs, c.GetBool(kFsyncBlobs));
  FASTEST_ASSIGN_OR_RETURN(s.sandbox_api_url, c.GetString(kSandboxApiUrl));
  FASTEST_ASSIGN_OR_RETURN(std::string type, c.GetString(kInstanceType));
  auto it = FindInstanceType(type);
  if (!it) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown --instance_type '", type, "' (lite, basic, standard-1 .. standard-4)"));
  }
  s.instance_type = *it;
  FASTEST_ASSIGN_OR_RETURN(s.network_mode, c.GetString(kNetworkMode));
  FASTEST_ASSIGN_OR_RETURN(s.egress, c.GetString(kEgress));
  FASTEST_ASSIGN_OR_RETURN(s.egress_allow, c.GetString(kEgressAllow));
  if (s.egress != "none" && s.egress != "allowlist" && s.egress != "open") {
    return absl::InvalidArgumentError("--egress must be none, allowlist or open");
  }
  // "open" is the old host networking, chosen explicitly.
  if (s.egress == "open" && s.network_mode.empty()) s.network_mode = "host";
  FASTEST_ASSIGN_OR_RETURN(s.remote_api_url, c.GetString(kRemoteApiUrl));
  FASTEST_ASSIGN_OR_RETURN(s.port_file, c.GetString(kPortFile));
  FASTEST_ASSIGN_OR_RETURN(s.email, c.GetString(kEmail));
  FASTEST_ASSIGN_OR_RETURN(s.share_remote_token, c.GetBool(kShareRemoteToken));
  FASTEST_ASSIGN_OR_RETURN(s.cors_origin, c.GetString(kCorsOrigin));
  FASTEST_ASSIGN_OR_RETURN(int64_t max_connections, c.GetInt(kMaxConnections));
  s.max_connections = static_cast<int>(max_connections);
  FASTEST_ASSIGN_OR_RETURN(int64_t per_ip, c.GetInt(kMaxConnectionsPerIp));
  s.max_connections_per_ip = static_cast<int>(per_ip);
  FASTEST_ASSIGN_OR_RETURN(s.upload_quota_bytes, c.GetInt(kUploadQuota));
  if (s.upload_quota_bytes < 0) return absl::InvalidArgumentError("--upload_quota_bytes < 0");
  s.metrics_token = c.Resolve(kMetricsToken).value.value_or("");
  auto first = c.Resolve(kFirstToken);
  if (!first.value) first = c.Resolve(kFirstTokenCompat);
  s.first_token = first.value.value_or("");
  return s;
}

absl::Status WritePortFile(const std::string& path, int port) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp);
    out << port << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename to ", path));
  }
  return absl::OkStatus();
}

int TokenCreate(const Settings& s) {
  auto store = Store::Open(s.data_dir);
  if (!store.ok()) {
    fprintf(stderr, "fastest-server: %s\n", store.status().ToString().c_str());
    return 1;
  }
  auto user = (*store)->EnsureUser(s.email);
  if (!user.ok()) {
    fprintf(stderr, "fastest-server: %s\n", user.status().ToString().c_str());
    return 1;
  }
  auto token = (*store)->CreateToken(*user, std::nullopt);
  if (!token.ok()) {
    fprintf(stderr, "fastest-server: %s\n", token.status().ToString().c_str());
    return 1;
  }
  // Printed once; only its SHA-256 is stored.
  printf("%s\n", token->c_str());
  return 0;
}

int TokenApprove(const Settings& s, const std::string& user_code) {
  auto store = Store::Open(s.data_dir);
  absl::StatusOr<std::string> user = store.ok() ? (*store)->EnsureUser(s.email) : store.status();
  absl::Status st = user.ok() ? (*store)->ApproveDeviceCode(user_code, *user) : user.status();
  if (!st.ok()) {
    fprintf(stderr, "fastest-server: %s\n", st.ToString().c_str());
    return 1;
  }
  printf("approved %s for %s\n", user_code.c_str(), s.email.c_str());
  return 0;
}

int Serve(const Settings& s) {
  const bool remote = !s.remote_api_url.empty();
  if (remote && s.first_token.empty()) {
    LogError("remote mode needs FASTEST_API_TOKEN (or API_TOKEN) for the external API");
    return 2;
  }
  if (remote && s.backend != "none" && !s.share_remote_token) {
    LogError("remote mode: the external API cannot mint per-job tokens, so every sandbox would "
             "get this server's own API token (the agent can read it and act as that user). "
             "Pass --share_remote_token_with_sandboxes to accept that, or use the embedded API");
    return 2;
  }
  auto store_or = Store::Open(s.data_dir);
  if (!store_or.ok()) {
    LogError("cannot open store", {{"error", store_or.status().ToString()}});
    return 1;
  }
  std::unique_ptr<Store> store = std::move(*store_or);
  BlobStore blobs(s.data_dir, s.fsync_blobs);
  const absl::Time blobs_start = absl::Now();
  if (absl::Status st = blobs.Init(); !st.ok()) {
    LogError("cannot init blob store", {{"error", st.ToString()}});
    return 1;
  }
  LogInfo("blob store open",
          {{"blobs", std::to_string(blobs.packs()->blob_count())},
           {"packs", std::to_string(blobs.packs()->pack_count())},
           {"loaded_ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - blobs_start))},
           {"fsync", s.fsync_blobs ? "true" : "false"}});
  if (const uint64_t dropped = blobs.packs()->dropped_records(); dropped > 0) {
    LogWarn("blob store: index records dropped after an unclean stop (their blobs are "
               "re-uploaded by the next snapshot that needs them)",
               {{"records", std::to_string(dropped)}});
  }
  BlobAccess blob_access(store.get(), static_cast<uint64_t>(s.upload_quota_bytes));
  if (absl::Status st = blob_access.Init(&blobs); !st.ok()) {
    LogError("cannot load blob grants", {{"error", st.ToString()}});
    return 1;
  }
  auto admin = store->EnsureUser(s.email);
  if (!admin.ok()) {
    LogError("cannot create admin user", {{"error", admin.status().ToString()}});
    return 1;
  }
  if (!s.first_token.empty()) {
    if (absl::Status st = store->ImportToken(*admin, s.first_token); !st.ok()) {
      LogError("cannot import FASTEST_API_TOKEN", {{"error", st.ToString()}});
      return 1;
    }
  }
  if (store->CountTokens().value_or(0) == 0) {
    LogWarn("no API token yet: set FASTEST_API_TOKEN or run `fastest-server token create`");
  }

  // Sandbox output of every job: <data_dir>/logs/<job_id>.log (GET /v1/jobs/:jobId/logs).
  JobLogHub log_hub(s.data_dir + "/logs");
  if (absl::Status st = log_hub.Init(); !st.ok()) {
    LogError("cannot create the job log directory", {{"error", st.ToString()}});
    return 1;
  }

  Metrics metrics;
  // Sandbox channels (embedded mode, server/channel): <data_dir>/channels/<sandbox>/ with the API
  // socket, the token file, the model gateway (sandboxes get a placeholder key) and the egress
  // proxy.
  std::map<std::string, std::string> passthrough_env;
  for (const char* name : kPassthroughEnv) {
    if (const char* v = getenv(name); v != nullptr && *v != '\0') passthrough_env[name] = v;
  }
  std::string network_mode = s.network_mode;
  std::unique_ptr<SandboxChannels> channels;
  if (!remote) {
    auto set_up = SetUpSandboxChannels(
        {s.data_dir, s.host, s.egress, s.egress_allow, passthrough_env, &metrics});
    if (!set_up.ok()) {
      LogError("cannot set up sandbox channels", {{"error", set_up.status().ToString()}});
      return 1;
    }
    channels = std::move(*set_up);
  } else if (network_mode.empty()) {
    // The channel sockets serve only the embedded API: a remote API is reached over the network.
    network_mode = "host";
    LogWarn("remote mode: sandboxes use the host network and hold their token in the environment "
            "(sealed sandboxes need the embedded API); --network_mode overrides");
  }
  std::unique_ptr<core::SandboxBackend> backend;
  std::unique_ptr<Dispatcher> dispatcher;
  core::HttpClient remote_http;
  std::unique_ptr<core::ApiClient> remote_api;
  std::unique_ptr<JobSource> source;
  if (remote) {
    remote_api = std::make_unique<core::ApiClient>(remote_http, s.remote_api_url, s.first_token);
    if (absl::Status h = remote_api->Health(); !h.ok()) {
      LogWarn("remote API not reachable yet", {{"api_url", s.remote_api_url},
                                               {"error", std::string(h.message())}});
    }
    if (s.backend != "none") {
      LogWarn("remote mode: sandboxes get this server's own API token "
              "(--share_remote_token_with_sandboxes)");
    }
    source = std::make_unique<RemoteJobSource>(remote_api.get(), s.first_token);
  } else {
    source = std::make_unique<StoreJobSource>(store.get());
  }
  if (s.backend != "none") {
    auto b = core::OpenBackend(s.backend, s.backend_config);
    if (!b.ok()) {
      LogError("cannot open sandbox backend",
               {{"backend", s.backend}, {"error", b.status().ToString()}});
      return 1;
    }
    backend = std::move(*b);
    DispatcherOptions d;
    d.image = s.image;
    d.runner_command = s.runner_command;
    d.network_mode = network_mode;
    d.instance_type = s.instance_type;
    d.max_instances = s.max_instances;
    d.job_timeout = s.job_timeout;
    d.auto_dispatch = s.auto_dispatch;
    d.warm_pool = s.warm_pool;
    d.warm_pool_ttl = s.warm_pool_ttl;
    d.warm_pool_refill_delay = s.warm_pool_refill_delay;
    if (remote && s.warm_pool > 0) {
      // The standby channel is part of the embedded API; a remote API cannot hand jobs over.
      LogWarn("--warm_pool ignored in remote mode (warm sandboxes need the embedded API)");
      d.warm_pool = 0;
    }
    if (s.warm_pool > s.max_instances) {
      LogWarn("--warm_pool above --max_instances: the pool holds at most max_instances",
              {{"warm_pool", std::to_string(s.warm_pool)},
               {"max_instances", std::to_string(s.max_instances)}});
    }
    d.log_hub = &log_hub;
    d.passthrough_env = passthrough_env;
    if (channels) {
      d.channels = channels->hub.get();
      d.channel_passthrough_env = channels->sealed_env;
    }
    dispatcher = std::make_unique<Dispatcher>(source.get(), store->server_id(), backend.get(),
                                              &metrics, d);
  }

  net::HttpServerOptions ho;
  ho.host = s.host;
  ho.port = s.port;
  ho.threads = s.threads;
  ho.max_body_bytes = static_cast<size_t>(s.max_body_bytes);
  ho.read_timeout = s.read_timeout;
  ho.cors_origin = s.cors_origin;
  ho.max_connections = s.max_connections;
  ho.max_connections_per_ip = s.max_connections_per_ip;
  // Bodies only from known callers: a bearer token the store knows (or the metrics token).
  // /health takes no body; everything else authenticates anyway.
  ho.admit_body = [&store](const net::Request& req) {
    if (AdmitsUnauthenticatedBody(req)) return true;  // device login: small bodies, no token yet
    const std::string header = req.Header("authorization");
    if (!absl::StartsWith(header, "Bearer ") || header.size() == 7) return false;
    return store->Authenticate(absl::string_view(header).substr(7)).ok();
  };
  // Access lines go through a background writer (no write(2) on the io thread per request); it
  // outlives the server and writes every pending line when destroyed.
  BufferedLog access_log;
  ho.access_log = [&metrics, &access_log](const net::Request& req, int status, absl::Duration d) {
    metrics.IncHttpRequest(status);
    // The path only: ids, never tokens (tokens travel in headers).
    access_log.Log("info", "http", {{"method", req.method},
                     {"path", req.path},
                     {"status", std::to_string(status)},
                     {"ms", std::to_string(absl::ToInt64Milliseconds(d))}});
  };
  net::HttpServer server(ho);
  ApiServiceOptions api_options;
  api_options.remote_jobs = remote;
  api_options.admin_user_id = *admin;
  api_options.metrics_token = s.metrics_token;
  api_options.oauth.device_code_ttl = absl::GetFlag(FLAGS_device_code_ttl);
  ApiService api(store.get(), &blobs, &blob_access, dispatcher.get(), &metrics, api_options);
  api.Register(server.router());
  JobLogsService job_logs(store.get(), &log_hub);
  job_logs.Register(server.router());
  fastest::server::dashboard::Register(server.router());
  // Re-adopt the sandboxes a previous run left before answering HTTP: a runner that reaches the
  // API then finds its job known again, never half-reconciled.
  if (dispatcher) {
    if (absl::Status st = dispatcher->Recover(); !st.ok()) {
      LogError("cannot recover the dispatcher", {{"error", st.ToString()}});
      return 1;
    }
  }
  if (absl::Status st = server.Start(); !st.ok()) {
    LogError("cannot start HTTP server", {{"error", st.ToString()}});
    return 1;
  }
  if (dispatcher) {
    std::string sandbox_api_url = s.sandbox_api_url;
    if (sandbox_api_url.empty()) {
      sandbox_api_url =
          remote ? s.remote_api_url : absl::StrCat("http://127.0.0.1:", server.port());
    }
    dispatcher->SetSandboxApiUrl(sandbox_api_url);
    if (channels) channels->hub->set_api_port(server.port());
    if (absl::Status st = dispatcher->Start(); !st.ok()) {
      LogError("cannot start dispatcher", {{"error", st.ToString()}});
      return 1;
    }
  }
  server.StopOnSignals();
  if (!s.port_file.empty()) {
    if (absl::Status st = WritePortFile(s.port_file, server.port()); !st.ok()) {
      LogError("cannot write port file", {{"error", st.ToString()}});
      return 1;
    }
  }
  LogInfo("listening", {{"host", s.host},
                        {"port", std::to_string(server.port())},
                        {"data_dir", s.data_dir},
                        {"backend", s.backend},
                        {"mode", remote ? "remote" : "embedded"},
                        {"server_id", store->server_id()}});
  server.WaitForStopRequest();
  LogInfo("stopping");
  if (dispatcher) dispatcher->Stop();
  job_logs.Stop();  // log followers get the rest of their logs and their streams end
  server.Stop();
  if (absl::Status st = blob_access.Flush(); !st.ok()) {
    LogError("cannot store blob grants", {{"error", st.ToString()}});
  }
  if (absl::Status st = blobs.Sync(); !st.ok()) {
    LogError("cannot sync the blob store", {{"error", st.ToString()}});
  }
  LogInfo("stopped");
  return 0;
}

}  // namespace
}  // namespace fastest::server

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "fastest-server [flags]            serve the worker endpoints, /v1 API and dispatcher\n"
      "fastest-server token create       mint an API token (printed once)\n"
      "fastest-server token approve CODE approve a device login code for --email");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  auto settings = fastest::server::LoadSettings();
  if (!settings.ok()) {
    fprintf(stderr, "fastest-server: %s\n", settings.status().ToString().c_str());
    return 2;
  }
  if (args.size() >= 3 && std::string(args[1]) == "token" && std::string(args[2]) == "create") {
    return fastest::server::TokenCreate(*settings);
  }
  if (args.size() == 4 && std::string(args[1]) == "token" && std::string(args[2]) == "approve") {
    return fastest::server::TokenApprove(*settings, args[3]);
  }
  if (args.size() > 1) {
    fprintf(stderr, "fastest-server: unknown command '%s' (try: token create, token approve CODE)\n", args[1]);
    return 2;
  }
  return fastest::server::Serve(*settings);
}
