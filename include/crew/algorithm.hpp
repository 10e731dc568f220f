// crew/algorithm.hpp — parallel map, for_each, parallel_for, reduce and transform_reduce over any
// crew executor; parallel_for_blocks (f(block_begin, block_end)); submit_for / submit_for_blocks
// (the loops without blocking: one future per chunk). Loop bounds may be of any integral type,
// signed too ([-5, 5) is ten calls); the index has the bounds' common type.
//
// Two forms of each:
//  - compile-time:  crew::map<&fn>(ex, inputs, {.grain = n}). Works on every executor (it only uses
//    ex.concurrency() and ex.template submit<&chunk_fn>(chunk)); each chunk's items are copied
//    into its task, so a process or MPI pool can ship them.
//  - callable:      crew::map(pool, inputs, lambda). Only for executors that run closures in the
//    caller's address space (the thread pool); chunks refer to the caller's range, nothing is
//    copied, and the callable may capture by reference.
//
// Chunking: n items are cut into chunks of `grain` items; grain 0 (the default) means automatic,
// about 4 chunks per unit of ex.concurrency(), so a million tiny items are a handful of tasks.
// An empty range submits nothing and returns at once (empty vector / the identity).
//
// Failure: the algorithm waits for every chunk — when it returns or throws, no task still refers
// to the caller's data or callable — then rethrows the first failure in input order (the item's
// own exception on a thread pool, a task_error elsewhere). Other chunks still run to the end.
//
// Progress: {.progress = callback} (crew/progress.hpp) reports items done — the items of the
// chunks that completed, failed ones included — out of the range's size, on the calling thread,
// every progress_interval and once at the end (an empty range: one final call, 0 of 0). With a
// callback and grain 0, chunks are finer (16 per unit of concurrency) so that the steps are small.
// The future-returning forms (submit_for, submit_for_blocks) do not wait, so they refuse a
// callback (std::invalid_argument).
//
// Thread-safety: each call is independent; the inputs must not be modified while it runs.
// Blocking: every call blocks until all its chunks have finished; on a pool worker it runs other
// tasks meanwhile, so the algorithms can be nested inside tasks of the same pool.
// reduce/transform_reduce: `op` must be associative and `identity` its identity element: chunks
// are folded separately (each from `identity`), then the chunk results left to right.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <iterator>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/detail/algorithm/chunk.hpp"
#include "crew/detail/algorithm/progress.hpp"
#include "crew/executor.hpp"
#include "crew/future.hpp"
#include "crew/progress.hpp"

