// mpi_pool on the ranks of the job this test runs in (mpirun -n 3: rank 0 runs the cases, ranks
// 1 and 2 serve). Every case opens its own pool, so the ranks also prove they serve pool after
// pool.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/algorithm.hpp"
#include "crew/mpi_pool.hpp"
#include "crew/when.hpp"

namespace {

using crew::error_kind;

int square(int x) {
  return x * x;
}
int whose_pid(int) {
  return static_cast<int>(getpid());
}
int throws_logic(int x) {
  if (x < 0) throw std::logic_error("negative input: " + std::to_string(x));
  return x;
}
double sum_of(const std::vector<double>& values) {
  return std::accumulate(values.begin(), values.end(), 0.0);
}
std::vector<double> filled(std::size_t count, double value) {
  return std::vector<double>(count, value);
}
int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return ms;
}
// How many tasks of this process ran at once, as seen by this one.
std::atomic<int> running_here{0};
int overlap_seen(int ms) {
  const int now = running_here.fetch_add(1) + 1;
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  const int later = running_here.load();
  running_here.fetch_sub(1);
  return std::max(now, later);
}
void nothing() {}

int serving_ranks() {
  return crew::mpi_session::current()->size() - 1;
}

TEST(MpiPool, NeedsAtLeastTwoRanks) {
  ASSERT_NE(crew::mpi_session::current(), nullptr);
  ASSERT_GE(serving_ranks(), 2) << "run under mpirun -n 3";
  EXPECT_EQ(crew::mpi_session::current()->rank(), 0);
}

TEST(MpiPool, ConcurrencyIsRanksTimesThreads) {
  {
    crew::mpi_pool pool{{.threads_per_rank = 1}};
    EXPECT_EQ(pool.concurrency(), static_cast<std::size_t>(serving_ranks()));
    EXPECT_EQ(pool.ranks().size(), static_cast<std::size_t>(serving_ranks()));
  }
  {
    crew::mpi_pool pool{{.threads_per_rank = 3, .ranks = 1}};
    EXPECT_EQ(pool.concurrency(), 3U);
    EXPECT_EQ(pool.ranks(), std::vector<int>{1});
  }
  EXPECT_THROW(crew::mpi_pool({.ranks = 1000}), std::invalid_argument);
  EXPECT_THROW(crew::mpi_pool({.threads_per_rank = 0}), std::invalid_argument);
}

TEST(MpiPool, OnePoolAtATime) {
  crew::mpi_pool pool;
  EXPECT_THROW(crew::mpi_pool{}, std::logic_error);
  EXPECT_EQ(pool.submit<&square>(5).get(), 25) << "the first pool is unharmed";
}

TEST(MpiPool, TasksRunOnTheOtherRanks) {
  crew::mpi_pool pool;
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 200; ++i) futures.push_back(pool.submit<&whose_pid>(i));
  std::set<int> pids;
  for (auto& f : futures) pids.insert(f.get());
  EXPECT_EQ(pids.count(static_cast<int>(getpid())), 0U) << "nothing ran on rank 0";
  EXPECT_EQ(pids.size(), static_cast<std::size_t>(serving_ranks())) << "every rank took tasks";
}

TEST(MpiPool, AnExceptionArrivesAsTaskError) {
  for (std::size_t threads : {1U, 2U}) {
    crew::mpi_pool pool{{.threads_per_rank = threads}};
    auto r = pool.submit<&throws_logic>(-3).result();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), error_kind::exception);
    EXPECT_EQ(r.error().remote_type(), "std::logic_error");
    EXPECT_STREQ(r.error().what(), "negative input: -3");
    EXPECT_EQ(r.error().task_name(), "{anonymous}::throws_logic");
    EXPECT_NE(r.error().pid(), 0);
    // get() rethrows the task's own exception type, rebuilt on this side.
    EXPECT_THROW(pool.submit<&throws_logic>(-1).get(), std::logic_error);
    EXPECT_EQ(pool.submit<&throws_logic>(4).get(), 4) << "the rank goes on";
  }
}

