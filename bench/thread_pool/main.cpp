// bench_thread_pool's main: runs every peer's workloads (the files linked in) and prints the
// markdown report of bench/common/markdown_report.hpp, each peer's median as a ratio to the
// reference peer of the README's targets (oneTBB for a, b and d; OpenMP for c). A peer that is not
// installed is "not run". scripts/bench-report.sh thread-pool keeps one run in
// docs/benchmarks/thread_pool.md.
#include "../common/markdown_report.hpp"

int main(int argc, char** argv) {
  constexpr double million = 1e6;
  return crew_bench::markdown_main(
      argc, argv,
      "bench_thread_pool: crew's thread_pool against oneTBB, Boost.Asio, std::async, OpenMP",
      "Workloads (bench/thread_pool/README.md): a = 1,000,000 empty tasks submitted one by one "
      "from outside the pool, then waited for (std::async: 10,000, a thread per task); b = fib(30) "
      "with a task per call; c = a parallel loop over 10^8 items; d = the round trip of one empty "
      "task. 2 workers for every pool. Targets: a: throughput ≥ 1.0× oneTBB; b: time ≤ 1.5× "
      "oneTBB; c: time ≤ 1.1× OpenMP; d: time ≤ 1.5× oneTBB.",
      {
          {"a_empty_tasks/tbb", "a: 1 M empty tasks, oneTBB", "", 0, million},
          {"a_empty_tasks/crew", "a: 1 M empty tasks, crew (detach + wait_idle)",
           "a_empty_tasks/tbb", 0, million},
          {"a_empty_tasks/crew_futures", "a: 1 M empty tasks, crew (a future each)",
           "a_empty_tasks/tbb", 0, million},
          {"a_empty_tasks/asio", "a: 1 M empty tasks, Boost.Asio", "a_empty_tasks/tbb", 0, million},
          {"a_empty_tasks/omp", "a: 1 M empty tasks, OpenMP", "a_empty_tasks/tbb", 0, million},
          {"a_empty_tasks/std_async_10k", "a: 10 k empty tasks, std::async", "", 0, 1e4},
          {"b_fib30/tbb", "b: fib(30), oneTBB", ""},
          {"b_fib30/crew", "b: fib(30), crew", "b_fib30/tbb"},
          {"b_fib30/omp", "b: fib(30), OpenMP", "b_fib30/tbb"},
          {"c_parallel_for/omp", "c: parallel loop 10^8, OpenMP", "", 0, 1e8},
          {"c_parallel_for/crew", "c: parallel loop 10^8, crew", "c_parallel_for/omp", 0, 1e8},
          {"c_parallel_for/tbb", "c: parallel loop 10^8, oneTBB", "c_parallel_for/omp", 0, 1e8},
          {"c_parallel_for/asio", "c: parallel loop 10^8, Boost.Asio", "c_parallel_for/omp", 0,
           1e8},
          {"c_parallel_for/std_async", "c: parallel loop 10^8, std::async", "c_parallel_for/omp", 0,
           1e8},
          {"d_round_trip/tbb", "d: round trip, oneTBB", ""},
          {"d_round_trip/crew", "d: round trip, crew", "d_round_trip/tbb"},
          {"d_round_trip/omp", "d: round trip, OpenMP", "d_round_trip/tbb"},
          {"d_round_trip/asio", "d: round trip, Boost.Asio", "d_round_trip/tbb"},
          {"d_round_trip/std_async", "d: round trip, std::async", "d_round_trip/tbb"},
      });
}
