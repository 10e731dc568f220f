// crew/executor.hpp — what every crew executor offers, as concepts, and the counters they share.
//
// Two concepts:
//   crew::executor — what the algorithms (crew/algorithm.hpp) and streams (crew/stream.hpp)
//     need: `pool.submit<&fn>(args...) -> crew::future<R>` and `pool.concurrency()`. Small on
//     purpose, so that a user's own executor can run them.
//   crew::pool — the whole interface that thread_pool, process_pool, hybrid_pool, mpi_pool and
//     auto_pool share, so that switching from one to another is a one-line change:
//       submit<&fn>(args...), submit(f, args...)       -> crew::future<R>
//       detach<&fn>(args...), detach(f, args...)       -> bool (false: refused, never runs)
//       wait_idle(), shutdown(), shutdown(mode)
//       closed()                                       -> bool
//       stats()                                        -> a crew::pool_stats (or derived)
//       concurrency()                                  -> std::size_t
//     Each pool's header checks it with a static_assert.
//
// On the executors whose tasks run in another process (process_pool, hybrid_pool, mpi_pool, and
// auto_pool, which may hold one), `f` in submit(f, args...) must be stateless — a captureless
// lambda or an empty, default-constructible function object — because the worker builds its own
// `f` and only the arguments travel; a callable with state is a compile-time error that says so.
// A function named by `submit<&fn>` must be usable in another process there too: a free function
// or a captureless lambda whose arguments and result are serializable (crew/codec.hpp).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>

#include "crew/future.hpp"

namespace crew {

/// How a pool shuts down: finish everything queued, or cancel what has not started.
enum class shutdown_mode { drain, cancel_pending };

/// The counters every crew pool keeps, with the same meaning everywhere. Each pool's stats()
/// returns this or a type derived from it that adds the pool's own counters. Counts are since
/// construction; `queued` and `running` are instantaneous and approximate while tasks move.
/// Every task a pool accepted ends in exactly one of completed, failed or cancelled (a
/// thread_pool task that ran on a thread waiting for it counts in thread_pool_stats::inlined
/// instead); a submission refused because the pool is shut down (pool_closed) is not counted.
struct pool_stats {
  std::size_t workers = 0;      ///< tasks that can run at once right now (live workers)
  std::size_t queued = 0;       ///< accepted, not yet started
  std::size_t running = 0;      ///< started, not yet finished
  std::uint64_t completed = 0;  ///< produced a value
  /// Ended with an error other than cancellation: threw, crashed, timed out, ran out of memory,
  /// lost its worker, or its arguments or result could not be (de)serialized.
  std::uint64_t failed = 0;
  /// Ended as error_kind::cancelled: by future::cancel() or shutdown(cancel_pending).
  std::uint64_t cancelled = 0;
};

namespace detail {
inline int executor_probe(int value) {
  return value;
}
/// A stateless function object, as a user's captureless lambda would be.
struct stateless_probe {
  int operator()(int value) const { return value; }
};
}  // namespace detail

/// What the algorithms need: submit<&fn>(args...) and concurrency().
template <class E>
concept executor = requires(E& pool) {
  { pool.concurrency() } -> std::convertible_to<std::size_t>;
  { pool.template submit<&detail::executor_probe>(1) } -> std::same_as<future<int>>;
};

/// The whole interface every crew pool offers (see the top of this file).
template <class E>
concept pool = executor<E> && requires(E& p, const E& cp, shutdown_mode mode) {
  { p.submit(detail::stateless_probe{}, 1) } -> std::same_as<future<int>>;
  { p.template detach<&detail::executor_probe>(1) } -> std::same_as<bool>;
  { p.detach(detail::stateless_probe{}, 1) } -> std::same_as<bool>;
  p.wait_idle();
  p.shutdown();
  p.shutdown(mode);
  { cp.closed() } -> std::same_as<bool>;
  { cp.stats() } -> std::derived_from<pool_stats>;
  { cp.concurrency() } -> std::convertible_to<std::size_t>;
};

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
