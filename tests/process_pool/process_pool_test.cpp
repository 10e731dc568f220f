// process_pool: results, errors, and every fault the supervisor turns into an error on one future.
// CTest runs each case in its own process, so a pool bug cannot take the runner down; cases that
// kill a parent run it in a sacrificial child.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/process_pool.hpp"
#include "executors/process/protocol.hpp"
#include "support/process.hpp"

namespace {

using namespace std::chrono_literals;
using crew::error_kind;
using crew::process_pool;
using crew::task_error;

int square(int x) {
  return x * x;
}
std::string shout(const std::string& text, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += text;
  return out;
}
void nothing() {}
int my_pid() {
  return static_cast<int>(getpid());
}
int throws_runtime_error(int) {
  throw std::runtime_error("bad input 42");
}
int throws_int() {
  throw 7;
}
int segfaults() {
  std::fputs("about to crash on purpose\n", stderr);
  std::fflush(stderr);
  raise(SIGSEGV);
  return 0;
}
int aborts() {
  std::abort();
}
int exits(int code) {
  std::exit(code);
}
int sleeps_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return ms;
}
int eats_memory(int mib) {
  std::vector<char> block(static_cast<std::size_t>(mib) << 20);
  for (std::size_t i = 0; i < block.size(); i += 4096) block[i] = 1;
  std::this_thread::sleep_for(5s);  // long enough to be sampled
  return static_cast<int>(block[4096]);
}
std::vector<double> scale(const std::vector<double>& values, double factor) {
  std::vector<double> out(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = values[i] * factor;
  return out;
}

int initialized_value = 0;
void set_up_worker() {
  initialized_value = 1234;
}
int read_initialized() {
  return initialized_value;
}

/// Finds this worker's pool region, writes a forged head into its result ring (as a buggy worker
/// might) and waits to be noticed.
int corrupts_its_channel(std::size_t channel_bytes) {
  std::ifstream maps{"/proc/self/maps"};
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("crew-pool") == std::string::npos) continue;
    auto* base =
        reinterpret_cast<std::byte*>(std::stoull(line.substr(0, line.find('-')), nullptr, 16));
    const crew::detail::process::region_layout layout{channel_bytes, 1};
    auto* header = reinterpret_cast<crew::detail::ipc::ring_header*>(base + layout.slot(0).results);
    header->head.store(header->head.load() + 12345, std::memory_order_release);
    std::this_thread::sleep_for(60s);
    return 1;
  }
  return 0;
}

crew::process_pool_options opts(std::size_t workers) {
  crew::process_pool_options o;
  o.workers = workers;
  return o;
}

TEST(ProcessPool, RunsFunctionsAndReturnsResults) {
  process_pool pool{opts(2)};
  EXPECT_EQ(pool.concurrency(), 2U);
  auto a = pool.submit<&square>(7);
  auto b = pool.submit<&shout>(std::string{"ab"}, 3);
  auto c = pool.submit<&shout>("literal converts", 1);
  auto d = pool.submit<&nothing>();
  auto e = pool.submit<[](int x, int y) { return x - y; }>(10, 4);
  EXPECT_EQ(a.get(), 49);
  EXPECT_EQ(b.get(), "ababab");
  EXPECT_EQ(c.get(), "literal converts");
  EXPECT_NO_THROW(d.get());
  EXPECT_EQ(e.get(), 6);
}

TEST(ProcessPool, TasksRunInOtherProcesses) {
  process_pool pool{opts(2)};
  const int pid = pool.submit<&my_pid>().get();
  EXPECT_NE(pid, getpid());
  const auto pids = pool.worker_pids();
  EXPECT_NE(std::find(pids.begin(), pids.end(), pid), pids.end());
}

TEST(ProcessPool, ManyTasksAllComplete) {
  process_pool pool{opts(2)};
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 20000; ++i) futures.push_back(pool.submit<&square>(i % 1000));
  for (int i = 0; i < 20000; ++i) ASSERT_EQ(futures[i].get(), (i % 1000) * (i % 1000));
  const auto s = pool.stats();
  EXPECT_EQ(s.completed, 20000U);
  EXPECT_EQ(s.failed, 0U);
  EXPECT_EQ(s.queued + s.running, 0U);
}

