// End-to-end tests of the CLI's write-back: the real `fastest` binary against the real
// fastest-server with the process backend plugin, whose sandboxes run the real fastest-runner
// with a scripted agent (FASTEST_AGENT_COMMAND='sh "$1"', the job's prompt being the path of a
// script in testdata/). The hostile agents try to get code, secrets and deletions onto the host
// through the job's output; none may reach the user's directory, and each is listed as refused.
#include <poll.h>
#include <pty.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"

namespace fastest::testing {
namespace {

constexpr char kToken[] = "cli-e2e-token-0123456789abcdef";

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", ws ? ws : "fastest", "/", path);
}

std::string TempRoot() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Write(const std::string& path, const std::string& content, mode_t mode = 0644) {
  std::string dir = path.substr(0, path.rfind('/'));
  ASSERT_EQ(std::system(absl::StrCat("mkdir -p '", dir, "'").c_str()), 0);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? st.st_mode : 0;
}

// A shell command's stdout (test setup and inspection only; paths are the test's own).
std::string Sh(const std::string& cmd, int* exit_code = nullptr) {
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  if (exit_code) *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

struct CliRun {
  int exit_code = -1;
  std::string out, err;
  std::string all() const { return out + err; }
};

// One fastest-server (process backend, real runner, scripted agents) for the whole suite.
class WriteBackE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(TempRoot() + "/cli_e2e");
    Sh(absl::StrCat("rm -rf '", *root_, "' && mkdir -p '", *root_, "'"));
    // What the agents' planted hooks would create if one ever ran.
    unlink("/tmp/fastest-pwned");
    const std::string port_file = *root_ + "/port";
    nlohmann::json backend_config = {{"schema", 1}, {"state_dir", *root_ + "/sandboxes"}};
    SpawnOptions o;
    o.binary = Runfile("server/fastest-server");
    o.args = {"--port=0",
              "--port_file=" + port_file,
              "--host=127.0.0.1",
              "--data_dir=" + *root_ + "/server",
              "--backend=" + Runfile("tests/plugins/process_backend/libfastest_backend_process.so"),
              "--backend_config=" + backend_config.dump(),
              "--runner_command=/bin/sh," + Runfile("tests/cli/testdata/sandbox_runner.sh") + "," +
                  Runfile("runner/fastest-runner"),
              "--job_timeout=2m"};
    o.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
             {"FASTEST_API_TOKEN", kToken},
             {"FASTEST_AGENT_COMMAND", "sh \"$1\""},
             {"FASTEST_AGENT_TIMEOUT", "60s"}};
    o.log_path = *root_ + "/server.log";
    o.die_with_parent = true;
    absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(o);
    ASSERT_TRUE(child.ok()) << child.status();
    server_ = new ChildProcess(std::move(*child));
    absl::StatusOr<int> port = server_->WaitForPortFile(port_file, absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status();
    url_ = new std::string(absl::StrCat("http://127.0.0.1:", *port));
  }
  static void TearDownTestSuite() {
    if (server_) server_->Stop(absl::Seconds(10));
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = absl::StrCat(*root_, "/", name_, "/project");
    outside_ = absl::StrCat(*root_, "/", name_, "/outside");
    marker_ = absl::StrCat(*root_, "/", name_, "/hook-ran");
    Sh(absl::StrCat("rm -rf '", *root_, "/", name_, "' && mkdir -p '", dir_, "' '", outside_,
                    "'"));
  }

