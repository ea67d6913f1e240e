#include "server/channel/sandbox_channel.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/channel/egress_proxy.h"

namespace fastest::server {
namespace {

constexpr char kToken[] = "tok-0123456789abcdef";

TEST(CheckApiRequestHead, AcceptsOnlyTheJobToken) {
  std::string head = absl::StrCat("GET /v1/jobs/J HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n",
                                  "Authorization: Bearer ", kToken, "\r\n\r\n");
  auto ok = CheckApiRequestHead(head, kToken);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, absl::StrCat("GET /v1/jobs/J HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ",
                              kToken, "\r\nConnection: close\r\n\r\n"));

  EXPECT_TRUE(absl::IsPermissionDenied(
      CheckApiRequestHead("GET / HTTP/1.1\r\nHost: x\r\n\r\n", kToken).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      CheckApiRequestHead("GET / HTTP/1.1\r\nAuthorization: Bearer other\r\n\r\n", kToken)
          .status()));
  // A second Authorization header could be the one the server reads.
  EXPECT_TRUE(absl::IsPermissionDenied(
      CheckApiRequestHead(absl::StrCat("GET / HTTP/1.1\r\nAuthorization: Bearer ", kToken,
                                       "\r\nauthorization: Bearer other\r\n\r\n"),
                          kToken)
          .status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      CheckApiRequestHead(absl::StrCat("GET / HTTP/1.1\r\nAuthorization: Bearer ", kToken,
                                       "\r\n folded\r\n\r\n"),
                          kToken)
          .status()));
  EXPECT_TRUE(absl::IsInvalidArgument(CheckApiRequestHead("garbage\r\n\r\n", kToken).status()));
}

// An HTTP upstream on 127.0.0.1 that records the last head it got and answers 200.
class Upstream {
 public:
  Upstream() {
    auto listener = SocketListener::StartLoopback(
        0,
        [this](int fd) {
          std::string head, rest;
          channel_io::ReadHead(fd, 65536, 5000, &head, &rest).IgnoreError();
          {
            std::lock_guard<std::mutex> lock(mu_);
            head_ = head;
          }
          channel_io::WriteAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        },
        &port_);
    EXPECT_TRUE(listener.ok()) << listener.status();
    if (listener.ok()) listener_ = std::move(*listener);
  }
  int port() const { return port_; }
  std::string head() {
    std::lock_guard<std::mutex> lock(mu_);
    return head_;
  }

