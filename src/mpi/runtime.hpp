// mpi/runtime.hpp — what the session, the pool (rank 0) and the serving ranks share.
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <thread>

namespace crew::detail {
class mpi_pool_core;
}

namespace crew::detail::mpi {

/// Throws std::runtime_error naming `call` and MPI's own description when rc is not success.
void check(int rc, const char* call);

/// The session's state on rank 0 (and, while serving, on the other ranks).
struct runtime {
  MPI_Comm comm = MPI_COMM_NULL;  // a duplicate of MPI_COMM_WORLD: crew's messages only
  int rank = 0;
  int size = 1;
  int argc = 0;
  char** argv = nullptr;
  mpi_pool_core* active_pool = nullptr;  // rank 0: the one live pool
  bool rank_lost = false;                // rank 0: a pool found a rank dead
};

/// The live session's runtime, or null.
runtime* current_runtime() noexcept;

/// Serves pools sent by `root` on `comm` until told to end (or, for a spawned rank, until its
/// pool closes). Returns whether the caller may finalise MPI (false when a rank of the job died).
bool serve(MPI_Comm comm, int root, bool spawned);

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Waiting without a blocking MPI call: spin (yielding the core) for a short while, then sleep
/// in growing steps. Busy-polling ranks on an oversubscribed node would otherwise starve each
/// other; yielding keeps a hand-off that arrives during the spin phase in the microseconds.
class backoff {
 public:
  static constexpr unsigned spin_rounds = 2000;

  explicit backoff(std::chrono::microseconds max_sleep = std::chrono::microseconds{500}) noexcept
      : max_sleep_(max_sleep) {}
  void reset() noexcept { rounds_ = 0; }
  void pause() noexcept {
    // The first rounds only spin: a reply usually comes within microseconds, and yielding hands
    // the core to whatever else is runnable (on a loaded node, for milliseconds). Then yield, so
    // that ranks oversubscribing a node still take turns; 2,000 yields measured ~100-300 µs on
    // the 2-core reference machine (docs/mpi.md). Then sleep in growing steps.
    constexpr unsigned busy_rounds = 256;
    if (rounds_ < busy_rounds) {
      ++rounds_;
      cpu_relax();
      return;
    }
    if (rounds_ < spin_rounds) {
      ++rounds_;
      std::this_thread::yield();
      return;
    }
    const unsigned step = std::min<unsigned>(rounds_ - spin_rounds, 5);
    ++rounds_;
    std::this_thread::sleep_for(std::min(std::chrono::microseconds{20L << step}, max_sleep_));
  }
  /// Whether the spin phase is over (the caller may wait on something better meanwhile).
  [[nodiscard]] bool sleeping() const noexcept { return rounds_ >= spin_rounds; }
  [[nodiscard]] std::chrono::microseconds next_sleep() const noexcept {
    const unsigned step = rounds_ >= spin_rounds ? std::min<unsigned>(rounds_ - spin_rounds, 5) : 0;
    return std::min(std::chrono::microseconds{20L << step}, max_sleep_);
  }
  void count_sleep() noexcept { ++rounds_; }

 private:
  std::chrono::microseconds max_sleep_;
  unsigned rounds_ = 0;
};

}  // namespace crew::detail::mpi