  // `fastest ARGS --server URL --token T --data_dir D`, stdin not a terminal.
  CliRun Cli(std::vector<std::string> args) {
    static int counter = 0;
    ++counter;
    // Before the caller's flags, so that a --data_dir of the caller wins (the last one counts).
    args.insert(args.begin() + 1, {"--server=" + *url_, "--token=" + std::string(kToken),
                                   absl::StrCat("--data_dir=", *root_, "/", name_, "/cli-data")});
    SpawnOptions o;
    o.binary = Runfile("tools/cli/fastest");
    o.args = args;
    o.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", *root_},
             {"GIT_AUTHOR_NAME", "Test"}, {"GIT_AUTHOR_EMAIL", "test@localhost"},
             {"GIT_COMMITTER_NAME", "Test"}, {"GIT_COMMITTER_EMAIL", "test@localhost"}};
    o.stdout_path = absl::StrCat(*root_, "/", name_, "/cli.", counter, ".out");
    o.stderr_path = absl::StrCat(*root_, "/", name_, "/cli.", counter, ".err");
    CliRun run;
    absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(o);
    if (!child.ok()) {
      run.err = std::string(child.status().message());
      return run;
    }
    absl::StatusOr<int> status = child->Wait(absl::Minutes(3));
    run.exit_code = status.ok() ? ExitCode(*status) : -1;
    run.out = Read(o.stdout_path);
    run.err = Read(o.stderr_path);
    return run;
  }
  // `fastest ARGS` on a terminal (a pty for stdin, stdout and stderr); `answer` is typed once
  // the CLI asks "[y/N]". Returns everything the terminal showed.
  CliRun CliOnTerminal(std::vector<std::string> args, const std::string& answer) {
    args.insert(args.end(), {"--server=" + *url_, "--token=" + std::string(kToken),
                             absl::StrCat("--data_dir=", *root_, "/", name_, "/cli-data")});
    std::vector<std::string> argv_s = {Runfile("tools/cli/fastest")};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<std::string> env_s = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + *root_};
    std::vector<char*> argv, envp;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (std::string& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    CliRun run;
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    if (pid < 0) return run;
    if (pid == 0) {
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    bool answered = false;
    char buf[4096];
    for (;;) {
      pollfd p = {master, POLLIN, 0};
      if (poll(&p, 1, 180000) <= 0) break;
      ssize_t n = read(master, buf, sizeof(buf));
      if (n <= 0) break;  // EIO: the CLI exited and closed the terminal
      run.out.append(buf, static_cast<size_t>(n));
      if (!answered && absl::StrContains(run.out, "[y/N] ")) {
        answered = true;
        std::string line = answer + "\n";
        EXPECT_EQ(write(master, line.data(), line.size()), static_cast<ssize_t>(line.size()));
      }
    }
    close(master);
    int status = 0;
    waitpid(pid, &status, 0);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
  }
  CliRun RunJob(const std::string& agent, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"run", "--dir=" + dir_,
                                     "--prompt=" + Runfile("tests/cli/testdata/" + agent)};
    args.insert(args.end(), extra.begin(), extra.end());
    return Cli(args);
  }
  // The test's own git calls: setup and inspection, without hooks (`git status` alone runs
  // post-index-change), so that a marker can only come from the CLI (or the user's commit below).
  std::string Git(const std::string& args, int* exit_code = nullptr) {
    return Sh(absl::StrCat("cd '", dir_, "' && git -c core.hooksPath=/dev/null ", args, " 2>&1"),
              exit_code);
  }
  // A git repository with one commit, then hooks that leave a marker if they ever run.
  void MakeRepo() {
    Git("init -q -b main");
    Git("config user.name Test && git config user.email test@localhost");
    Git("add -A && git commit -qm base");
    for (const char* hook : {"pre-commit", "post-commit", "post-checkout", "reference-transaction",
                             "pre-applypatch", "post-applypatch", "post-index-change"}) {
      Write(absl::StrCat(dir_, "/.git/hooks/", hook),
            absl::StrCat("#!/bin/sh\necho ", hook, " >> '", marker_, "'\n"), 0755);
    }
  }
  // From the CLI's "==> job <id> created (snapshot ...)" line.
  static std::string JobIdFrom(const std::string& err) {
    for (absl::string_view line : absl::StrSplit(err, '\n')) {
      if (absl::ConsumePrefix(&line, "==> job ") && absl::StrContains(line, " created")) {
        return std::string(line.substr(0, line.find(' ')));
      }
    }
    return "";
  }

  static std::string* root_;
  static std::string* url_;
  static ChildProcess* server_;
  std::string name_, dir_, outside_, marker_;
};

std::string* WriteBackE2eTest::root_ = nullptr;
std::string* WriteBackE2eTest::url_ = nullptr;
ChildProcess* WriteBackE2eTest::server_ = nullptr;