TEST(ProcessPool, LargeArgumentsAndResultsTravel) {
  process_pool pool{opts(2)};
  std::vector<double> big(8 << 20);  // 64 MiB
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<double>(i);
  auto out = pool.submit<&scale>(big, 0.5).get();
  ASSERT_EQ(out.size(), big.size());
  for (std::size_t i = 0; i < big.size(); i += 4099) ASSERT_EQ(out[i], big[i] * 0.5);
}

TEST(ProcessPool, ExceptionBecomesTaskError) {
  process_pool pool{opts(1)};
  auto r = pool.submit<&throws_runtime_error>(1).result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::exception);
  EXPECT_EQ(r.error().remote_type(), "std::runtime_error");
  EXPECT_STREQ(r.error().what(), "bad input 42");
  EXPECT_NE(r.error().task_name().find("throws_runtime_error"), std::string::npos);
  try {
    pool.submit<&throws_int>().get();
    FAIL() << "get() must throw";
  } catch (const task_error& e) {
    EXPECT_EQ(e.kind(), error_kind::exception);
    EXPECT_EQ(e.remote_type(), "int");
  }
  EXPECT_EQ(pool.submit<&square>(3).get(), 9) << "the worker survives exceptions";
  EXPECT_EQ(pool.stats().restarts, 0U);
}

TEST(ProcessPool, SegfaultFailsOneTaskAndThePoolGoesOn) {
  process_pool pool{opts(2)};
  std::vector<crew::future<int>> before;
  for (int i = 0; i < 100; ++i) before.push_back(pool.submit<&square>(i));
  auto crash = pool.submit<&segfaults>();
  std::vector<crew::future<int>> after;
  for (int i = 0; i < 100; ++i) after.push_back(pool.submit<&square>(i));

  auto r = crash.result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::crashed);
  EXPECT_EQ(r.error().signal(), SIGSEGV);
  EXPECT_GT(r.error().pid(), 0);
  EXPECT_NE(r.error().task_name().find("segfaults"), std::string::npos);
  EXPECT_NE(r.error().stderr_tail().find("about to crash on purpose"), std::string::npos)
      << r.error().stderr_tail();
  EXPECT_NE(std::string{r.error().what()}.find("signal 11"), std::string::npos) << r.error().what();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(before[i].get(), i * i);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(after[i].get(), i * i);
  pool.wait_idle();
  // wait_idle() is about tasks; the replacement worker starts on the supervisor's thread.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while ((pool.stats().restarts < 1 || pool.stats().workers < 2) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  const auto s = pool.stats();
  EXPECT_EQ(s.crashes, 1U);
  EXPECT_EQ(s.restarts, 1U);
  EXPECT_EQ(s.workers, 2U);
}

TEST(ProcessPool, AbortAndExitAreCrashes) {
  process_pool pool{opts(1)};
  auto a = pool.submit<&aborts>().result();
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().kind(), error_kind::crashed);
  EXPECT_EQ(a.error().signal(), SIGABRT);
  auto e = pool.submit<&exits>(3).result();
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind(), error_kind::crashed);
  EXPECT_EQ(e.error().exit_code(), 3);
  EXPECT_EQ(e.error().signal(), 0);
  EXPECT_EQ(pool.submit<&square>(5).get(), 25);
}

TEST(ProcessPool, TimeoutStopsTheTaskNotThePool) {
  auto o = opts(2);
  o.task_timeout = 300ms;
  process_pool pool{o};
  auto slow = pool.submit<&sleeps_ms>(60'000);
  auto quick = pool.submit<&sleeps_ms>(1);
  const auto start = std::chrono::steady_clock::now();
  auto r = slow.result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  EXPECT_EQ(quick.get(), 1);
  EXPECT_EQ(pool.submit<&sleeps_ms>(2).get(), 2);
  EXPECT_EQ(pool.stats().timeouts, 1U);
}

TEST(ProcessPool, MemoryLimitStopsTheWorker) {
  auto o = opts(1);
  o.memory_limit = 128U << 20;
  process_pool pool{o};
  auto r = pool.submit<&eats_memory>(512).result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::out_of_memory);
  EXPECT_GT(r.error().peak_memory(), o.memory_limit);
  EXPECT_EQ(pool.submit<&square>(4).get(), 16);
}

