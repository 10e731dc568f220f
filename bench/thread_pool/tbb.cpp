// oneTBB on the four workloads: task_group for tasks, parallel_for for the loop.
#include <benchmark/benchmark.h>
#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_group.h>

#include "workloads.hpp"

namespace {

void a_empty_tasks(benchmark::State& state) {
  tbb::task_group group;
  for (auto _ : state) {
    for (std::size_t i = 0; i < bench::empty_tasks; ++i) group.run(bench::empty_body);
    group.wait();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * bench::empty_tasks));
}
BENCHMARK(a_empty_tasks)->Name("a_empty_tasks/tbb")->Unit(benchmark::kMillisecond)->UseRealTime();

long fib(int n) {
  if (n < 2) return n;
  long left = 0;
  tbb::task_group group;
  group.run([&left, n] { left = fib(n - 1); });
  const long right = fib(n - 2);
  group.wait();
  return left + right;
}

void b_fib(benchmark::State& state) {
  for (auto _ : state) {
    if (fib(bench::fib_n) != bench::fib_30) state.SkipWithError("wrong fib");
  }
}
BENCHMARK(b_fib)->Name("b_fib30/tbb")->Unit(benchmark::kMillisecond)->UseRealTime();

void c_parallel_for(benchmark::State& state) {
  std::uint8_t* out = bench::loop_output().data();
  for (auto _ : state) {
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, bench::loop_items),
                      [out](const tbb::blocked_range<std::size_t>& r) {
                        for (std::size_t i = r.begin(); i != r.end(); ++i) bench::loop_item(out, i);
                      });
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * bench::loop_items));
}
BENCHMARK(c_parallel_for)->Name("c_parallel_for/tbb")->Unit(benchmark::kMillisecond)->UseRealTime();

void d_round_trip(benchmark::State& state) {
  tbb::task_group group;
  for (auto _ : state) {
    group.run(bench::empty_body);
    group.wait();
  }
}
BENCHMARK(d_round_trip)->Name("d_round_trip/tbb")->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
