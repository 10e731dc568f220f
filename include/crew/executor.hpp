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

}  // namespace crew
