// The contract every crew executor keeps: the same calls give the same results, whatever runs
// the tasks. Typed over the executors and run at several worker counts.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "crew/algorithm.hpp"
#include "crew/auto_pool.hpp"
#include "crew/call.hpp"
#include "crew/hybrid_pool.hpp"
#include "crew/process_pool.hpp"
#include "crew/stream.hpp"
#include "crew/thread_pool.hpp"
#include "crew/when.hpp"

namespace {

using crew::error_kind;

int square(int x) {
  return x * x;
}
long add(long a, long b) {
  return a + b;
}
std::string label(int id, const std::string& prefix) {
  return prefix + std::to_string(id);
}
int fails_on_seven(int x) {
  if (x == 7) throw std::runtime_error("seven is not allowed");
  return x;
}
void accept(int) {}
int sleeps_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return ms;
}
std::vector<int> iota_vector(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}
int sleeps_then_returns(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return ms;
}

// Stateless callables: what submit(f, args...) takes on every executor. Several lambdas share a
// signature (and so, under GCC, a type name): each must still run as itself in a worker process.
constexpr auto triple = [](int x) { return 3 * x; };
constexpr auto negate = [](int x) { return -x; };
constexpr auto does_nothing = [](int) {};
constexpr auto twice = [](auto x) { return x + x; };  // generic: one task per argument type
constexpr auto describe = [](std::vector<int> v, const std::string& prefix) {
  return prefix + std::to_string(v.size());
};
constexpr auto throws_invalid = [](int x) -> int {
  if (x >= 0) throw std::invalid_argument("negative numbers only");
  return x;
};
struct adds {  // an empty function object
  long operator()(long a, long b) const { return a + b; }
};
struct overloaded {  // several operator(): chosen by the arguments, as std::invoke would
  int operator()(int x) const { return x + 1; }
  std::string operator()(const std::string& s) const { return s + "!"; }
};
struct non_const_call {  // an operator() that is not const, like a `mutable` lambda's
  int operator()() { return 42; }
};

template <class Pool>
struct maker;
template <>
struct maker<crew::thread_pool> {
  static auto make(std::size_t workers) { return std::make_unique<crew::thread_pool>(workers); }
};
template <>
struct maker<crew::process_pool> {
  static auto make(std::size_t workers) {
    crew::process_pool_options options;
    options.workers = workers;
    return std::make_unique<crew::process_pool>(options);
  }
};

template <>
struct maker<crew::hybrid_pool> {
  // Two threads per process where the count allows: 1 → 1×1, 2 → 1×2, 8 → 4×2.
  static auto make(std::size_t workers) {
    crew::hybrid_pool_options options;
    options.threads_per_process = workers >= 2 ? 2 : 1;
    options.processes = workers / options.threads_per_process;
    return std::make_unique<crew::hybrid_pool>(options);
  }
};

// auto_pool, holding each kind of pool it can choose (the same type; the maker differs).
struct auto_pool_on_threads : crew::auto_pool {
  using auto_pool::auto_pool;
};
struct auto_pool_on_processes : crew::auto_pool {
  using auto_pool::auto_pool;
};
crew::recommendation recommend(crew::execution_model model, std::size_t workers) {
  crew::recommendation r;
  r.model = model;
  r.workers = static_cast<unsigned>(workers);
  return r;
}
template <>
struct maker<auto_pool_on_threads> {
  static auto make(std::size_t workers) {
    return std::make_unique<auto_pool_on_threads>(
        recommend(crew::execution_model::threads, workers));
  }
};
template <>
struct maker<auto_pool_on_processes> {
  static auto make(std::size_t workers) {
    return std::make_unique<auto_pool_on_processes>(
        recommend(crew::execution_model::processes, workers));
  }
};

template <class Pool>
class Contract : public ::testing::Test {
 protected:
  void for_each_size(const auto& body) {
    for (std::size_t workers : {1U, 2U, 8U}) {
      SCOPED_TRACE("workers=" + std::to_string(workers));
      auto pool = maker<Pool>::make(workers);
      ASSERT_EQ(pool->concurrency(), workers);
      body(*pool);
    }
  }
};