TEST_F(WriteBackE2eTest, HostileOutputNeverReachesTheHost) {
  Write(dir_ + "/README.md", "hello\n");
  Write(dir_ + "/.fstignore", "secret.env\n");
  Write(dir_ + "/secret.env", "TOKEN=host\n", 0600);
  ASSERT_EQ(symlink(outside_.c_str(), (dir_ + "/link").c_str()), 0);
  ASSERT_EQ(symlink("..", (dir_ + "/parent").c_str()), 0);
  MakeRepo();
  const std::string git_config = Read(dir_ + "/.git/config");

  CliRun run = RunJob("hostile_agent.sh", {"--yes"});
  EXPECT_EQ(run.exit_code, 1) << run.all();  // something was refused

  // The honest change and the program (without its setuid bit) arrived.
  EXPECT_EQ(Read(dir_ + "/README.md"), "hello\nimproved by the agent\n");
  EXPECT_EQ(ModeOf(dir_ + "/suid.sh") & 07777, 0755u) << run.all();
  // Nothing else did.
  EXPECT_EQ(Read(dir_ + "/.git/hooks/post-commit"),
            absl::StrCat("#!/bin/sh\necho post-commit >> '", marker_, "'\n"));
  EXPECT_EQ(Read(dir_ + "/.git/config"), git_config);
  EXPECT_FALSE(Exists(dir_ + "/sub")) << run.all();
  EXPECT_EQ(Read(dir_ + "/secret.env"), "TOKEN=host\n");
  EXPECT_EQ(Read(dir_ + "/.fstignore"), "secret.env\n");
  EXPECT_FALSE(Exists(outside_ + "/x"));
  EXPECT_FALSE(Exists(dir_ + "/../x"));
  EXPECT_TRUE(S_ISLNK(ModeOf(dir_ + "/link")));
  EXPECT_TRUE(S_ISLNK(ModeOf(dir_ + "/parent")));
  EXPECT_FALSE(Exists(dir_ + "/escaped-from-the-workspace"));
  EXPECT_FALSE(Exists(dir_ + "/up"));
  EXPECT_FALSE(Exists(dir_ + "/etc-link"));
  // Every refusal is listed with its reason.
  for (const std::string& line : {
           std::string("! M .fstignore: refused: the ignore rules are yours"),
           std::string("! A .git/config: refused: git metadata (.git) is never written back"),
           std::string("! A .git/hooks/post-commit: refused: git metadata"),
           std::string("! A link/x: refused: refusing to follow symlink 'link'"),
           std::string("! A parent/x: refused: refusing to follow symlink 'parent'"),
           std::string("! A secret.env: refused: ignored on this machine"),
           std::string("! A sub/.git/HEAD: refused: git metadata"),
       }) {
    EXPECT_TRUE(absl::StrContains(run.out, line)) << line << "\n" << run.all();
  }
  EXPECT_TRUE(absl::StrContains(run.out, "  M README.md\n")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "  A suid.sh\n")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "2 changes: 1 added, 1 modified, 0 deleted, 0 mode; "
                                         "7 refused paths"))
      << run.out;
  EXPECT_TRUE(absl::StrContains(run.err, "2 changes written to")) << run.err;
  // The user's next commit runs only the user's own hooks.
  Sh(absl::StrCat("cd '", dir_, "' && git add README.md suid.sh && git commit -qm next"));
  EXPECT_FALSE(Exists("/tmp/fastest-pwned"));
  EXPECT_TRUE(absl::StrContains(Read(marker_), "post-commit\n")) << Read(marker_);
}