TEST(MpiPool, LargeArgumentsAndResultsTravelWhole) {
  for (std::size_t threads : {1U, 2U}) {
    crew::mpi_pool pool{{.threads_per_rank = threads}};
    const std::vector<double> big(1 << 20, 0.5);  // 8 MiB: its own message
    EXPECT_EQ(pool.submit<&sum_of>(big).get(), 0.5 * (1 << 20));
    const std::vector<double> back = pool.submit<&filled>(std::size_t{1} << 19, 2.0).get();
    ASSERT_EQ(back.size(), std::size_t{1} << 19);
    EXPECT_TRUE(std::all_of(back.begin(), back.end(), [](double v) { return v == 2.0; }));
    // Large and small mixed in one stream keep their order and their owners.
    std::vector<crew::future<double>> sums;
    for (int i = 0; i < 20; ++i) {
      sums.push_back(pool.submit<&sum_of>(std::vector<double>(i % 2 == 0 ? 100'000 : 3, 1.0)));
    }
    for (int i = 0; i < 20; ++i) EXPECT_EQ(sums[i].get(), i % 2 == 0 ? 100'000.0 : 3.0);
  }
}

TEST(MpiPool, SmallTasksTravelSeveralToAMessage) {
  crew::mpi_pool pool;
  constexpr int count = 20'000;
  std::vector<crew::future<int>> futures;
  futures.reserve(count);
  for (int i = 0; i < count; ++i) futures.push_back(pool.submit<&square>(i % 1000));
  long long sum = 0;
  for (auto& f : futures) sum += f.get();
  EXPECT_EQ(sum, 20LL * 332'833'500LL);
  const auto s = pool.stats();
  EXPECT_EQ(s.completed, static_cast<std::size_t>(count));
  EXPECT_LT(s.messages_sent, static_cast<std::size_t>(count / 2)) << "tasks were batched";
  EXPECT_LT(s.messages_received, static_cast<std::size_t>(count / 2)) << "results were batched";
}

TEST(MpiPool, ThreadsPerRankRunTasksSideBySide) {
  crew::mpi_pool pool{{.threads_per_rank = 2}};
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 8; ++i) futures.push_back(pool.submit<&overlap_seen>(150));
  int most = 0;
  for (auto& f : futures) most = std::max(most, f.get());
  EXPECT_EQ(most, 2) << "two tasks ran at once on a rank, never more";
}

TEST(MpiPool, AlgorithmsAndWaitingWork) {
  crew::mpi_pool pool{{.threads_per_rank = 2}};
  std::vector<int> inputs(5000);
  std::iota(inputs.begin(), inputs.end(), 0);
  const auto out = crew::map<&square>(pool, inputs, {.grain = 7});
  ASSERT_EQ(out.size(), inputs.size());
  for (std::size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], inputs[i] * inputs[i]);
  EXPECT_NO_THROW(crew::for_each<&square>(pool, inputs));
  auto f = pool.submit<&sleep_ms>(20);
  EXPECT_EQ(f.wait_for(std::chrono::seconds{60}), std::future_status::ready);
  EXPECT_EQ(f.get(), 20);
  auto v = pool.submit<&nothing>();
  EXPECT_NO_THROW(v.get());
}

TEST(MpiPool, CancelAndShutdown) {
  crew::mpi_pool pool{{.pipeline_depth = 1}};
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 40; ++i) futures.push_back(pool.submit<&sleep_ms>(20));
  EXPECT_TRUE(futures.back().cancel());
  futures.front().wait();  // the ranks are busy: some tasks run, the queued rest is cancelled
  pool.shutdown(crew::shutdown_mode::cancel_pending);
  int ran = 0;
  int cancelled = 0;
  for (auto& f : futures) {
    auto r = f.result();
    if (r) {
      ++ran;
    } else {
      EXPECT_EQ(r.error().kind(), error_kind::cancelled);
      ++cancelled;
    }
  }
  EXPECT_GE(ran, 1);
  EXPECT_GE(cancelled, 1);
  EXPECT_EQ(ran + cancelled, 40);
  const auto s = pool.stats();
  EXPECT_EQ(s.completed, static_cast<std::size_t>(ran));
  EXPECT_EQ(s.cancelled, static_cast<std::size_t>(cancelled));
  auto late = pool.submit<&square>(2).result();
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().kind(), error_kind::pool_closed);
}

// --- per-call options and the queue bound ---------------------------------------------------