using executors = ::testing::Types<crew::thread_pool, crew::process_pool, crew::hybrid_pool,
                                   auto_pool_on_threads, auto_pool_on_processes>;
TYPED_TEST_SUITE(Contract, executors);

TYPED_TEST(Contract, SatisfiesTheExecutorAndPoolConcepts) {
  static_assert(crew::executor<TypeParam>);
  static_assert(crew::pool<TypeParam>);
  // Only a thread pool runs arbitrary closures (captures included) and shares memory with the
  // caller: the algorithms' closure forms and the streams' local path must not pick another
  // pool just because it takes stateless callables.
  constexpr bool in_process = std::is_same_v<TypeParam, crew::thread_pool>;
  static_assert(crew::closure_executor<TypeParam> == in_process);
  static_assert(crew::detail::local_executor<TypeParam> == in_process);
  SUCCEED();
}

TYPED_TEST(Contract, SubmitReturnsTheValue) {
  this->for_each_size([](auto& pool) {
    EXPECT_EQ(pool.template submit<&square>(12).get(), 144);
    EXPECT_EQ(pool.template submit<&add>(40L, 2L).get(), 42L);
    EXPECT_EQ(pool.template submit<&label>(7, std::string{"task-"}).get(), "task-7");
    EXPECT_EQ(pool.template submit<&iota_vector>(5).get(), (std::vector<int>{0, 1, 2, 3, 4}));
  });
}

TYPED_TEST(Contract, MapKeepsInputOrderAtEveryGrain) {
  std::vector<int> inputs(10'000);
  std::iota(inputs.begin(), inputs.end(), -5000);
  this->for_each_size([&](auto& pool) {
    for (std::size_t grain : {0U, 1U, 7U, 100'000U}) {
      if (grain == 1 && pool.concurrency() == 8) continue;  // 10,000 single tasks: covered at 1, 2
      const std::vector<int> out = crew::map<&square>(pool, inputs, {.grain = grain});
      ASSERT_EQ(out.size(), inputs.size());
      for (std::size_t i = 0; i < inputs.size(); ++i) ASSERT_EQ(out[i], inputs[i] * inputs[i]);
    }
    EXPECT_TRUE(crew::map<&square>(pool, std::vector<int>{}).empty());
  });
}

TYPED_TEST(Contract, ReduceAndTransformReduce) {
  std::vector<long> values(100'001);
  std::iota(values.begin(), values.end(), 0L);
  this->for_each_size([&](auto& pool) {
    EXPECT_EQ(crew::reduce<&add>(pool, values, 0L), 5'000'050'000L);
    EXPECT_EQ(crew::reduce<&add>(pool, std::vector<long>{}, 5L), 5L);
    const std::vector<int> small{1, 2, 3, 4};
    EXPECT_EQ((crew::transform_reduce<&square, &add>(pool, small, 0L)), 30L);
  });
}

TYPED_TEST(Contract, ForEachAndParallelForRunWithoutError) {
  this->for_each_size([](auto& pool) {
    EXPECT_NO_THROW(crew::for_each<&accept>(pool, std::vector<int>(1000, 1)));
    EXPECT_NO_THROW(crew::parallel_for<&accept>(pool, 0, 1000));
    EXPECT_NO_THROW(crew::parallel_for<&accept>(pool, 5, 5));
  });
}

TYPED_TEST(Contract, AnExceptionIsAnErrorOnItsFuture) {
  this->for_each_size([](auto& pool) {
    auto r = pool.template submit<&fails_on_seven>(7).result();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), error_kind::exception);
    EXPECT_EQ(r.error().remote_type(), "std::runtime_error");
    EXPECT_STREQ(r.error().what(), "seven is not allowed");
    EXPECT_THROW(pool.template submit<&fails_on_seven>(7).get(), std::runtime_error);
    EXPECT_EQ(pool.template submit<&fails_on_seven>(8).get(), 8) << "the pool goes on";
  });
}

TYPED_TEST(Contract, MapRethrowsTheFirstFailure) {
  this->for_each_size([](auto& pool) {
    const std::vector<int> inputs = iota_vector(100);
    EXPECT_THROW(crew::map<&fails_on_seven>(pool, inputs), std::runtime_error);
  });
}

TYPED_TEST(Contract, AsCompletedAndWhenAllWork) {
  this->for_each_size([](auto& pool) {
    std::vector<crew::future<int>> futures;
    for (int i = 0; i < 50; ++i) futures.push_back(pool.template submit<&square>(i));
    int sum = 0;
    int count = 0;
    for (auto& f : crew::as_completed(std::move(futures))) {
      sum += f.get();
      ++count;
    }
    EXPECT_EQ(count, 50);
    EXPECT_EQ(sum, 40425);

    std::vector<crew::future<int>> more;
    for (int i = 0; i < 10; ++i) more.push_back(pool.template submit<&square>(i));
    auto all = crew::when_all(std::move(more)).get();
    ASSERT_EQ(all.size(), 10U);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(all[i].get(), i * i);
  });
}

TYPED_TEST(Contract, SubmitAfterShutdownIsPoolClosed) {
  auto pool = maker<TypeParam>::make(2);
  EXPECT_EQ(pool->template submit<&square>(3).get(), 9);
  pool->shutdown();
  auto r = pool->template submit<&square>(3).result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::pool_closed);
}

TYPED_TEST(Contract, StatsCountWhatRan) {
  auto pool = maker<TypeParam>::make(2);
  // Nobody waits on a future before wait_idle(), so every task runs on the pool's own workers
  // (a thread pool lets a waiting thread run a task that has not started: see thread_pool.hpp).
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 100; ++i) futures.push_back(pool->template submit<&square>(i));
  futures.push_back(pool->template submit<&fails_on_seven>(7));
  pool->wait_idle();
  const auto s = pool->stats();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(futures[i].get(), i * i);
  EXPECT_FALSE(futures[100].result());
  EXPECT_EQ(s.workers, pool->concurrency());
  EXPECT_EQ(s.completed, 100U);
  EXPECT_EQ(s.failed, 1U);
  EXPECT_EQ(s.queued, 0U);
  EXPECT_EQ(s.running, 0U);
}

