// crew/call.hpp — options for one call: a timeout, a name and retries, without touching the
// pool's defaults.
//
//   auto f = pool.with({.timeout = 100ms, .name = "resize"}).submit<&resize>(image);
//
// with() returns a small handle that refers to the pool and holds the options; its submit<&fn>
// (and, on a thread_pool, submit(callable)) and detach<&fn> take the same arguments as the
// pool's own. The options never travel in the argument list, so no function's parameters can be
// mistaken for them.
//
// What each option means, per executor (docs/api.md, "Per-call options", has the table):
//  - timeout: counted from the moment the task starts running. On process_pool and hybrid_pool
//    the supervisor stops the worker exactly as for the pool-wide task_timeout (which stays the
//    default): the future holds error_kind::timed_out and the worker is replaced. On a
//    thread_pool a running thread cannot be stopped: the future fails timed_out at the deadline
//    (the message says the task runs on), the task's std::stop_token — if it takes one — is asked
//    to stop, and its result is dropped when it ends; stats().timed_out counts these. A timeout
//    of zero or less: the task never runs, its future holds timed_out at once.
//  - name: replaces the function's name in the task's errors (task_error::task_name() and the
//    messages: crashed, timed_out, cancelled ...). Empty: the function's name.
//  - retries: as the pool's `retries` (tries on fresh workers after the worker died running the
//    task), for this task only. A thread cannot die alone, so a thread_pool never retries.
//
// Thread-safety: a handle is a value; use it from one thread, or copy it. It refers to the pool,
// which must outlive it. Blocking: as the pool's submit.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "crew/future.hpp"

namespace crew {

/// Options for one submission (see the header comment).
struct call_options {
  /// Unset: the pool's task_timeout. Zero or less: the task fails timed_out without running.
  std::optional<std::chrono::nanoseconds> timeout{};
  /// Shown in the task's errors instead of the function's name; empty: the function's name.
  std::string name{};
  /// Unset: the pool's retries.
  std::optional<unsigned> retries{};
};

namespace detail {
/// "100 ms", "250 us", "1 ns": a timeout in the largest unit that shows it exactly.
inline std::string describe_timeout(std::chrono::nanoseconds t) {
  using namespace std::chrono;
  if (t.count() != 0 && t % milliseconds{1} == nanoseconds{0}) {
    return std::to_string(duration_cast<milliseconds>(t).count()) + " ms";
  }
  if (t.count() != 0 && t % microseconds{1} == nanoseconds{0}) {
    return std::to_string(duration_cast<microseconds>(t).count()) + " us";
  }
  return std::to_string(t.count()) + " ns";
}
}  // namespace detail

/// pool.with(options): submits with per-call options. Refers to the pool (must outlive it).
template <class Pool>
class call_with {
 public:
  call_with(Pool& pool, call_options options) : pool_(&pool), options_(std::move(options)) {}

  /// As pool.submit<Fn>(args...), with the options.
  template <auto Fn, class... A>
  auto submit(A&&... args) const {
    return pool_->template submit_with<Fn>(options_, std::forward<A>(args)...);
  }

  /// As pool.submit(f, args...) (executors that run closures), with the options.
  template <class F, class... A>
  requires requires(Pool& p, const call_options& o, F&& f, A&&... a) {
    p.submit_with(o, std::forward<F>(f), std::forward<A>(a)...);
  }
  auto submit(F&& f, A&&... args) const {
    return pool_->submit_with(options_, std::forward<F>(f), std::forward<A>(args)...);
  }

  /// As pool.detach<Fn>(args...), with the options: false, and the task never runs, when the
  /// pool refused it (closed, full with on_full = fail, arguments that cannot be encoded) or its
  /// timeout was zero or less.
  template <auto Fn, class... A>
  bool detach(A&&... args) const {
    return pool_->template detach_with<Fn>(options_, std::forward<A>(args)...);
  }

  [[nodiscard]] const call_options& options() const noexcept { return options_; }

 private:
  Pool* pool_;
  call_options options_;
};

}  // namespace crew