TEST(MpiPool, APerCallTimeoutFailsTheFutureAndTheRankRunsOn) {
  crew::mpi_pool pool{{.threads_per_rank = 1, .ranks = 1}};
  const auto t0 = std::chrono::steady_clock::now();
  auto late = pool.with({.timeout = std::chrono::milliseconds{100}, .name = "long sleep"})
                  .submit<&sleep_ms>(1'500)
                  .result();
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().kind(), error_kind::timed_out);
  EXPECT_EQ(late.error().task_name(), "long sleep");
  EXPECT_NE(std::string{late.error().what()}.find("runs on"), std::string::npos)
      << late.error().what();
  EXPECT_LT(waited, std::chrono::milliseconds{1'400}) << "failed at its deadline, not at its end";
  auto s = pool.stats();
  EXPECT_EQ(s.timed_out, 1U);
  EXPECT_EQ(s.failed, 1U);
  EXPECT_EQ(s.running, 1U) << "the rank still runs it";
  // The rank runs the task to its end; wait_idle waits for it, and its result is dropped.
  pool.wait_idle();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds{1'400});
  s = pool.stats();
  EXPECT_EQ(s.running, 0U);
  EXPECT_EQ(s.completed, 0U);
  EXPECT_EQ(s.failed, 1U);
  EXPECT_EQ(s.cancelled, 0U);
  EXPECT_EQ(pool.with({.timeout = std::chrono::seconds{60}}).submit<&square>(7).get(), 49);
}

TEST(MpiPool, ATimedTaskIsNotBlamedForTheTaskAheadOfIt) {
  // One task thread, busy for 1 s: a task with a 500 ms timeout that takes 20 ms waits its turn
  // on rank 0 and gets its whole time once the thread is idle.
  crew::mpi_pool pool{{.threads_per_rank = 1, .ranks = 1}};
  auto busy = pool.submit<&sleep_ms>(1'000);
  auto timed = pool.with({.timeout = std::chrono::milliseconds{500}}).submit<&sleep_ms>(20);
  const auto r = timed.result();
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r.value(), 20);
  EXPECT_EQ(busy.get(), 1'000);
  EXPECT_EQ(pool.stats().timed_out, 0U);
}

TEST(MpiPool, AnExpiredTimeoutNeverRuns) {
  crew::mpi_pool pool;
  for (auto t : {std::chrono::nanoseconds{0}, std::chrono::nanoseconds{-5}}) {
    auto r = pool.with({.timeout = t, .name = "never"}).submit<&square>(3).result();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), error_kind::timed_out);
    EXPECT_EQ(r.error().task_name(), "never");
  }
  const auto s = pool.stats();
  EXPECT_EQ(s.timed_out, 2U);
  EXPECT_EQ(s.completed + s.running + s.queued, 0U);
}

TEST(MpiPool, APerCallNameShowsInEveryError) {
  crew::mpi_pool pool{{.pipeline_depth = 1}};
  auto thrown = pool.with({.name = "parse row 7"}).submit<&throws_logic>(-1).result();
  ASSERT_FALSE(thrown);
  EXPECT_EQ(thrown.error().task_name(), "parse row 7");
  // Cancelled by shutdown before it was sent: the name too.
  std::vector<crew::future<int>> busy;
  for (int i = 0; i < 8; ++i) busy.push_back(pool.submit<&sleep_ms>(200));
  auto queued = pool.with({.name = "queued one"}).submit<&square>(2);
  pool.shutdown(crew::shutdown_mode::cancel_pending);
  const auto r = queued.result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::cancelled);
  EXPECT_EQ(r.error().task_name(), "queued one");
}

TEST(MpiPool, AFullQueueFailsWithQueueFullWhenAsked) {
  crew::mpi_pool pool{{.threads_per_rank = 1,
                       .ranks = 1,
                       .pipeline_depth = 1,
                       .max_queued = 2,
                       .on_full = crew::queue_full::fail}};
  auto running = pool.submit<&sleep_ms>(600);
  // Wait until the rank holds it, so that exactly two more fit in the queue.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  while (pool.stats().running == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  ASSERT_EQ(pool.stats().running, 1U);
  auto a = pool.submit<&square>(2);
  auto b = pool.submit<&square>(3);
  auto refused = pool.with({.name = "third"}).submit<&square>(4).result();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind(), error_kind::queue_full);
  EXPECT_EQ(refused.error().task_name(), "third");
  EXPECT_FALSE(pool.detach<&square>(5)) << "detach says it was refused";
  EXPECT_EQ(pool.stats().rejected, 2U);
  EXPECT_EQ(a.get() + b.get() + running.get(), 4 + 9 + 600);
  EXPECT_EQ(pool.submit<&square>(6).get(), 36) << "room again";
}

