// crew::advise<&fn> and crew::profile_task on synthetic tasks that really burn CPU, sleep, crash,
// return 64 MiB or never end; and crew::calibrate_machine_costs. Timings are never asserted
// beyond bounds a loaded 2-core machine cannot break: the assertions are about structure (the
// kind of model, that workers exceed the cores for waiting tasks, that a crash is reported).
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "crew/advise.hpp"

namespace {

// Burns about `ms` milliseconds of CPU (by the thread's CPU clock, so a busy machine stretches
// the wall time, not the work). Returns something that depends on the work.
long burn(int ms) {
  timespec t0{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  volatile long x = 0;
  for (;;) {
    for (int i = 0; i < 10000; ++i) x = x + i % 7;
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    const double spent = double(t.tv_sec - t0.tv_sec) * 1e3 + double(t.tv_nsec - t0.tv_nsec) / 1e6;
    if (spent >= ms) break;
  }
  return x;
}

long cpu_task(int ms) {
  return burn(ms);
}

int sleepy_task(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

long crashing_task(int n) {
  if (n == 3) {
    // The default action, even where a sanitizer's handler would turn the crash into an exit.
    ::signal(SIGSEGV, SIG_DFL);
    ::raise(SIGSEGV);
  }
  return burn(20) + n;
}

std::vector<char> large_result_task(int mib) {
  return std::vector<char>(std::size_t(mib) << 20, 'x');
}

int never_ending_task(int) {
  for (;;) ::pause();
}

int throwing_task(int n) {
  if (n == 2) throw std::runtime_error("bad input 2");
  return n;
}

int add(int a, int b) {
  return a + b;
}

// Fixed costs for a 2-core, 24 GiB machine (as the tool's rules tests use), so the model does
// not depend on a calibration on a busy machine.
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

TEST(ProfileTask, CpuBoundTaskBurnsCpu) {
  std::vector<crew::task_sample> raw;
  const std::vector<int> samples{60, 60, 60};
  const auto p = crew::profile_task<&cpu_task>(samples, with_costs(), &raw);
  EXPECT_EQ(p.runs, 3u);
  ASSERT_EQ(raw.size(), 3u);
  EXPECT_EQ(p.crashes, 0u);
  EXPECT_NE(p.description.find("cpu_task"), std::string::npos);
  // 60 ms of CPU was burnt by the thread's own clock; rusage may round to a tick.
  EXPECT_GT(p.cpu_seconds, 0.03);
  EXPECT_LE(p.cpu_seconds, p.wall_seconds * 1.05 + 0.02);  // one thread: CPU ≤ wall
  for (const auto& s : raw) {
    EXPECT_EQ(s.end, crew::task_sample::ending::returned);
    EXPECT_GE(s.cpu_wait_seconds, 0);
    EXPECT_LE(s.cpu_wait_seconds, s.wall_seconds);
    EXPECT_LE(p.wall_seconds, p.max_wall_seconds);
    EXPECT_EQ(s.result_bytes, 8);  // a long
    EXPECT_EQ(s.arg_bytes, 4);     // an int
  }
}

TEST(ProfileTask, SleepingTaskUsesLittleCpu) {
  const std::vector<int> samples{150, 150};
  const auto p = crew::profile_task<&sleepy_task>(samples, with_costs());
  EXPECT_EQ(p.runs, 2u);
  EXPECT_GE(p.wall_seconds, 0.14);
  EXPECT_LT(p.cpu_fraction(), 0.2);
}

TEST(ProfileTask, MemoryTheTaskAddsIsMeasured) {
  const std::vector<int> samples{64};
  const auto p = crew::profile_task<&large_result_task>(samples, with_costs());
  // 64 MiB written: at least most of it is resident at the peak.
  EXPECT_GT(p.peak_rss_bytes, 48.0 * (1 << 20));
  EXPECT_GE(p.result_bytes, 64.0 * (1 << 20));
}

TEST(ProfileTask, SamplesAreSpreadOverTheInputsAndCapped) {
  std::vector<int> samples(100, 1);
  samples.back() = 3;  // only the last input crashes: it must be among the samples
  crew::advise_options o = with_costs();
  o.max_samples = 4;
  const auto p = crew::profile_task<&crashing_task>(samples, o);
  EXPECT_EQ(p.runs, 4u);
  EXPECT_EQ(p.crashes, 1u);
}

TEST(ProfileTask, TupleInputsAreSpreadOverTheArguments) {
  const std::vector<std::tuple<int, int>> samples{{1, 2}, {3, 4}};
  std::vector<crew::task_sample> raw;
  const auto p = crew::profile_task<&add>(samples, with_costs(), &raw);
  EXPECT_EQ(p.runs, 2u);
  EXPECT_EQ(p.crashes, 0u);
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_EQ(raw[0].result_bytes, 4);
}

TEST(Advise, CpuBoundTaskGetsAWorkerPerCoreAndASpeedUp) {
  const std::vector<int> samples{80, 80, 80};
  const auto r = crew::advise<&cpu_task>(samples, with_costs());
  // On a quiet machine CPU/wall is ~1 (CPU-bound, processes: a 20 µs hand-off is free on an
  // 80 ms task). On a loaded one the loop gets a smaller share of the wall clock, which the rules
  // read as mixed or even waiting — so the kind is not asserted, only what holds either way:
  // at least one worker per core, and a speed-up from the 2 cores.
  EXPECT_TRUE(r.model == crew::execution_model::processes ||
              r.model == crew::execution_model::threads)
      << crew::describe(r);
  EXPECT_GE(r.workers, 2u);
  EXPECT_GT(r.predicted_speedup, 1.5);
  EXPECT_TRUE(mentions(r.reasons, "CPU time is")) << crew::describe(r);
  EXPECT_GE(r.timeout_seconds, 1.0);
}

TEST(Advise, QuietCpuBoundProfileGetsProcesses) {
  // The same rules on the profile a quiet machine measures, so the CPU-bound path is checked
  // without depending on the machine's load.
  crew::workload_profile p;
  p.description = "cpu_task";
  p.runs = 3;
  p.wall_seconds = p.max_wall_seconds = p.cpu_seconds = 0.08;
  p.arg_bytes = 4;
  p.result_bytes = 8;
  const auto r = crew::recommend(p, two_cores());
  EXPECT_EQ(r.workload_kind, "CPU-bound");
  EXPECT_EQ(r.model, crew::execution_model::processes);
  EXPECT_EQ(r.workers, 2u);
  EXPECT_NEAR(r.predicted_speedup, 2.0, 0.01);
}

TEST(Advise, SleepingTaskIsIoBoundWithManyWorkers) {
  const std::vector<int> samples{100, 100, 100};
  const auto r = crew::advise<&sleepy_task>(samples, with_costs());
  EXPECT_EQ(r.workload_kind, "I/O-bound") << crew::describe(r);
  EXPECT_EQ(r.model, crew::execution_model::threads);
  EXPECT_GT(r.workers, 4u);  // more than 2 × cores: waiting workers keep the cores busy
  EXPECT_TRUE(mentions(r.reasons, "cheap as threads"));
}

TEST(Advise, CrashOnOneInputGetsProcessesWithTheSignalInTheReasons) {
  const std::vector<int> samples{1, 2, 3, 4};
  const auto r = crew::advise<&crashing_task>(samples, with_costs());
  EXPECT_NE(r.model, crew::execution_model::threads) << crew::describe(r);
  EXPECT_TRUE(mentions(r.reasons, "1 of 4 runs crashed")) << crew::describe(r);
  EXPECT_TRUE(mentions(r.reasons, "signal 11")) << crew::describe(r);
}

TEST(Advise, LargeResultIsFlaggedAsLargeDataForThreads) {
  const std::vector<int> samples{64, 64};
  const auto r = crew::advise<&large_result_task>(samples, with_costs());
  EXPECT_EQ(r.model, crew::execution_model::threads) << crew::describe(r);
  EXPECT_TRUE(mentions(r.reasons, "copying that to a process")) << crew::describe(r);
}

TEST(Advise, EmptySamplesAreAClearError) {
  const std::vector<int> none;
  try {
    (void)crew::advise<&cpu_task>(none, with_costs());
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no sample inputs"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cpu_task"), std::string::npos) << e.what();
  }
}

TEST(Advise, NeverEndingTaskIsStoppedAtTheBudgetAndReported) {
  const std::vector<int> samples{1, 2, 3};
  crew::advise_options o = with_costs();
  o.budget = std::chrono::milliseconds(700);
  std::vector<crew::task_sample> raw;
  const auto t0 = std::chrono::steady_clock::now();
  const auto p = crew::profile_task<&never_ending_task>(samples, o, &raw);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, 30);  // the budget, a kill grace and a fork: never near this
  EXPECT_EQ(p.timeouts, 1u);
  EXPECT_EQ(p.runs, 1u);  // the budget is spent: no second sample
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_EQ(raw[0].end, crew::task_sample::ending::timed_out);
  EXPECT_NE(raw[0].detail.find("budget"), std::string::npos);