namespace crew {

/// Options shared by the algorithms.
struct algorithm_options {
  /// Items per task; 0 = automatic (about 4 chunks per unit of the executor's concurrency).
  std::size_t grain = 0;
  /// Called with the progress of the call (crew/progress.hpp); empty: no reporting.
  progress_callback progress{};
  /// At most one progress call per interval, plus the final one; 0: one per finished chunk.
  /// Negative: std::invalid_argument.
  std::chrono::steady_clock::duration progress_interval = default_progress_interval;
  /// Give up at this time: chunks not finished are cancelled (queued ones never run; on a
  /// process pool a running one's worker is replaced; a thread runs on, its result dropped) and
  /// the call throws task_error{timed_out}. The callable forms first wait for chunks still
  /// running (they read the caller's data). Unset: none. The submit_for forms do not wait and
  /// refuse a deadline (std::invalid_argument): pass their futures to crew::wait with a timeout.
  std::optional<std::chrono::steady_clock::time_point> deadline{};
  /// As deadline, counted from the call; with both, the earlier counts. Zero or negative: the
  /// call submits nothing and throws timed_out (an empty input still returns at once).
  std::optional<std::chrono::steady_clock::duration> timeout{};
};

/// An executor that also runs arbitrary closures in the caller's process: ex.submit(callable).
template <class E>
concept closure_executor = executor<E> && requires(E& ex) {
  { ex.submit(detail::any_closure{}) } -> std::same_as<future<void>>;
};

/// A range the algorithms can cut into chunks.
template <class R>
concept chunkable_range = std::ranges::random_access_range<R> && std::ranges::sized_range<R>;

namespace detail {
/// The iterator to element i. (A view's difference type need not be std::ptrdiff_t: iota_view
/// over 64-bit integers uses a wider one.)
template <class R>
auto at_index(R& inputs, std::size_t i) {
  return std::ranges::begin(inputs) + static_cast<std::ranges::range_difference_t<R>>(i);
}

template <chunkable_range R>
std::vector<std::ranges::range_value_t<R>> copy_chunk(const R& inputs, std::size_t lo,
                                                      std::size_t hi) {
  std::vector<std::ranges::range_value_t<R>> out;
  out.reserve(hi - lo);
  auto it = at_index(inputs, lo);
  for (std::size_t i = lo; i < hi; ++i, ++it) out.push_back(*it);
  return out;
}

/// The number of values in [begin, end) of an integral type, 0 when begin >= end. Computed in
/// the unsigned type, so that [-5, 5) is 10 and [INT64_MIN, INT64_MAX) does not overflow.
template <std::integral I>
constexpr std::size_t index_count(I begin, I end) noexcept {
  if (!(begin < end)) return 0;
  using U = std::make_unsigned_t<I>;
  return static_cast<std::size_t>(static_cast<U>(static_cast<U>(end) - static_cast<U>(begin)));
}

/// begin + offset for an offset below index_count(begin, end): no signed overflow.
template <std::integral I>
constexpr I index_at(I begin, std::size_t offset) noexcept {
  using U = std::make_unsigned_t<I>;
  return static_cast<I>(static_cast<U>(static_cast<U>(begin) + static_cast<U>(offset)));
}

/// How a call cuts n items: finer when progress is reported and the grain is automatic.
inline chunk_plan plan_for(std::size_t n, std::size_t concurrency,
                           const algorithm_options& options) noexcept {
  return plan_chunks(n, concurrency, options.grain,
                     options.progress ? progress_chunks_per_worker : chunks_per_worker);
}

/// The reporter of one blocking call over n items (checks the interval first).
inline progress_reporter make_reporter(const algorithm_options& options, std::size_t n,
                                       const char* who) {
  check_progress_interval(options.progress_interval, who);
  return progress_reporter{options.progress, options.progress_interval, n};
}

/// The algorithm's deadline, from the call's options (the earlier of deadline and timeout).
inline wait_limit limit_of(const algorithm_options& options, bool refers_to_caller) {
  wait_limit out;
  out.deadline = options.deadline;
  if (options.timeout) {
    const auto from_timeout = std::chrono::steady_clock::now() + *options.timeout;
    if (!out.deadline || from_timeout < *out.deadline) out.deadline = from_timeout;
  }
  out.refers_to_caller = refers_to_caller;
  return out;
}

/// The limit of a call over n items; throws timed_out, submitting nothing, when it has passed.
inline wait_limit start_limit(const algorithm_options& options, bool refers_to_caller,
                              std::size_t n) {
  wait_limit out = limit_of(options, refers_to_caller);
  if (n != 0 && out.passed()) {
    const std::size_t chunks = plan_chunks(n, 1, options.grain).count;
    wait_limit::throw_timed_out(chunks, chunks);
  }
  return out;
}

/// The future-returning forms do not wait, so they cannot keep a deadline.
inline void refuse_deadline(const algorithm_options& options) {
  if (options.deadline || options.timeout) {
    throw std::invalid_argument(
        "crew::submit_for: a deadline needs a call that waits; pass the futures to crew::wait "
        "with a timeout instead");
  }
}

/// The future-returning forms cannot report: nobody waits inside them.
inline void refuse_progress(const algorithm_options& options, const char* who) {
  if (options.progress) {
    throw std::invalid_argument(std::string{who} +
                                ": returns futures without waiting, so it cannot report progress "
                                "(use the blocking form, or watch the futures)");
  }
}

/// Waits for every chunk, reporting progress meanwhile, then returns their values in order
/// (rethrowing the first failure). `plan` is the one the chunks were cut by.
template <class T>
auto gather_reporting(std::vector<future<T>>& futures, std::size_t n, chunk_plan plan,
                      progress_reporter& progress, const wait_limit& limit) {
  if (progress) wait_reporting(futures, n, plan.grain, progress, limit.deadline);
  return gather(futures, limit);
}

/// One task per chunk of [begin, end): ex.submit<Chunk>(chunk_begin, chunk_end).
template <auto Chunk, class I, class E>
std::vector<future<void>> submit_index_chunks(E& ex, I begin, I end, chunk_plan plan) {
  const std::size_t n = index_count(begin, end);
  if (n == 0) return {};
  return submit_chunks<void>(plan, n, [&](std::size_t lo, std::size_t hi) {
    return ex.template submit<Chunk>(index_at(begin, lo), index_at(begin, hi));
  });
}

/// parallel_for and parallel_for_blocks: the chunks of [begin, end), waited for with progress.
template <auto Chunk, class I, class E>
void run_index_chunks(E& ex, I begin, I end, const algorithm_options& options, const char* who) {
  const std::size_t n = index_count(begin, end);
  progress_reporter progress = make_reporter(options, n, who);
  const wait_limit limit = start_limit(options, false, n);
  const chunk_plan plan = plan_for(n, ex.concurrency(), options);
  auto futures = submit_index_chunks<Chunk>(ex, begin, end, plan);
  gather_reporting(futures, n, plan, progress, limit);
}

template <class A, class B>
concept loop_bounds =
    std::integral<A> && std::integral<B> && !std::same_as<A, bool> && !std::same_as<B, bool>;
}  // namespace detail

// ---------------------------------------------------------------- compile-time forms (any
// executor)

/// Returns {Fn(x) for x in inputs}, in input order.
template <auto Fn, executor E, chunkable_range R>
auto map(E& ex, const R& inputs, algorithm_options options = {}) {
  using in = std::ranges::range_value_t<R>;
  using out = detail::map_result_t<Fn, in>;
  const std::size_t n = std::ranges::size(inputs);
  detail::progress_reporter progress = detail::make_reporter(options, n, "crew::map");
  const detail::wait_limit limit = detail::start_limit(options, false, n);
  std::vector<out> result;
  if (n == 0) {
    progress.finish();
    return result;
  }
  const detail::chunk_plan plan = detail::plan_for(n, ex.concurrency(), options);
  auto futures =
      detail::submit_chunks<std::vector<out>>(plan, n, [&](std::size_t lo, std::size_t hi) {
        return ex.template submit<&detail::map_chunk<Fn, in>>(detail::copy_chunk(inputs, lo, hi));
      });
  result.reserve(n);
  for (auto&& part : detail::gather_reporting(futures, n, plan, progress, limit)) {
    std::move(part.begin(), part.end(), std::back_inserter(result));
  }
  return result;
}

/// Calls Fn(x) for every x in inputs (on a copy of x: the executor may be another process).
template <auto Fn, executor E, chunkable_range R>
void for_each(E& ex, const R& inputs, algorithm_options options = {}) {
  using in = std::ranges::range_value_t<R>;
  const std::size_t n = std::ranges::size(inputs);
  detail::progress_reporter progress = detail::make_reporter(options, n, "crew::for_each");
  const detail::wait_limit limit = detail::start_limit(options, false, n);
  if (n == 0) return progress.finish();
  const detail::chunk_plan plan = detail::plan_for(n, ex.concurrency(), options);
  auto futures = detail::submit_chunks<void>(plan, n, [&](std::size_t lo, std::size_t hi) {
    return ex.template submit<&detail::for_each_chunk<Fn, in>>(detail::copy_chunk(inputs, lo, hi));
  });
  detail::gather_reporting(futures, n, plan, progress, limit);
}

/// Calls Fn(i) for every i in [begin, end), i of the bounds' common integral type (signed bounds
/// work: [-5, 5) is ten calls); nothing when begin >= end.
template <auto Fn, executor E, class B, class L>
requires detail::loop_bounds<B, L>
void parallel_for(E& ex, B begin, L end, algorithm_options options = {}) {
  using I = std::common_type_t<B, L>;
  detail::run_index_chunks<&detail::for_index_chunk<Fn, I>, I>(
      ex, static_cast<I>(begin), static_cast<I>(end), options, "crew::parallel_for");
}

/// Calls Fn(block_begin, block_end) once per chunk of [begin, end) (BS::thread_pool's blocks):
/// for loops whose body wants its range at once.
template <auto Fn, executor E, class B, class L>
requires detail::loop_bounds<B, L>
void parallel_for_blocks(E& ex, B begin, L end, algorithm_options options = {}) {
  using I = std::common_type_t<B, L>;
  detail::run_index_chunks<&detail::for_block_chunk<Fn, I>, I>(
      ex, static_cast<I>(begin), static_cast<I>(end), options, "crew::parallel_for_blocks");
}

/// As parallel_for, without blocking: one future per chunk, in order (empty when begin >= end).
/// Wait for them all (crew::wait, when_all) before reading what the loop wrote.
template <auto Fn, executor E, class B, class L>
requires detail::loop_bounds<B, L>
[[nodiscard]] std::vector<future<void>> submit_for(E& ex, B begin, L end,
                                                   algorithm_options options = {}) {
  using I = std::common_type_t<B, L>;
  detail::refuse_progress(options, "crew::submit_for");
  detail::refuse_deadline(options);
  return detail::submit_index_chunks<&detail::for_index_chunk<Fn, I>, I>(
      ex, static_cast<I>(begin), static_cast<I>(end),
      detail::plan_for(detail::index_count(static_cast<I>(begin), static_cast<I>(end)),
                       ex.concurrency(), options));
}

/// As parallel_for_blocks, without blocking: one future per block, in order.
template <auto Fn, executor E, class B, class L>
requires detail::loop_bounds<B, L>
[[nodiscard]] std::vector<future<void>> submit_for_blocks(E& ex, B begin, L end,
                                                          algorithm_options options = {}) {
  using I = std::common_type_t<B, L>;
  detail::refuse_progress(options, "crew::submit_for_blocks");
  detail::refuse_deadline(options);
  return detail::submit_index_chunks<&detail::for_block_chunk<Fn, I>, I>(
      ex, static_cast<I>(begin), static_cast<I>(end),
      detail::plan_for(detail::index_count(static_cast<I>(begin), static_cast<I>(end)),
                       ex.concurrency(), options));
}

/// Folds inputs with Op (associative; identity is its identity element).
template <auto Op, executor E, chunkable_range R, class T>
T reduce(E& ex, const R& inputs, T identity, algorithm_options options = {}) {
  const std::size_t n = std::ranges::size(inputs);
  detail::progress_reporter progress = detail::make_reporter(options, n, "crew::reduce");
  const detail::wait_limit limit = detail::start_limit(options, false, n);
  if (n == 0) {
    progress.finish();
    return identity;
  }
  const detail::chunk_plan plan = detail::plan_for(n, ex.concurrency(), options);
  auto futures = detail::submit_chunks<T>(plan, n, [&](std::size_t lo, std::size_t hi) {
    std::vector<T> chunk;
    chunk.reserve(hi - lo);
    auto first = detail::at_index(inputs, lo);
    for (std::size_t i = lo; i < hi; ++i, ++first) chunk.push_back(static_cast<T>(*first));
    return ex.template submit<&detail::reduce_chunk<Op, T>>(std::move(chunk), identity);
  });
  T acc = identity;
  for (auto&& part : detail::gather_reporting(futures, n, plan, progress, limit))
    acc = std::invoke(Op, std::move(acc), std::move(part));
  return acc;
}

/// Folds {Fn(x) for x in inputs} with Op (associative; identity is its identity element).
template <auto Fn, auto Op, executor E, chunkable_range R, class T>
T transform_reduce(E& ex, const R& inputs, T identity, algorithm_options options = {}) {
  using in = std::ranges::range_value_t<R>;
  const std::size_t n = std::ranges::size(inputs);
  detail::progress_reporter progress = detail::make_reporter(options, n, "crew::transform_reduce");
  const detail::wait_limit limit = detail::start_limit(options, false, n);
  if (n == 0) {
    progress.finish();
    return identity;
  }
  const detail::chunk_plan plan = detail::plan_for(n, ex.concurrency(), options);
  auto futures = detail::submit_chunks<T>(plan, n, [&](std::size_t lo, std::size_t hi) {
    return ex.template submit<&detail::transform_reduce_chunk<Fn, Op, in, T>>(
        detail::copy_chunk(inputs, lo, hi), identity);
  });
  T acc = identity;
  for (auto&& part : detail::gather_reporting(futures, n, plan, progress, limit))
    acc = std::invoke(Op, std::move(acc), std::move(part));
  return acc;
}

// ------------------------------------------------- callable forms (executors that share memory)

/// Returns {f(x) for x in inputs}, in input order. Inputs are read in place, not copied.
template <closure_executor E, chunkable_range R, class F>
requires std::invocable<F&, std::ranges::range_reference_t<const R&>>
auto map(E& ex, const R& inputs, F&& f, algorithm_options options = {}) {
  using out = std::decay_t<std::invoke_result_t<F&, std::ranges::range_reference_t<const R&>>>;
  const std::size_t n = std::ranges::size(inputs);
  detail::progress_reporter progress = detail::make_reporter(options, n, "crew::map");
  const detail::wait_limit limit = detail::start_limit(options, true, n);
  std::vector<out> result;
  if (n == 0) {
    progress.finish();
    return result;
  }
  const detail::chunk_plan plan = detail::plan_for(n, ex.concurrency(), options);
  auto futures =
      detail::submit_chunks<std::vector<out>>(plan, n, [&](std::size_t lo, std::size_t hi) {
        return ex.submit([&inputs, &f, lo, hi] {
          std::vector<out> part;
          part.reserve(hi - lo);
          auto it = detail::at_index(inputs, lo);
          for (std::size_t i = lo; i < hi; ++i, ++it) part.push_back(std::invoke(f, *it));
          return part;
        });
      });
  result.reserve(n);
  for (auto&& part : detail::gather_reporting(futures, n, plan, progress, limit)) {
    std::move(part.begin(), part.end(), std::back_inserter(result));
  }
  return result;
}

/// Calls f(x) for every element, in place: f may modify x when `inputs` is not const.
template <closure_executor E, chunkable_range R, class F>
requires std::invocable<F&, std::ranges::range_reference_t<R&>>
void for_each(E& ex, R&& inputs, F&& f, algorithm_options options = {}) {
  const std::size_t n = std::ranges::size(inputs);
  detail::progress_reporter progress = detail::make_reporter(options, n, "crew::for_each");
  const detail::wait_limit limit = detail::start_limit(options, true, n);
  if (n == 0) return progress.finish();
  const detail::chunk_plan plan = detail::plan_for(n, ex.concurrency(), options);
  auto futures = detail::submit_chunks<void>(plan, n, [&](std::size_t lo, std::size_t hi) {
    return ex.submit([&inputs, &f, lo, hi] {
      detail::with_local_copy(f, [&inputs, lo, hi](auto& g) {
        auto it = detail::at_index(inputs, lo);
        for (std::size_t i = lo; i < hi; ++i, ++it) std::invoke(g, *it);
      });
    });
  });
  detail::gather_reporting(futures, n, plan, progress, limit);
}

namespace detail {
/// One task per chunk of [begin, end), each calling body(g, first, last) with g a chunk-local
/// copy of f (see with_local_copy). The tasks refer to f: it must outlive them.
template <class E, class I, class F, class Body>
std::vector<future<void>> submit_closure_chunks(E& ex, I begin, I end, F& f,
                                                const algorithm_options& options, Body body) {
  const std::size_t n = index_count(begin, end);
  if (n == 0) return {};
  return submit_chunks<void>(
      plan_for(n, ex.concurrency(), options), n, [&](std::size_t lo, std::size_t hi) {
        return ex.submit([&f, body, first = index_at(begin, lo), last = index_at(begin, hi)] {
          with_local_copy(f, [&body, first, last](auto& g) { body(g, first, last); });
        });
      });
}

/// The blocking loops over a callable: the chunks, waited for with progress.
template <class E, class I, class F, class Body>
void run_closure_chunks(E& ex, I begin, I end, F& f, const algorithm_options& options, Body body,
                        const char* who) {
  const std::size_t n = index_count(begin, end);
  progress_reporter progress = make_reporter(options, n, who);
  const wait_limit limit = start_limit(options, true, n);
  auto futures = submit_closure_chunks(ex, begin, end, f, options, std::move(body));
  gather_reporting(futures, n, plan_for(n, ex.concurrency(), options), progress, limit);
}
}  // namespace detail

/// Calls f(i) for every i in [begin, end), i of the bounds' common integral type (signed bounds
/// work: [-5, 5) is ten calls); nothing when begin >= end.
template <closure_executor E, class B, class L, class F>
requires detail::loop_bounds<B, L> && std::invocable<F&, std::common_type_t<B, L>>
void parallel_for(E& ex, B begin, L end, F&& f, algorithm_options options = {}) {
  using I = std::common_type_t<B, L>;
  detail::run_closure_chunks(
      ex, static_cast<I>(begin), static_cast<I>(end), f, options,
      [](auto& g, I first, I last) {
        for (I i = first; i != last; ++i) std::invoke(g, i);
      },
      "crew::parallel_for");
}

/// Calls f(block_begin, block_end) once per chunk of [begin, end).
template <closure_executor E, class B, class L, class F>
requires detail::loop_bounds<B, L> &&
    std::invocable<F&, std::common_type_t<B, L>, std::common_type_t<B, L>>
void parallel_for_blocks(E& ex, B begin, L end, F&& f, algorithm_options options = {}) {
  using I = std::common_type_t<B, L>;
  detail::run_closure_chunks(
      ex, static_cast<I>(begin), static_cast<I>(end), f, options,
      [](auto& g, I first, I last) { std::invoke(g, first, last); }, "crew::parallel_for_blocks");
}

/// As parallel_for, without blocking: one future per chunk, in order. The tasks refer to f (not
/// copied): f must outlive them — wait for every future (crew::wait) before it goes.
template <closure_executor E, class B, class L, class F>
requires detail::loop_bounds<B, L> && std::invocable<F&, std::common_type_t<B, L>>
[[nodiscard]] std::vector<future<void>> submit_for(E& ex, B begin, L end, F& f,
                                                   algorithm_options options = {}) {
  using I = std::common_type_t<B, L>;
  detail::refuse_progress(options, "crew::submit_for");
  detail::refuse_deadline(options);
  return detail::submit_closure_chunks(ex, static_cast<I>(begin), static_cast<I>(end), f, options,
                                       [](auto& g, I first, I last) {
                                         for (I i = first; i != last; ++i) std::invoke(g, i);
                                       });
}

/// As parallel_for_blocks, without blocking; f must outlive the futures.
template <closure_executor E, class B, class L, class F>
requires detail::loop_bounds<B, L> &&
    std::invocable<F&, std::common_type_t<B, L>, std::common_type_t<B, L>>
[[nodiscard]] std::vector<future<void>> submit_for_blocks(E& ex, B begin, L end, F& f,
                                                          algorithm_options options = {}) {
  using I = std::common_type_t<B, L>;
  detail::refuse_progress(options, "crew::submit_for_blocks");
  detail::refuse_deadline(options);
  return detail::submit_closure_chunks(
      ex, static_cast<I>(begin), static_cast<I>(end), f, options,
      [](auto& g, I first, I last) { std::invoke(g, first, last); });
}

/// Folds inputs with op (associative; identity is its identity element). Inputs are not copied.
template <closure_executor E, chunkable_range R, class T, class Op>
requires std::invocable<Op&, T, std::ranges::range_reference_t<const R&>> T
reduce(E& ex, const R& inputs, T identity, Op&& op, algorithm_options options = {}) {
  const std::size_t n = std::ranges::size(inputs);
  detail::progress_reporter progress = detail::make_reporter(options, n, "crew::reduce");
  const detail::wait_limit limit = detail::start_limit(options, true, n);
  if (n == 0) {
    progress.finish();
    return identity;
  }
  const detail::chunk_plan plan = detail::plan_for(n, ex.concurrency(), options);
  auto futures = detail::submit_chunks<T>(plan, n, [&](std::size_t lo, std::size_t hi) {
    return ex.submit([&inputs, &op, &identity, lo, hi] {
      T acc = identity;
      auto it = detail::at_index(inputs, lo);
      for (std::size_t i = lo; i < hi; ++i, ++it) acc = std::invoke(op, std::move(acc), *it);
      return acc;
    });
  });
  T acc = identity;
  for (auto&& part : detail::gather_reporting(futures, n, plan, progress, limit))
    acc = std::invoke(op, std::move(acc), std::move(part));
  return acc;
}

/// Folds {fn(x) for x in inputs} with op. Inputs are not copied.
template <closure_executor E, chunkable_range R, class T, class Op, class Fn>
requires std::invocable<Fn&, std::ranges::range_reference_t<const R&>> T transform_reduce(
    E& ex, const R& inputs, T identity, Op&& op, Fn&& fn, algorithm_options options = {}) {
  const std::size_t n = std::ranges::size(inputs);
  detail::progress_reporter progress = detail::make_reporter(options, n, "crew::transform_reduce");
  const detail::wait_limit limit = detail::start_limit(options, true, n);
  if (n == 0) {
    progress.finish();
    return identity;
  }
  const detail::chunk_plan plan = detail::plan_for(n, ex.concurrency(), options);
  auto futures = detail::submit_chunks<T>(plan, n, [&](std::size_t lo, std::size_t hi) {
    return ex.submit([&inputs, &op, &fn, &identity, lo, hi] {
      T acc = identity;
      auto it = detail::at_index(inputs, lo);
      for (std::size_t i = lo; i < hi; ++i, ++it) {
        acc = std::invoke(op, std::move(acc), std::invoke(fn, *it));
      }
      return acc;
    });
  });
  T acc = identity;
  for (auto&& part : detail::gather_reporting(futures, n, plan, progress, limit))
    acc = std::invoke(op, std::move(acc), std::move(part));
  return acc;
}

}  // namespace crew
