// crew/detail/algorithm/chunk.hpp — how the algorithms cut a range and what each chunk runs.
//
// The chunk functions are ordinary function templates, named at compile time
// (`ex.template submit<&map_chunk<Fn, In>>(chunk)`), so an executor in another process finds them
// in its registry and runs them unchanged. Each takes its chunk by value: the thread pool moves it
// into the task, a process pool serializes it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/error.hpp"
#include "crew/future.hpp"

namespace crew::detail {

/// Chunks per unit of concurrency when the caller leaves the grain at 0. Several per worker so that
/// uneven items even out by stealing; few enough that the per-chunk cost (a task, a future, for a
/// process pool a message) stays far below the work. With 4, bench/thread_pool's 10^8-item loop
/// runs level with OpenMP's static schedule on 2 workers; other values were not compared yet.
inline constexpr std::size_t chunks_per_worker = 4;

struct chunk_plan {
  std::size_t count = 0;  ///< number of chunks
  std::size_t grain = 0;  ///< items per chunk (the last one may hold fewer)
};

/// Splits n items: `grain` items per chunk, or, when grain is 0, about `per_worker` chunks per
/// unit of concurrency.
constexpr chunk_plan plan_chunks(std::size_t n, std::size_t concurrency, std::size_t grain,
                                 std::size_t per_worker = chunks_per_worker) noexcept {
  if (n == 0) return {};
  if (grain == 0) {
    const std::size_t target = std::max<std::size_t>(concurrency, 1) * per_worker;
    grain = (n + target - 1) / target;
  }
  return {(n + grain - 1) / grain, grain};
}

template <auto Fn, class In>
using map_result_t = std::decay_t<std::invoke_result_t<decltype(Fn), In&&>>;

template <auto Fn, class In>
std::vector<map_result_t<Fn, In>> map_chunk(std::vector<In> chunk) {
  std::vector<map_result_t<Fn, In>> out;
  out.reserve(chunk.size());
  for (auto& item : chunk) out.push_back(std::invoke(Fn, std::move(item)));
  return out;
}

template <auto Fn, class In>
void for_each_chunk(std::vector<In> chunk) {
  for (auto& item : chunk) std::invoke(Fn, item);
}

template <auto Fn, class I>
void for_index_chunk(I begin, I end) {
  for (I i = begin; i != end; ++i) std::invoke(Fn, i);
}

template <auto Fn, class I>
void for_block_chunk(I begin, I end) {
  std::invoke(Fn, begin, end);
}

template <auto Op, class T>
T reduce_chunk(std::vector<T> chunk, T identity) {
  T acc = std::move(identity);
  for (auto& item : chunk) acc = std::invoke(Op, std::move(acc), std::move(item));
  return acc;
}

template <auto Fn, auto Op, class In, class T>
T transform_reduce_chunk(std::vector<In> chunk, T identity) {
  T acc = std::move(identity);
  for (auto& item : chunk) acc = std::invoke(Op, std::move(acc), std::invoke(Fn, std::move(item)));
  return acc;
}

/// How long an algorithm waits for its chunks (algorithm_options::deadline / timeout).
struct wait_limit {
  std::optional<std::chrono::steady_clock::time_point> deadline{};
  /// The chunks read the caller's data or callable (the callable forms): chunks still running at
  /// the deadline are waited for before the algorithm throws.
  bool refers_to_caller = false;

  [[nodiscard]] bool passed() const {
    return deadline && std::chrono::steady_clock::now() >= *deadline;
  }
  [[noreturn]] static void throw_timed_out(std::size_t late, std::size_t total) {
    throw task_error{error_kind::timed_out,
                     "crew algorithm: the deadline passed with " + std::to_string(late) + " of " +
                         std::to_string(total) +
                         " chunks unfinished; they were cancelled (a running thread-pool chunk "
                         "runs on, its result dropped)"};
  }
};

/// Waits for every future — or, with a deadline, until it: then every unfinished chunk is
/// cancelled (a queued one never runs) and task_error{timed_out} is thrown, after waiting for
/// the running ones when they refer to the caller's data.
template <class T>
void wait_within(std::vector<future<T>>& futures, const wait_limit& limit) {
  if (!limit.deadline) {
    for (auto& f : futures) f.wait();
    return;
  }
  std::size_t late = 0;
  for (auto& f : futures) {
    if (f.wait_until(*limit.deadline) != std::future_status::ready) ++late;
  }
  if (late == 0) return;
  for (auto& f : futures) {
    if (!f.ready()) (void)f.cancel();
  }
  if (limit.refers_to_caller) {
    for (auto& f : futures) f.wait();
  }
  wait_limit::throw_timed_out(late, futures.size());
}

/// Waits for every future (so no task still uses the caller's data), then returns the values in
/// order, rethrowing the first failure in that order.
template <class T>
std::vector<T> gather(std::vector<future<T>>& futures, const wait_limit& limit = {}) {
  wait_within(futures, limit);
  std::vector<T> out;
  out.reserve(futures.size());
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

inline void gather(std::vector<future<void>>& futures, const wait_limit& limit = {}) {
  wait_within(futures, limit);
  for (auto& f : futures) f.get();
}
inline void gather_all(std::vector<future<void>> futures, const wait_limit& limit = {}) {
  gather(futures, limit);
}

/// Submits one task per chunk through `submit(lo, hi)`. If a submission throws, waits for the
/// chunks already submitted before rethrowing.
template <class T, class Submit>
std::vector<future<T>> submit_chunks(chunk_plan plan, std::size_t n, Submit&& submit) {
  std::vector<future<T>> futures;
  futures.reserve(plan.count);
  try {
    for (std::size_t lo = 0; lo < n; lo += plan.grain) {
      futures.push_back(submit(lo, std::min(n, lo + plan.grain)));
    }
  } catch (...) {
    for (auto& f : futures) f.wait();
    throw;
  }
  return futures;
}

/// Runs body(g) with g a chunk-local copy of f when f is small and trivially copyable (a lambda
/// capturing a few pointers), else with f itself. A local copy lets the compiler keep the
/// captures in registers: through a reference, every store the loop makes (to a char buffer, say)
/// might alias them and forces a reload, which also blocks vectorization.
template <class F, class Body>
decltype(auto) with_local_copy(F& f, Body&& body) {
  using plain = std::remove_cvref_t<F>;
  if constexpr (std::is_trivially_copyable_v<plain> && sizeof(plain) <= 64) {
    plain local = f;
    return body(local);
  } else {
    return body(f);
  }
}

/// An arbitrary callable, to ask whether an executor runs closures (shares memory with its caller).
/// It has state, as a closure with captures does: pools of worker processes accept only
/// stateless callables, which they rebuild in the worker.
struct any_closure {
  int state = 0;
  void operator()() const noexcept {}
};

}  // namespace crew::detail
