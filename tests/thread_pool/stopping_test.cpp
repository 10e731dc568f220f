// thread_pool: close() (shutdown that does not wait), stop_now() (cancels what is queued; a
// running thread cannot be stopped and the report says so), the bound on queued tasks
// (max_queued / on_full), and per-call options (with: a timeout that fails the future while the
// task runs on, a name in errors). Each at 1, 2 and 8 workers where the count matters.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "crew/thread_pool.hpp"
#include "crew/when.hpp"
#include "support/thread_gate.hpp"

namespace {

using namespace std::chrono_literals;
using crew::error_kind;
using crew::test::gate;
using crew::test::patience;

int square(int x) {
  return x * x;
}

void wait_until_running(crew::thread_pool& pool, std::size_t n) {
  const auto until = std::chrono::steady_clock::now() + patience;
  while (pool.stats().running < n && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_GE(pool.stats().running, n);
}

// ------------------------------------------------------------------------------------- close

TEST(ThreadPoolClose, ReturnsAtOnceAndQueuedTasksStillRun) {
  for (std::size_t workers : {1U, 2U, 8U}) {
    crew::thread_pool pool{workers};
    gate g;
    std::vector<crew::future<int>> futures;
    for (int i = 0; i < 20; ++i) {
      futures.push_back(pool.submit([&g, i] {
        g.wait();
        return i;
      }));
    }
    pool.close();  // would hang here if it waited: every task waits for the gate
    EXPECT_TRUE(pool.closed());
    EXPECT_EQ(pool.submit(square, 2).result().error().kind(), error_kind::pool_closed);
    g.open();
    for (int i = 0; i < 20; ++i) EXPECT_EQ(futures[i].get(), i);
  }
}

TEST(ThreadPoolClose, FromATaskOfThePool) {
  crew::thread_pool pool{2};
  auto f = pool.submit([&pool] {
    pool.close();  // shutdown() would throw here (it joins); close() does not wait
    return 1;
  });
  EXPECT_EQ(f.get(), 1);
  EXPECT_TRUE(pool.closed());
}

TEST(ThreadPoolClose, ThenDestroyImmediately) {
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> ran{0};
    {
      crew::thread_pool pool{2};
      for (int i = 0; i < 50; ++i) pool.detach([&ran] { ran.fetch_add(1); });
      pool.close();
    }  // the destructor joins: every queued task has run
    EXPECT_EQ(ran.load(), 50);
  }
}

// ---------------------------------------------------------------------------------- stop_now

TEST(ThreadPoolStopNow, CancelsQueuedAndReportsRunning) {
  for (std::size_t workers : {1U, 2U, 8U}) {
    crew::thread_pool pool{workers};
    gate g;
    std::vector<crew::future<int>> running;
    for (std::size_t i = 0; i < workers; ++i) {
      running.push_back(pool.submit([&g] {
        g.wait();
        return 1;
      }));
    }
    wait_until_running(pool, workers);
    std::atomic<int> ran{0};
    std::vector<crew::future<int>> queued;
    for (int i = 0; i < 30; ++i) {
      queued.push_back(pool.submit([&ran] {
        ran.fetch_add(1);
        return 2;
      }));
    }
    const crew::stop_report report = pool.stop_now();  // returns while tasks still run
    EXPECT_EQ(report.cancelled, 30U);
    EXPECT_EQ(report.stopped, 0U);
    EXPECT_EQ(report.still_running, workers) << "threads cannot be stopped: said, not hidden";
    for (auto& f : queued) {
      const auto r = f.result();
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error().kind(), error_kind::cancelled);
      EXPECT_NE(std::string{r.error().what()}.find("stop_now"), std::string::npos);
    }
    g.open();
    for (auto& f : running) EXPECT_EQ(f.get(), 1) << "running tasks keep their own result";
    EXPECT_EQ(ran.load(), 0);
  }
}