// --- stopping and per-call options: the same calls on every executor

TYPED_TEST(Contract, CloseReturnsAtOnceAndQueuedTasksRun) {
  auto pool = maker<TypeParam>::make(2);
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 6; ++i) futures.push_back(pool->template submit<&sleeps_ms>(100));
  const auto t0 = std::chrono::steady_clock::now();
  pool->close();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds{250});
  EXPECT_EQ(pool->template submit<&square>(2).result().error().kind(), error_kind::pool_closed);
  for (auto& f : futures) EXPECT_EQ(f.get(), 100);
}

TYPED_TEST(Contract, StopNowResolvesEveryQueuedFuture) {
  auto pool = maker<TypeParam>::make(2);
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 2; ++i) futures.push_back(pool->template submit<&sleeps_ms>(300));
  while (pool->stats().running < 2) std::this_thread::sleep_for(std::chrono::milliseconds{1});
  for (int i = 0; i < 20; ++i) futures.push_back(pool->template submit<&square>(i));
  const crew::stop_report report = pool->stop_now();
  // Every task is accounted for once. A pool that sends tasks ahead to a worker it cannot stop
  // (an MPI rank) counts those in still_running, and they keep their values.
  EXPECT_EQ(report.cancelled + report.stopped + report.still_running, 22U);
  EXPECT_GE(report.stopped + report.still_running, 2U);
  std::size_t cancelled = 0;
  for (std::size_t i = 2; i < futures.size(); ++i) {
    const auto r = futures[i].result();
    if (r) {
      EXPECT_EQ(r.value(), static_cast<int>((i - 2) * (i - 2)));
    } else {
      EXPECT_EQ(r.error().kind(), error_kind::cancelled);
      ++cancelled;
    }
  }
  EXPECT_EQ(cancelled, report.cancelled);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto r = futures[i].result();
    if (report.stopped == 2) {
      EXPECT_EQ(r.error().kind(), error_kind::cancelled);
    } else {
      EXPECT_EQ(r.value(), 300);
    }
  }
  EXPECT_EQ(pool->template submit<&square>(2).result().error().kind(), error_kind::pool_closed);
}

