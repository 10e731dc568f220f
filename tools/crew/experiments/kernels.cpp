#include "experiments/kernels.hpp"

#include <cstring>

#include "lab/experiment.hpp"

namespace crew::lab {

std::uint64_t cpu_kernel(std::uint64_t iterations, std::uint64_t seed) noexcept {
  std::uint64_t x = seed | 1;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    // xorshift64*: a dependent chain of cheap integer ops, no memory traffic.
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x *= 0x2545F4914F6CDD1DULL;
  }
  return x;
}

std::uint64_t calibrate_cpu_kernel(double seconds) {
  std::uint64_t n = 1 << 16;
  for (;;) {
    const auto t0 = clock::now();
    volatile std::uint64_t sink = cpu_kernel(n, 7);
    (void)sink;
    const double dt = seconds_since(t0);
    if (dt > 0.02 || n > (1ULL << 40)) {
      const double per = dt / static_cast<double>(n);
      const double want = seconds / per;
      return want < 1 ? 1 : static_cast<std::uint64_t>(want);
    }
    n *= 4;
  }
}

std::uint64_t read_all_bytes(const unsigned char* data, std::size_t size) noexcept {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i + 8 <= size; i += 64) {
    std::uint64_t w;
    std::memcpy(&w, data + i, 8);
    sum += w;
  }
  return sum;
}

}  // namespace crew::lab
