// crew::auto_pool: it builds the pool its recommendation names (measured with for_task, or
// given), says so in its reasons, and runs crew::map and submit correctly on that pool —
// including a task that really crashes its worker process.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/algorithm.hpp"
#include "crew/auto_pool.hpp"

namespace {

// Deterministic CPU work: about n nanoseconds' worth of loop, and a result that checks it ran.
long spin(long n) {
  volatile long x = 0;
  for (long i = 0; i < n; ++i) x = x + i % 7;
  return x;
}

int sleepy_task(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms * 2;
}

long crashing_task(long n) {
  if (n == 3) {
    // The default action, even where a sanitizer's handler would turn the crash into an exit.
    ::signal(SIGSEGV, SIG_DFL);
    ::raise(SIGSEGV);
  }
  return spin(20'000'000) + n;
}

std::vector<char> large_result_task(int mib) {
  return std::vector<char>(std::size_t(mib) << 20, 'x');
}

int never_ending_task(int) {
  for (;;) ::pause();
}

int square(int x) {
  return x * x;
}

crew::machine_costs two_cores() {
  crew::machine_costs m;
  m.source = "test";
  m.cores = 2;
  m.memory_bytes = 24.0 * (1ull << 30);
  m.thread_handoff_seconds = 5e-6;
  m.process_handoff_seconds = 20e-6;
  m.copy_bandwidth = 2e9;
  m.shared_bandwidth = 8e9;
  m.hybrid_built = true;
  return m;
}

crew::advise_options with_costs() {
  crew::advise_options o;
  o.costs = two_cores();
  o.budget = std::chrono::seconds(20);
  return o;
}

bool mentions(const std::vector<std::string>& lines, const std::string& word) {
  for (const auto& s : lines)
    if (s.find(word) != std::string::npos) return true;
  return false;
}

std::vector<int> squares(int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) out.push_back(i * i);
  return out;
}

std::vector<int> iota(int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) out.push_back(i);
  return out;
}

crew::recommendation given(crew::execution_model model, unsigned workers, unsigned threads = 1) {
  crew::recommendation r;
  r.model = model;
  r.workers = workers;
  r.threads_per_worker = threads;
  r.timeout_seconds = 1;
  r.workload_kind = "CPU-bound";
  r.reasons.push_back("given by the test");
  return r;
}

TEST(AutoPool, CpuBoundTaskRunsOnOneWorkerPerCoreAtLeast) {
  const std::vector<long> samples{40'000'000, 40'000'000};
  auto pool = crew::auto_pool::for_task<&spin>(samples, with_costs());
  const auto model = pool.model();
  EXPECT_TRUE(model == crew::execution_model::processes || model == crew::execution_model::threads)
      << pool.report();
  EXPECT_GE(pool.concurrency(), 2u);
  EXPECT_EQ(pool.concurrency(), pool.choice().workers);
  EXPECT_EQ(model == crew::execution_model::processes, pool.processes() != nullptr);
  EXPECT_EQ(model == crew::execution_model::threads, pool.threads() != nullptr);
  EXPECT_TRUE(mentions(pool.choice().reasons, "running on a crew::"));

  const std::vector<long> inputs{1000, 2000, 3000, 4000, 5000, 6000, 7000};
  const auto results = crew::map<&spin>(pool, inputs);
  ASSERT_EQ(results.size(), inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) EXPECT_EQ(results[i], spin(inputs[i]));
}

TEST(AutoPool, SleepingTaskRunsOnManyThreads) {
  auto pool = crew::auto_pool::for_task<&sleepy_task>(std::vector<int>{80, 80}, with_costs());
  ASSERT_EQ(pool.model(), crew::execution_model::threads) << pool.report();
  ASSERT_NE(pool.threads(), nullptr);
  EXPECT_GT(pool.concurrency(), 4u);
  const auto results = crew::map<&sleepy_task>(pool, std::vector<int>(40, 10));
  ASSERT_EQ(results.size(), 40u);
  for (int v : results) EXPECT_EQ(v, 20);
}

TEST(AutoPool, CrashingTaskRunsIsolatedAndACrashFailsOnlyItsOwnTask) {
  auto pool =
      crew::auto_pool::for_task<&crashing_task>(std::vector<long>{1, 2, 3, 4}, with_costs());
  ASSERT_NE(pool.model(), crew::execution_model::threads) << pool.report();
  EXPECT_TRUE(pool.processes() != nullptr || pool.hybrid() != nullptr);
  EXPECT_TRUE(mentions(pool.choice().reasons, "crashed")) << pool.report();

  // On a loaded machine the task may measure as mostly waiting, and the advice is hybrid: a
  // crash then also fails the tasks running on the other threads of its process, so the good
  // task is submitted after the crash.
  const auto failed = pool.submit<&crashing_task>(3L).result();
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().kind(), crew::error_kind::crashed);
  EXPECT_EQ(failed.error().signal(), SIGSEGV);
  // The pool goes on after the crash, on a replacement worker.
  EXPECT_EQ(pool.submit<&crashing_task>(5L).get(), spin(20'000'000) + 5);
  EXPECT_EQ(crew::map<&square>(pool, iota(50)), squares(50));
}