TYPED_TEST(Contract, PerCallNameAndExpiredTimeout) {
  auto pool = maker<TypeParam>::make(2);
  const auto named = pool->with({.name = "seventh"}).template submit<&fails_on_seven>(7).result();
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().kind(), error_kind::exception);
  EXPECT_EQ(named.error().task_name(), "seventh");
  const auto expired =
      pool->with({.timeout = std::chrono::nanoseconds{0}}).template submit<&square>(3).result();
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().kind(), error_kind::timed_out);
  EXPECT_EQ(pool->with({.timeout = std::chrono::seconds{30}}).template submit<&square>(4).get(),
            16);
  const auto late = pool->with({.timeout = std::chrono::milliseconds{50}, .name = "slow"})
                        .template submit<&sleeps_ms>(1'000)
                        .result();
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().kind(), error_kind::timed_out);
  EXPECT_EQ(late.error().task_name(), "slow");
}

TYPED_TEST(Contract, MapWithADeadlineThrowsTimedOut) {
  auto pool = maker<TypeParam>::make(2);
  std::vector<int> slow(8, 2'000);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    (void)crew::map<&sleeps_ms>(*pool, slow,
                                {.grain = 1, .timeout = std::chrono::milliseconds{100}});
    ADD_FAILURE() << "no timeout";
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.kind(), error_kind::timed_out);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds{20});
  EXPECT_EQ(crew::map<&square>(*pool, iota_vector(5), {.timeout = std::chrono::seconds{30}}),
            (std::vector<int>{0, 1, 4, 9, 16}));
}

}  // namespace

// --- the whole interface: the same spellings and the same outcomes on every executor ---------

namespace {

TYPED_TEST(Contract, SubmitAStatelessCallable) {
  this->for_each_size([](auto& pool) {
    EXPECT_EQ(pool.submit(triple, 14).get(), 42);
    EXPECT_EQ(pool.submit(negate, 14).get(), -14) << "a lambda of the same signature as triple";
    EXPECT_EQ(pool.submit([](int a, int b) { return a * b; }, 6, 7).get(), 42);
    EXPECT_EQ(pool.submit(twice, 21).get(), 42);
    EXPECT_EQ(pool.submit(twice, std::string{"ab"}).get(), "abab");
    EXPECT_EQ(pool.submit(describe, std::vector<int>{1, 2, 3}, "size ").get(), "size 3");
    EXPECT_EQ(pool.submit(adds{}, 40L, 2L).get(), 42L);
    EXPECT_EQ(pool.submit(overloaded{}, 41).get(), 42);
    EXPECT_EQ(pool.submit(overloaded{}, std::string{"hey"}).get(), "hey!");
    EXPECT_EQ(pool.submit(non_const_call{}).get(), 42);
    EXPECT_EQ(pool.submit([]() mutable { return 7; }).get(), 7);
    crew::future<void> nothing = pool.submit(does_nothing, 1);
    static_assert(std::is_same_v<decltype(nothing), crew::future<void>>);
    EXPECT_NO_THROW(nothing.get());
    // A captureless lambda also works as submit<lambda>(args...).
    EXPECT_EQ(pool.template submit<triple>(5).get(), 15);
  });
}

TYPED_TEST(Contract, AStatelessCallableThatThrowsKeepsItsExceptionType) {
  this->for_each_size([](auto& pool) {
    EXPECT_THROW(pool.submit(throws_invalid, 1).get(), std::invalid_argument);
    auto r = pool.submit(throws_invalid, 1).result();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), error_kind::exception);
    EXPECT_STREQ(r.error().what(), "negative numbers only");
    EXPECT_EQ(pool.submit(throws_invalid, -1).get(), -1) << "the pool goes on";
  });
}