TEST(ProcessPool, CancelQueuedAndRunningTasks) {
  auto o = opts(1);
  o.pipeline_depth = 2;
  process_pool pool{o};
  auto running = pool.submit<&sleeps_ms>(60'000);
  auto in_ring = pool.submit<&sleeps_ms>(1);                          // sent ahead to the worker
  auto queued = pool.submit<&sleeps_ms>(2);                           // still in the parent's queue
  while (pool.stats().running < 1) std::this_thread::sleep_for(1ms);  // the first has started
  EXPECT_TRUE(queued.cancel());
  EXPECT_TRUE(in_ring.cancel());
  EXPECT_EQ(queued.result().error().kind(), error_kind::cancelled);
  EXPECT_EQ(in_ring.result().error().kind(), error_kind::cancelled);
  EXPECT_TRUE(running.cancel());
  auto r = running.result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::cancelled);
  EXPECT_EQ(pool.submit<&square>(6).get(), 36);
  EXPECT_GE(pool.stats().cancelled, 3U);
}

TEST(ProcessPool, RetriesThenQuarantinesAPoisonTask) {
  auto o = opts(1);
  o.retries = 2;
  process_pool pool{o};
  auto r = pool.submit<&segfaults>().result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::crashed);
  EXPECT_TRUE(r.error().poisoned());
  EXPECT_EQ(pool.stats().crashes, 3U);
  EXPECT_EQ(pool.submit<&square>(2).get(), 4);
}

TEST(ProcessPool, WorkersAreRecycledAfterMaxTasks) {
  auto o = opts(1);
  o.max_tasks_per_worker = 3;
  process_pool pool{o};
  std::map<int, int> tasks_per_pid;
  for (int i = 0; i < 10; ++i) ++tasks_per_pid[pool.submit<&my_pid>().get()];
  EXPECT_GE(tasks_per_pid.size(), 4U);
  for (const auto& [pid, count] : tasks_per_pid) EXPECT_LE(count, 3) << pid;
  EXPECT_EQ(pool.stats().crashes, 0U);
}

TEST(ProcessPool, InitializerRunsInEveryWorker) {
  auto o = opts(2);
  o.initializer = crew::task<&set_up_worker>;
  process_pool pool{o};
  EXPECT_EQ(initialized_value, 0) << "the initializer runs in workers, not here";
  for (int i = 0; i < 10; ++i) EXPECT_EQ(pool.submit<&read_initialized>().get(), 1234);
}

TEST(ProcessPool, CorruptChannelFailsOneTaskAndReplacesTheWorker) {
  auto o = opts(1);
  process_pool pool{o};
  auto r = pool.submit<&corrupts_its_channel>(o.channel_bytes).result();
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().kind() == error_kind::worker_lost ||
              r.error().kind() == error_kind::serialization)
      << crew::to_string(r.error().kind()) << ": " << r.error().what();
  for (int i = 0; i < 50; ++i) ASSERT_EQ(pool.submit<&square>(i).get(), i * i);
}

TEST(ProcessPool, SubmitAfterShutdownGivesPoolClosed) {
  process_pool pool{opts(1)};
  EXPECT_EQ(pool.submit<&square>(2).get(), 4);
  pool.shutdown();
  auto r = pool.submit<&square>(3).result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::pool_closed);
  pool.shutdown();  // idempotent
}

TEST(ProcessPool, ShutdownCancelPendingCancelsQueuedTasks) {
  auto o = opts(1);
  o.pipeline_depth = 1;
  process_pool pool{o};
  auto running = pool.submit<&sleeps_ms>(300);
  std::vector<crew::future<int>> queued;
  for (int i = 0; i < 10; ++i) queued.push_back(pool.submit<&square>(i));
  while (pool.stats().running == 0) std::this_thread::sleep_for(1ms);
  pool.shutdown(crew::shutdown_mode::cancel_pending);
  EXPECT_EQ(running.get(), 300);
  for (auto& f : queued) EXPECT_EQ(f.result().error().kind(), error_kind::cancelled);
}

TEST(ProcessPool, DestructorDrainsAndFuturesOutliveThePool) {
  std::vector<crew::future<int>> futures;
  {
    process_pool pool{opts(2)};
    for (int i = 0; i < 200; ++i) futures.push_back(pool.submit<&square>(i));
  }
  for (int i = 0; i < 200; ++i) EXPECT_EQ(futures[i].get(), i * i);
}

