// Stopping a remote pool without waiting (close), stopping every worker now (stop_now), a bound
// on queued tasks (max_queued / on_full), and per-call options (with: timeout, name, retries),
// on process_pool and hybrid_pool. Every fault here is real: workers are killed with signals and
// their pids are checked gone.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "crew/hybrid_pool.hpp"
#include "crew/process_pool.hpp"
#include "crew/when.hpp"
#include "support/process.hpp"

namespace {

using namespace std::chrono_literals;
using crew::error_kind;
using crew::process_pool;

constexpr auto patience = 60s;

int sleeps_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return ms;
}
int square(int x) {
  return x * x;
}
std::size_t length_of(const std::string& text) {
  return text.size();
}
int segfaults(int) {
  raise(SIGSEGV);
  return 0;
}
/// Crashes the first `n` times (counted in a file), then returns 7.
int crashes_first_times(std::string path, int n) {
  int seen = 0;
  {
    std::ifstream in{path};
    in >> seen;
  }
  {
    std::ofstream out{path};
    out << seen + 1;
  }
  if (seen < n) raise(SIGKILL);
  return 7;
}

crew::process_pool_options options(std::size_t workers) {
  crew::process_pool_options o;
  o.workers = workers;
  return o;
}

std::string temp_path(const std::string& stem) {
  return (std::filesystem::temp_directory_path() /
          (stem + "-" + std::to_string(getpid()) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count())))
      .string();
}

// ---------------------------------------------------------------------------------- stop_now

TEST(StopNow, KillsEveryWorkerAndResolvesEveryFuture) {
  std::vector<int> pids;
  std::vector<crew::future<int>> futures;
  crew::stop_report report;
  {
    process_pool pool{options(2)};
    pids = pool.worker_pids();
    ASSERT_EQ(pids.size(), 2U);
    for (int i = 0; i < 10; ++i) futures.push_back(pool.submit<&sleeps_ms>(30'000));
    // Both workers run one each before stop_now: wait until they started.
    const auto until = std::chrono::steady_clock::now() + patience;
    while (pool.stats().running < 2 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(1ms);
    }
    ASSERT_EQ(pool.stats().running, 2U);
    const auto t0 = std::chrono::steady_clock::now();
    report = pool.stop_now();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "stop_now does not wait";
    for (auto& f : futures) EXPECT_TRUE(f.ready()) << "every future resolved by stop_now";
    EXPECT_EQ(pool.submit<&square>(3).result().error().kind(), error_kind::pool_closed);
  }  // the destructor reaps the killed workers
  EXPECT_EQ(report.stopped, 2U);
  EXPECT_EQ(report.cancelled, 8U);
  EXPECT_EQ(report.still_running, 0U);
  int stopped = 0;
  for (auto& f : futures) {
    const auto r = f.result();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), error_kind::cancelled);
    if (std::string{r.error().what()}.find("its worker was stopped") != std::string::npos)
      ++stopped;
  }
  EXPECT_EQ(stopped, 2) << "running tasks say their worker was stopped";
  for (int pid : pids) EXPECT_FALSE(crew::test::process_alive(pid)) << pid;
}