TYPED_TEST(Contract, TwoThreadsSubmitTheSameLambdaAtOnce) {
  auto pool = maker<TypeParam>::make(2);
  constexpr int per_thread = 300;
  std::vector<crew::future<int>> from_a;
  std::vector<crew::future<int>> from_b;
  {
    std::thread a{[&] {
      for (int i = 0; i < per_thread; ++i) from_a.push_back(pool->submit(triple, i));
    }};
    std::thread b{[&] {
      for (int i = 0; i < per_thread; ++i) from_b.push_back(pool->submit(triple, -i));
    }};
    a.join();
    b.join();
  }
  for (int i = 0; i < per_thread; ++i) {
    ASSERT_EQ(from_a[i].get(), 3 * i);
    ASSERT_EQ(from_b[i].get(), -3 * i);
  }
}

TYPED_TEST(Contract, DetachRunsTheTaskInBothForms) {
  this->for_each_size([](auto& pool) {
    EXPECT_TRUE(pool.template detach<&square>(3));
    EXPECT_TRUE(pool.detach(triple, 4));
    EXPECT_TRUE(pool.detach([](int) {}, 5));
    pool.wait_idle();
    const auto s = pool.stats();
    EXPECT_EQ(s.completed, 3U) << "every detached task ran";
    EXPECT_EQ(s.failed, 0U);
  });
}

TYPED_TEST(Contract, ADetachedTaskThatFailsIsCountedInFailed) {
  auto pool = maker<TypeParam>::make(2);
  EXPECT_TRUE(pool->template detach<&fails_on_seven>(7));
  EXPECT_TRUE(pool->detach(throws_invalid, 1));
  EXPECT_TRUE(pool->template detach<&fails_on_seven>(8));
  pool->wait_idle();
  const auto s = pool->stats();
  EXPECT_EQ(s.failed, 2U);
  EXPECT_EQ(s.completed, 1U);
  EXPECT_EQ(s.cancelled, 0U);
}

TYPED_TEST(Contract, DetachWithOptionsSaysWhetherThePoolTookTheTask) {
  auto pool = maker<TypeParam>::make(2);
  static_assert(std::is_same_v<decltype(pool->with({}).template detach<&square>(1)), bool>);
  EXPECT_TRUE(pool->with({.name = "kept"}).template detach<&square>(2));
  EXPECT_TRUE(pool->with({.timeout = std::chrono::seconds{30}}).template detach<&square>(3));
  EXPECT_TRUE(pool->with({}).template detach<&square>(4));
  EXPECT_FALSE(pool->with({.timeout = std::chrono::nanoseconds{0}}).template detach<&square>(5))
      << "its time was up before it started: it never runs";
  pool->wait_idle();
  EXPECT_EQ(pool->stats().completed, 3U);
  pool->shutdown();
  EXPECT_FALSE(pool->with({.name = "late"}).template detach<&square>(6));
  EXPECT_FALSE(pool->with({}).template detach<&square>(7));
  EXPECT_EQ(pool->stats().completed, 3U);
}

TYPED_TEST(Contract, DetachThenShutdownDrainRunsEverything) {
  auto pool = maker<TypeParam>::make(2);
  constexpr unsigned tasks = 200;
  for (unsigned i = 0; i < tasks; ++i) {
    ASSERT_TRUE(i % 2 == 0 ? pool->template detach<&square>(static_cast<int>(i))
                           : pool->detach(triple, static_cast<int>(i)));
  }
  pool->shutdown(crew::shutdown_mode::drain);
  const auto s = pool->stats();
  EXPECT_EQ(s.completed, tasks);
  EXPECT_EQ(s.queued + s.running, 0U);
}

