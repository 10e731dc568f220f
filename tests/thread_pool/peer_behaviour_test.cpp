// The behaviours that BS::thread_pool's own test program (tests/BS_thread_pool_test.cpp, v4.1)
// checks, run against crew::thread_pool wherever crew offers the feature. Written from what each
// of its checks asserts; no code of it is used. Mapping, in its order:
//   check_constructor             -> DefaultPoolHasOneThreadPerCore, EveryWorkerIsItsOwnThread
//   check_init / get_index        -> WorkersAreNamedByIndex (crew names its threads instead)
//   check_task, member functions  -> Submit*/Detach*, ArgumentsBy*, NoUnneededCopies, Member*
//   check_wait, wait_blocks       -> WaitIdle*, WaitIdleBlocksEveryOutsideCaller
//   check_wait_for / wait_until   -> FutureTimedWaits (crew's timed waits are on the future)
//   check_wait_multiple_deadlock  -> ManyThreadsWaitingIdleNeverDeadlock
//   check_wait_self_deadlock      -> WaitIdleFromOwnTaskIsRefused
//   check_task_monitoring         -> RunningAndQueuedCountsFollowTheWork
//   check_purge                   -> CancellingQueuedTasksPurgesThem, ShutdownCancelPendingPurges
//   check_exceptions_*            -> ExceptionsReachTheFuture*
//   check_vectors                 -> BlocksOfAVectorSumAsSerially
//   long deadlock checks          -> CreatingAndDestroyingPoolsNeverDeadlocks, DestroyingDrains
// plus, from the same program's intent: detach runs every task, many concurrent submitters,
// nested submission without deadlock, waiting on an empty pool. Not offered by crew, so not
// tested: reset(), pausing, priorities, thread initialization functions. The loop helpers
// (detach_loop, blocks, sequences) are crew's algorithms (parallel_for and friends), tested in
// tests/algorithm.
#include <pthread.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/thread_pool.hpp"
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

template <class Pred>
bool eventually(Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

class PeerBehaviour : public ::testing::TestWithParam<std::size_t> {
 protected:
  std::size_t workers() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Workers, PeerBehaviour, ::testing::Values(1, 2, 8),
                         [](const ::testing::TestParamInfo<std::size_t>& p) {
                           return "w" + std::to_string(p.param);
                         });

// ----------------------------------------------------------------------------------- the workers

TEST(PeerBehaviourSetup, DefaultPoolHasOneThreadPerCore) {
  thread_pool pool;
  EXPECT_EQ(pool.concurrency(), std::max(1U, std::thread::hardware_concurrency()));
}

// Twice as many tasks as workers, each holding until as many tasks as workers have started:
// every worker must have run one, so the distinct thread ids number exactly the workers.
std::vector<std::thread::id> threads_of(thread_pool& pool) {
  const std::size_t n = pool.concurrency();
  std::vector<std::thread::id> ids(2 * n);
  std::atomic<std::size_t> started{0};
  gate all_busy;
  for (auto& id : ids) {
    pool.detach([&id, &started, &all_busy, n] {
      id = std::this_thread::get_id();
      if (started.fetch_add(1) + 1 == n) all_busy.open();
      all_busy.wait();
    });
  }
  pool.wait_idle();
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

TEST_P(PeerBehaviour, EveryWorkerIsItsOwnThread) {
  thread_pool pool{workers()};
  const auto ids = threads_of(pool);
  EXPECT_EQ(ids.size(), workers());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), std::this_thread::get_id()), 0);
}

