#include "crew/thread_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "crew/when.hpp"
#include "support/thread_gate.hpp"

namespace {

using crew::test::gate;
using crew::test::patience;

using crew::error_kind;
using crew::future;
using crew::shutdown_mode;
using crew::thread_pool;
using namespace std::chrono_literals;

/// Blocks every worker of `pool` on `g`; returns when all of them are blocked.
std::vector<future<void>> occupy_all_workers(thread_pool& pool, gate& g) {
  std::atomic<std::size_t> arrived{0};
  std::vector<future<void>> blockers;
  for (std::size_t i = 0; i < pool.concurrency(); ++i) {
    blockers.push_back(pool.submit([&g, &arrived] {
      arrived.fetch_add(1);
      g.wait();
    }));
  }
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (arrived.load() < pool.concurrency() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(arrived.load(), pool.concurrency()) << "workers never all started";
  return blockers;
}

int twice(int x) {
  return 2 * x;
}

template <class T>
T identity_of(T value) {
  return value;
}

long fib(thread_pool& pool, int n) {
  if (n < 2) return n;
  auto left = pool.submit(fib, std::ref(pool), n - 1);
  const long right = fib(pool, n - 2);
  return left.get() + right;
}

struct not_a_std_exception {
  int code;
};

class ThreadPool : public ::testing::TestWithParam<std::size_t> {
 protected:
  std::size_t workers() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Workers, ThreadPool, ::testing::Values(1, 2, 8),
                         [](const ::testing::TestParamInfo<std::size_t>& p) {
                           return "w" + std::to_string(p.param);
                         });

// ------------------------------------------------------------------------------------------ setup

TEST(ThreadPoolSetup, ZeroWorkersIsRejected) {
  EXPECT_THROW(thread_pool{0}, std::invalid_argument);
  crew::thread_pool_options options;
  options.workers = 0;
  EXPECT_THROW(thread_pool{options}, std::invalid_argument);
  try {
    thread_pool pool{0};
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string{e.what()}.find("at least 1"), std::string::npos) << e.what();
  }
}

TEST(ThreadPoolSetup, DefaultUsesHardwareConcurrency) {
  thread_pool pool;
  EXPECT_EQ(pool.concurrency(), std::max(1U, std::thread::hardware_concurrency()));
  EXPECT_EQ(pool.stats().workers, pool.concurrency());
}

TEST(ThreadPoolSetup, OptionsAreApplied) {
  crew::thread_pool_options options;
  options.workers = 3;
  options.spin_rounds = 0;  // clamped to 1: still works
  options.thread_name_prefix = "a-very-long-prefix-for-threads-";
  thread_pool pool{options};
  EXPECT_EQ(pool.concurrency(), 3U);
  EXPECT_EQ(pool.submit([] { return 5; }).get(), 5);
}

TEST(ThreadPoolSetup, SatisfiesTheExecutorConcept) {
  static_assert(crew::executor<thread_pool>);
  SUCCEED();
}

// ------------------------------------------------------------------------------------ submission

TEST_P(ThreadPool, SubmitFormsAllRun) {
  thread_pool pool{workers()};
  EXPECT_EQ(pool.submit<&twice>(21).get(), 42);
  EXPECT_EQ(pool.submit<[](int x) { return x * 3; }>(5).get(), 15);
  EXPECT_EQ(pool.submit<&identity_of<std::string>>(std::string{"abc"}).get(), "abc");
  EXPECT_EQ(pool.submit([](int a, int b) { return a + b; }, 2, 3).get(), 5);
  int touched = 0;
  pool.submit([&touched] { touched = 1; }).get();
  EXPECT_EQ(touched, 1);
}

TEST_P(ThreadPool, MoveOnlyArgumentsAndResults) {
  thread_pool pool{workers()};
  auto f = pool.submit([](std::unique_ptr<int> p) { return std::make_unique<int>(*p + 1); },
                       std::make_unique<int>(41));
  EXPECT_EQ(*f.get(), 42);
}

TEST_P(ThreadPool, ManyTasksFromOutsideAllComplete) {
  thread_pool pool{workers()};
  constexpr int count = 20'000;
  std::vector<future<int>> futures;
  futures.reserve(count);
  for (int i = 0; i < count; ++i) futures.push_back(pool.submit<&twice>(i));
  long sum = 0;
  for (auto& f : futures) sum += f.get();
  EXPECT_EQ(sum, 2L * count * (count - 1) / 2);
  pool.wait_idle();
  const auto stats = pool.stats();
  // get() runs a task that has not started yet on the waiting thread.
  EXPECT_EQ(stats.completed + stats.inlined, static_cast<std::uint64_t>(count));
}

TEST_P(ThreadPool, ConcurrentSubmittersAllComplete) {
  thread_pool pool{workers()};
  std::atomic<int> ran{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&] {
      for (int i = 0; i < 5'000; ++i) pool.detach([&ran] { ran.fetch_add(1); });
    });
  }
  for (auto& t : submitters) t.join();
  pool.wait_idle();
  EXPECT_EQ(ran.load(), 20'000);
}

TEST_P(ThreadPool, BulkSubmission) {
  thread_pool pool{workers()};
  auto futures = pool.submit_bulk(1000, [](std::size_t i) { return i * i; });
  ASSERT_EQ(futures.size(), 1000U);
  for (std::size_t i = 0; i < futures.size(); ++i) EXPECT_EQ(futures[i].get(), i * i);
  std::atomic<std::size_t> sum{0};
  EXPECT_TRUE(pool.detach_bulk(100, [&sum](std::size_t i) { sum.fetch_add(i); }));
  pool.wait_idle();
  EXPECT_EQ(sum.load(), 4950U);
}

TEST_P(ThreadPool, DetachRunsAndCountsFailures) {
  thread_pool pool{workers()};
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.detach([&ran] { ran.fetch_add(1); }));
  EXPECT_TRUE(pool.detach([] { throw std::runtime_error{"detached"}; }));
  EXPECT_TRUE(pool.detach([] { throw 3; }));
  pool.wait_idle();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(pool.stats().failed, 2U);
  EXPECT_EQ(pool.submit<&twice>(1).get(), 2) << "a throwing task must not kill its worker";
}