TYPED_TEST(Contract, ClosedDetachAndSubmitAfterShutdown) {
  auto pool = maker<TypeParam>::make(1);
  EXPECT_FALSE(pool->closed());
  EXPECT_TRUE(pool->detach(triple, 1));
  pool->shutdown();
  EXPECT_TRUE(pool->closed());
  pool->shutdown();  // idempotent
  EXPECT_TRUE(pool->closed());
  const auto before = pool->stats();
  EXPECT_EQ(before.completed, 1U);

  EXPECT_FALSE(pool->template detach<&square>(2)) << "refused: the pool is shut down";
  EXPECT_FALSE(pool->detach(triple, 2));
  auto by_name = pool->template submit<&square>(2).result();
  ASSERT_FALSE(by_name);
  EXPECT_EQ(by_name.error().kind(), error_kind::pool_closed);
  auto by_callable = pool->submit(triple, 2).result();
  ASSERT_FALSE(by_callable);
  EXPECT_EQ(by_callable.error().kind(), error_kind::pool_closed);
  const auto after = pool->stats();
  EXPECT_EQ(after.completed, 1U);
  EXPECT_EQ(after.failed, 0U) << "a refused submission is not counted";
  EXPECT_EQ(after.cancelled, 0U);
  pool->wait_idle();  // returns at once on a pool that is shut down
}

TYPED_TEST(Contract, ShutdownCancelPendingCancelsWhatHasNotStarted) {
  auto pool = maker<TypeParam>::make(1);
  std::vector<crew::future<int>> futures;
  futures.push_back(pool->template submit<&sleeps_then_returns>(300));
  for (int i = 0; i < 100; ++i) {
    futures.push_back(i % 2 == 0 ? pool->template submit<&square>(i) : pool->submit(triple, i));
  }
  pool->shutdown(crew::shutdown_mode::cancel_pending);
  EXPECT_TRUE(pool->closed());
  std::uint64_t values = 0;
  std::uint64_t cancelled = 0;
  for (auto& f : futures) {
    ASSERT_TRUE(f.ready()) << "shutdown returned with a task unfinished";
    auto r = f.result();
    if (r) {
      ++values;
    } else {
      EXPECT_EQ(r.error().kind(), error_kind::cancelled) << r.error().what();
      ++cancelled;
    }
  }
  // One worker, busy for 300 ms, and tasks sent ahead to a worker that has not started them
  // are cancelled too: most of the 100 never start (all of them, if the sleeper did not).
  EXPECT_GE(cancelled, 50U);
  const auto s = pool->stats();
  EXPECT_EQ(s.completed, values);
  EXPECT_EQ(s.cancelled, cancelled);
  EXPECT_EQ(s.failed, 0U) << "a cancellation is not a failure";
}

TYPED_TEST(Contract, EveryAcceptedTaskIsCountedOnce) {
  auto pool = maker<TypeParam>::make(1);
  std::vector<crew::future<int>> futures;
  futures.push_back(pool->template submit<&sleeps_then_returns>(200));
  for (int i = 0; i < 20; ++i) futures.push_back(pool->submit(triple, i));
  futures.push_back(pool->template submit<&fails_on_seven>(7));
  futures.push_back(pool->submit(throws_invalid, 1));
  // Cancelled while (most likely) still queued behind the sleeper; whichever way the race goes,
  // the counters must agree with the futures.
  crew::future<int> victim = pool->template submit<&square>(9);
  const bool cancelled = victim.cancel();
  futures.push_back(std::move(victim));
  pool->wait_idle();
  std::uint64_t values = 0;
  std::uint64_t errors = 0;
  std::uint64_t cancellations = 0;
  for (auto& f : futures) {
    auto r = f.result();
    if (r) {
      ++values;
    } else if (r.error().kind() == error_kind::cancelled) {
      ++cancellations;
    } else {
      ++errors;
    }
  }
  EXPECT_EQ(cancellations, cancelled ? 1U : 0U);
  EXPECT_EQ(errors, 2U);
  const auto s = pool->stats();
  EXPECT_EQ(s.completed, values);
  EXPECT_EQ(s.failed, errors);
  EXPECT_EQ(s.cancelled, cancellations);
  EXPECT_EQ(s.completed + s.failed + s.cancelled, futures.size());
}

}  // namespace