TEST_P(PeerBehaviour, WorkersAreNamedByIndex) {
  crew::thread_pool_options options;
  options.workers = workers();
  options.thread_name_prefix = "peer-";
  thread_pool pool{options};
  std::mutex mu;
  std::set<std::string> names;
  std::atomic<std::size_t> started{0};
  gate all_busy;
  for (std::size_t i = 0; i < 2 * workers(); ++i) {
    pool.detach([&] {
      char name[16] = {};
      pthread_getname_np(pthread_self(), name, sizeof name);
      {
        std::lock_guard lock{mu};
        names.insert(name);
      }
      if (started.fetch_add(1) + 1 == workers()) all_busy.open();
      all_busy.wait();
    });
  }
  pool.wait_idle();
  std::set<std::string> expected;
  for (std::size_t i = 0; i < workers(); ++i) expected.insert("peer-" + std::to_string(i));
  EXPECT_EQ(names, expected);
}

// -------------------------------------------------------------------------------- submitting work

TEST_P(PeerBehaviour, SubmitAndDetachTakeZeroOneOrTwoArguments) {
  thread_pool pool{workers()};
  bool flag0 = false;
  pool.submit([&flag0] { flag0 = true; }).get();
  EXPECT_TRUE(flag0);
  bool flag1 = false;
  pool.submit([](bool& f) { f = true; }, std::ref(flag1)).get();
  EXPECT_TRUE(flag1);
  bool flag2a = false;
  bool flag2b = false;
  pool.submit([](bool& a, bool& b) { a = b = true; }, std::ref(flag2a), std::ref(flag2b)).get();
  EXPECT_TRUE(flag2a && flag2b);

  std::atomic<int> detached{0};
  EXPECT_TRUE(pool.detach([&detached] { detached.fetch_add(1); }));
  EXPECT_TRUE(pool.detach([](std::atomic<int>& d) { d.fetch_add(1); }, std::ref(detached)));
  EXPECT_TRUE(
      pool.detach([](std::atomic<int>& d, int by) { d.fetch_add(by); }, std::ref(detached), 2));
  pool.wait_idle();
  EXPECT_EQ(detached.load(), 4);
}

TEST_P(PeerBehaviour, SubmitReturnsValuesForZeroOneOrTwoArguments) {
  thread_pool pool{workers()};
  EXPECT_EQ(pool.submit([] { return true; }).get(), true);
  EXPECT_EQ(pool.submit([](int a) { return a + 1; }, 41).get(), 42);
  EXPECT_EQ(pool.submit([](int a, int b) { return a * b; }, 6, 7).get(), 42);
}

struct detect_copy_move {
  detect_copy_move() = default;
  detect_copy_move(const detect_copy_move&) : copied(true) {}
  detect_copy_move(detect_copy_move&&) noexcept : moved(true) {}
  detect_copy_move& operator=(const detect_copy_move&) = delete;
  detect_copy_move& operator=(detect_copy_move&&) = delete;
  ~detect_copy_move() = default;
  bool copied = false;
  bool moved = false;
};

TEST_P(PeerBehaviour, NoUnneededCopiesOfTheCallable) {
  thread_pool pool{workers()};
  {
    bool copied = true;
    bool moved = false;
    auto task = [detect = detect_copy_move{}, &copied, &moved] {
      copied = detect.copied;
      moved = detect.moved;
    };
    pool.submit(std::move(task)).get();
    EXPECT_FALSE(copied) << "submit copied the callable it was given as an rvalue";
    EXPECT_TRUE(moved);
  }
  {
    std::atomic<bool> copied{true};
    std::atomic<bool> moved{false};
    auto task = [detect = detect_copy_move{}, &copied, &moved] {
      copied.store(detect.copied);
      moved.store(detect.moved);
    };
    pool.detach(std::move(task));
    pool.wait_idle();
    EXPECT_FALSE(copied.load()) << "detach copied the callable it was given as an rvalue";
    EXPECT_TRUE(moved.load());
  }
}