TEST_F(WriteBackE2eTest, NonInteractiveRunWritesNothingThenApplyRereadsTheHostRules) {
  Write(dir_ + "/src/app.py", "print('hi')\n");
  Write(dir_ + "/notes.log", "my notes\n");
  Write(dir_ + "/data/a.csv", "1,2\n");
  Write(dir_ + "/.fstignore", "*.tmp\n");
  CliRun run = RunJob("hiding_agent.sh");
  EXPECT_EQ(run.exit_code, 1) << run.all();  // the .fstignore edit and data/ are refused
  const std::string job = JobIdFrom(run.err);
  ASSERT_FALSE(job.empty()) << run.all();
  EXPECT_EQ(run.out.find("fastest apply"), std::string::npos);  // hints go to stderr
  EXPECT_TRUE(absl::StrContains(run.err, absl::StrCat("nothing written (no terminal to ask on)")))
      << run.err;
  EXPECT_TRUE(absl::StrContains(run.err, absl::StrCat("fastest apply ", job, " --dir ", dir_,
                                                      " --server ", *url_, " --yes")))
      << run.err;
  EXPECT_TRUE(absl::StrContains(run.out, "  D notes.log\n")) << run.out;
  EXPECT_TRUE(absl::StrContains(
      run.out, "! D data/a.csv: refused: hidden by the job's .fstignore, not deleted"))
      << run.out;
  // Nothing was written.
  EXPECT_EQ(Read(dir_ + "/src/app.py"), "print('hi')\n");
  EXPECT_EQ(Read(dir_ + "/notes.log"), "my notes\n");

  // Elsewhere (no record of the run): the directory must be named.
  CliRun elsewhere = Cli({"apply", job, "--yes", absl::StrCat("--data_dir=", *root_, "/other")});
  EXPECT_EQ(elsewhere.exit_code, 2) << elsewhere.all();
  EXPECT_TRUE(absl::StrContains(elsewhere.err, "pass --dir")) << elsewhere.err;

  // The user ignores *.log now: `apply` reads the rules again and keeps notes.log.
  Write(dir_ + "/.fstignore", "*.tmp\nnotes.log\n");
  CliRun apply = Cli({"apply", job, "--yes"});
  EXPECT_EQ(apply.exit_code, 1) << apply.all();
  EXPECT_EQ(Read(dir_ + "/src/app.py"), "print(\"better\")\n");
  EXPECT_EQ(Read(dir_ + "/notes.log"), "my notes\n");
  EXPECT_EQ(Read(dir_ + "/data/a.csv"), "1,2\n");
  EXPECT_EQ(Read(dir_ + "/.fstignore"), "*.tmp\nnotes.log\n");
  EXPECT_TRUE(absl::StrContains(apply.out, "! D notes.log: refused: ignored on this machine"))
      << apply.out;
  EXPECT_TRUE(absl::StrContains(apply.out, "! M .fstignore: refused")) << apply.out;
  EXPECT_TRUE(absl::StrContains(apply.err, "1 change written to")) << apply.err;
}

TEST_F(WriteBackE2eTest, BranchCommitsExactlyTheAcceptedChangesAndRunsNoHook) {
  Write(dir_ + "/README.md", "hello\n");
  Write(dir_ + "/src/old.py", "old = 1\n");
  Write(dir_ + "/tool.sh", "echo tool\n");
  MakeRepo();
  Write(dir_ + "/scratch.txt", "not committed\n");
  const std::string head = Git("rev-parse HEAD");
  const std::string status = Git("status --porcelain");
  const std::string index = Read(dir_ + "/.git/index");
  ASSERT_EQ(status, "?? scratch.txt\n");

  CliRun run = RunJob("branch_agent.sh", {"--branch=agent/work"});
  EXPECT_EQ(run.exit_code, 1) << run.all();  // the planted hook is refused
  EXPECT_TRUE(absl::StrContains(run.out, "! A .fstignore: refused")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "! A .git/hooks/post-checkout: refused")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.err, "branch agent/work created")) << run.err;
  EXPECT_EQ(Git("diff-tree --no-commit-id --name-status -r agent/work"),
            "M\tREADME.md\nA\tlogo.bin\nA\tsrc/new.py\nD\tsrc/old.py\nM\ttool.sh\n");
  EXPECT_EQ(Git("rev-parse agent/work^"), head);
  EXPECT_EQ(Git("show agent/work:README.md"), "hello\nimproved by the agent\n");
  EXPECT_EQ(Git("ls-tree agent/work tool.sh").substr(0, 6), "100755");
  // Working tree, index, HEAD and hooks: untouched; no hook ran.
  EXPECT_EQ(Git("rev-parse HEAD"), head);
  EXPECT_EQ(Git("symbolic-ref HEAD"), "refs/heads/main\n");
  EXPECT_EQ(Git("status --porcelain"), status);
  EXPECT_EQ(Read(dir_ + "/.git/index"), index);
  EXPECT_EQ(Read(dir_ + "/README.md"), "hello\n");
  EXPECT_TRUE(Exists(dir_ + "/src/old.py"));
  EXPECT_FALSE(Exists(dir_ + "/src/new.py"));
  EXPECT_FALSE(Exists(marker_)) << Read(marker_);
  EXPECT_FALSE(Exists("/tmp/fastest-pwned"));

  // An existing branch is never overwritten.
  const std::string branch_commit = Git("rev-parse agent/work");
  const std::string job_id = JobIdFrom(run.err);
  ASSERT_FALSE(job_id.empty()) << run.err;
  CliRun again = Cli({"apply", job_id, "--branch=agent/work"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(again.err, "branch 'agent/work' already exists")) << again.all();
  EXPECT_EQ(Git("rev-parse agent/work"), branch_commit);

  // --patch: a patch of the same accepted changes that git accepts for this checkout.
  const std::string patch = absl::StrCat(*root_, "/", name_, "/agent.patch");
  CliRun patched = Cli({"apply", job_id, "--patch=" + patch});
  EXPECT_EQ(patched.exit_code, 1) << patched.all();  // the hook is still refused
  const std::string text = Read(patch);
  EXPECT_TRUE(absl::StrContains(text, "diff --git a/src/new.py b/src/new.py\nnew file mode 100644\n"))
      << text;
  EXPECT_FALSE(absl::StrContains(text, ".git/")) << text;
  // The binary file travels as a git binary patch.
  EXPECT_TRUE(absl::StrContains(text, "diff --git a/logo.bin b/logo.bin\nnew file mode 100644\n"
                                      "index 0000000000000000000000000000000000000000.."))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "GIT binary patch\nliteral 19\n")) << text;
  int rc = -1;
  std::string check = Git(absl::StrCat("apply --check '", patch, "'"), &rc);
  EXPECT_EQ(rc, 0) << check << text;
  EXPECT_EQ(Read(dir_ + "/README.md"), "hello\n");  // --patch writes nothing into the directory
  // Applied in a clone of the checkout, it gives exactly the branch's tree.
  const std::string clone = absl::StrCat(*root_, "/", name_, "/clone");
  rc = -1;
  std::string applied = Sh(absl::StrCat("git clone -q '", dir_, "' '", clone, "' && cd '", clone,
                                        "' && git -c core.hooksPath=/dev/null apply '", patch,
                                        "' && git add -A && git write-tree 2>&1"),
                           &rc);
  EXPECT_EQ(rc, 0) << applied;
  EXPECT_EQ(applied, Git("rev-parse agent/work^{tree}"));
  EXPECT_FALSE(Exists(marker_)) << Read(marker_);
}