TEST(MpiPool, AFullQueueBlocksTheSubmitterUntilThereIsRoom) {
  crew::mpi_pool pool{{.threads_per_rank = 1, .ranks = 1, .pipeline_depth = 1, .max_queued = 1}};
  std::vector<crew::future<int>> futures;
  futures.push_back(pool.submit<&sleep_ms>(300));  // at the rank, or queued
  std::atomic<bool> done{false};
  std::thread producer{[&] {
    for (int i = 0; i < 4; ++i) futures.push_back(pool.submit<&sleep_ms>(50));
    done = true;
  }};
  std::size_t most_queued = 0;
  while (!done) {
    most_queued = std::max(most_queued, pool.stats().queued);
    std::this_thread::sleep_for(std::chrono::microseconds{200});
  }
  producer.join();
  EXPECT_LE(most_queued, 1U) << "the bound held";
  int sum = 0;
  for (auto& f : futures) sum += f.get();
  EXPECT_EQ(sum, 300 + 4 * 50) << "every submission was accepted: the producer waited";
  EXPECT_EQ(pool.stats().rejected, 0U);
}

TEST(MpiPool, CloseWakesABlockedSubmitterWithPoolClosed) {
  crew::mpi_pool pool{{.threads_per_rank = 1, .ranks = 1, .pipeline_depth = 1, .max_queued = 1}};
  auto running = pool.submit<&sleep_ms>(1'000);
  auto second = pool.submit<&sleep_ms>(10);  // at the rank's door: queued
  std::optional<crew::outcome<int>> blocked_result;
  std::atomic<bool> returned{false};
  std::thread blocked{[&] {
    blocked_result = pool.submit<&square>(5).result();
    returned = true;
  }};
  std::this_thread::sleep_for(std::chrono::milliseconds{100});
  EXPECT_FALSE(returned) << "the submitter waits for room";
  pool.close(crew::shutdown_mode::cancel_pending);
  blocked.join();
  ASSERT_TRUE(blocked_result.has_value());
  ASSERT_FALSE(*blocked_result);
  EXPECT_EQ(blocked_result->error().kind(), error_kind::pool_closed);
  EXPECT_EQ(running.get(), 1'000);
  const auto r = second.result();
  EXPECT_TRUE(!r && r.error().kind() == error_kind::cancelled) << "cancelled while queued";
}

TEST(MpiPool, AContinuationSubmittingToAFullPoolDoesNotDeadlock) {
  crew::mpi_pool pool{{.threads_per_rank = 1, .ranks = 1, .pipeline_depth = 1, .max_queued = 1}};
  auto slow = pool.submit<&sleep_ms>(200);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  while (pool.stats().running == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  auto filler = pool.submit<&square>(1);  // the queue is full now
  // The continuation runs on the thread that delivers `slow`'s result (a waiting thread or the
  // manager), which is the one that would make room: it must not wait for room.
  auto chained =
      crew::then(std::move(slow), [&](crew::outcome<int>) { return pool.submit<&square>(9); });
  auto inner = chained.get();
  EXPECT_EQ(inner.get(), 81);
  EXPECT_EQ(filler.get(), 1);
}

TEST(MpiPool, ABadOnFullIsRefused) {
  EXPECT_THROW(crew::mpi_pool({.on_full = static_cast<crew::queue_full>(7)}),
               std::invalid_argument);
}

TEST(MpiPool, FuturesOutliveThePool) {
  crew::future<int> kept;
  {
    crew::mpi_pool pool;
    kept = pool.submit<&square>(9);
  }
  EXPECT_TRUE(kept.ready()) << "the destructor drained";
  EXPECT_EQ(kept.get(), 81);
}

}  // namespace