TEST_P(PeerBehaviour, ArgumentsByValueReferenceAndConstReference) {
  thread_pool pool{workers()};
  // By value: the task gets its own copy.
  const long by_value = 0;
  EXPECT_EQ(pool.submit([](long v) { return ++v; }, by_value).get(), 1);
  EXPECT_EQ(by_value, 0);
  // By reference (std::ref, as with std::async and std::thread).
  long by_ref = 0;
  pool.submit([](long& v) { ++v; }, std::ref(by_ref)).get();
  EXPECT_EQ(by_ref, 1);
  // By const reference: the task sees a change made after submission, before it reads.
  long by_cref = 0;
  gate read_now;
  auto f = pool.submit(
      [&read_now](const long& v) {
        read_now.wait();
        return v;
      },
      std::cref(by_cref));
  ++by_cref;
  read_now.open();
  ASSERT_EQ(f.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(f.get(), 1);
}

class flag_holder {
 public:
  explicit flag_holder(thread_pool& pool) : pool_(&pool) {}
  void set() { flag_ = true; }
  void set_to(bool value) { flag_ = value; }
  bool set_and_return() { return flag_ = true; }
  bool set_to_and_return(bool value) { return flag_ = value; }
  [[nodiscard]] bool get() const { return flag_; }

  // Submits its own member functions from inside, as a class using the pool would.
  bool submit_from_inside() {
    pool_->submit([this] { set(); }).get();
    return pool_->submit([this] { return get(); }).get();
  }
  bool detach_from_inside() {
    pool_->detach([this] { set_to(true); });
    pool_->wait_idle();
    return get();
  }

 private:
  thread_pool* pool_;
  bool flag_ = false;
};

TEST_P(PeerBehaviour, MemberFunctionsAsTasks) {
  thread_pool pool{workers()};
  flag_holder a{pool};
  pool.submit(&flag_holder::set, &a).get();
  EXPECT_TRUE(a.get());
  flag_holder b{pool};
  pool.submit(&flag_holder::set_to, &b, true).get();
  EXPECT_TRUE(b.get());
  flag_holder c{pool};
  EXPECT_TRUE(pool.submit(&flag_holder::set_and_return, &c).get());
  flag_holder d{pool};
  EXPECT_TRUE(pool.submit(&flag_holder::set_to_and_return, std::ref(d), true).get());
  EXPECT_TRUE(d.get());
  flag_holder e{pool};
  pool.detach(&flag_holder::set, &e);
  pool.wait_idle();
  EXPECT_TRUE(e.get());
  flag_holder inside1{pool};
  EXPECT_TRUE(inside1.submit_from_inside());
  flag_holder inside2{pool};
  EXPECT_TRUE(inside2.detach_from_inside());
}

TEST_P(PeerBehaviour, DetachRunsEveryTask) {
  thread_pool pool{workers()};
  constexpr std::size_t count = 10'000;
  std::vector<std::atomic<int>> runs(count);
  for (std::size_t i = 0; i < count; ++i) {
    ASSERT_TRUE(pool.detach([&runs, i] { runs[i].fetch_add(1); }));
  }
  pool.wait_idle();
  for (std::size_t i = 0; i < count; ++i) ASSERT_EQ(runs[i].load(), 1) << "task " << i;
}

TEST_P(PeerBehaviour, ManyConcurrentSubmittersGetTheirOwnResults) {
  thread_pool pool{workers()};
  constexpr int per_thread = 2'000;
  std::vector<std::thread> submitters;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    submitters.emplace_back([&, t] {
      std::vector<future<int>> futures;
      futures.reserve(per_thread);
      for (int i = 0; i < per_thread; ++i) {
        futures.push_back(pool.submit([](int a, int b) { return a * 10'000 + b; }, t, i));
      }
      for (int i = 0; i < per_thread; ++i) {
        if (futures[static_cast<std::size_t>(i)].get() != t * 10'000 + i) wrong.fetch_add(1);
      }
    });
  }
  for (auto& s : submitters) s.join();
  EXPECT_EQ(wrong.load(), 0);
}

int tree(thread_pool& pool, int depth) {
  if (depth == 0) return 1;
  auto left = pool.submit(tree, std::ref(pool), depth - 1);
  auto right = pool.submit(tree, std::ref(pool), depth - 1);
  return left.get() + right.get() + 1;
}

TEST_P(PeerBehaviour, NestedSubmissionNeverDeadlocks) {
  thread_pool pool{workers()};
  // Both children are submitted before either is waited for: the waiting task must run them.
  auto f = pool.submit(tree, std::ref(pool), 10);
  ASSERT_EQ(f.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(f.get(), (1 << 11) - 1);
}

// ------------------------------------------------------------------------------------- waiting

TEST_P(PeerBehaviour, WaitIdleOnAnEmptyPoolReturns) {
  thread_pool pool{workers()};
  pool.wait_idle();
  pool.wait_idle();
  pool.submit([] {}).get();
  pool.wait_idle();
  SUCCEED();
}

TEST_P(PeerBehaviour, WaitIdleWaitsForEveryDetachedTask) {
  thread_pool pool{workers()};
  const std::size_t count = workers() * 10;
  std::vector<std::atomic<bool>> done(count);
  for (std::size_t i = 0; i < count; ++i) {
    pool.detach([&done, i] {
      std::this_thread::sleep_for(1ms);
      done[i].store(true);
    });
  }
  pool.wait_idle();
  for (std::size_t i = 0; i < count; ++i) EXPECT_TRUE(done[i].load()) << "task " << i;
}

TEST_P(PeerBehaviour, WaitIdleBlocksEveryOutsideCaller) {
  thread_pool pool{workers()};
  gate release;
  pool.detach([&release] { release.wait(); });
  constexpr int callers = 4;
  std::atomic<int> returned{0};
  std::vector<std::thread> waiting;
  for (int i = 0; i < callers; ++i) {
    waiting.emplace_back([&] {
      pool.wait_idle();
      returned.fetch_add(1);
    });
  }
  // Not synchronisation: a window in which a wait_idle() that does not block would return.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(returned.load(), 0) << "wait_idle() returned while a task was still running";
  release.open();
  for (auto& w : waiting) w.join();
  EXPECT_EQ(returned.load(), callers);
}

TEST_P(PeerBehaviour, FutureTimedWaits) {
  thread_pool pool{workers()};
  gate release;
  std::atomic<bool> done{false};
  auto f = pool.submit([&] {
    release.wait();
    done.store(true);
  });
  EXPECT_EQ(f.wait_for(10ms), std::future_status::timeout);
  EXPECT_FALSE(done.load());
  EXPECT_EQ(f.wait_until(std::chrono::system_clock::now() + 10ms), std::future_status::timeout);
  EXPECT_FALSE(done.load());
  release.open();
  EXPECT_EQ(f.wait_until(std::chrono::steady_clock::now() + patience), std::future_status::ready);
  EXPECT_TRUE(done.load());
  EXPECT_EQ(f.wait_for(0ms), std::future_status::ready) << "a ready future answers at once";
}

TEST_P(PeerBehaviour, ManyThreadsWaitingIdleNeverDeadlock) {
  thread_pool pool{1};
  gate release;
  pool.detach([&release] { release.wait(); });
  thread_pool waiters{workers()};
  constexpr int count = 1'000;
  std::atomic<int> finished{0};
  for (int i = 0; i < count; ++i) {
    waiters.detach([&] {
      pool.wait_idle();
      finished.fetch_add(1);
    });
  }
  std::this_thread::sleep_for(10ms);
  release.open();
  ASSERT_TRUE(eventually([&] { return finished.load() == count; }))
      << finished.load() << " of " << count << " waiters finished";
}

TEST_P(PeerBehaviour, WaitIdleFromOwnTaskIsRefused) {
  thread_pool pool{workers()};
  auto f = pool.submit([&pool] {
    try {
      pool.wait_idle();
    } catch (const std::logic_error&) {
      return true;
    }
    return false;
  });
  ASSERT_EQ(f.wait_for(patience), std::future_status::ready);
  EXPECT_TRUE(f.get()) << "waiting for the pool from its own task must throw, not deadlock";
}

// -------------------------------------------------------------------------------- task counts

TEST_P(PeerBehaviour, RunningAndQueuedCountsFollowTheWork) {
  // 3n tasks that each hold until released, on n workers: n run and 2n wait; released n at a
  // time (whichever n run), the counts step down to zero.
  const std::size_t n = workers();
  std::vector<gate> gates(3 * n);
  std::vector<std::atomic<bool>> started(3 * n);
  thread_pool pool{n};
  // On a failed assertion, let the tasks end before the pool's destructor waits for them.
  struct open_all {
    std::vector<gate>& gates;
    ~open_all() {
      for (auto& g : gates) g.open();
    }
  } release_on_exit{gates};
  for (std::size_t i = 0; i < 3 * n; ++i) {
    pool.detach([&gates, &started, i] {
      started[i].store(true);
      gates[i].wait();
    });
  }
  auto started_count = [&] {
    return static_cast<std::size_t>(
        std::count_if(started.begin(), started.end(), [](const auto& s) { return s.load(); }));
  };
  for (std::size_t stage = 0; stage < 3; ++stage) {
    const std::size_t left = 3 * n - stage * n;  // tasks not released yet
    ASSERT_TRUE(eventually([&] {
      const auto s = pool.stats();
      return started_count() == (stage + 1) * n && s.running == n && s.queued == left - n;
    })) << "stage "
        << stage << ": running " << pool.stats().running << ", queued " << pool.stats().queued
        << ", started " << started_count();
    // Release exactly the n running now: those freed start the next ones meanwhile.
    std::vector<std::size_t> running_now;
    for (std::size_t i = 0; i < 3 * n; ++i) {
      if (started[i].load() && !gates[i].is_open()) running_now.push_back(i);
    }
    ASSERT_EQ(running_now.size(), n);
    for (std::size_t i : running_now) gates[i].open();
  }
  pool.wait_idle();
  const auto s = pool.stats();
  EXPECT_EQ(s.running, 0U);
  EXPECT_EQ(s.queued, 0U);
  EXPECT_EQ(s.completed, 3 * n);
}

// ---------------------------------------------------------------------------------- purging

TEST(PeerBehaviourOneWorker, CancellingQueuedTasksPurgesThem) {
  thread_pool pool{1};
  gate release;
  std::atomic<bool> first_started{false};
  constexpr std::size_t count = 10;
  std::vector<std::atomic<bool>> ran(count);
  std::vector<future<void>> futures;
  futures.push_back(pool.submit([&] {
    first_started.store(true);
    release.wait();
    ran[0].store(true);
  }));
  ASSERT_TRUE(eventually([&] { return first_started.load(); }));
  for (std::size_t i = 1; i < count; ++i) {
    futures.push_back(pool.submit([&ran, i] { ran[i].store(true); }));
  }
  for (std::size_t i = 1; i < count; ++i) EXPECT_TRUE(futures[i].cancel()) << "task " << i;
  release.open();
  pool.wait_idle();
  EXPECT_TRUE(ran[0].load());
  for (std::size_t i = 1; i < count; ++i) {
    EXPECT_FALSE(ran[i].load()) << "task " << i;
    EXPECT_EQ(futures[i].result().error().kind(), error_kind::cancelled);
  }
}

TEST(PeerBehaviourOneWorker, ShutdownCancelPendingPurges) {
  thread_pool pool{1};
  gate release;
  std::atomic<bool> first_started{false};
  constexpr std::size_t count = 10;
  std::vector<std::atomic<bool>> ran(count);
  std::vector<future<void>> futures;
  futures.push_back(pool.submit([&] {
    first_started.store(true);
    release.wait();
    ran[0].store(true);
  }));
  ASSERT_TRUE(eventually([&] { return first_started.load(); }));
  for (std::size_t i = 1; i < count; ++i) {
    futures.push_back(pool.submit([&ran, i] { ran[i].store(true); }));
  }
  std::thread stopper([&pool] { pool.shutdown(shutdown_mode::cancel_pending); });
  ASSERT_TRUE(eventually([&] { return pool.closed(); }));
  release.open();
  stopper.join();
  EXPECT_TRUE(ran[0].load());
  EXPECT_NO_THROW(futures[0].get());
  for (std::size_t i = 1; i < count; ++i) {
    EXPECT_FALSE(ran[i].load()) << "task " << i;
    EXPECT_EQ(futures[i].result().error().kind(), error_kind::cancelled);
  }
}

// ------------------------------------------------------------------------------- exceptions

struct test_exception : std::runtime_error {
  test_exception() : std::runtime_error("Exception thrown!") {}
};

void throws() {
  throw test_exception{};
}

TEST_P(PeerBehaviour, ExceptionsReachTheFuture) {
  thread_pool pool{workers()};
  auto f = pool.submit(throws);
  EXPECT_THROW(f.get(), test_exception);
  auto g = pool.submit<&throws>();
  auto outcome = g.result();
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().kind(), error_kind::exception);
  EXPECT_STREQ(outcome.error().what(), "Exception thrown!");
}

TEST_P(PeerBehaviour, ExceptionsReachTheFutureThroughWhenAll) {
  thread_pool pool{workers()};
  std::vector<future<void>> futures;
  futures.push_back(pool.submit(throws));
  futures.push_back(pool.submit(throws));
  auto all = crew::when_all(std::move(futures)).get();
  ASSERT_EQ(all.size(), 2U);
  for (auto& f : all) EXPECT_THROW(f.get(), test_exception);
}

// ------------------------------------------------------------------------------ splitting work

TEST_P(PeerBehaviour, BlocksOfAVectorSumAsSerially) {
  thread_pool pool{workers()};
  std::mt19937_64 random{20240322};  // fixed: a failure can be replayed
  for (int repeat = 0; repeat < 10; ++repeat) {
    const std::size_t size = std::uniform_int_distribution<std::size_t>{0, 100'000}(random);
    const std::size_t blocks = std::uniform_int_distribution<std::size_t>{1, workers()}(random);
    std::vector<long> a(size);
    std::vector<long> b(size);
    std::uniform_int_distribution<long> value{-1'000'000, 1'000'000};
    for (std::size_t i = 0; i < size; ++i) {
      a[i] = value(random);
      b[i] = value(random);
    }
    std::vector<long> serial(size);
    for (std::size_t i = 0; i < size; ++i) serial[i] = a[i] + b[i];
    std::vector<long> parallel(size);
    auto parts = pool.submit_bulk(blocks, [&](std::size_t block) {
      const std::size_t begin = size * block / blocks;
      const std::size_t end = size * (block + 1) / blocks;
      for (std::size_t i = begin; i < end; ++i) parallel[i] = a[i] + b[i];
    });
    for (auto& p : parts) p.get();
    EXPECT_EQ(parallel, serial) << "size " << size << ", " << blocks << " blocks";
  }
}

// ---------------------------------------------------------------------------------- lifetime

TEST_P(PeerBehaviour, CreatingAndDestroyingPoolsNeverDeadlocks) {
  for (int i = 0; i < 200; ++i) {
    thread_pool pool{workers()};
  }
  for (int i = 0; i < 200; ++i) {
    thread_pool pool{workers()};
    pool.detach([] {});
    (void)pool.submit([] { return 1; });
  }
  SUCCEED();
}

TEST_P(PeerBehaviour, DestroyingAPoolWithQueuedTasksDrainsThem) {
  std::atomic<int> ran{0};
  std::vector<future<int>> futures;
  {
    thread_pool pool{workers()};
    gate release;
    pool.detach([&release] { release.wait(); });
    for (int i = 0; i < 500; ++i) {
      futures.push_back(pool.submit([&ran, i] {
        ran.fetch_add(1);
        return i;
      }));
    }
    release.open();
  }  // the destructor runs every queued task
  EXPECT_EQ(ran.load(), 500);
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(futures[static_cast<std::size_t>(i)].ready());
    EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(), i);
  }
}

}  // namespace
