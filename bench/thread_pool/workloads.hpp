// The four workloads, the same for every peer (bench/thread_pool/README.md has the table).
//   a: 1,000,000 empty tasks submitted from a thread outside the pool, then waited for
//   b: fib(30) with one task per call (fork-join: submit one half, compute the other, wait)
//   c: a parallel loop over 10^8 cheap items (one byte written per item)
//   d: submit one empty task and wait for its result (round trip)
#pragma once

#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace bench {

inline constexpr std::size_t empty_tasks = 1'000'000;
inline constexpr int fib_n = 30;
inline constexpr long fib_30 = 832'040;
inline constexpr std::size_t loop_items = 100'000'000;

inline std::size_t workers() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

/// The cheap item of workload (c).
inline void loop_item(std::uint8_t* out, std::size_t i) {
  out[i] = static_cast<std::uint8_t>(i * 7 + (i >> 3));
}

/// The output of workload (c), allocated and touched once so page faults are not measured.
inline std::vector<std::uint8_t>& loop_output() {
  static std::vector<std::uint8_t> out(loop_items, 1);
  return out;
}

/// The body of every "empty" task, for every peer: nothing, but the compiler may not drop it (GCC
/// removes an empty `#pragma omp task` altogether).
inline void empty_body() {
  asm volatile("" ::: "memory");
}

inline long serial_fib(int n) {
  return n < 2 ? n : serial_fib(n - 1) + serial_fib(n - 2);
}

}  // namespace bench
