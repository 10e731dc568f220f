// Boost.Asio's thread_pool on the workloads it can express. It has no fork-join: a task that
// blocks on another task's future can deadlock the pool, so fib (b) is not run.
#include <benchmark/benchmark.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <future>

#include "crew/detail/algorithm/chunk.hpp"
#include "workloads.hpp"

namespace {

boost::asio::thread_pool& pool() {
  static boost::asio::thread_pool instance{bench::workers()};
  return instance;
}

/// Counts tasks down; the submitter waits for zero.
struct countdown {
  std::atomic<std::size_t> left{0};
  void done() {
    if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) left.notify_all();
  }
  void wait() {
    for (std::size_t v = left.load(); v != 0; v = left.load()) left.wait(v);
  }
};

void a_empty_tasks(benchmark::State& state) {
  auto& p = pool();
  countdown count;
  for (auto _ : state) {
    count.left.store(bench::empty_tasks);
    for (std::size_t i = 0; i < bench::empty_tasks; ++i) {
      boost::asio::post(p, [&count] {
        bench::empty_body();
        count.done();
      });
    }
    count.wait();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * bench::empty_tasks));
}
BENCHMARK(a_empty_tasks)->Name("a_empty_tasks/asio")->Unit(benchmark::kMillisecond)->UseRealTime();

void c_parallel_for(benchmark::State& state) {
  auto& p = pool();
  std::uint8_t* out = bench::loop_output().data();
  // The same chunking crew uses: about 4 chunks per thread.
  const auto plan = crew::detail::plan_chunks(bench::loop_items, bench::workers(), 0);
  countdown count;
  for (auto _ : state) {
    count.left.store(plan.count);
    for (std::size_t lo = 0; lo < bench::loop_items; lo += plan.grain) {
      const std::size_t hi = std::min(bench::loop_items, lo + plan.grain);
      boost::asio::post(p, [&count, out, lo, hi] {
        for (std::size_t i = lo; i < hi; ++i) bench::loop_item(out, i);
        count.done();
      });
    }
    count.wait();
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * bench::loop_items));
}
BENCHMARK(c_parallel_for)
    ->Name("c_parallel_for/asio")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void d_round_trip(benchmark::State& state) {
  auto& p = pool();
  for (auto _ : state) boost::asio::post(p, boost::asio::use_future(bench::empty_body)).get();
}
BENCHMARK(d_round_trip)->Name("d_round_trip/asio")->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
