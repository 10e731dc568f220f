// Deadlines on the algorithms (algorithm_options::deadline / timeout) and on imap: what is late
// fails timed_out, and queued work is cancelled at the deadline, not later.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "crew/algorithm.hpp"
#include "crew/process_pool.hpp"
#include "crew/stream.hpp"
#include "crew/thread_pool.hpp"

namespace {

using namespace std::chrono_literals;
using crew::error_kind;

int sleeps_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return ms;
}
int square(int x) {
  return x * x;
}

crew::process_pool_options one_worker() {
  crew::process_pool_options o;
  o.workers = 1;
  return o;
}

TEST(AlgorithmDeadline, MapOnAProcessPoolCancelsWhatIsQueued) {
  crew::process_pool pool{one_worker()};
  std::vector<int> items(6, 10'000);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    (void)crew::map<&sleeps_ms>(pool, items, {.grain = 1, .timeout = 100ms});
    FAIL() << "no timeout";
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.kind(), error_kind::timed_out);
    EXPECT_NE(std::string{e.what()}.find("6 of 6 chunks unfinished"), std::string::npos)
        << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "not 60 s of work";
  pool.wait_idle();  // the running chunk's worker was stopped, the others never ran
  const auto s = pool.stats();
  EXPECT_EQ(s.completed, 0U);
  EXPECT_EQ(s.cancelled, 6U);
  EXPECT_EQ(pool.submit<&square>(3).get(), 9) << "the pool goes on";
}

TEST(AlgorithmDeadline, CallableFormWaitsForRunningChunksBeforeThrowing) {
  crew::thread_pool pool{2};
  std::vector<int> items(8, 0);
  std::atomic<int> running{0};
  std::atomic<int> ran{0};
  try {
    crew::for_each(pool, items,
                   [&](int&) {
                     running.fetch_add(1);
                     std::this_thread::sleep_for(200ms);
                     ran.fetch_add(1);
                     running.fetch_sub(1);
                   },
                   {.grain = 1, .timeout = 50ms});
    FAIL() << "no timeout";
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.kind(), error_kind::timed_out);
  }
  EXPECT_EQ(running.load(), 0) << "no chunk still reads the caller's data";
  EXPECT_LT(ran.load(), 8) << "queued chunks were cancelled";
}

TEST(AlgorithmDeadline, ZeroOrNegativeTimeoutSubmitsNothing) {
  crew::thread_pool pool{2};
  std::vector<int> items{1, 2, 3};
  for (auto t :
       {std::chrono::steady_clock::duration{0}, std::chrono::steady_clock::duration{-1s}}) {
    EXPECT_THROW((void)crew::map<&square>(pool, items, {.timeout = t}), crew::task_error);
    EXPECT_THROW(crew::parallel_for(pool, 0, 10, [](int) {}, {.timeout = t}), crew::task_error);
    // An empty input returns at once, deadline or not.
    EXPECT_TRUE(crew::map<&square>(pool, std::vector<int>{}, {.timeout = t}).empty());
  }
  pool.wait_idle();
  EXPECT_EQ(pool.stats().completed + pool.stats().inlined, 0U);
}

TEST(AlgorithmDeadline, DeadlineInThePast) {
  crew::thread_pool pool{1};
  std::vector<int> items{1, 2, 3};
  EXPECT_THROW((void)crew::reduce<[](int a, int b) { return a + b; }>(
                   pool, items, 0, {.deadline = std::chrono::steady_clock::now() - 1s}),
               crew::task_error);
  EXPECT_EQ(crew::reduce<[](int a, int b) { return a + b; }>(
                pool, items, 0, {.deadline = std::chrono::steady_clock::now() + 30s}),
            6);
}

TEST(AlgorithmDeadline, WithProgressReportingTheDeadlineStillHolds) {
  crew::process_pool pool{one_worker()};
  std::vector<int> items(4, 10'000);
  std::size_t reports = 0;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(
      (void)crew::map<&sleeps_ms>(pool, items,
                                  {.grain = 1,
                                   .progress = [&](const crew::progress_info&) { ++reports; },
                                   .progress_interval = 10ms,
                                   .timeout = 150ms}),
      crew::task_error);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_GE(reports, 1U) << "progress was reported while it waited";
}

TEST(AlgorithmDeadline, SubmitForRefusesADeadline) {
  crew::thread_pool pool{1};
  auto f = [](int) {};
  EXPECT_THROW((void)crew::submit_for(pool, 0, 10, f, {.timeout = 1s}), std::invalid_argument);
}

TEST(ImapDeadline, CancelsEveryQueuedTaskAtTheDeadline) {
  crew::process_pool pool{one_worker()};
  std::vector<int> items(5, 10'000);
  auto stream = crew::imap<&sleeps_ms>(pool, items, {.max_in_flight = 5, .timeout = 100ms});
  auto it = stream.begin();
  ASSERT_NE(it, stream.end());
  ASSERT_FALSE(*it);
  EXPECT_EQ(it->error().kind(), error_kind::timed_out);
  // At the first late item every task in flight was cancelled already, not one per step.
  const auto s = pool.stats();
  EXPECT_EQ(s.cancelled, 5U);
  std::size_t items_seen = 1;
  for (++it; it != stream.end(); ++it) {
    ++items_seen;
    ASSERT_FALSE(*it);
    EXPECT_EQ(it->error().kind(), error_kind::timed_out);
  }
  EXPECT_EQ(items_seen, 5U);
  EXPECT_TRUE(stream.timed_out());
}

TEST(ImapDeadline, UnorderedItemsFinishedInTimeKeepTheirValues) {
  crew::thread_pool pool{2};
  std::vector<int> items{1, 1, 1, 5'000};
  std::size_t values = 0;
  std::size_t late = 0;
  for (auto& r : crew::imap_unordered<&sleeps_ms>(pool, items, {.timeout = 1s})) {
    if (r) {
      ++values;
    } else {
      EXPECT_EQ(r.error().kind(), error_kind::timed_out);
      ++late;
    }
  }
  EXPECT_EQ(values, 3U);
  EXPECT_EQ(late, 1U);
}

}  // namespace
