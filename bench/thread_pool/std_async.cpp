// std::async(std::launch::async): libstdc++ starts one thread per call. Workload (a) runs 10,000
// tasks instead of 1,000,000 (items/s are comparable), (b) is not run (fib(30) would start 832,039
// threads at once), and (c) uses one async per hardware thread.
#include <benchmark/benchmark.h>

#include <future>
#include <vector>

#include "workloads.hpp"

namespace {

constexpr std::size_t async_tasks = 10'000;

void a_empty_tasks(benchmark::State& state) {
  std::vector<std::future<void>> futures;
  futures.reserve(async_tasks);
  for (auto _ : state) {
    for (std::size_t i = 0; i < async_tasks; ++i) {
      futures.push_back(std::async(std::launch::async, bench::empty_body));
    }
    for (auto& f : futures) f.get();
    futures.clear();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * async_tasks));
}
BENCHMARK(a_empty_tasks)
    ->Name("a_empty_tasks/std_async_10k")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void c_parallel_for(benchmark::State& state) {
  std::uint8_t* out = bench::loop_output().data();
  const std::size_t n = bench::workers();
  std::vector<std::future<void>> futures;
  for (auto _ : state) {
    for (std::size_t t = 0; t < n; ++t) {
      const std::size_t lo = bench::loop_items * t / n;
      const std::size_t hi = bench::loop_items * (t + 1) / n;
      futures.push_back(std::async(std::launch::async, [out, lo, hi] {
        for (std::size_t i = lo; i < hi; ++i) bench::loop_item(out, i);
      }));
    }
    for (auto& f : futures) f.get();
    futures.clear();
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * bench::loop_items));
}
BENCHMARK(c_parallel_for)
    ->Name("c_parallel_for/std_async")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void d_round_trip(benchmark::State& state) {
  for (auto _ : state) std::async(std::launch::async, bench::empty_body).get();
}
BENCHMARK(d_round_trip)
    ->Name("d_round_trip/std_async")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