 private:
  int port_ = 0;
  std::mutex mu_;
  std::string head_;
  std::unique_ptr<SocketListener> listener_;
};

std::string Exchange(const std::string& socket_path, const std::string& request) {
  auto fd = channel_io::ConnectUnix(socket_path);
  EXPECT_TRUE(fd.ok()) << fd.status();
  if (!fd.ok()) return "";
  channel_io::WriteAll(*fd, request);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(*fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(*fd);
  return out;
}

TEST(SandboxChannel, RelaysOnlyRequestsWithTheJobTokenAndCleansUp) {
  std::string root = absl::StrCat(getenv("TEST_TMPDIR"), "/channels");
  Upstream upstream;
  auto hub = ChannelHub::Create({.root = root, .api_port = upstream.port()});
  ASSERT_TRUE(hub.ok()) << hub.status();
  std::string dir;
  {
    auto channel = (*hub)->Open("fastest-job-J1", "J1", kToken);
    ASSERT_TRUE(channel.ok()) << channel.status();
    dir = (*channel)->dir();
    struct stat st;
    ASSERT_EQ(stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(stat((dir + "/token").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(stat((dir + "/api.sock").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    std::string refused = Exchange(dir + "/api.sock",
                                   "GET /v1/jobs/J1 HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n");
    EXPECT_EQ(refused.rfind("HTTP/1.1 401", 0), 0u) << refused;
    // The token file stays until its token was used.
    EXPECT_EQ(access((dir + "/token").c_str(), F_OK), 0);

    std::string answer = Exchange(
        dir + "/api.sock",
        absl::StrCat("GET /v1/jobs/J1 HTTP/1.1\r\nConnection: keep-alive\r\nAuthorization: Bearer ",
                     kToken, "\r\n\r\n"));
    EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
    EXPECT_NE(upstream.head().find("Connection: close\r\n"), std::string::npos);
    EXPECT_EQ(upstream.head().find("keep-alive"), std::string::npos);
    EXPECT_NE(access((dir + "/token").c_str(), F_OK), 0) << "token file not deleted after use";
    EXPECT_EQ((*channel)->api_requests(), 1);
    EXPECT_EQ((*channel)->api_refused(), 1);
  }
  EXPECT_NE(access(dir.c_str(), F_OK), 0) << "channel directory left behind";
}

}  // namespace
}  // namespace fastest::server

namespace fastest::server {
namespace {

// An egress tunnel to a peer that never says anything must not keep the channel (and so the job)
// from closing; a host off the list is refused and noted.
TEST(SandboxChannel, ClosingEndsAnIdleEgressTunnelAndRefusalsAreNoted) {
  std::string root = absl::StrCat(getenv("TEST_TMPDIR"), "/channels-egress");
  int idle_port = 0;
  std::atomic<bool> release{false};
  auto idle = SocketListener::StartLoopback(
      0,
      [&](int) {
        while (!release.load()) absl::SleepFor(absl::Milliseconds(10));
      },
      &idle_port);
  ASSERT_TRUE(idle.ok()) << idle.status();
  auto rules = ParseEgressAllowList(absl::StrCat("127.0.0.1:", idle_port));
  ASSERT_TRUE(rules.ok());
  EgressProxy proxy(*rules);
  auto hub = ChannelHub::Create({.root = root, .api_port = 1, .egress_proxy = &proxy});
  ASSERT_TRUE(hub.ok()) << hub.status();
  auto channel = (*hub)->Open("fastest-job-J2", "J2", kToken);
  ASSERT_TRUE(channel.ok()) << channel.status();
  const std::string socket = (*channel)->dir() + "/egress.sock";

  EXPECT_EQ(Exchange(socket, "CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 403", 0), 0u);
  auto tunnel = channel_io::ConnectUnix(socket);
  ASSERT_TRUE(tunnel.ok()) << tunnel.status();
  channel_io::WriteAll(*tunnel, absl::StrCat("CONNECT 127.0.0.1:", idle_port, " HTTP/1.1\r\n\r\n"));
  std::string head, rest;
  ASSERT_TRUE(channel_io::ReadHead(*tunnel, 4096, 5000, &head, &rest).ok());
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;

  const absl::Time start = absl::Now();
  std::vector<std::string> notes = (*channel)->TakeNotes();
  channel->reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "closing waited for the idle tunnel";
  close(*tunnel);
  release = true;
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0], "[egress] refused 127.0.0.1:1");
  EXPECT_EQ(notes[1], absl::StrCat("[egress] CONNECT 127.0.0.1:", idle_port));
}

}  // namespace
}  // namespace fastest::server

namespace fastest::server {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(SandboxChannel, ReopenAfterACrashAcceptsTheSameTokenByItsHash) {
  std::string root = absl::StrCat(getenv("TEST_TMPDIR"), "/channels-reopen");
  std::string dir;
  {
    Upstream first;
    auto hub = ChannelHub::Create({.root = root, .api_port = first.port()});
    ASSERT_TRUE(hub.ok()) << hub.status();
    auto channel = (*hub)->Open("fastest-job-J2", "J2", kToken);
    ASSERT_TRUE(channel.ok()) << channel.status();
    dir = (*channel)->dir();
    auto stale = (*hub)->Open("fastest-job-J3", "J3", kToken);
    ASSERT_TRUE(stale.ok()) << stale.status();
    // A crash: the process dies without closing anything (the listeners are left behind).
    channel->release();
    stale->release();
  }
  // Only a hash is kept, never the token.
  std::string hash = ReadAll(root + "/fastest-job-J2.sha256");
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(hash.find(kToken), std::string::npos);

  Upstream second;
  auto hub = ChannelHub::Create({.root = root, .api_port = 0});
  ASSERT_TRUE(hub.ok()) << hub.status();
  // The restarted server reopens before it knows its port; the relay reads it per connection.
  auto reopened = (*hub)->Reopen("fastest-job-J2", "J2");
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->dir(), dir);
  (*hub)->set_api_port(second.port());
  (*hub)->RemoveStale({"fastest-job-J2"});
  EXPECT_NE(access((root + "/fastest-job-J3").c_str(), F_OK), 0) << "stale channel kept";
  EXPECT_NE(access((root + "/fastest-job-J3.sha256").c_str(), F_OK), 0);
  EXPECT_TRUE(absl::IsNotFound((*hub)->Reopen("fastest-job-J3", "J3").status()));

  std::string refused = Exchange(dir + "/api.sock",
                                 "GET /v1/jobs/J2 HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n");
  EXPECT_EQ(refused.rfind("HTTP/1.1 401", 0), 0u) << refused;
  std::string answer = Exchange(
      dir + "/api.sock",
      absl::StrCat("GET /v1/jobs/J2 HTTP/1.1\r\nAuthorization: Bearer ", kToken, "\r\n\r\n"));
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_EQ((*reopened)->api_requests(), 1);
  reopened->reset();
  EXPECT_NE(access(dir.c_str(), F_OK), 0) << "channel dir not removed at the job's end";
  EXPECT_NE(access((root + "/fastest-job-J2.sha256").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace fastest::server

namespace fastest::server {
namespace {
TEST(SandboxChannel, SwitchTokenRefusesTheOldTokenAndSurvivesAReopen) {
  std::string root = absl::StrCat(getenv("TEST_TMPDIR"), "/channels-switch");
  constexpr char kJobToken[] = "job-token-fedcba9876543210";
  Upstream upstream;
  auto hub = ChannelHub::Create({.root = root, .api_port = upstream.port()});
  ASSERT_TRUE(hub.ok()) << hub.status();
  auto channel = (*hub)->Open("fastest-warm-w1", "", kToken);
  ASSERT_TRUE(channel.ok()) << channel.status();
  const std::string dir = (*channel)->dir();
  auto get = [&](const std::string& token) {
    return Exchange(dir + "/api.sock",
                    absl::StrCat("GET /v1/x HTTP/1.1\r\nAuthorization: Bearer ", token, "\r\n\r\n"));
  };
  EXPECT_EQ(get(kToken).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(get(kJobToken).rfind("HTTP/1.1 401", 0), 0u);
  ASSERT_TRUE((*channel)->SwitchToken(kJobToken).ok());
  EXPECT_EQ(get(kToken).rfind("HTTP/1.1 401", 0), 0u) << "old token still accepted";
  EXPECT_EQ(get(kJobToken).rfind("HTTP/1.1 200", 0), 0u);
  // A restarted server reopens the channel with the new token's hash.
  channel->release();
  auto reopened = (*hub)->Reopen("fastest-warm-w1", "J9");
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(get(kToken).rfind("HTTP/1.1 401", 0), 0u);
  EXPECT_EQ(get(kJobToken).rfind("HTTP/1.1 200", 0), 0u);
}

}  // namespace
}  // namespace fastest::server