TEST(ThreadPoolStopNow, CancelsTasksInWorkerDeques) {
  crew::thread_pool pool{2};
  gate g;
  std::atomic<int> children_ran{0};
  std::vector<crew::future<int>> children;
  std::mutex children_mu;
  auto parent = pool.submit([&] {
    for (int i = 0; i < 50; ++i) {
      // A child the other worker takes holds it at the gate: the rest stay in the deque.
      auto f = pool.submit([&children_ran, &g] {
        children_ran.fetch_add(1);
        g.wait();
        return 0;
      });
      std::lock_guard lock{children_mu};
      children.push_back(std::move(f));
    }
    g.wait();
    return 0;
  });
  // The other worker may take some children first; the ones left in the deque are cancelled.
  const auto until = std::chrono::steady_clock::now() + patience;
  for (;;) {
    {
      std::lock_guard lock{children_mu};
      if (children.size() == 50) break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), until);
    std::this_thread::sleep_for(1ms);
  }
  const auto report = pool.stop_now();
  g.open();
  EXPECT_EQ(parent.get(), 0);
  std::size_t cancelled = 0;
  for (auto& f : children) {
    const auto r = f.result();
    if (!r) {
      EXPECT_EQ(r.error().kind(), error_kind::cancelled);
      ++cancelled;
    }
  }
  EXPECT_EQ(cancelled + static_cast<std::size_t>(children_ran.load()), 50U);
  EXPECT_GE(report.cancelled, 40U) << "at most a few children started before stop_now";
  EXPECT_LE(report.cancelled, cancelled);
}

TEST(ThreadPoolStopNow, FromTwoThreadsAtOnce) {
  for (int round = 0; round < 50; ++round) {
    crew::thread_pool pool{2};
    gate g;
    auto blocker = pool.submit([&g] {
      g.wait();
      return 0;
    });
    wait_until_running(pool, 1);
    std::vector<crew::future<int>> queued;
    for (int i = 0; i < 40; ++i) queued.push_back(pool.submit(square, i));
    crew::stop_report r1, r2;
    std::thread t1{[&] { r1 = pool.stop_now(); }};
    std::thread t2{[&] { r2 = pool.stop_now(); }};
    t1.join();
    t2.join();
    g.open();
    std::size_t cancelled = 0;
    for (auto& f : queued) {
      const auto r = f.result();
      if (!r) {
        EXPECT_EQ(r.error().kind(), error_kind::cancelled);
        ++cancelled;
      }
    }
    EXPECT_LE(r1.cancelled + r2.cancelled, cancelled) << "a task is counted once at most";
    (void)blocker.get();
  }
}

TEST(ThreadPoolStopNow, ThenDestructor) {
  for (int round = 0; round < 20; ++round) {
    std::vector<crew::future<int>> futures;
    {
      crew::thread_pool pool{2};
      for (int i = 0; i < 100; ++i) futures.push_back(pool.submit(square, i));
      (void)pool.stop_now();
    }
    for (auto& f : futures) EXPECT_TRUE(f.ready());
  }
}

// -------------------------------------------------------------------------------- max_queued

TEST(ThreadPoolMaxQueued, FailModeRefusesPastTheBound) {
  crew::thread_pool_options o;
  o.workers = 1;
  o.max_queued = 3;
  o.on_full = crew::queue_full::fail;
  crew::thread_pool pool{o};
  gate g;
  auto blocker = pool.submit([&g] {
    g.wait();
    return 0;
  });
  wait_until_running(pool, 1);
  std::vector<crew::future<int>> queued;
  for (int i = 0; i < 3; ++i) queued.push_back(pool.submit(square, i));
  auto refused = pool.submit(square, 9);
  const auto r = refused.result();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), error_kind::queue_full);
  EXPECT_EQ(pool.stats().rejected, 1U);
  EXPECT_FALSE(pool.detach([] {})) << "detach reports the refusal too";
  g.open();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(queued[i].get(), i * i);
  (void)blocker.get();
  EXPECT_EQ(pool.submit(square, 4).get(), 16) << "room again";
}

TEST(ThreadPoolMaxQueued, BlockModeWaitsForRoom) {
  crew::thread_pool_options o;
  o.workers = 1;
  o.max_queued = 2;
  crew::thread_pool pool{o};
  gate g;
  auto blocker = pool.submit([&g] {
    g.wait();
    return 0;
  });
  wait_until_running(pool, 1);
  auto a = pool.submit(square, 1);
  auto b = pool.submit(square, 2);
  std::atomic<bool> returned{false};
  crew::future<int> c;
  std::thread submitter{[&] {
    c = pool.submit(square, 3);
    returned = true;
  }};
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(returned) << "blocked while two tasks are queued";
  g.open();
  submitter.join();
  EXPECT_EQ(c.get(), 9);
  EXPECT_EQ(a.get(), 1);
  EXPECT_EQ(b.get(), 4);
  (void)blocker.get();
}

