// experiments/pools.hpp — where the bench meets crew's own executors.
//
// Every figure that needs crew::thread_pool, crew::process_pool, hybrid_pool, the shared-memory
// ring, zero-copy shared buffers or MPI comes from one function here. Until a part is built the
// function returns a series in state `not_built` with a note saying so — never a made-up figure.
// When a part lands, replace the body of its functions with a real measurement (the intended
// API: `crew::thread_pool pool{n}; pool.submit<&fn>(args...).get();`, the same on
// `crew::process_pool pool{{.workers = n}}`, and `crew::map<&fn>(pool, inputs)`) and flip the
// matching `*_built` constant; no experiment or report needs another change.
//
// Thread-safety: like the experiments, call from a single-threaded bench process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "lab/experiment.hpp"

namespace crew::lab::pools {

inline constexpr bool thread_pool_built = false;
inline constexpr bool process_pool_built = false;
inline constexpr bool hybrid_pool_built = false;
inline constexpr bool shm_ring_built = false;
inline constexpr bool shared_buffer_built = false;
inline constexpr bool mpi_built = false;

/// Creation: pool construction to the first result of a trivial task.
series thread_pool_startup(const config& cfg);
series process_pool_startup(const config& cfg, std::string_view start_method);

/// Communication: one round trip of `bytes` between processes over crew's shared-memory ring.
series shm_ring_round_trip(const config& cfg, std::size_t bytes);
series mpi_round_trip(const config& cfg, std::size_t bytes);

/// CPU-bound scaling: `tasks` calls of the compute kernel with `iterations` each, on `workers`.
series thread_pool_cpu(const config& cfg, unsigned workers, unsigned tasks,
                       std::uint64_t iterations);
series process_pool_cpu(const config& cfg, unsigned workers, unsigned tasks,
                        std::uint64_t iterations);
series hybrid_pool_cpu(const config& cfg, unsigned workers, unsigned tasks,
                       std::uint64_t iterations);

/// I/O-bound scaling: `tasks` sleeps of `sleep_s` on `workers`; throughput in tasks/s.
series thread_pool_sleep(const config& cfg, unsigned workers, unsigned tasks, double sleep_s);
series process_pool_sleep(const config& cfg, unsigned workers, unsigned tasks, double sleep_s);

/// Data sharing: `tasks` tasks each reading all of a `bytes` input handed over as a zero-copy
/// shared buffer.
series process_pool_shared_buffer(const config& cfg, unsigned workers, unsigned tasks,
                                  std::size_t bytes);

/// Fault isolation: `tasks` tasks of which one segfaults; samples are tasks that completed.
series thread_pool_fault(const config& cfg, unsigned workers, unsigned tasks);
series process_pool_fault(const config& cfg, unsigned workers, unsigned tasks);

}  // namespace crew::lab::pools