// ------------------------------------------------------------------------------- nested waits

TEST_P(ThreadPool, RecursiveForkJoinNeverDeadlocks) {
  thread_pool pool{workers()};
  EXPECT_EQ(fib(pool, 20), 6765);
}

TEST_P(ThreadPool, DeepChainOfNestedWaits) {
  thread_pool pool{workers()};
  // Each level waits for the next one: depth 300 means 300 waits stacked on the workers.
  struct chain {
    static int down(thread_pool& p, int depth) {
      if (depth == 0) return 0;
      return p.submit(down, std::ref(p), depth - 1).get() + 1;
    }
  };
  EXPECT_EQ(pool.submit(chain::down, std::ref(pool), 300).get(), 300);
}

TEST_P(ThreadPool, NestedWaitOnAnotherPoolsFuture) {
  thread_pool pool{workers()};
  thread_pool other{1};
  auto f = pool.submit([&other] { return other.submit<&twice>(4).get(); });
  EXPECT_EQ(f.get(), 8);
}

TEST(ThreadPoolStealing, AnIdleWorkerTakesWorkFromABlockedOne) {
  thread_pool pool{2};
  // The parent pushes its child onto its own deque and then blocks without helping: only the
  // other worker, by stealing, can run the child.
  auto parent = pool.submit([&pool] {
    std::atomic<bool> child_ran{false};
    auto child = pool.submit([&child_ran] {
      child_ran.store(true);
      child_ran.notify_all();
    });
    while (!child_ran.load()) child_ran.wait(false);
    child.get();
    return true;
  });
  ASSERT_EQ(parent.wait_for(patience), std::future_status::ready);
  EXPECT_TRUE(parent.get());
  EXPECT_GE(pool.stats().stolen, 1U);
}

// ------------------------------------------------------------------------------------ exceptions