TEST(ThreadPoolMaxQueued, ShutdownWakesBlockedSubmitters) {
  crew::thread_pool_options o;
  o.workers = 1;
  o.max_queued = 1;
  crew::thread_pool pool{o};
  gate g;
  auto blocker = pool.submit([&g] {
    g.wait();
    return 0;
  });
  wait_until_running(pool, 1);
  auto queued = pool.submit(square, 1);
  std::vector<crew::future<int>> blocked(3);
  std::vector<std::thread> submitters;
  for (int i = 0; i < 3; ++i) {
    submitters.emplace_back([&, i] { blocked[i] = pool.submit(square, 5); });
  }
  std::this_thread::sleep_for(50ms);
  std::thread closer{[&] { pool.shutdown(crew::shutdown_mode::cancel_pending); }};
  for (auto& t : submitters) t.join();  // woken by the shutdown, not by room
  for (auto& f : blocked) EXPECT_EQ(f.result().error().kind(), error_kind::pool_closed);
  g.open();
  closer.join();
  EXPECT_EQ(queued.result().error().kind(), error_kind::cancelled);
  (void)blocker.get();
}

TEST(ThreadPoolMaxQueued, TasksOfThePoolAreNeverBlocked) {
  // One worker, a bound of 1, fork-join from inside: blocking here would deadlock.
  crew::thread_pool_options o;
  o.workers = 1;
  o.max_queued = 1;
  crew::thread_pool pool{o};
  auto parent = pool.submit([&pool] {
    std::vector<crew::future<int>> children;
    for (int i = 0; i < 100; ++i) children.push_back(pool.submit(square, i));
    int sum = 0;
    for (auto& f : children) sum += f.get();
    return sum;
  });
  EXPECT_EQ(parent.get(), 328'350);
}

TEST(ThreadPoolMaxQueued, BulkLargerThanTheBound) {
  crew::thread_pool_options o;
  o.workers = 2;
  o.max_queued = 4;
  crew::thread_pool pool{o};
  auto futures = pool.submit_bulk(100, [](std::size_t i) { return i; });
  for (std::size_t i = 0; i < 100; ++i) EXPECT_EQ(futures[i].get(), i);
}

TEST(ThreadPoolMaxQueued, ManySubmittersNeverExceedTheBound) {
  crew::thread_pool_options o;
  o.workers = 2;
  o.max_queued = 8;
  crew::thread_pool pool{o};
  std::atomic<int> ran{0};
  std::atomic<std::size_t> worst{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&] {
      for (int i = 0; i < 2'000; ++i) {
        pool.detach([&ran] { ran.fetch_add(1); });
        const std::size_t q = pool.stats().queued;
        std::size_t seen = worst.load();
        while (q > seen && !worst.compare_exchange_weak(seen, q)) {
        }
      }
    });
  }
  for (auto& t : submitters) t.join();
  pool.wait_idle();
  EXPECT_EQ(ran.load(), 8'000);
  // stats().queued is a snapshot of the queues (entries a waiter took count until popped).
  EXPECT_LE(worst.load(), 8U + 2U * 64U) << "bounded";
}

TEST(ThreadPoolMaxQueued, BadOnFullIsRejected) {
  crew::thread_pool_options o;
  o.on_full = static_cast<crew::queue_full>(9);
  EXPECT_THROW(crew::thread_pool{o}, std::invalid_argument);
}

// ---------------------------------------------------------------------------- per-call options

TEST(ThreadPoolCallOptions, TimeoutFailsTheFutureAndSaysTheTaskRunsOn) {
  crew::thread_pool pool{2};
  std::atomic<bool> finished{false};
  gate g;
  auto f = pool.with({.timeout = 50ms, .name = "resize"}).submit([&] {
    g.wait();
    finished = true;
    return 1;
  });
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = f.result();  // returns at the deadline although the task still runs
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), error_kind::timed_out);
  EXPECT_EQ(r.error().task_name(), "resize");
  const std::string what = r.error().what();
  EXPECT_NE(what.find("resize ran past its timeout of 50 ms"), std::string::npos) << what;
  EXPECT_NE(what.find("cannot stop a running thread"), std::string::npos) << what;
  EXPECT_FALSE(finished) << "the task runs on";
  EXPECT_EQ(pool.stats().timed_out, 1U);
  g.open();
  pool.wait_idle();
  EXPECT_TRUE(finished);
}

