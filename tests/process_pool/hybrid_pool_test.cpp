// hybrid_pool: P processes × T threads; isolation per process, sharing per thread.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "crew/hybrid_pool.hpp"

namespace {

using namespace std::chrono_literals;
using crew::error_kind;

std::pair<int, int> where_after_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return {static_cast<int>(getpid()), static_cast<int>(syscall(SYS_gettid))};
}
std::string omp_threads() {
  const char* value = std::getenv("OMP_NUM_THREADS");
  return value == nullptr ? "" : value;
}
std::pair<int, int> crash_after_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  raise(SIGSEGV);
  return {};
}
int hang() {
  std::this_thread::sleep_for(60s);
  return 0;
}
int square(int x) {
  return x * x;
}

crew::hybrid_pool_options shape(std::size_t processes, std::size_t threads) {
  crew::hybrid_pool_options o;
  o.processes = processes;
  o.threads_per_process = threads;
  return o;
}

TEST(HybridPool, TasksRunOnEveryThreadOfEveryProcess) {
  crew::hybrid_pool pool{shape(2, 2)};
  EXPECT_EQ(pool.concurrency(), 4U);
  std::vector<crew::future<std::pair<int, int>>> futures;
  for (int i = 0; i < 4; ++i) futures.push_back(pool.submit<&where_after_ms>(300));
  std::set<int> pids;
  std::set<std::pair<int, int>> threads;
  for (auto& f : futures) {
    const auto at = f.get();
    pids.insert(at.first);
    threads.insert(at);
  }
  EXPECT_EQ(pids.size(), 2U);
  EXPECT_EQ(threads.size(), 4U) << "four tasks, four slots: one per thread";
  EXPECT_EQ(pool.worker_pids().size(), 2U);
  EXPECT_EQ(pool.stats().workers, 4U);
}

TEST(HybridPool, LibrariesInWorkersSeeTheirThreadCount) {
  crew::hybrid_pool pool{shape(1, 3)};
  EXPECT_EQ(pool.submit<&omp_threads>().get(), "3");
}

TEST(HybridPool, ACrashFailsOnlyTheTasksOfItsProcess) {
  crew::hybrid_pool pool{shape(2, 2)};
  std::vector<crew::future<std::pair<int, int>>> futures;
  futures.push_back(pool.submit<&crash_after_ms>(300));
  for (int i = 0; i < 3; ++i) futures.push_back(pool.submit<&where_after_ms>(1500));
  auto crash = futures[0].result();
  ASSERT_FALSE(crash);
  EXPECT_EQ(crash.error().kind(), error_kind::crashed);
  const int crashed_pid = crash.error().pid();
  int lost = 0;
  int survived = 0;
  for (std::size_t i = 1; i < futures.size(); ++i) {
    auto r = futures[i].result();
    if (r) {
      EXPECT_NE(r.value().first, crashed_pid);
      ++survived;
    } else {
      EXPECT_EQ(r.error().kind(), error_kind::crashed);
      EXPECT_EQ(r.error().pid(), crashed_pid) << "only the crashed process's tasks fail";
      ++lost;
    }
  }
  EXPECT_EQ(lost, 1) << "the crasher's sibling thread";
  EXPECT_EQ(survived, 2);
  EXPECT_EQ(pool.submit<&square>(7).get(), 49) << "the process was replaced";
  EXPECT_EQ(pool.worker_pids().size(), 2U);
}

TEST(HybridPool, ATimeoutRetriesTheInnocentSibling) {
  auto o = shape(1, 2);
  o.task_timeout = 1000ms;
  crew::hybrid_pool pool{o};
  auto stuck = pool.submit<&hang>();
  // Starts on the other thread at ~700 ms and runs well within the timeout, but its process is
  // stopped at ~1000 ms for the stuck task.
  std::this_thread::sleep_for(700ms);
  auto sibling = pool.submit<&where_after_ms>(400);
  auto r = stuck.result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::timed_out);
  EXPECT_TRUE(sibling.result()) << "stopped with its process, then run again";
  EXPECT_EQ(pool.stats().timeouts, 1U);
  EXPECT_EQ(pool.stats().crashes, 0U);
}

TEST(HybridPool, BadShapesAreErrors) {
  EXPECT_THROW(crew::hybrid_pool{shape(0, 2)}, std::invalid_argument);
  EXPECT_THROW(crew::hybrid_pool{shape(1, 0)}, std::invalid_argument);
  EXPECT_THROW(crew::hybrid_pool{shape(1, 65)}, std::invalid_argument);
}

TEST(HybridPool, DefaultShapeFillsTheMachine) {
  const crew::hybrid_pool_options o;
  EXPECT_EQ(o.processes * o.threads_per_process,
            std::max<std::size_t>(
                o.threads_per_process,
                crew::detail::hardware_workers() / o.threads_per_process * o.threads_per_process));
  crew::hybrid_pool pool;
  EXPECT_EQ(pool.concurrency(), o.processes * o.threads_per_process);
}

}  // namespace