TEST_P(ThreadPool, ExceptionsOfEveryKindReachTheFuture) {
  thread_pool pool{workers()};
  EXPECT_THROW(pool.submit([] { throw std::out_of_range{"oops"}; }).get(), std::out_of_range);
  try {
    pool.submit([]() -> int { throw not_a_std_exception{7}; }).get();
    FAIL() << "get() must rethrow";
  } catch (const not_a_std_exception& e) {
    EXPECT_EQ(e.code, 7);
  }
  EXPECT_THROW(pool.submit([] { throw 42; }).get(), int);

  auto r1 = pool.submit([]() -> int { throw std::logic_error{"bad"}; }).result();
  ASSERT_FALSE(r1.has_value());
  EXPECT_EQ(r1.error().kind(), error_kind::exception);
  EXPECT_STREQ(r1.error().what(), "bad");
  auto r2 = pool.submit([] { throw not_a_std_exception{1}; }).result();
  ASSERT_FALSE(r2.has_value());
  EXPECT_EQ(r2.error().kind(), error_kind::exception);
  EXPECT_TRUE(r2.error().original());

  EXPECT_EQ(pool.submit<&twice>(5).get(), 10) << "workers survive throwing tasks";
  pool.wait_idle();
  const auto stats = pool.stats();
  EXPECT_EQ(stats.completed + stats.failed + stats.inlined, 6U);
}

TEST_P(ThreadPool, AFutureReadTwiceThrowsNoState) {
  thread_pool pool{workers()};
  auto f = pool.submit<&twice>(1);
  EXPECT_EQ(f.get(), 2);
  EXPECT_FALSE(f.valid());
  EXPECT_THROW((void)f.get(), std::future_error);
  EXPECT_THROW((void)f.result(), std::future_error);
}

// ---------------------------------------------------------------------------------- cancellation

TEST_P(ThreadPool, CancelledQueuedTaskNeverRuns) {
  thread_pool pool{workers()};
  gate g;
  auto blockers = occupy_all_workers(pool, g);
  std::atomic<bool> ran{false};
  auto victim = pool.submit([&ran] { ran.store(true); });
  EXPECT_TRUE(victim.cancel());
  EXPECT_TRUE(victim.ready());
  g.open();
  for (auto& b : blockers) b.get();
  pool.wait_idle();
  EXPECT_FALSE(ran.load());
  auto outcome = victim.result();
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().kind(), error_kind::cancelled);
  EXPECT_EQ(pool.stats().cancelled, 1U);
}

