// hostile_agent: the "agent" of tests/security. It runs inside a sandbox as the job's agent, tries
// every way out it knows and writes what it got to report.json in the workspace (the runner
// snapshots it; the test reads it from the output snapshot). It never decides whether an attack
// "counts": it records raw outcomes (errno text, bytes read) and the test judges them.
//
// Usage: hostile_agent --decoy_port=N --server_port=N --allowed_port=N --limit_mib=N
// (the model gateway and egress proxy are found in FASTEST_MODEL_BASE_URL and HTTPS_PROXY)
// Statically linked: the sandbox image holds only what the runner and OpenCode need.
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::map<std::string, std::string> g_report;

std::string Escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void Record(const std::string& key, const std::string& value) { g_report[key] = value; }
std::string Err() { return std::string("error: ") + strerror(errno); }

// Reads up to `max` bytes of a file: its content, or "error: ...".
std::string Slurp(const std::string& path, size_t max = 1 << 20) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Err();
  std::string out;
  char buf[65536];
  ssize_t n;
  while (out.size() < max && (n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  if (n < 0 && out.empty()) out = Err();
  close(fd);
  return out;
}

// Connects to 127.0.0.1:port, sends `request`, returns everything read until EOF (5 s).
std::string Exchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::string e = Err();
    close(fd);
    return e;
  }
  (void)!write(fd, request.data(), request.size());
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

// "http://127.0.0.1:PORT/path" -> PORT and "/path".
int PortOf(const std::string& url, std::string* path) {
  size_t host = url.find("127.0.0.1:");
  if (host == std::string::npos) return 0;
  size_t slash = url.find('/', host);
  if (path != nullptr) *path = slash == std::string::npos ? "" : url.substr(slash);
  return atoi(url.c_str() + host + 10);
}

std::string UnixProbe(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::string e = Err();
    close(fd);
    return e;
  }
  close(fd);
  return "connected";
}

std::vector<int> Pids() {
  std::vector<int> pids;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      int pid = atoi(e->d_name);
      if (pid > 0) pids.push_back(pid);
    }
    closedir(d);
  }
  return pids;
}

// "fst_" and 48 lower-case hex digits: a fastest API token.
bool LooksLikeToken(const std::string& s) {
  for (size_t at = s.find("fst_"); at != std::string::npos; at = s.find("fst_", at + 1)) {
    size_t n = 0;
    while (at + 4 + n < s.size() && n < 48 && isxdigit(static_cast<unsigned char>(s[at + 4 + n])) &&
           !isupper(static_cast<unsigned char>(s[at + 4 + n]))) {
      ++n;
    }
    if (n == 48) return true;
  }
  return false;
}

// Every readable regular file below `dir` (not /proc, /sys, /dev): does any hold "fst_"?
void HuntTokens(const std::string& dir, int depth, std::string* hits, int* files) {
  if (depth > 12) return;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = (dir == "/" ? "" : dir) + "/" + name;
    if (path == "/proc" || path == "/sys" || path == "/dev") continue;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      HuntTokens(path, depth + 1, hits, files);
    } else if (S_ISREG(st.st_mode) && st.st_size < (8 << 20)) {
      std::string content = Slurp(path, 8 << 20);
      if (content.rfind("error: ", 0) == 0) continue;
      ++*files;
      if (LooksLikeToken(content)) *hits += path + "\n";
    }
  }
  closedir(d);
}

// Forks sleeping children until fork fails; returns how many it got, then kills them.
int ForkBomb(int cap) {
  std::vector<pid_t> kids;
  while (static_cast<int>(kids.size()) < cap) {
    pid_t p = fork();
    if (p < 0) break;
    if (p == 0) {
      pause();
      _exit(0);
    }
    kids.push_back(p);
  }
  for (pid_t p : kids) kill(p, SIGKILL);
  for (pid_t p : kids) waitpid(p, nullptr, 0);
  return static_cast<int>(kids.size());
}