TEST(ThreadPoolCallOptions, TimeoutAsksTheStopTokenToStop) {
  crew::thread_pool pool{1};
  auto f = pool.with({.timeout = 20ms}).submit([](std::stop_token stop) {
    while (!stop.stop_requested()) std::this_thread::sleep_for(1ms);
    return 5;
  });
  EXPECT_EQ(f.result().error().kind(), error_kind::timed_out);
  pool.wait_idle();  // ends because the token was asked to stop
}

TEST(ThreadPoolCallOptions, FastTaskKeepsItsValue) {
  crew::thread_pool pool{2};
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(pool.with({.timeout = 10s}).submit<&square>(i).get(), i * i);
  }
}

TEST(ThreadPoolCallOptions, OneNanosecondZeroAndNegative) {
  crew::thread_pool pool{1};
  gate g;
  // 1 ns: it starts, and its future fails timed_out almost at once; the task runs on.
  auto tiny = pool.with({.timeout = 1ns}).submit([&g] {
    g.wait();
    return 1;
  });
  EXPECT_EQ(tiny.result().error().kind(), error_kind::timed_out);
  g.open();
  std::atomic<int> ran{0};
  for (auto t : {std::chrono::nanoseconds{0}, std::chrono::nanoseconds{-1'000'000}}) {
    const auto r = pool.with({.timeout = t, .name = "late"})
                       .submit([&ran] {
                         ran.fetch_add(1);
                         return 0;
                       })
                       .result();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), error_kind::timed_out);
    EXPECT_NE(std::string{r.error().what()}.find("never ran"), std::string::npos);
  }
  pool.wait_idle();
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(pool.stats().timed_out, 3U);
}

TEST(ThreadPoolCallOptions, NameOnAnExceptionKeepsItsType) {
  crew::thread_pool pool{1};
  auto f = pool.with({.name = "parse"}).submit([]() -> int { throw std::out_of_range("bad"); });
  auto g = pool.with({.name = "parse"}).submit([]() -> int { throw std::out_of_range("bad"); });
  EXPECT_THROW(f.get(), std::out_of_range) << "get() still rethrows the task's own type";
  const auto r = g.result();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), error_kind::exception);
  EXPECT_EQ(r.error().task_name(), "parse");
  EXPECT_STREQ(r.error().what(), "bad");
}

TEST(ThreadPoolCallOptions, TimedTaskAwaitedByATaskOfThePool) {
  // One worker: the parent's wait runs the timed child itself (fork-join never deadlocks); the
  // wait returns when the child ends, with timed_out since it overran.
  for (std::size_t workers : {1U, 2U}) {
    crew::thread_pool pool{workers};
    auto parent = pool.submit([&pool] {
      auto child = pool.with({.timeout = 30ms}).submit([] {
        std::this_thread::sleep_for(200ms);
        return 1;
      });
      return static_cast<int>(child.result().error().kind());
    });
    EXPECT_EQ(parent.get(), static_cast<int>(error_kind::timed_out));
  }
}

TEST(ThreadPoolCallOptions, AnOutsideWaiterIsNotHeldByTheTask) {
  // The submitting thread would normally run a task it waits for itself; a timed one it leaves
  // to the workers, so its wait returns at the deadline.
  crew::thread_pool pool{1};
  gate g;
  auto blocker = pool.submit([&g] {
    g.wait();
    return 0;
  });
  wait_until_running(pool, 1);
  std::atomic<bool> started{false};
  auto timed = pool.with({.timeout = 50ms}).submit([&started] {
    started = true;
    return 1;
  });
  // Not started (the only worker is busy): get() does not run it here, and the timeout counts
  // from the start, so it waits; open the gate from another thread after a while.
  std::thread opener{[&] {
    std::this_thread::sleep_for(100ms);
    g.open();
  }};
  const auto r = timed.result();
  opener.join();
  EXPECT_TRUE(started);
  EXPECT_EQ(r.value(), 1) << "ran on the worker within its timeout";
  EXPECT_EQ(pool.stats().inlined, 0U);
  (void)blocker.get();
}

}  // namespace