TEST_F(WriteBackE2eTest, OnATerminalRunAsksBeforeWriting) {
  Write(dir_ + "/README.md", "hello\n");
  const std::vector<std::string> args = {"run", "--dir=" + dir_,
                                         "--prompt=" + Runfile("tests/cli/testdata/edit_agent.sh")};
  CliRun declined = CliOnTerminal(args, "n");
  EXPECT_EQ(declined.exit_code, 1) << declined.out;
  EXPECT_TRUE(absl::StrContains(declined.out, absl::StrCat("Write 1 change to ", dir_, "? [y/N]")))
      << declined.out;
  EXPECT_TRUE(absl::StrContains(declined.out, "nothing written. Apply later: fastest apply "))
      << declined.out;
  EXPECT_EQ(Read(dir_ + "/README.md"), "hello\n");

  CliRun accepted = CliOnTerminal(args, "y");
  EXPECT_EQ(accepted.exit_code, 0) << accepted.out;
  EXPECT_TRUE(absl::StrContains(accepted.out, "  M README.md")) << accepted.out;
  EXPECT_TRUE(absl::StrContains(accepted.out, "1 change written to")) << accepted.out;
  EXPECT_EQ(Read(dir_ + "/README.md"), "hello\nedited by the agent\n");
}

TEST_F(WriteBackE2eTest, GitDirectoryIsNotUploadedUnlessAsked) {
  Write(dir_ + "/README.md", "hello\n");
  Write(dir_ + "/.fstignore", "!.git/\n");  // even an explicit negation does not upload it
  MakeRepo();
  CliRun run = RunJob("noop_agent.sh");
  EXPECT_EQ(run.exit_code, 0) << run.all();
  EXPECT_TRUE(absl::StrContains(run.err, "uploading 2 files")) << run.all();
  EXPECT_TRUE(absl::StrContains(run.err, "nothing to write")) << run.all();
  // --include_git uploads it (and the job's output still cannot write into it).
  run = RunJob("noop_agent.sh", {"--include_git"});
  EXPECT_EQ(run.exit_code, 0) << run.all();
  EXPECT_FALSE(absl::StrContains(run.err, "uploading 2 files")) << run.all();
  EXPECT_TRUE(absl::StrContains(run.err, "nothing to write")) << run.all();
}

}  // namespace
}  // namespace fastest::testing