TEST_P(ThreadPool, RunningTaskSeesTheStopRequest) {
  thread_pool pool{workers()};
  std::atomic<bool> started{false};
  auto f = pool.submit(
      [&started](std::stop_token stop, int base) {
        started.store(true);
        started.notify_all();
        while (!stop.stop_requested()) std::this_thread::yield();
        return base + 1;
      },
      41);
  while (!started.load()) started.wait(false);
  EXPECT_FALSE(f.cancel()) << "a running task is only asked to stop";
  ASSERT_EQ(f.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(f.get(), 42) << "the task decides how to end: here it returns normally";
}

TEST_P(ThreadPool, CancelRacingWithCompletionHasOneAnswer) {
  thread_pool pool{workers()};
  int cancelled = 0;
  for (int i = 0; i < 2'000; ++i) {
    auto f = pool.submit<&twice>(i);
    if (i % 3 == 0) std::this_thread::yield();
    const bool won = f.cancel();
    auto outcome = f.result();
    if (won) {
      ++cancelled;
      ASSERT_FALSE(outcome.has_value());
      EXPECT_EQ(outcome.error().kind(), error_kind::cancelled);
    } else {
      ASSERT_TRUE(outcome.has_value()) << "cancel() lost, so the task must have run";
      EXPECT_EQ(outcome.value(), 2 * i);
    }
  }
  pool.wait_idle();
  const auto stats = pool.stats();
  EXPECT_EQ(stats.cancelled, static_cast<std::uint64_t>(cancelled));
  EXPECT_EQ(stats.completed + stats.cancelled, 2'000U);
}

// ------------------------------------------------------------------------------------- shutdown

TEST_P(ThreadPool, DrainRunsEverythingQueued) {
  thread_pool pool{workers()};
  std::atomic<int> ran{0};
  std::vector<future<void>> futures;
  for (int i = 0; i < 500; ++i) futures.push_back(pool.submit([&ran] { ran.fetch_add(1); }));
  pool.shutdown(shutdown_mode::drain);
  EXPECT_EQ(ran.load(), 500);
  for (auto& f : futures) EXPECT_TRUE(f.ready());
  EXPECT_TRUE(pool.closed());
}

TEST_P(ThreadPool, DrainLetsRunningTasksSubmitSubtasks) {
  thread_pool pool{workers()};
  auto f = pool.submit([&pool] {
    std::this_thread::sleep_for(20ms);  // still running when shutdown() starts
    return fib(pool, 12);
  });
  pool.shutdown(shutdown_mode::drain);
  EXPECT_EQ(f.get(), 144);
}

TEST_P(ThreadPool, SubmitAfterShutdownGivesPoolClosed) {
  thread_pool pool{workers()};
  pool.shutdown();
  auto f = pool.submit<&twice>(1);
  ASSERT_TRUE(f.ready());
  auto outcome = f.result();
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().kind(), error_kind::pool_closed);
  EXPECT_THROW(pool.submit([] {}).get(), crew::task_error);
  EXPECT_FALSE(pool.detach([] {}));
  EXPECT_FALSE(pool.detach_bulk(3, [](std::size_t) {}));
  auto bulk = pool.submit_bulk(3, [](std::size_t i) { return i; });
  for (auto& b : bulk) EXPECT_EQ(b.result().error().kind(), error_kind::pool_closed);
  pool.shutdown();   // idempotent
  pool.wait_idle();  // returns at once on a stopped pool
}

TEST_P(ThreadPool, CancelPendingEndsQueuedTasksAsCancelled) {
  thread_pool pool{workers()};
  gate g;
  auto blockers = occupy_all_workers(pool, g);
  std::atomic<int> ran{0};
  std::vector<future<void>> queued;
  for (int i = 0; i < 100; ++i) queued.push_back(pool.submit([&ran] { ran.fetch_add(1); }));
  std::thread stopper([&pool] { pool.shutdown(shutdown_mode::cancel_pending); });
  while (!pool.closed()) std::this_thread::yield();
  g.open();  // running tasks finish normally
  stopper.join();
  for (auto& b : blockers) EXPECT_NO_THROW(b.get());
  EXPECT_EQ(ran.load(), 0);
  for (auto& f : queued) {
    auto outcome = f.result();
    ASSERT_FALSE(outcome.has_value());
    // The same kind as on the process, hybrid and MPI pools; pool_closed is for a submit after
    // shutdown.
    EXPECT_EQ(outcome.error().kind(), error_kind::cancelled);
    EXPECT_NE(std::string{outcome.error().what()}.find("shutdown"), std::string::npos)
        << outcome.error().what();
  }
  EXPECT_EQ(pool.stats().cancelled, 100U);
}

TEST_P(ThreadPool, CancelPendingDropsSubtasksQueuedOnWorkers) {
  thread_pool pool{workers()};
  gate g;
  std::atomic<bool> pushed{false};
  std::atomic<int> ran{0};
  auto parent = pool.submit([&] {
    std::vector<future<void>> children;
    for (int i = 0; i < 50; ++i) children.push_back(pool.submit([&ran] { ran.fetch_add(1); }));
    pushed.store(true);
    g.wait();
    int cancelled = 0;
    for (auto& c : children) {
      auto outcome = c.result();
      if (!outcome.has_value() && outcome.error().kind() == error_kind::cancelled) ++cancelled;
    }
    return cancelled;
  });
  while (!pushed.load()) std::this_thread::yield();
  std::thread stopper([&pool] { pool.shutdown(shutdown_mode::cancel_pending); });
  while (!pool.closed()) std::this_thread::yield();
  g.open();
  stopper.join();
  const int cancelled = parent.get();
  EXPECT_EQ(cancelled + ran.load(), 50) << "each child either ran before shutdown or was dropped";
}

TEST_P(ThreadPool, ShutdownRacingWithSubmittersNeverHangs) {
  for (int round = 0; round < 5; ++round) {
    auto pool = std::make_unique<thread_pool>(workers());
    std::atomic<bool> go{false};
    std::vector<std::vector<future<int>>> results(3);
    std::vector<std::thread> submitters;
    for (std::size_t t = 0; t < results.size(); ++t) {
      submitters.emplace_back([&, t] {
        while (!go.load()) std::this_thread::yield();
        for (int i = 0; i < 2'000; ++i) results[t].push_back(pool->submit<&twice>(i));
      });
    }
    go.store(true);
    pool->shutdown(round % 2 == 0 ? shutdown_mode::drain : shutdown_mode::cancel_pending);
    for (auto& t : submitters) t.join();
    for (auto& list : results) {
      for (std::size_t i = 0; i < list.size(); ++i) {
        ASSERT_EQ(list[i].wait_for(patience), std::future_status::ready);
        auto outcome = list[i].result();
        if (outcome.has_value()) {
          EXPECT_EQ(outcome.value(), 2 * static_cast<int>(i));
        } else if (round % 2 == 0) {
          EXPECT_EQ(outcome.error().kind(), error_kind::pool_closed);  // refused: drain runs all
        } else {
          // Refused after shutdown began, or accepted and then cancelled by cancel_pending.
          EXPECT_TRUE(outcome.error().kind() == error_kind::pool_closed ||
                      outcome.error().kind() == error_kind::cancelled)
              << to_string(outcome.error().kind());
        }
      }
    }
  }
}

TEST_P(ThreadPool, CancelPendingNeverRunsACancelledTask) {
  // Every queued task that shutdown(cancel_pending) reports as cancelled must never run, not even
  // later; every other one ran exactly once. Checked over many rounds of the race between the
  // workers starting tasks and the shutdown taking them.
  for (int round = 0; round < 50; ++round) {
    thread_pool pool{workers()};
    constexpr int count = 200;
    std::vector<std::atomic<int>> runs(count);
    std::vector<future<int>> futures;
    futures.reserve(count);
    for (int i = 0; i < count; ++i) {
      futures.push_back(pool.submit([&runs, i] {
        runs[static_cast<std::size_t>(i)].fetch_add(1);
        return i;
      }));
    }
    pool.shutdown(shutdown_mode::cancel_pending);
    for (int i = 0; i < count; ++i) {
      auto outcome = futures[static_cast<std::size_t>(i)].result();
      const int ran = runs[static_cast<std::size_t>(i)].load();
      if (outcome.has_value()) {
        EXPECT_EQ(outcome.value(), i);
        EXPECT_EQ(ran, 1) << "task " << i;
      } else {
        EXPECT_EQ(outcome.error().kind(), error_kind::cancelled);
        EXPECT_EQ(ran, 0) << "task " << i << " was reported cancelled but ran";
      }
    }
  }
}

TEST_P(ThreadPool, SubmitFromATaskDuringCancelPendingIsRefused) {
  thread_pool pool{workers()};
  gate g;
  std::atomic<bool> started{false};
  std::atomic<bool> child_ran{false};
  auto parent = pool.submit([&] {
    started.store(true);
    g.wait();  // released once shutdown(cancel_pending) has begun
    auto child = pool.submit([&child_ran] { child_ran.store(true); });
    return child.result();
  });
  while (!started.load()) std::this_thread::yield();
  std::thread stopper([&pool] { pool.shutdown(shutdown_mode::cancel_pending); });
  while (!pool.closed()) std::this_thread::yield();
  g.open();
  stopper.join();
  auto child_outcome = parent.get();
  ASSERT_FALSE(child_outcome.has_value());
  EXPECT_EQ(child_outcome.error().kind(), error_kind::pool_closed);
  EXPECT_FALSE(child_ran.load());
}

TEST_P(ThreadPool, ShutdownAndWaitIdleFromManyThreadsAtOnce) {
  for (int round = 0; round < 20; ++round) {
    thread_pool pool{workers()};
    gate g;
    auto blockers = occupy_all_workers(pool, g);
    std::atomic<int> ran{0};
    std::vector<future<void>> queued;
    for (int i = 0; i < 50; ++i) queued.push_back(pool.submit([&ran] { ran.fetch_add(1); }));
    std::atomic<bool> go{false};
    std::atomic<int> returned{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < 6; ++t) {
      callers.emplace_back([&, t] {
        while (!go.load()) std::this_thread::yield();
        if (t % 3 == 2) {
          pool.wait_idle();
        } else {
          pool.shutdown(t % 3 == 0 ? shutdown_mode::drain : shutdown_mode::cancel_pending);
        }
        returned.fetch_add(1);
      });
    }
    go.store(true);
    while (!pool.closed()) std::this_thread::yield();
    g.open();
    for (auto& c : callers) c.join();
    EXPECT_EQ(returned.load(), 6);
    for (auto& b : blockers) EXPECT_NO_THROW(b.get());
    int cancelled = 0;
    for (auto& f : queued) {
      ASSERT_TRUE(f.ready()) << "shutdown returned with a task unresolved";
      auto outcome = f.result();
      if (!outcome.has_value()) {
        EXPECT_EQ(outcome.error().kind(), error_kind::cancelled);
        ++cancelled;
      }
    }
    EXPECT_EQ(cancelled + ran.load(), 50);
    pool.shutdown();  // and once more, after the crowd
    EXPECT_TRUE(pool.closed());
  }
}

TEST_P(ThreadPool, DestructorRacingWithAShutdownInProgress) {
  for (int round = 0; round < 20; ++round) {
    auto pool = std::make_unique<thread_pool>(workers());
    gate g;
    std::vector<future<void>> blockers;
    std::atomic<int> ran{0};
    // Submitted from a thread that ends here: a submitting thread keeps the pool's internals
    // alive until it ends, and the point is that only the pool and the stopper's call do.
    std::thread([&] {
      blockers = occupy_all_workers(*pool, g);
      for (int i = 0; i < 20; ++i) pool->detach([&ran] { ran.fetch_add(1); });
    }).join();
    const auto mode = round % 2 == 0 ? shutdown_mode::drain : shutdown_mode::cancel_pending;
    std::thread stopper([&pool, mode] { pool->shutdown(mode); });
    // closed() turns true inside shutdown(): the stopper is in the call, blocked on the gate.
    while (!pool->closed()) std::this_thread::yield();
    std::thread opener([&g] {
      std::this_thread::sleep_for(std::chrono::milliseconds{2});
      g.open();
    });
    pool.reset();  // runs ~thread_pool while the stopper is still inside shutdown()
    stopper.join();
    opener.join();
    for (auto& b : blockers) EXPECT_NO_THROW(b.get());
    if (mode == shutdown_mode::drain) {
      EXPECT_EQ(ran.load(), 20);
    }
  }
}

TEST_P(ThreadPool, CancelRacingWithAWorkerNeverLiesAboutRunning) {
  // cancel() returning true promises the task's code never runs; false means it ran (it has no
  // stop_token), so the future holds its value. Checked many times against workers that are
  // racing to start each task.
  thread_pool pool{workers()};
  constexpr int count = 20'000;
  std::vector<std::atomic<bool>> ran(count);
  int cancelled = 0;
  for (int i = 0; i < count; ++i) {
    auto f = pool.submit([&ran, i] {
      ran[static_cast<std::size_t>(i)].store(true);
      return i;
    });
    for (int spin = 0; spin < i % 7; ++spin) std::this_thread::yield();
    const bool won = f.cancel();
    ASSERT_EQ(f.wait_for(patience), std::future_status::ready);
    auto outcome = f.result();
    if (won) {
      ++cancelled;
      ASSERT_FALSE(outcome.has_value()) << "cancel() returned true but the future holds a value";
      EXPECT_EQ(outcome.error().kind(), error_kind::cancelled);
    } else {
      ASSERT_TRUE(outcome.has_value());
      EXPECT_EQ(outcome.value(), i);
    }
  }
  pool.wait_idle();
  int ran_count = 0;
  for (int i = 0; i < count; ++i) {
    if (ran[static_cast<std::size_t>(i)].load()) ++ran_count;
  }
  EXPECT_EQ(ran_count + cancelled, count) << "a cancelled task ran, or a task neither ran nor was "
                                             "cancelled";
  const auto stats = pool.stats();
  EXPECT_EQ(stats.cancelled, static_cast<std::uint64_t>(cancelled));
  EXPECT_EQ(stats.completed, static_cast<std::uint64_t>(count - cancelled));
}

TEST_P(ThreadPool, FutureOutlivesItsPool) {
  future<std::string> f;
  {
    thread_pool pool{workers()};
    f = pool.submit([] {
      std::this_thread::sleep_for(5ms);
      return std::string(1000, 'x');
    });
  }  // the destructor drains
  ASSERT_TRUE(f.ready());
  EXPECT_EQ(f.get().size(), 1000U);
}

TEST_P(ThreadPool, WaitIdleWaitsForQueuedAndRunningWork) {
  thread_pool pool{workers()};
  pool.wait_idle();  // nothing to do: returns
  std::atomic<int> done{0};
  for (int i = 0; i < 200; ++i) {
    pool.detach([&done] {
      std::this_thread::sleep_for(100us);
      done.fetch_add(1);
    });
  }
  pool.wait_idle();
  EXPECT_EQ(done.load(), 200);
  const auto stats = pool.stats();
  EXPECT_EQ(stats.queued, 0U);
  EXPECT_EQ(stats.running, 0U);
  EXPECT_EQ(stats.completed, 200U);
}

TEST_P(ThreadPool, BlockingCallsFromOwnWorkerAreRefused) {
  thread_pool pool{workers()};
  // A timed wait first, so that a worker (not this thread, see GetRuns...) runs each task.
  auto idle = pool.submit([&pool] { pool.wait_idle(); });
  ASSERT_EQ(idle.wait_for(patience), std::future_status::ready);
  EXPECT_THROW(idle.get(), std::logic_error);
  auto stop = pool.submit([&pool] { pool.shutdown(); });
  ASSERT_EQ(stop.wait_for(patience), std::future_status::ready);
  EXPECT_THROW(stop.get(), std::logic_error);
  EXPECT_FALSE(pool.closed());
}

TEST_P(ThreadPool, ParkedWorkersAlwaysWakeUp) {
  thread_pool pool{workers()};
  // Let the workers park between tasks again and again: a lost wake-up shows as a timeout.
  for (int i = 0; i < 100; ++i) {
    auto f = pool.submit<&twice>(i);
    ASSERT_EQ(f.wait_for(patience), std::future_status::ready) << "round " << i;
    EXPECT_EQ(f.get(), 2 * i);
    if (i % 10 == 0) std::this_thread::sleep_for(2ms);
  }
}

TEST_P(ThreadPool, StatsCountEveryOutcome) {
  thread_pool pool{workers()};
  // wait_for (a timed wait) never runs the task on the waiting thread: a worker runs both.
  auto ok = pool.submit([] {});
  ASSERT_EQ(ok.wait_for(patience), std::future_status::ready);
  auto bad = pool.submit([] { throw 1; });
  ASSERT_EQ(bad.wait_for(patience), std::future_status::ready);
  pool.wait_idle();
  const auto stats = pool.stats();
  EXPECT_EQ(stats.workers, workers());
  EXPECT_EQ(stats.completed, 1U);
  EXPECT_EQ(stats.failed, 1U);
  EXPECT_EQ(stats.cancelled, 0U);
  EXPECT_EQ(stats.inlined, 0U);
}

TEST_P(ThreadPool, GetRunsAPendingTaskOnTheWaitingThread) {
  thread_pool pool{workers()};
  gate g;
  auto blockers = occupy_all_workers(pool, g);
  auto f = pool.submit([] { return std::this_thread::get_id(); });
  EXPECT_EQ(f.get(), std::this_thread::get_id()) << "all workers are busy: the waiter runs it";
  g.open();
  for (auto& b : blockers) b.get();
  pool.wait_idle();
  EXPECT_EQ(pool.stats().inlined, 1U);
  EXPECT_EQ(pool.stats().completed, pool.concurrency());
}

TEST_P(ThreadPool, AWorkerWaitingOnAQueuedTaskRunsIt) {
  thread_pool pool{workers()};
  // The child sits in the injection queue (submitted from outside); the parent worker waits on
  // it and, instead of idling, runs it.
  future<int> child;
  std::atomic<bool> child_submitted{false};
  auto parent = pool.submit([&] {
    while (!child_submitted.load()) std::this_thread::yield();
    return child.get() + 1;
  });
  child = pool.submit<&twice>(20);
  child_submitted.store(true);
  ASSERT_EQ(parent.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(parent.get(), 41);
}

TEST_P(ThreadPool, WhenAllOverPoolFutures) {
  thread_pool pool{workers()};
  std::vector<future<int>> futures;
  for (int i = 0; i < 50; ++i) futures.push_back(pool.submit<&twice>(i));
  auto all = crew::when_all(std::move(futures)).get();
  int sum = 0;
  for (auto& f : all) sum += f.get();
  EXPECT_EQ(sum, 2 * 49 * 50 / 2);
}

}  // namespace