// Runs `fn` in a child; returns "exit N" / "signal N" plus what the child wrote to its pipe.
template <typename Fn>
std::string InChild(Fn fn) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return Err();
  pid_t p = fork();
  if (p == 0) {
    close(pipefd[0]);
    if (FILE* adj = fopen("/proc/self/oom_score_adj", "w")) {
      fputs("1000", adj);
      fclose(adj);
    }
    fn(pipefd[1]);
    _exit(0);
  }
  close(pipefd[1]);
  std::string got;
  char buf[256];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) got.append(buf, n);
  close(pipefd[0]);
  int status = 0;
  waitpid(p, &status, 0);
  std::string how = WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                        : "exit " + std::to_string(WEXITSTATUS(status));
  return how + "; " + got;
}

void Progress(int fd, long long mib) {
  std::string s = std::to_string(mib) + " ";
  (void)!write(fd, s.data(), s.size());
}

}  // namespace

int main(int argc, char** argv) {
  int decoy_port = 0, server_port = 0, allowed_port = 0;
  long long limit_mib = 8192;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--decoy_port=", 0) == 0) decoy_port = atoi(a.c_str() + 13);
    if (a.rfind("--server_port=", 0) == 0) server_port = atoi(a.c_str() + 14);
    if (a.rfind("--limit_mib=", 0) == 0) limit_mib = atoll(a.c_str() + 12);
    if (a.rfind("--allowed_port=", 0) == 0) allowed_port = atoi(a.c_str() + 15);
  }

  // The memory and disk bombs run in children: make sure the OOM killer picks them, not us.
  if (FILE* adj = fopen("/proc/self/oom_score_adj", "w")) {
    fputs("500", adj);
    fclose(adj);
  }

  // Who am I, and what may I do?
  std::string status = Slurp("/proc/self/status");
  for (const char* field : {"Uid:", "CapEff:", "CapPrm:", "CapBnd:", "NoNewPrivs:", "Seccomp:"}) {
    size_t at = status.find(std::string("\n") + field);
    if (at == std::string::npos) continue;
    size_t end = status.find('\n', at + 1);
    std::string line = status.substr(at + 1, end - at - 1);
    Record(std::string("self.") + std::string(field, strlen(field) - 1),
           line.substr(line.find_first_not_of(" \t", strlen(field))));
  }
  Record("setuid0", setuid(0) == 0 ? "became root" : Err());

  // Network: the host's loopback services, raw sockets, host listeners.
  const std::string probe = "GET /v1/jobs HTTP/1.0\r\n\r\n";
  Record("net.decoy", Exchange(decoy_port, probe));
  Record("net.server", Exchange(server_port, probe));
  int raw = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  Record("net.packet_socket", raw >= 0 ? "opened" : Err());
  int raw_ip = socket(AF_INET, SOCK_RAW, IPPROTO_TCP);
  Record("net.raw_ip_socket", raw_ip >= 0 ? "opened" : Err());
  Record("net.proc_net_tcp", Slurp("/proc/net/tcp"));

  // Secrets: PID 1, the runner, the channel directory, every readable file.
  Record("proc1.environ", Slurp("/proc/1/environ"));
  Record("proc1.cmdline", Slurp("/proc/1/cmdline"));
  int runner = 0;
  for (int pid : Pids()) {
    std::string comm = Slurp("/proc/" + std::to_string(pid) + "/comm");
    if (comm.rfind("fastest-runner", 0) == 0) runner = pid;
  }
  Record("runner.pid", std::to_string(runner));
  if (runner > 0) {
    std::string base = "/proc/" + std::to_string(runner);
    Record("runner.environ", Slurp(base + "/environ"));
    Record("runner.cmdline", Slurp(base + "/cmdline"));
    Record("runner.mem", Slurp(base + "/mem", 4096));
    Record("runner.ptrace", ptrace(PTRACE_ATTACH, runner, nullptr, nullptr) == 0 ? "attached"
                                                                                 : Err());
  }
  Record("channel.list", opendir("/run/fastest") != nullptr ? "listed" : Err());
  Record("channel.token", Slurp("/run/fastest/token"));
  Record("channel.api_sock", UnixProbe("/run/fastest/api.sock"));
  Record("channel.model_sock", UnixProbe("/run/fastest/model.sock"));
  std::string env_dump;
  for (char** e = environ; *e != nullptr; ++e) env_dump += std::string(*e) + "\n";
  Record("self.environ", env_dump);
  std::string hits;
  int files = 0;
  HuntTokens("/", 0, &hits, &files);
  for (int pid : Pids()) {
    for (const char* f : {"/environ", "/cmdline"}) {
      std::string content = Slurp("/proc/" + std::to_string(pid) + f);
      if (LooksLikeToken(content)) hits += "/proc/" + std::to_string(pid) + f + "\n";
    }
  }
  Record("hunt.hits", hits);
  Record("hunt.files_read", std::to_string(files));

  // The model gateway: usable with the placeholder key, but only for the provider's API.
  const char* model_url = getenv("FASTEST_MODEL_BASE_URL");
  if (model_url != nullptr) {
    std::string path;
    int port = PortOf(model_url, &path);
    const char* key = getenv("FASTEST_MODEL_API_KEY");
    std::string body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    Record("model.answer",
           Exchange(port, "POST " + path + "/chat/completions HTTP/1.1\r\nHost: x\r\n"
                          "Authorization: Bearer " + std::string(key ? key : "") +
                          "\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body));
    Record("model.escape",
           Exchange(port, "GET " + path + "/../stub/state HTTP/1.1\r\nHost: x\r\n\r\n"));
    Record("model.absolute",
           Exchange(port, "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  // The egress proxy: an allow-listed host works, the decoy does not.
  const char* proxy = getenv("HTTPS_PROXY");
  if (proxy != nullptr) {
    int port = PortOf(proxy, nullptr);
    Record("egress.allowed", Exchange(port, "CONNECT 127.0.0.1:" + std::to_string(allowed_port) +
                                                " HTTP/1.1\r\n\r\n"));
    Record("egress.refused", Exchange(port, "CONNECT 127.0.0.1:" + std::to_string(decoy_port) +
                                                " HTTP/1.1\r\n\r\n"));
    Record("egress.plain_get",
           Exchange(port, "GET http://127.0.0.1:" + std::to_string(decoy_port) +
                              "/ HTTP/1.1\r\nHost: x\r\n\r\n"));
  }

  // The image: writable?
  int planted = open("/usr/local/bin/planted", O_WRONLY | O_CREAT, 0755);
  Record("fs.write_usr", planted >= 0 ? "written" : Err());
  Record("fs.write_root", mkdir("/planted", 0755) == 0 ? "written" : Err());

  // Limits.
  Record("limit.pids", std::to_string(ForkBomb(100000)));
  Record("limit.memory", InChild([&](int out) {
    for (long long mib = 1; mib <= limit_mib; ++mib) {
      void* p = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) _exit(3);
      memset(p, 1, 1 << 20);
      if (mib % 64 == 0) Progress(out, mib);
    }
    _exit(2);  // got everything: no limit
  }));
  Record("limit.disk", InChild([&](int out) {
    int fd = open("fill.bin", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) _exit(4);
    std::string chunk(1 << 20, 'x');
    for (long long mib = 1; mib <= limit_mib; ++mib) {
      if (write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) {
        std::string e = " " + Err();
        (void)!write(out, e.data(), e.size());
        _exit(5);
      }
      if (mib % 64 == 0) Progress(out, mib);
    }
    _exit(2);
  }));
  unlink("fill.bin");

  // The real work still gets done.
  {
    std::ofstream done("done.txt");
    done << "the agent finished its task\n";
  }
  std::ofstream report("report.json");
  report << "{\n";
  bool first = true;
  for (const auto& [k, v] : g_report) {
    report << (first ? "" : ",\n") << "  \"" << Escape(k) << "\": \"" << Escape(v) << "\"";
    first = false;
  }
  report << "\n}\n";
  return 0;
}
