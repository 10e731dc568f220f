// crew/executor.hpp — what every crew executor offers, as a concept.
//
// thread_pool, process_pool, hybrid_pool and mpi_pool all accept
//   pool.submit<&fn>(args...)  -> crew::future<R>     (fn known at compile time)
//   pool.concurrency()         -> how many tasks run at once
// and the algorithms in crew/algorithm.hpp need nothing more. A function named by `submit<&fn>`
// must be usable in another process: a free function or a captureless lambda, whose arguments
// and result are serializable (crew/codec.hpp) on executors that cross process boundaries.
#pragma once

#include <concepts>
#include <cstddef>

#include "crew/future.hpp"

namespace crew {
namespace detail {
inline int executor_probe(int value) {
  return value;
}
}  // namespace detail

template <class E>
concept executor = requires(E& pool) {
  { pool.concurrency() } -> std::convertible_to<std::size_t>;
  { pool.template submit<&detail::executor_probe>(1) } -> std::same_as<future<int>>;
};

/// How a pool shuts down: finish everything queued, or cancel what has not started.
enum class shutdown_mode { drain, cancel_pending };

/// What a pool's stop_now() did, counted over the tasks it found. Every one of them has a
/// resolved future when stop_now() returns, except still_running ones on executors that cannot
/// stop a running task (their futures resolve when the task ends).
struct stop_report {
  std::size_t cancelled = 0;  ///< had not started: never run, `cancelled`
  std::size_t stopped = 0;    ///< running: the worker process was killed, `cancelled`
  /// Running and not stoppable (thread_pool: a thread cannot be killed; mpi_pool: a rank cannot
  /// be killed from rank 0): they run to their end. On thread_pool their futures get the task's
  /// own result; on mpi_pool they are failed `cancelled` now and the result is dropped.
  std::size_t still_running = 0;
};

/// What submit does when a pool's queue holds max_queued tasks (pool option on_full).
enum class queue_full {
  block,  ///< wait until a task leaves the queue (or the pool closes: pool_closed)
  fail,   ///< return a future that holds error_kind::queue_full at once
};

}  // namespace crew