  const auto r = crew::advise<&never_ending_task>(samples, o);
  EXPECT_NE(r.model, crew::execution_model::threads) << crew::describe(r);
  EXPECT_TRUE(mentions(r.reasons, "budget")) << crew::describe(r);
  EXPECT_TRUE(mentions(r.caveats, "hit the time budget")) << crew::describe(r);
}

TEST(Advise, ExceptionsAreReportedNotCountedAsCrashes) {
  const std::vector<int> samples{1, 2, 3};
  std::vector<crew::task_sample> raw;
  const auto p = crew::profile_task<&throwing_task>(samples, with_costs(), &raw);
  EXPECT_EQ(p.crashes, 0u);
  ASSERT_EQ(raw.size(), 3u);
  EXPECT_EQ(raw[1].end, crew::task_sample::ending::threw);
  EXPECT_NE(raw[1].detail.find("bad input 2"), std::string::npos) << raw[1].detail;
  const auto r = crew::advise<&throwing_task>(samples, with_costs());
  EXPECT_TRUE(mentions(r.caveats, "bad input 2")) << crew::describe(r);
}

TEST(Advise, ZeroBudgetIsRejected) {
  crew::advise_options o = with_costs();
  o.budget = std::chrono::milliseconds(0);
  EXPECT_THROW((void)crew::advise<&cpu_task>(std::vector<int>{1}, o), std::invalid_argument);
}

