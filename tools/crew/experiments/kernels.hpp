// experiments/kernels.hpp — the workloads the experiments run, shared so every model (threads,
// processes, peers) runs exactly the same code. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace crew::lab {

/// A CPU-bound kernel: `iterations` rounds of an integer mix the compiler cannot fold away.
/// About 1 ns per iteration on a current x86 core; the result depends on every round.
std::uint64_t cpu_kernel(std::uint64_t iterations, std::uint64_t seed) noexcept;

/// Iterations of cpu_kernel that take about `seconds` here (measured, not assumed).
std::uint64_t calibrate_cpu_kernel(double seconds);

/// A read of every cache line of `size` bytes at `data`; returns a checksum so it is not elided.
std::uint64_t read_all_bytes(const unsigned char* data, std::size_t size) noexcept;

}  // namespace crew::lab
