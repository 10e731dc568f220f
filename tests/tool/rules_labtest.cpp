// The advice rules on synthetic profiles: each kind of workload gets the expected model, and
// the reasons carry the numbers.
#include <gtest/gtest.h>

#include <string>

#include "advise/rules.hpp"

namespace crew::lab {
namespace {

machine_costs two_cores() {
  machine_costs m;
  m.source = "test";
  m.cores = 2;
  m.memory_bytes = 24.0 * (1ull << 30);
  m.thread_handoff_seconds = 5e-6;
  m.process_handoff_seconds = 8e-6;
  m.copy_bandwidth = 2e9;
  m.shared_bandwidth = 8e9;
  return m;
}

workload_profile task(double wall, double cpu) {
  workload_profile p;
  p.description = "synthetic";
  p.runs = 3;
  p.wall_seconds = wall;
  p.cpu_seconds = cpu;
  p.max_wall_seconds = wall * 1.1;
  p.peak_rss_bytes = 50e6;
  p.arg_bytes = 100;
  p.result_bytes = 100;
  return p;
}

bool mentions(const recommendation& r, const std::string& word) {
  for (const auto& s : r.reasons)
    if (s.find(word) != std::string::npos) return true;
  return false;
}

TEST(AdviceRules, CpuBoundCoarseTasksGetOneProcessPerCore) {
  const auto r = recommend(task(0.2, 0.2), two_cores());
  EXPECT_EQ(r.workload_kind, "CPU-bound");
  EXPECT_EQ(r.model, execution_model::processes);
  EXPECT_EQ(r.workers, 2u);
  EXPECT_EQ(r.chunk, 1u);
  EXPECT_NEAR(r.predicted_speedup, 2.0, 0.01);
  EXPECT_TRUE(mentions(r, "CPU-bound"));
  EXPECT_TRUE(mentions(r, "isolation"));
}

TEST(AdviceRules, CpuBoundTinyTasksGetThreadsAndChunks) {
  const auto r = recommend(task(50e-6, 50e-6), two_cores());
  EXPECT_EQ(r.model, execution_model::threads);
  EXPECT_EQ(r.workers, 2u);
  EXPECT_GT(r.chunk, 1u);  // 5 µs hand-off on a 50 µs task: chunk to keep it ≤ 1%
  EXPECT_TRUE(mentions(r, "chunks of"));
  EXPECT_GT(r.predicted_speedup, 1.9);
}

TEST(AdviceRules, IoBoundGetsManyThreads) {
  const auto r = recommend(task(0.1, 0.002), two_cores());
  EXPECT_EQ(r.workload_kind, "I/O-bound");
  EXPECT_EQ(r.model, execution_model::threads);
  EXPECT_EQ(r.workers, 100u);  // 2 cores / 2% CPU
  EXPECT_GT(r.predicted_speedup, 50);
  EXPECT_TRUE(mentions(r, "cheap as threads"));
}

TEST(AdviceRules, CrashingWorkloadGetsProcesses) {
  auto p = task(0.2, 0.2);
  p.crashes = 1;
  p.crash_detail = "signal 11 (Segmentation fault)";
  const auto r = recommend(p, two_cores());
  EXPECT_EQ(r.model, execution_model::processes);
  EXPECT_TRUE(mentions(r, "crashed"));
  EXPECT_TRUE(mentions(r, "signal 11"));
}

TEST(AdviceRules, CrashingIoBoundWorkloadGetsHybrid) {
  auto p = task(0.1, 0.002);
  p.crashes = 2;
  const auto r = recommend(p, two_cores());
  EXPECT_EQ(r.model, execution_model::hybrid);
  EXPECT_EQ(r.workers, 2u);
  EXPECT_EQ(r.threads_per_worker, 50u);
  EXPECT_FALSE(r.caveats.empty());  // hybrid_pool is not built yet
}

TEST(AdviceRules, LargeDataGetsThreads) {
  auto p = task(0.05, 0.05);
  p.arg_bytes = 200e6;  // 200 MB copied to a process: 0.1 s at 2 GB/s, twice the task
  const auto r = recommend(p, two_cores());
  EXPECT_EQ(r.model, execution_model::threads);
  EXPECT_TRUE(mentions(r, "copying that to a process"));
}

TEST(AdviceRules, WorkloadLargerThanTheMachineGetsMpi) {
  auto p = task(10, 10);
  p.peak_rss_bytes = 30.0 * (1ull << 30);
  const auto r = recommend(p, two_cores());
  EXPECT_EQ(r.model, execution_model::mpi);
  EXPECT_TRUE(mentions(r, "spread the tasks over machines"));
}

TEST(AdviceRules, MemoryCapsWorkers) {
  auto p = task(0.1, 0.002);
  p.peak_rss_bytes = 2.0 * (1ull << 30);  // 2 GiB each, 24 GiB machine: 9 fit in 75%
  const auto r = recommend(p, two_cores());
  EXPECT_EQ(r.workers, 9u);
  EXPECT_TRUE(mentions(r, "memory caps workers"));
}

TEST(AdviceRules, TimeoutIsThreeTimesTheSlowestRunAndAtLeastASecond) {
  auto p = task(2, 2);
  p.max_wall_seconds = 4;
  EXPECT_DOUBLE_EQ(recommend(p, two_cores()).timeout_seconds, 12);
  EXPECT_DOUBLE_EQ(recommend(task(0.01, 0.01), two_cores()).timeout_seconds, 1);
}

TEST(AdviceRules, KnownTaskCountKeepsEveryWorkerFed) {
  auto p = task(50e-6, 50e-6);
  p.tasks = 80;  // 2 workers: at most 80 / (4 × 2) = 10 per chunk
  EXPECT_LE(recommend(p, two_cores()).chunk, 10u);
}

TEST(AdviceRules, AlreadyParallelTaskGetsFewerWorkers) {
  machine_costs m = two_cores();
  m.cores = 8;
  const auto r = recommend(task(1, 4), m);  // each task keeps 4 cores busy
  EXPECT_EQ(r.workers, 2u);
}

TEST(AdviceRules, JsonCarriesModelAndReasons) {
  const auto j = to_json(recommend(task(0.2, 0.2), two_cores()));
  EXPECT_EQ(j["model"], "processes");
  EXPECT_FALSE(j["reasons"].empty());
}

}  // namespace
}  // namespace crew::lab