TEST(StopNow, WorkersDieAtOnceNotAfterTheirTasks) {
  process_pool pool{options(2)};
  const std::vector<int> pids = pool.worker_pids();
  auto a = pool.submit<&sleeps_ms>(60'000);
  auto b = pool.submit<&sleeps_ms>(60'000);
  while (pool.stats().running < 2) std::this_thread::sleep_for(1ms);
  (void)pool.stop_now();
  // Without the destructor: the supervisor kills them on its own, well before their tasks end.
  EXPECT_EQ(crew::test::still_alive_after(pids, 20s), std::vector<int>{});
  EXPECT_EQ(a.result().error().kind(), error_kind::cancelled);
  EXPECT_EQ(b.result().error().kind(), error_kind::cancelled);
}

TEST(StopNow, FromTwoThreadsAtOnceCountsEachTaskOnce) {
  for (int round = 0; round < 5; ++round) {
    process_pool pool{options(2)};
    std::vector<crew::future<int>> futures;
    for (int i = 0; i < 20; ++i) futures.push_back(pool.submit<&sleeps_ms>(i < 2 ? 30'000 : 1));
    crew::stop_report r1, r2;
    std::atomic<bool> go{false};
    std::thread t1{[&] {
      while (!go) std::this_thread::yield();
      r1 = pool.stop_now();
    }};
    std::thread t2{[&] {
      while (!go) std::this_thread::yield();
      r2 = pool.stop_now();
    }};
    go = true;
    t1.join();
    t2.join();
    std::size_t done_with_value = 0;
    for (auto& f : futures) {
      ASSERT_TRUE(f.ready());
      if (f.result().has_value()) ++done_with_value;
    }
    EXPECT_EQ(r1.cancelled + r1.stopped + r2.cancelled + r2.stopped + done_with_value, 20U)
        << "each task is counted by one caller, or completed before";
  }
}

TEST(StopNow, WhileTasksAreMidSend) {
  // Large arguments travel in memfds over the lanes' sockets while stop_now runs.
  for (int round = 0; round < 3; ++round) {
    std::vector<int> pids;
    std::vector<std::vector<crew::future<std::size_t>>> per_thread(3);
    {
      auto o = options(2);
      o.max_queued = 16;  // the submitters block: memory stays small, and stop_now wakes them
      process_pool pool{o};
      pids = pool.worker_pids();
      std::atomic<bool> stop{false};
      std::vector<std::thread> submitters;
      for (int t = 0; t < 3; ++t) {
        submitters.emplace_back([&, t] {
          const std::string big(300'000, 'x');
          while (!stop.load()) per_thread[t].push_back(pool.submit<&length_of>(big));
        });
      }
      std::this_thread::sleep_for(50ms);
      (void)pool.stop_now();
      stop = true;
      for (auto& t : submitters) t.join();
    }
    for (auto& futures : per_thread) {
      for (auto& f : futures) {
        ASSERT_TRUE(f.ready());
        const auto r = f.result();
        if (r) {
          EXPECT_EQ(*r, 300'000U);
        } else {
          EXPECT_TRUE(r.error().kind() == error_kind::cancelled ||
                      r.error().kind() == error_kind::pool_closed)
              << r.error().what();
        }
      }
    }
    for (int pid : pids) EXPECT_FALSE(crew::test::process_alive(pid)) << pid;
  }
}

TEST(StopNow, DuringAWorkerRestart) {
  process_pool pool{options(1)};
  const int first = pool.worker_pids().at(0);
  auto crash = pool.submit<&segfaults>(0);
  EXPECT_EQ(crash.result().error().kind(), error_kind::crashed);
  // The replacement is starting (or about to): stop everything now.
  auto queued = pool.submit<&square>(4);
  const auto report = pool.stop_now();
  EXPECT_TRUE(queued.ready());
  const auto r = queued.result();
  if (r) {
    EXPECT_EQ(*r, 16);  // the replacement was fast enough to run it before stop_now
  } else {
    EXPECT_EQ(r.error().kind(), error_kind::cancelled);
    EXPECT_EQ(report.cancelled + report.stopped, 1U);
  }
  EXPECT_FALSE(crew::test::process_alive(first));
  // No worker is started after stop_now: within a while, none is alive.
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (!pool.worker_pids().empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(pool.worker_pids().empty());
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(pool.worker_pids().empty()) << "no restart after stop_now";
}

TEST(StopNow, ThenDestructorAtOnce) {
  for (int round = 0; round < 10; ++round) {
    std::vector<int> pids;
    {
      process_pool pool{options(2)};
      pids = pool.worker_pids();
      for (int i = 0; i < 8; ++i) (void)pool.submit<&sleeps_ms>(10'000);
      (void)pool.stop_now();
    }
    for (int pid : pids) EXPECT_FALSE(crew::test::process_alive(pid)) << pid;
  }
}

TEST(StopNow, FromAContinuationOnThePool) {
  process_pool pool{options(2)};
  auto slow = pool.submit<&sleeps_ms>(30'000);
  std::atomic<bool> ran{false};
  auto stopper = crew::then(pool.submit<&square>(2), [&](crew::outcome<int> r) {
    (void)pool.stop_now();  // on the collector (or a waiting thread): must not deadlock
    ran = true;
    return r.value();
  });
  EXPECT_EQ(stopper.get(), 4);
  EXPECT_TRUE(ran);
  EXPECT_EQ(slow.result().error().kind(), error_kind::cancelled);
}

TEST(StopNow, HybridPoolKillsEveryProcess) {
  crew::hybrid_pool_options o;
  o.processes = 2;
  o.threads_per_process = 2;
  crew::hybrid_pool pool{o};
  const std::vector<int> pids = pool.worker_pids();
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 6; ++i) futures.push_back(pool.submit<&sleeps_ms>(30'000));
  while (pool.stats().running < 4) std::this_thread::sleep_for(1ms);
  const auto report = pool.stop_now();
  EXPECT_EQ(report.stopped, 4U);
  EXPECT_EQ(report.cancelled, 2U);
  for (auto& f : futures) EXPECT_EQ(f.result().error().kind(), error_kind::cancelled);
  EXPECT_EQ(crew::test::still_alive_after(pids, 20s), std::vector<int>{});
}

// ------------------------------------------------------------------------------------- close

TEST(Close, ReturnsAtOnceAndQueuedTasksStillRun) {
  process_pool pool{options(2)};
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 6; ++i) futures.push_back(pool.submit<&sleeps_ms>(100));
  const auto t0 = std::chrono::steady_clock::now();
  pool.close();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 250ms)
      << "close does not wait for 300 ms of work";
  EXPECT_EQ(pool.submit<&square>(2).result().error().kind(), error_kind::pool_closed);
  for (auto& f : futures) EXPECT_EQ(f.get(), 100);
}

TEST(Close, CancelPendingCancelsQueued) {
  process_pool pool{options(1)};
  auto running = pool.submit<&sleeps_ms>(300);
  while (pool.stats().running < 1) std::this_thread::sleep_for(1ms);
  std::vector<crew::future<int>> queued;
  for (int i = 0; i < 4; ++i) queued.push_back(pool.submit<&square>(i));
  pool.close(crew::shutdown_mode::cancel_pending);
  for (auto& f : queued) EXPECT_EQ(f.result().error().kind(), error_kind::cancelled);
  EXPECT_EQ(running.get(), 300);
}

TEST(Close, ThenDestroyImmediatelyLeavesNoProcess) {
  for (int round = 0; round < 5; ++round) {
    std::vector<int> pids;
    std::vector<crew::future<int>> futures;
    {
      process_pool pool{options(2)};
      pids = pool.worker_pids();
      for (int i = 0; i < 4; ++i) futures.push_back(pool.submit<&sleeps_ms>(20));
      pool.close();
    }  // the destructor finishes the queued work and joins
    for (auto& f : futures) EXPECT_EQ(f.get(), 20);
    for (int pid : pids) EXPECT_FALSE(crew::test::process_alive(pid)) << pid;
  }
}

// -------------------------------------------------------------------------------- max_queued

TEST(MaxQueued, FailModeRefusesPastTheBound) {
  auto o = options(1);
  o.max_queued = 2;
  o.on_full = crew::queue_full::fail;
  o.pipeline_depth = 1;
  process_pool pool{o};
  auto running = pool.submit<&sleeps_ms>(500);
  while (pool.stats().running < 1) std::this_thread::sleep_for(1ms);
  auto q1 = pool.submit<&square>(1);
  auto q2 = pool.submit<&square>(2);
  auto refused = pool.submit<&square>(3);
  const auto r = refused.result();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), error_kind::queue_full);
  EXPECT_NE(std::string{r.error().what()}.find("max_queued"), std::string::npos);
  EXPECT_EQ(pool.stats().rejected, 1U);
  EXPECT_EQ(q1.get(), 1);
  EXPECT_EQ(q2.get(), 4);
  EXPECT_EQ(running.get(), 500);
}

TEST(MaxQueued, BlockModeWaitsForRoom) {
  auto o = options(1);
  o.max_queued = 1;
  o.pipeline_depth = 1;
  process_pool pool{o};
  auto running = pool.submit<&sleeps_ms>(300);
  while (pool.stats().running < 1) std::this_thread::sleep_for(1ms);
  auto queued = pool.submit<&square>(5);
  const auto t0 = std::chrono::steady_clock::now();
  auto blocked = pool.submit<&square>(6);  // waits until the running task ends
  EXPECT_GT(std::chrono::steady_clock::now() - t0, 100ms);
  EXPECT_EQ(running.get(), 300);
  EXPECT_EQ(queued.get(), 25);
  EXPECT_EQ(blocked.get(), 36);
}

TEST(MaxQueued, ShutdownWakesABlockedSubmitterWithPoolClosed) {
  auto o = options(1);
  o.max_queued = 1;
  o.pipeline_depth = 1;
  process_pool pool{o};
  auto running = pool.submit<&sleeps_ms>(2'000);
  while (pool.stats().running < 1) std::this_thread::sleep_for(1ms);
  auto queued = pool.submit<&square>(5);
  std::atomic<bool> returned{false};
  crew::future<int> blocked;
  std::thread submitter{[&] {
    blocked = pool.submit<&square>(6);
    returned = true;
  }};
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(returned) << "the submitter is blocked";
  pool.close(crew::shutdown_mode::cancel_pending);
  submitter.join();
  EXPECT_EQ(blocked.result().error().kind(), error_kind::pool_closed);
  EXPECT_EQ(queued.result().error().kind(), error_kind::cancelled);
  (void)running.result();
}

TEST(MaxQueued, StopNowWakesABlockedSubmitter) {
  auto o = options(1);
  o.max_queued = 1;
  o.pipeline_depth = 1;
  process_pool pool{o};
  auto running = pool.submit<&sleeps_ms>(30'000);
  while (pool.stats().running < 1) std::this_thread::sleep_for(1ms);
  auto queued = pool.submit<&square>(5);
  crew::future<int> blocked;
  std::thread submitter{[&] { blocked = pool.submit<&square>(6); }};
  std::this_thread::sleep_for(50ms);
  (void)pool.stop_now();
  submitter.join();
  EXPECT_EQ(blocked.result().error().kind(), error_kind::pool_closed);
  EXPECT_EQ(running.result().error().kind(), error_kind::cancelled);
}

TEST(MaxQueued, AContinuationSubmittingToAFullPoolDoesNotDeadlock) {
  auto o = options(1);
  o.max_queued = 1;
  o.pipeline_depth = 1;
  o.max_tasks_per_worker = 1;  // the lane takes nothing more after `slow`: the queue stays full
  process_pool pool{o};
  auto slow = pool.submit<&sleeps_ms>(200);
  while (pool.stats().running < 1) std::this_thread::sleep_for(1ms);
  auto filler = pool.submit<&square>(1);  // the queue is full now
  // The continuation of `slow` runs while the pool delivers its result (collector or a
  // waiting thread) and submits to the full pool: it must not wait for room.
  auto chained =
      crew::then(std::move(slow), [&](crew::outcome<int>) { return pool.submit<&square>(9); });
  auto inner = chained.get();
  EXPECT_EQ(inner.get(), 81);
  EXPECT_EQ(filler.get(), 1);
}

TEST(MaxQueued, ZeroIsUnbounded) {
  auto o = options(1);
  o.max_queued = 0;
  o.on_full = crew::queue_full::fail;
  process_pool pool{o};
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 500; ++i) futures.push_back(pool.submit<&square>(i));
  for (int i = 0; i < 500; ++i) EXPECT_EQ(futures[i].get(), i * i);
}

TEST(MaxQueued, BadOnFullIsRejected) {
  auto o = options(1);
  o.on_full = static_cast<crew::queue_full>(7);
  EXPECT_THROW(process_pool{o}, std::invalid_argument);
}

// ---------------------------------------------------------------------------- per-call options

TEST(CallOptions, TimeoutStopsTheWorker) {
  process_pool pool{options(1)};
  const int pid = pool.worker_pids().at(0);
  auto f = pool.with({.timeout = 100ms, .name = "resize"}).submit<&sleeps_ms>(30'000);
  const auto r = f.result();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), error_kind::timed_out);
  EXPECT_EQ(r.error().task_name(), "resize");
  EXPECT_NE(std::string{r.error().what()}.find("resize ran past its timeout of 100 ms"),
            std::string::npos)
      << r.error().what();
  EXPECT_EQ(crew::test::still_alive_after({pid}, 20s), std::vector<int>{});
  EXPECT_EQ(pool.stats().timeouts, 1U);
  // The pool's default is untouched: a long task without options runs to its end.
  EXPECT_EQ(pool.submit<&sleeps_ms>(300).get(), 300);
}

TEST(CallOptions, TimeoutOverridesThePoolDefaultBothWays) {
  auto o = options(1);
  o.task_timeout = 100ms;
  process_pool pool{o};
  // Longer than the pool's: runs past 100 ms.
  EXPECT_EQ(pool.with({.timeout = 10s}).submit<&sleeps_ms>(400).get(), 400);
  // The pool's own still applies to plain submits.
  EXPECT_EQ(pool.submit<&sleeps_ms>(5'000).result().error().kind(), error_kind::timed_out);
}

TEST(CallOptions, TimeoutOfOneNanosecond) {
  process_pool pool{options(1)};
  const auto r = pool.with({.timeout = 1ns}).submit<&sleeps_ms>(5'000).result();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), error_kind::timed_out);
  EXPECT_NE(std::string{r.error().what()}.find("1 ns"), std::string::npos) << r.error().what();
}

TEST(CallOptions, ZeroAndNegativeTimeoutNeverRun) {
  process_pool pool{options(1)};
  const std::string marker = temp_path("crew-never");
  for (auto timeout : {std::chrono::nanoseconds{0}, std::chrono::nanoseconds{-5'000'000}}) {
    const auto r = pool.with({.timeout = timeout, .name = "late"}).submit<&sleeps_ms>(1).result();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), error_kind::timed_out);
    EXPECT_EQ(r.error().task_name(), "late");
    EXPECT_NE(std::string{r.error().what()}.find("never ran"), std::string::npos);
  }
  EXPECT_EQ(pool.stats().completed, 0U) << "nothing ran";
  EXPECT_EQ(pool.stats().timeouts, 2U);
}

TEST(CallOptions, NameIsShownInACrashMessage) {
  process_pool pool{options(1)};
  const auto r = pool.with({.name = "parse a.json"}).submit<&segfaults>(0).result();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), error_kind::crashed);
  EXPECT_EQ(r.error().task_name(), "parse a.json");
  EXPECT_NE(std::string{r.error().what()}.find("running parse a.json"), std::string::npos)
      << r.error().what();
  EXPECT_EQ(r.error().signal(), SIGSEGV);
}

TEST(CallOptions, RetriesForOneCallOnly) {
  process_pool pool{options(1)};  // the pool's retries: 0
  const std::string counter = temp_path("crew-retries");
  // Killed twice, then fine: two retries are enough.
  EXPECT_EQ(pool.with({.retries = 2}).submit<&crashes_first_times>(counter, 2).get(), 7);
  std::filesystem::remove(counter);
  // The same task without the option: the pool's default, no retry.
  const auto r = pool.submit<&crashes_first_times>(counter, 2).result();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), error_kind::crashed);
  std::filesystem::remove(counter);
  // Retries exhausted: poisoned, with the name.
  const auto p =
      pool.with({.name = "flaky", .retries = 1}).submit<&crashes_first_times>(counter, 5).result();
  ASSERT_FALSE(p.has_value());
  EXPECT_TRUE(p.error().poisoned());
  EXPECT_EQ(p.error().task_name(), "flaky");
  std::filesystem::remove(counter);
}

TEST(CallOptions, HybridTimeoutStopsTheProcess) {
  crew::hybrid_pool_options o;
  o.processes = 1;
  o.threads_per_process = 2;
  crew::hybrid_pool pool{o};
  auto late = pool.with({.timeout = 100ms, .name = "slow"}).submit<&sleeps_ms>(30'000);
  auto other = pool.submit<&sleeps_ms>(300);
  const auto r = late.result();
  EXPECT_EQ(r.error().kind(), error_kind::timed_out);
  EXPECT_EQ(r.error().task_name(), "slow");
  EXPECT_EQ(other.get(), 300) << "the other thread's task is retried elsewhere, not failed";
}

}  // namespace
