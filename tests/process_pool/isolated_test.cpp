// crew::run_isolated: one callable in a throw-away child, with the pool's failure kinds.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/isolated.hpp"
#include "support/process.hpp"

namespace {

using namespace std::chrono_literals;
using crew::error_kind;
using crew::task_error;

template <class F>
task_error failure_of(F&& fn, const crew::isolation_options& options = {}) {
  try {
    crew::run_isolated(std::forward<F>(fn), options);
  } catch (const task_error& e) {
    return e;
  }
  ADD_FAILURE() << "run_isolated did not throw";
  return task_error{error_kind::exception, "none"};
}

TEST(RunIsolated, ReturnsTheResultAndSeesCapturedState) {
  const std::vector<int> data{1, 2, 3, 4};
  const int parent = getpid();
  auto [sum, pid] = crew::run_isolated([&] {
    int total = 0;
    for (int v : data) total += v;
    return std::pair<int, int>{total, static_cast<int>(getpid())};
  });
  EXPECT_EQ(sum, 10);
  EXPECT_NE(pid, parent);
  EXPECT_NO_THROW(crew::run_isolated([] {}));
  EXPECT_EQ(crew::run_isolated([] { return std::string(1 << 20, 'x'); }).size(), 1U << 20);
}

TEST(RunIsolated, SideEffectsStayInTheChild) {
  int counter = 0;
  crew::run_isolated([&] { counter = 99; });
  EXPECT_EQ(counter, 0);
}

TEST(RunIsolated, CrashIsAnError) {
  const task_error e = failure_of([]() -> int {
    std::fputs("isolated child going down\n", stderr);
    std::fflush(stderr);
    raise(SIGSEGV);
    return 1;
  });
  EXPECT_EQ(e.kind(), error_kind::crashed);
  EXPECT_EQ(e.signal(), SIGSEGV);
  EXPECT_NE(e.stderr_tail().find("isolated child going down"), std::string::npos);
}

TEST(RunIsolated, ExceptionIsAnError) {
  const task_error e = failure_of([]() -> int { throw std::invalid_argument("no good"); });
  EXPECT_EQ(e.kind(), error_kind::exception);
  EXPECT_EQ(e.remote_type(), "std::invalid_argument");
  EXPECT_STREQ(e.what(), "no good");
}

TEST(RunIsolated, TimeoutIsAnError) {
  const auto start = std::chrono::steady_clock::now();
  const task_error e = failure_of([] { std::this_thread::sleep_for(60s); }, {.timeout = 200ms});
  EXPECT_EQ(e.kind(), error_kind::timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
}

TEST(RunIsolated, MemoryLimitIsAnError) {
  crew::isolation_options options;
  options.memory_limit = 64U << 20;
  const task_error e = failure_of(
      [] {
        std::vector<char> block(512U << 20);
        for (std::size_t i = 0; i < block.size(); i += 4096) block[i] = 1;
        std::this_thread::sleep_for(5s);
        return static_cast<int>(block[0]);
      },
      options);
  EXPECT_EQ(e.kind(), error_kind::out_of_memory);
  EXPECT_GT(e.peak_memory(), options.memory_limit);
}

TEST(RunIsolated, ExitWithoutResultIsACrash) {
  const task_error e = failure_of([]() -> int { _exit(5); });
  EXPECT_EQ(e.kind(), error_kind::crashed);
  EXPECT_EQ(e.exit_code(), 5);
}

TEST(RunIsolated, LeavesNoDescriptorsOrChildren) {
  crew::run_isolated([] { return 1; });
  const int fds = crew::test::open_fd_count();
  for (int i = 0; i < 20; ++i) (void)crew::run_isolated([i] { return i; });
  (void)failure_of([]() -> int { std::abort(); });
  EXPECT_EQ(crew::test::open_fd_count(), fds);
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1) << "no child left to reap";
}

}  // namespace