TEST(ProcessPool, ZeroWorkersIsAnError) {
  EXPECT_THROW(process_pool{opts(0)}, std::invalid_argument);
}

TEST(ProcessPool, NoDescriptorOrMappingLeaks) {
  { process_pool warm{opts(1)}; }  // first use of libraries may map things once
  const int fds = crew::test::open_fd_count();
  const int maps = crew::test::shared_mapping_count();
  std::vector<int> pids;
  {
    process_pool pool{opts(2)};
    auto crash = pool.submit<&segfaults>();
    std::vector<double> big(1 << 20);
    (void)pool.submit<&scale>(big, 2.0).get();
    (void)crash.result();
    pids = pool.worker_pids();
  }
  EXPECT_EQ(crew::test::open_fd_count(), fds);
  EXPECT_EQ(crew::test::shared_mapping_count(), maps) << [] {
    std::ifstream in{"/proc/self/maps"};
    return std::string{std::istreambuf_iterator<char>{in}, {}};
  }();
  for (int pid : pids) EXPECT_FALSE(crew::test::process_alive(pid)) << pid;
}

TEST(ProcessPool, WorkersDieWithAKilledParent) {
  const std::vector<int> pids = crew::test::pids_of_a_killed_parent([](const auto& report) {
    process_pool pool{opts(3)};
    (void)pool.submit<&square>(1).get();
    report(pool.worker_pids());
  });
  EXPECT_EQ(pids.size(), 3U);
  EXPECT_EQ(crew::test::still_alive_after(pids, 20s), std::vector<int>{})
      << "workers outlived their parent";
}

TEST(ProcessPool, OnePercentCrashesAndTimeoutsLoseNothing) {
  auto o = opts(2);
  o.task_timeout = 200ms;
  process_pool pool{o};
  constexpr int count = 10000;
  std::mt19937 rng{12345};
  std::vector<int> kind(count);  // 0 ok, 1 crash, 2 hang
  for (int& k : kind) {
    const int roll = static_cast<int>(rng() % 100);
    k = roll == 0 ? 1 : roll == 1 ? 2 : 0;
  }
  std::vector<crew::future<int>> futures;
  futures.reserve(count);
  for (int i = 0; i < count; ++i) {
    if (kind[i] == 1)
      futures.push_back(pool.submit<&segfaults>());
    else if (kind[i] == 2)
      futures.push_back(pool.submit<&sleeps_ms>(60'000));
    else
      futures.push_back(pool.submit<&square>(i));
  }
  int crashed = 0;
  int timed_out = 0;
  for (int i = 0; i < count; ++i) {
    auto r = futures[i].result();
    if (kind[i] == 0) {
      ASSERT_TRUE(r) << i << ": " << r.error().what();
      ASSERT_EQ(r.value(), i * i);
    } else if (kind[i] == 1) {
      ASSERT_FALSE(r);
      ASSERT_EQ(r.error().kind(), error_kind::crashed) << i;
      ++crashed;
    } else {
      ASSERT_FALSE(r);
      ASSERT_EQ(r.error().kind(), error_kind::timed_out) << i;
      ++timed_out;
    }
  }
  const auto s = pool.stats();
  EXPECT_EQ(s.crashes, static_cast<std::size_t>(crashed));
  EXPECT_EQ(s.timeouts, static_cast<std::size_t>(timed_out));
  EXPECT_EQ(s.completed, static_cast<std::size_t>(count - crashed - timed_out));
}

}  // namespace

namespace {

void says_hello() {
  std::printf("hello from a worker\n");
}

TEST(ProcessPoolOutput, WorkersDoNotRepeatTheParentsBufferedOutput) {
  const auto status = crew::test::run_in_child([] {
    std::printf("parent line, still buffered\n");  // stdout is a pipe here: fully buffered
    {
      process_pool pool{opts(2)};
      pool.submit<&says_hello>().get();
      (void)pool.submit<&exits>(0).result();  // a worker that exits through exit()
    }
    std::fflush(stdout);
  });
  ASSERT_TRUE(status.exited && status.exit_code == 0) << status.output;
  std::size_t count = 0;
  for (std::size_t at = status.output.find("parent line"); at != std::string::npos;
       at = status.output.find("parent line", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1U) << status.output;
  EXPECT_NE(status.output.find("hello from a worker"), std::string::npos) << status.output;
}

}  // namespace
