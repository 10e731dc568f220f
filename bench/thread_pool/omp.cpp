// OpenMP (libgomp) on the four workloads: tasks created by one thread of a parallel region
// (`single`), `taskwait` for fork-join, `parallel for schedule(static)` for the loop.
#include <benchmark/benchmark.h>
#include <omp.h>

#include "workloads.hpp"

namespace {

void a_empty_tasks(benchmark::State& state) {
  for (auto _ : state) {
#pragma omp parallel num_threads(bench::workers())
#pragma omp single
    {
      for (std::size_t i = 0; i < bench::empty_tasks; ++i) {
#pragma omp task
        bench::empty_body();
      }
#pragma omp taskwait
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * bench::empty_tasks));
}
BENCHMARK(a_empty_tasks)->Name("a_empty_tasks/omp")->Unit(benchmark::kMillisecond)->UseRealTime();

long fib(int n) {
  if (n < 2) return n;
  long left = 0;
#pragma omp task shared(left)
  left = fib(n - 1);
  const long right = fib(n - 2);
#pragma omp taskwait
  return left + right;
}

void b_fib(benchmark::State& state) {
  for (auto _ : state) {
    long result = 0;
#pragma omp parallel num_threads(bench::workers())
#pragma omp single
    result = fib(bench::fib_n);
    if (result != bench::fib_30) state.SkipWithError("wrong fib");
  }
}
BENCHMARK(b_fib)->Name("b_fib30/omp")->Unit(benchmark::kMillisecond)->UseRealTime();

void c_parallel_for(benchmark::State& state) {
  std::uint8_t* out = bench::loop_output().data();
  const auto n = static_cast<long>(bench::loop_items);
  for (auto _ : state) {
#pragma omp parallel for schedule(static) num_threads(bench::workers())
    for (long i = 0; i < n; ++i) bench::loop_item(out, static_cast<std::size_t>(i));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * bench::loop_items));
}
BENCHMARK(c_parallel_for)->Name("c_parallel_for/omp")->Unit(benchmark::kMillisecond)->UseRealTime();

void d_round_trip(benchmark::State& state) {
#pragma omp parallel num_threads(bench::workers())
#pragma omp single
  for (auto _ : state) {
#pragma omp task
    bench::empty_body();
#pragma omp taskwait
  }
}
BENCHMARK(d_round_trip)->Name("d_round_trip/omp")->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
