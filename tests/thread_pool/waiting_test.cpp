// What a thread that waits on a thread_pool future runs meanwhile (crew/thread_pool.hpp,
// "Waiting"): timed waits on a worker help as wait() does; a waiting worker runs only the task it
// waits for and tasks that the waiting task spawned, never an unrelated one; a task run by a
// waiting thread outside the pool counts as running for wait_idle() and stats().
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "crew/thread_pool.hpp"
#include "crew/when.hpp"
#include "support/thread_gate.hpp"

namespace {

using crew::test::gate;
using crew::test::patience;

using crew::future;
using crew::thread_pool;
using namespace std::chrono_literals;

/// Spins (yielding) until `done()` or the patience runs out; returns done().
template <class Pred>
bool eventually(Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

/// A mutex that reports the misuse a waiting pool thread could cause: a thread taking it again
/// while it holds it (with a std::mutex that is a self-deadlock or undefined behaviour).
class checked_mutex {
 public:
  /// Locks; returns false, without locking, when the calling thread already holds it.
  bool lock() {
    if (owner_.load() == std::this_thread::get_id()) {
      reentered_.fetch_add(1);
      return false;
    }
    mutex_.lock();
    owner_.store(std::this_thread::get_id());
    return true;
  }
  void unlock() {
    owner_.store(std::thread::id{});
    mutex_.unlock();
  }
  [[nodiscard]] int reentered() const { return reentered_.load(); }

 private:
  std::mutex mutex_;
  std::atomic<std::thread::id> owner_{};
  std::atomic<int> reentered_{0};
};

class Waiting : public ::testing::TestWithParam<std::size_t> {
 protected:
  std::size_t workers() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Workers, Waiting, ::testing::Values(1, 2, 8),
                         [](const ::testing::TestParamInfo<std::size_t>& p) {
                           return "w" + std::to_string(p.param);
                         });

long fib(thread_pool& pool, int n) {
  if (n < 2) return n;
  auto left = pool.submit(fib, std::ref(pool), n - 1);
  const long right = fib(pool, n - 2);
  return left.get() + right;
}

// ------------------------------------------------------------------------ timed waits on workers

TEST_P(Waiting, PollingASubtaskWithWaitForFinishes) {
  thread_pool pool{workers()};
  auto f = pool.submit([&pool] {
    auto child = pool.submit([] { return 21; });
    while (child.wait_for(1ms) != std::future_status::ready) {
    }
    return child.get() * 2;
  });
  // A timed wait from outside the pool: the test thread never runs the task itself.
  ASSERT_EQ(f.wait_for(patience), std::future_status::ready) << "the polling task never finished";
  EXPECT_EQ(f.get(), 42);
}

TEST_P(Waiting, PollingASubtaskWithWaitUntilFinishes) {
  thread_pool pool{workers()};
  auto f = pool.submit([&pool] {
    auto child = pool.submit([] { return 5; });
    // Another clock than the pool's: wait_until converts.
    while (child.wait_until(std::chrono::system_clock::now() + 1ms) != std::future_status::ready) {
    }
    return child.get();
  });
  ASSERT_EQ(f.wait_for(patience), std::future_status::ready) << "the polling task never finished";
  EXPECT_EQ(f.get(), 5);
}

TEST_P(Waiting, PollingATaskSubmittedFromOutsideFinishes) {
  thread_pool pool{workers()};
  future<int> other;
  std::atomic<bool> handed{false};
  auto poller = pool.submit([&] {
    while (!handed.load()) std::this_thread::yield();
    while (other.wait_for(1ms) != std::future_status::ready) {
    }
    return other.get() + 1;
  });
  other = pool.submit([] { return 9; });
  handed.store(true);
  ASSERT_EQ(poller.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(poller.get(), 10);
}

TEST_P(Waiting, ATimedWaitOnAWorkerReturnsAtItsDeadline) {
  thread_pool pool{workers()};
  thread_pool other{1};
  gate g;
  auto blocked = other.submit([&g] { g.wait(); });
  auto waiter = pool.submit([&blocked] {
    const auto start = std::chrono::steady_clock::now();
    const std::future_status status = blocked.wait_for(20ms);
    return std::pair{status, std::chrono::steady_clock::now() - start};
  });
  ASSERT_EQ(waiter.wait_for(patience), std::future_status::ready);
  const auto [status, took] = waiter.get();
  EXPECT_EQ(status, std::future_status::timeout);
  EXPECT_GE(took, 20ms);
  g.open();
  ASSERT_EQ(blocked.wait_for(patience), std::future_status::ready);
}

TEST(WaitingOneWorker, ATimedWaitRunsTheWaitersSubtasks) {
  // With one worker, a subtask can only run on the thread that is inside the timed wait: every
  // subtask that ran before the wait timed out ran because the wait helped.
  thread_pool pool{1};
  thread_pool other{1};
  gate g;
  auto blocked = other.submit([&g] { g.wait(); });
  std::atomic<int> ran{0};
  auto waiter = pool.submit([&] {
    std::vector<future<void>> subtasks;
    for (int i = 0; i < 20; ++i) subtasks.push_back(pool.submit([&ran] { ran.fetch_add(1); }));
    const std::future_status status = blocked.wait_for(100ms);
    const int ran_during_wait = ran.load();
    for (auto& s : subtasks) s.get();
    return std::pair{status, ran_during_wait};
  });
  ASSERT_EQ(waiter.wait_for(patience), std::future_status::ready);
  const auto [status, ran_during_wait] = waiter.get();
  EXPECT_EQ(status, std::future_status::timeout);
  EXPECT_GT(ran_during_wait, 0) << "the timed wait slept instead of running the subtasks";
  g.open();
}

// ---------------------------------------------------------------- what a waiting worker may run

TEST_P(Waiting, AWaitingTaskNeverRunsAnUnrelatedTaskOnItsThread) {
  // The classic hazard of helping while waiting: a task holds a lock across the wait on its
  // child, and its thread is made to run an unrelated task that takes the same lock. The child
  // here waits itself (on another pool's task), so the thread that holds the lock is inside two
  // waits while unrelated tasks that take the lock sit in the queue.
  thread_pool pool{workers()};
  thread_pool other{1};
  gate release;
  checked_mutex lock;
  std::atomic<bool> child_waiting{false};
  auto foreign = other.submit([&release] { release.wait(); });
  auto holder = pool.submit([&] {
    if (!lock.lock()) return -1;
    auto child = pool.submit([&] {
      child_waiting.store(true);
      foreign.wait();
      return 1;
    });
    const int result = child.get();
    lock.unlock();
    return result;
  });
  ASSERT_TRUE(eventually([&] { return child_waiting.load(); }));
  std::vector<future<void>> unrelated;
  for (std::size_t i = 0; i < 4 * workers() + 4; ++i) {
    unrelated.push_back(pool.submit([&lock] {
      if (lock.lock()) lock.unlock();
    }));
  }
  // Not synchronisation: a window in which a scheduler that breaks the rule would do so. The
  // result does not depend on its length.
  std::this_thread::sleep_for(50ms);
  release.open();
  ASSERT_EQ(holder.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(holder.get(), 1);
  for (auto& u : unrelated) ASSERT_EQ(u.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(lock.reentered(), 0) << "a thread holding the lock ran a task that takes it";
}

TEST(WaitingTwoWorkers, AWaitingWorkerHelpsWithTheSubtasksOfWhatItWaitsFor) {
  // The parent's child runs on the other worker and spreads into subtasks; the parent's worker,
  // waiting on the child, may run them (they descend from the parent). Each subtask holds until
  // two different threads have started subtasks, so this only finishes if the waiting worker
  // helps: no other thread may run them.
  thread_pool pool{2};
  std::mutex mu;
  std::set<std::thread::id> threads;  // guarded by mu
  std::atomic<bool> child_started{false};
  auto subtask = [&] {
    {
      std::lock_guard lock{mu};
      threads.insert(std::this_thread::get_id());
    }
    (void)eventually([&] {
      std::lock_guard lock{mu};
      return threads.size() >= 2;
    });
    return std::this_thread::get_id();
  };
  auto parent = pool.submit([&] {
    auto child = pool.submit([&] {
      child_started.store(true);
      std::vector<future<std::thread::id>> parts;
      for (int i = 0; i < 8; ++i) parts.push_back(pool.submit(subtask));
      std::vector<std::thread::id> ran_on;
      for (auto& p : parts) ran_on.push_back(p.get());
      return ran_on;
    });
    // Spin without waiting on a future: only the other worker can start the child.
    while (!child_started.load()) std::this_thread::yield();
    return std::pair{std::this_thread::get_id(), child.get()};
  });
  ASSERT_EQ(parent.wait_for(patience), std::future_status::ready);
  const auto [parent_thread, ran_on] = parent.get();
  bool helped = false;
  for (const auto& id : ran_on) helped = helped || id == parent_thread;
  EXPECT_TRUE(helped) << "the waiting worker never ran a subtask of the task it waited for";
  std::lock_guard lock{mu};
  EXPECT_EQ(threads.size(), 2U);
}

TEST_P(Waiting, WaitingOnASiblingsTaskRunsIt) {
  // `second` waits on `first`: not its descendant, but the very task it waits for, so a worker
  // may run it (with one worker nothing else could).
  thread_pool pool{workers()};
  auto parent = pool.submit([&pool] {
    auto first = pool.submit([] { return 20; });
    auto second = pool.submit([f = std::move(first)]() mutable { return f.get() + 1; });
    return second.get();
  });
  ASSERT_EQ(parent.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(parent.get(), 21);
}

TEST_P(Waiting, WaitingOnManyTasksSubmittedFromOutsideRunsThem) {
  // as_completed and when_all inside a task, over tasks the test thread submitted: with one
  // worker, only the waiting worker can run them, as the tasks it waits for.
  thread_pool pool{workers()};
  std::vector<future<int>> for_stream;
  std::vector<future<int>> for_all;
  std::atomic<bool> handed{false};
  auto consumer = pool.submit([&] {
    while (!handed.load()) std::this_thread::yield();
    int sum = 0;
    for (auto& f : crew::as_completed(std::move(for_stream))) sum += f.get();
    for (auto& f : crew::when_all(std::move(for_all)).get()) sum += f.get();
    return sum;
  });
  for (int i = 0; i < 10; ++i) {
    for_stream.push_back(pool.submit([i] { return i; }));
    for_all.push_back(pool.submit([i] { return 10 * i; }));
  }
  handed.store(true);
  ASSERT_EQ(consumer.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(consumer.get(), 45 + 450);
}

TEST_P(Waiting, EveryMultiFutureWaitRunsTheTasksItWaitsFor) {
  // crew::wait, as_completed over the caller's vector (with a timeout), when_any and then,
  // inside a task, over tasks the test thread submitted: with one worker only the waiting
  // worker can run them, as tasks it waits for.
  thread_pool pool{workers()};
  std::vector<future<int>> for_wait;
  std::vector<future<int>> for_order;
  std::vector<future<int>> for_any;
  future<int> for_then;
  std::atomic<bool> handed{false};
  auto consumer = pool.submit([&] {
    while (!handed.load()) std::this_thread::yield();
    int sum = 0;
    const auto first = crew::wait(for_wait, crew::return_when::first_completed);
    EXPECT_FALSE(first.done.empty());
    const auto all = crew::wait(for_wait, crew::return_when::all_completed);
    EXPECT_EQ(all.done.size(), for_wait.size());
    for (auto& f : for_wait) sum += f.get();
    auto order = crew::as_completed(for_order, patience);
    for (auto& f : order) sum += f.get();
    EXPECT_FALSE(order.timed_out());
    auto any = crew::when_any(std::move(for_any)).get();
    EXPECT_NE(any.index, crew::when_any_result<int>::npos);
    for (auto& f : any.futures) sum += f.get();
    sum +=
        crew::then(std::move(for_then), [](crew::outcome<int> r) { return r.value() * 2; }).get();
    return sum;
  });
  for (int i = 0; i < 5; ++i) {
    for_wait.push_back(pool.submit([i] { return i; }));        // 10
    for_order.push_back(pool.submit([i] { return 10 * i; }));  // 100
    for_any.push_back(pool.submit([i] { return 100 * i; }));   // 1000
  }
  for_then = pool.submit([] { return 500; });  // 1000 after then
  handed.store(true);
  ASSERT_EQ(consumer.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(consumer.get(), 10 + 100 + 1000 + 1000);
}

TEST_P(Waiting, NestedForkJoinCompletesWhileUnrelatedWorkFloods) {
  thread_pool pool{workers()};
  std::atomic<bool> stop{false};
  std::atomic<long> flood_submitted{0};
  std::atomic<long> flood_ran{0};
  std::thread flooder([&] {
    while (!stop.load()) {
      if (pool.detach([&flood_ran] { flood_ran.fetch_add(1); })) flood_submitted.fetch_add(1);
      std::this_thread::yield();
    }
  });
  ASSERT_TRUE(eventually([&] { return flood_submitted.load() >= 100; }));
  std::vector<future<long>> trees;
  for (int i = 0; i < 4; ++i) trees.push_back(pool.submit(fib, std::ref(pool), 18));
  for (auto& t : trees) {
    ASSERT_EQ(t.wait_for(patience), std::future_status::ready);
    EXPECT_EQ(t.get(), 2584);
  }
  stop.store(true);
  flooder.join();
  pool.wait_idle();
  EXPECT_EQ(flood_ran.load(), flood_submitted.load());
}

TEST_P(Waiting, ForkJoinFromManyOutsideThreads) {
  thread_pool pool{workers()};
  std::vector<std::thread> callers;
  std::vector<long> results(4, 0);
  for (std::size_t t = 0; t < results.size(); ++t) {
    callers.emplace_back([&, t] { results[t] = pool.submit(fib, std::ref(pool), 16).get(); });
  }
  for (auto& c : callers) c.join();
  for (long r : results) EXPECT_EQ(r, 987);
}

// ------------------------------------------------- a task run by a waiting thread outside the pool

// The waiting thread takes the task back out of the queue (it is the newest entry) or takes it
// where it lies (an older entry): wait_idle() and stats() must see it running in both cases.
class InlineRun : public ::testing::TestWithParam<std::tuple<std::size_t, bool>> {};

INSTANTIATE_TEST_SUITE_P(Cases, InlineRun,
                         ::testing::Combine(::testing::Values(1, 2, 8), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<std::size_t, bool>>& p) {
                           return "w" + std::to_string(std::get<0>(p.param)) +
                                  (std::get<1>(p.param) ? "_newest" : "_older");
                         });

TEST_P(InlineRun, WaitIdleWaitsForATaskRunByAnOutsideWaiter) {
  // Not a structured binding: the lambdas below capture these (clang 14 cannot capture one).
  const std::size_t workers = std::get<0>(GetParam());
  const bool newest = std::get<1>(GetParam());
  thread_pool pool{workers};
  gate busy;    // holds every worker until the inline run has begun
  gate finish;  // holds the inline-run task
  std::atomic<bool> inline_started{false};
  std::atomic<bool> inline_done{false};
  std::thread::id runner_id;
  std::thread::id ran_on;
  std::thread runner([&] {
    runner_id = std::this_thread::get_id();
    std::vector<future<void>> blockers;
    std::atomic<std::size_t> arrived{0};
    for (std::size_t i = 0; i < workers; ++i) {
      blockers.push_back(pool.submit([&] {
        arrived.fetch_add(1);
        busy.wait();
      }));
    }
    (void)eventually([&] { return arrived.load() == workers; });
    auto task = pool.submit([&] {
      ran_on = std::this_thread::get_id();
      inline_started.store(true);
      finish.wait();
      inline_done.store(true);
    });
    future<void> later;
    if (!newest) later = pool.submit([] {});  // `task` is no longer the newest entry
    task.get();                               // every worker is busy: this thread runs it
    if (later.valid()) later.get();
    for (auto& b : blockers) b.get();
  });
  ASSERT_TRUE(eventually([&] { return inline_started.load(); }));
  busy.open();  // the workers go idle while the task still runs on the runner thread
  ASSERT_TRUE(eventually([&] { return pool.stats().running == 1; }))
      << "the task run by its waiter does not count as running";
  std::atomic<bool> idle_returned{false};
  std::atomic<bool> done_when_idle{false};
  std::thread idler([&] {
    pool.wait_idle();
    done_when_idle.store(inline_done.load());
    idle_returned.store(true);
  });
  // Not synchronisation: a window in which a wait_idle() that ignores the inline run returns.
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(idle_returned.load()) << "wait_idle() returned while a task was running";
  finish.open();
  idler.join();
  runner.join();
  EXPECT_TRUE(done_when_idle.load()) << "wait_idle() returned before the task ended";
  EXPECT_EQ(ran_on, runner_id);
  const auto stats = pool.stats();
  EXPECT_EQ(stats.running, 0U);
  if (newest) {
    EXPECT_EQ(stats.inlined, 1U);
  } else {
    EXPECT_GE(stats.inlined, 1U);  // `later` may have been run by its waiter too
  }
}

}  // namespace
