#include "server/util/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace fastest::server {
namespace {

// Everything readable from `fd` now (non-blocking).
std::string Drain(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

class BufferedLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::pipe2(fds_, O_NONBLOCK | O_CLOEXEC), 0);
    ASSERT_GE(::fcntl(fds_[0], F_SETPIPE_SZ, 1 << 20), 0);
  }
  void TearDown() override {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int fds_[2] = {-1, -1};
};

TEST_F(BufferedLogTest, LinesArriveWithinTheFlushPeriodAndNothingIsLostAtShutdown) {
  {
    BufferedLog log(fds_[1], absl::Milliseconds(50));
    log.Log("info", "http", {{"path", "/health"}, {"status", "200"}});
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    std::string got;
    while (got.empty() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
      got = Drain(fds_[0]);
    }
    EXPECT_NE(got.find("level=info msg=http path=/health status=200\n"), std::string::npos) << got;
    // Many lines just before shutdown: the destructor writes every one of them, in order.
    for (int i = 0; i < 5000; ++i) log.Log("info", "line", {{"n", absl::StrCat(i)}});
  }
  std::vector<std::string> lines = absl::StrSplit(Drain(fds_[0]), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5000u);
  for (int i = 0; i < 5000; ++i) {
    EXPECT_TRUE(absl::EndsWith(lines[i], absl::StrCat(" n=", i))) << lines[i];
  }
}

TEST_F(BufferedLogTest, ValuesAreQuotedLikeTheDirectLog) {
  BufferedLog log(fds_[1]);
  log.Log("warn", "two words", {{"v", "a \"b\""}});
  log.Flush();
  EXPECT_NE(Drain(fds_[0]).find(R"(level=warn msg="two words" v="a \"b\"")"), std::string::npos);
}

}  // namespace
}  // namespace fastest::server
