// The contract every crew executor keeps: the same calls give the same results, whatever runs
// the tasks. Typed over the executors and run at several worker counts.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/algorithm.hpp"
#include "crew/hybrid_pool.hpp"
#include "crew/process_pool.hpp"
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

using executors = ::testing::Types<crew::thread_pool, crew::process_pool, crew::hybrid_pool>;
TYPED_TEST_SUITE(Contract, executors);

TYPED_TEST(Contract, SatisfiesTheExecutorConcept) {
  static_assert(crew::executor<TypeParam>);
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
  EXPECT_EQ(report.cancelled, 20U);
  // Process pools stop the running tasks; a thread pool cannot, and says so.
  EXPECT_EQ(report.stopped + report.still_running, 2U);
  for (std::size_t i = 2; i < futures.size(); ++i) {
    EXPECT_EQ(futures[i].result().error().kind(), error_kind::cancelled);
  }
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
