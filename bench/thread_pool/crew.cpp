// crew::thread_pool on the four workloads (see workloads.hpp).
#include <benchmark/benchmark.h>

#include <functional>
#include <vector>

#include "crew/algorithm.hpp"
#include "crew/thread_pool.hpp"
#include "workloads.hpp"

namespace {

crew::thread_pool& pool() {
  static crew::thread_pool instance{bench::workers()};
  return instance;
}

void empty() {
  bench::empty_body();
}

void a_empty_tasks_detach(benchmark::State& state) {
  auto& p = pool();
  for (auto _ : state) {
    for (std::size_t i = 0; i < bench::empty_tasks; ++i) p.detach(empty);
    p.wait_idle();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * bench::empty_tasks));
}
BENCHMARK(a_empty_tasks_detach)
    ->Name("a_empty_tasks/crew")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void a_empty_tasks_futures(benchmark::State& state) {
  auto& p = pool();
  std::vector<crew::future<void>> futures;
  futures.reserve(bench::empty_tasks);
  for (auto _ : state) {
    for (std::size_t i = 0; i < bench::empty_tasks; ++i) futures.push_back(p.submit<&empty>());
    for (auto& f : futures) f.get();
    futures.clear();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * bench::empty_tasks));
}
BENCHMARK(a_empty_tasks_futures)
    ->Name("a_empty_tasks/crew_futures")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

long fib(crew::thread_pool& p, int n) {
  if (n < 2) return n;
  auto left = p.submit(fib, std::ref(p), n - 1);
  const long right = fib(p, n - 2);
  return left.get() + right;
}

void b_fib(benchmark::State& state) {
  auto& p = pool();
  for (auto _ : state) {
    const long result = p.submit(fib, std::ref(p), bench::fib_n).get();
    if (result != bench::fib_30) state.SkipWithError("wrong fib");
  }
}
BENCHMARK(b_fib)->Name("b_fib30/crew")->Unit(benchmark::kMillisecond)->UseRealTime();

void c_parallel_for(benchmark::State& state) {
  auto& p = pool();
  std::uint8_t* out = bench::loop_output().data();
  for (auto _ : state) {
    crew::parallel_for(p, 0, bench::loop_items, [out](std::size_t i) { bench::loop_item(out, i); });
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * bench::loop_items));
}
BENCHMARK(c_parallel_for)
    ->Name("c_parallel_for/crew")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void d_round_trip(benchmark::State& state) {
  auto& p = pool();
  for (auto _ : state) p.submit<&empty>().get();
}
BENCHMARK(d_round_trip)->Name("d_round_trip/crew")->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