TEST(Advise, DescribeListsTheModelAndEveryReason) {
  const std::vector<int> samples{100, 100};
  const auto r = crew::advise<&sleepy_task>(samples, with_costs());
  const std::string text = crew::describe(r);
  EXPECT_EQ(text.rfind("threads — ", 0), 0u) << text;
  for (const auto& reason : r.reasons) EXPECT_NE(text.find(reason), std::string::npos);
  EXPECT_NE(text.find("predicted speed-up"), std::string::npos);
}

TEST(Calibration, MeasuresThisMachine) {
  const auto t0 = std::chrono::steady_clock::now();
  const crew::machine_costs c = crew::calibrate_machine_costs();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, 60);  // about a third of a second when quiet; never near this
  EXPECT_GE(c.cores, 1u);
  EXPECT_GT(c.memory_bytes, 0);
  for (double v : {c.thread_start_seconds, c.process_start_seconds, c.thread_handoff_seconds,
                   c.process_handoff_seconds}) {
    EXPECT_TRUE(std::isfinite(v));
    EXPECT_GT(v, 0);
    EXPECT_LT(v, 1);  // each is micro- to milliseconds
  }
  EXPECT_GT(c.copy_bandwidth, 0);
  EXPECT_GT(c.shared_bandwidth, 0);
  EXPECT_TRUE(c.hybrid_built);
  EXPECT_TRUE(mentions(c.assumed, "idle thread memory"));
  EXPECT_NE(c.source.find("calibration"), std::string::npos);
}

TEST(Calibration, AdviseWithoutCostsCalibrates) {
  crew::advise_options o;
  o.budget = std::chrono::seconds(20);
  const auto r = crew::advise<&sleepy_task>(std::vector<int>{50}, o);
  EXPECT_TRUE(mentions(r.caveats, "machine costs from calibration")) << crew::describe(r);
  EXPECT_EQ(r.model, crew::execution_model::threads);
}

}  // namespace