TEST(AutoPool, LargeResultRunsOnThreads) {
  auto pool = crew::auto_pool::for_task<&large_result_task>(std::vector<int>{64}, with_costs());
  ASSERT_EQ(pool.model(), crew::execution_model::threads) << pool.report();
  const auto v = pool.submit<&large_result_task>(64).get();
  EXPECT_EQ(v.size(), std::size_t{64} << 20);
}

TEST(AutoPool, EmptySamplesAreAClearError) {
  EXPECT_THROW((void)crew::auto_pool::for_task<&square>(std::vector<int>{}, with_costs()),
               std::invalid_argument);
}

TEST(AutoPool, GivenProcessesRecommendation) {
  crew::auto_pool pool(given(crew::execution_model::processes, 2));
  ASSERT_NE(pool.processes(), nullptr);
  EXPECT_EQ(pool.concurrency(), 2u);
  EXPECT_EQ(crew::map<&square>(pool, iota(100)), squares(100));
  pool.wait_idle();
  pool.shutdown();
  const auto late = pool.submit<&square>(3).result();
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().kind(), crew::error_kind::pool_closed);
}

TEST(AutoPool, MpiAdviceFallsBackToProcessesAndSaysSo) {
  crew::auto_pool pool(given(crew::execution_model::mpi, 1));
  EXPECT_EQ(pool.model(), crew::execution_model::processes);
  ASSERT_NE(pool.processes(), nullptr);
  EXPECT_EQ(pool.concurrency(), 1u);
  EXPECT_TRUE(mentions(pool.choice().reasons, "MPI was advised")) << pool.report();
  EXPECT_EQ(crew::map<&square>(pool, iota(10)), squares(10));
}

TEST(AutoPool, HybridAdviceRunsProcessesTimesThreads) {
  auto r = given(crew::execution_model::hybrid, 2, 3);
  r.caveats.push_back("crew's hybrid_pool is not built yet: until then use processes");
  crew::auto_pool pool(r);
  ASSERT_NE(pool.hybrid(), nullptr);
  EXPECT_EQ(pool.concurrency(), 6u);
  EXPECT_FALSE(mentions(pool.choice().caveats, "not built")) << pool.report();
  EXPECT_EQ(crew::map<&square>(pool, iota(60)), squares(60));
}

TEST(AutoPool, HybridThreadsAreCappedAtTheHybridPoolLimit) {
  crew::auto_pool pool(given(crew::execution_model::hybrid, 1, 100));
  EXPECT_EQ(pool.choice().threads_per_worker, 64u);
  EXPECT_EQ(pool.concurrency(), 64u);
  EXPECT_TRUE(mentions(pool.choice().reasons, "at most 64 threads")) << pool.report();
}

TEST(AutoPool, AppliedTimeoutStopsAHangingTask) {
  crew::auto_pool_options o;
  o.apply_timeout = true;
  crew::auto_pool pool(given(crew::execution_model::processes, 1), o);
  EXPECT_TRUE(mentions(pool.choice().reasons, "is stopped")) << pool.report();
  const auto t0 = std::chrono::steady_clock::now();
  const auto hung = pool.submit<&never_ending_task>(1).result();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(hung.has_value());
  EXPECT_EQ(hung.error().kind(), crew::error_kind::timed_out);
  EXPECT_LT(took, 60);
  EXPECT_EQ(pool.submit<&square>(7).get(), 49);  // a fresh worker took over
}

TEST(AutoPool, TheQueueBoundReachesWhicheverPoolIsBuilt) {
  for (const auto model : {crew::execution_model::threads, crew::execution_model::processes,
                           crew::execution_model::hybrid}) {
    crew::auto_pool_options o;
    o.max_queued = 2;
    o.on_full = crew::queue_full::fail;
    crew::auto_pool pool(given(model, 1), o);
    // One long task takes the worker; the queue then holds two, and the next is refused. Tasks
    // sent ahead to a worker are not queued, so submit until one is refused.
    std::vector<crew::future<int>> accepted;
    accepted.push_back(pool.submit<&sleepy_task>(300));
    crew::outcome<int> refused = crew::outcome<int>{0};
    for (int i = 0; i < 300 && refused.has_value(); ++i) {
      auto f = pool.submit<&square>(i);
      if (f.ready()) {
        refused = f.result();
      } else {
        accepted.push_back(std::move(f));
      }
    }
    ASSERT_FALSE(refused.has_value()) << "no submission was refused: " << pool.report();
    EXPECT_EQ(refused.error().kind(), crew::error_kind::queue_full) << refused.error().what();
    for (auto& f : accepted) EXPECT_TRUE(f.result().has_value());
  }
}

TEST(AutoPool, ZeroWorkersIsRejected) {
  EXPECT_THROW(crew::auto_pool(given(crew::execution_model::threads, 0)), std::invalid_argument);
}

TEST(AutoPool, ReportCarriesTheChoiceAndItsReasons) {
  crew::auto_pool pool(given(crew::execution_model::threads, 3));
  const std::string text = pool.report();
  EXPECT_EQ(text.rfind("threads — 3 workers", 0), 0u) << text;
  EXPECT_NE(text.find("because given by the test"), std::string::npos) << text;
  EXPECT_NE(text.find("crew::thread_pool of 3 threads"), std::string::npos) << text;
}

}  // namespace
