// experiments/pools.hpp — where the bench meets crew's own executors.
//
// Every figure that needs crew::thread_pool, crew::process_pool, hybrid_pool, crew's channels,
// zero-copy shared arrays or MPI comes from one function here, through crew's public API.
//
// Every pool runs inside a sacrificial child of the bench (lab/child.hpp): a pool has threads
// (its workers, or a process pool's manager and watcher), and the bench forks for most of its
// other figures, which must happen from a single-threaded process. A pool that hangs is killed
// at the child's timeout and its series is marked failed; a pool that crashes the child (the
// thread_pool fault case) is the measurement. A channel needs no threads: like the pipe and
// socket cases, it runs between the bench and one forked echo child (or one echo thread).
//
// Process pools in the I/O sweep are capped at max_pool_processes workers; larger worker counts
// are not run for them (the experiment notes it).
//
// Thread-safety: like the experiments, call from a single-threaded bench process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lab/experiment.hpp"

namespace crew::lab::pools {

// MPI figures come from crew-mpi-probe under mpirun, when both are there (mpi_probe_path()).

/// The largest process pool the sweeps start: a pool of hundreds of processes measures the
/// kernel's process table more than crew, and holds hundreds of MiB on a shared machine.
inline constexpr unsigned max_pool_processes = 64;

/// Measured runs for the slowest pool figures (a process_pool moving 64 MiB per task): with
/// --quick at most 3, so that the whole quick run stays within a minute; else cfg.repeat.
int heavy_repeat(const config& cfg);

/// Creation: pool construction to the first result of a trivial task, pool of 2 workers.
/// `start_method` is "fork", "spawn" or "forkserver" (spawn and forkserver need crew::init in
/// main; without it the series is failed with the pool's own message).
series thread_pool_startup(const config& cfg);
series process_pool_startup(const config& cfg, std::string_view start_method);

/// Communication samplers, shaped like the experiment's own: seconds per round trip of a
/// `bytes` message to an echo peer, `n` samples each averaging `iters` round trips; empty when
/// the transport failed. The channel samplers go through a public crew::make_channel, to a
/// forked echo child or to an echo thread — one mechanism and one waiting strategy on both
/// sides (channel_mechanism, named in the series so a reader can check); the task round trip
/// submits an echo task to a one-worker process_pool and waits for its result.
std::vector<double> process_channel_samples(std::size_t bytes, int iters, int n);
std::vector<double> thread_channel_samples(std::size_t bytes, int iters, int n);
extern const char* const channel_mechanism;
std::vector<double> process_pool_echo_samples(std::size_t bytes, int iters, int n);
series mpi_round_trip(const config& cfg, std::size_t bytes);
/// Path of crew-mpi-probe next to this program when it and mpirun are there; empty otherwise.
std::string mpi_probe_path();
/// Round trips between two MPI ranks (mpirun -n 2 crew-mpi-probe); empty when not available.
std::vector<double> mpi_samples(std::size_t bytes, int iters, int n);

/// CPU-bound scaling: `tasks` calls of the compute kernel with `iterations` each, on `workers`;
/// samples are the wall time for all tasks. Named "<group> × <workers>", group "crew thread_pool"
/// / "crew process_pool" / "crew hybrid_pool".
series thread_pool_cpu(const config& cfg, unsigned workers, unsigned tasks,
                       std::uint64_t iterations);
series process_pool_cpu(const config& cfg, unsigned workers, unsigned tasks,
                        std::uint64_t iterations);
series hybrid_pool_cpu(const config& cfg, unsigned workers, unsigned tasks,
                       std::uint64_t iterations);

/// I/O-bound scaling: `tasks` sleeps of `sleep_s`, or `tasks` one-byte requests to the loopback
/// server on `port` (host order; each worker keeps one connection), on `workers`. Samples are
/// throughput in tasks/s. Named "<group> × <workers>", group "crew thread_pool, sleep" etc.
series thread_pool_sleep(const config& cfg, unsigned workers, unsigned tasks, double sleep_s);
series process_pool_sleep(const config& cfg, unsigned workers, unsigned tasks, double sleep_s);
series thread_pool_requests(const config& cfg, unsigned workers, unsigned tasks,
                            std::uint16_t port);
series process_pool_requests(const config& cfg, unsigned workers, unsigned tasks,
                             std::uint16_t port);

/// Data sharing: `tasks` tasks each reading all of a `bytes` input (checksum), on `workers`.
/// The copy case passes the input as a process_pool task argument (encoded, sent, decoded for
/// every task; heavy_repeat(cfg) measured runs); the shared-buffer case hands it over as a
/// crew::shared_array<const unsigned char>, whose memory the workers map (no copy per task).
series process_pool_copy(const config& cfg, unsigned workers, unsigned tasks,
                         const unsigned char* data, std::size_t bytes);
series process_pool_shared_buffer(const config& cfg, unsigned workers, unsigned tasks,
                                  const unsigned char* data, std::size_t bytes);

/// Handing a `bytes` crew::shared_buffer to a task that reads its first and last byte, against a
/// no-op task, on a process_pool of one worker: mean round trip of each, interleaved samples.
struct handover_figures {
  series no_op;
  series handover;
};
handover_figures process_pool_handover(const config& cfg, std::size_t bytes);

/// Fault isolation: `tasks` tasks of ~2 ms on `workers`, task `bad` writes to a PROT_NONE page.
struct fault_figures {
  series completed;  // tasks that produced a result, one sample per run
  series survived;   // 1 if the process that owns the pool lived, one sample per run
  /// Process pool only: runs in which the faulting task's future failed with kind `crashed`,
  /// and workers the pool started to replace dead ones (summed over runs).
  int crashed_futures = 0;
  int restarts = 0;
  int runs = 0;
};
fault_figures thread_pool_fault(const config& cfg, unsigned workers, unsigned tasks, unsigned bad);
fault_figures process_pool_fault(const config& cfg, unsigned workers, unsigned tasks, unsigned bad);

/// Peers: a process_pool's cost per trivial task, `trivial` tasks submitted then awaited on
/// `workers` workers, like ProcessPoolExecutor's figure.
series process_pool_per_task(const config& cfg, unsigned workers, unsigned trivial);

}  // namespace crew::lab::pools
