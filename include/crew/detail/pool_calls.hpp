// crew/detail/pool_calls.hpp — the calls that every pool whose tasks are named at compile time
// spells the same way on top of its own submit<&fn>: submit(f, args...) and detach(f, args...)
// for a stateless callable, and, for the pools that run tasks in other processes, detach<&fn> and
// the per-call options (with, submit_with, detach_with).
//
// Each is a base class template that the pool derives from (CRTP) and names with using-
// declarations, so that its own submit<&fn> and these overloads form one overload set.
#pragma once

#include <string>
#include <type_traits>
#include <utility>

#include "crew/call.hpp"
#include "crew/detail/registry.hpp"
#include "crew/future.hpp"

namespace crew::detail {

/// submit(f, args...) and detach(f, args...) for a stateless f (a captureless lambda or an empty,
/// default-constructible function object): each worker builds its own F{}, only the arguments
/// travel. A callable with state does not compile, with a message saying what to write instead.
/// Needs Pool::submit<Fn>(args...) and Pool::detach<Fn>(args...).
template <class Pool>
class stateless_calls {
 public:
  /// Runs f(args...) as submit<&fn>(args...) would.
  template <class F, class... A>
  auto submit(F&& f, A&&... args) -> remote_submit_t<F, A...> {
    using callable = std::decay_t<F>;
    (void)f;
    if constexpr (stateless_callable<callable>) {
      return pool().template submit<stateless_task_v<callable, A...>>(std::forward<A>(args)...);
    } else {
      refuse_stateful_callable<callable>();
      return {};
    }
  }

  /// detach for a stateless callable, as submit(f, args...).
  template <class F, class... A>
  auto detach(F&& f, A&&... args) -> remote_detach_t<F> {
    using callable = std::decay_t<F>;
    (void)f;
    if constexpr (stateless_callable<callable>) {
      return pool().template detach<stateless_task_v<callable, A...>>(std::forward<A>(args)...);
    } else {
      refuse_stateful_callable<callable>();
      return {};
    }
  }

 protected:
  stateless_calls() = default;

 private:
  Pool& pool() noexcept { return static_cast<Pool&>(*this); }
};

/// detach<&fn> and the per-call options of a pool that runs tasks in other processes. Needs, from
/// Pool (befriend this class for the private ones):
///  - submit_call<Fn>(const call_options* options, args...) -> future<R>: submit, with options
///    or without (null);
///  - expired_call(options, function name) -> task_error: a call whose timeout is zero or less
///    (the pool counts it);
///  - Pool::accepted(const future<R>&) -> bool: whether the pool took the task.
template <class Pool>
class remote_calls : public stateless_calls<Pool> {
 public:
  using stateless_calls<Pool>::detach;

  /// Runs Fn(args...) without a future; its failure is counted in stats().failed. Returns false,
  /// and the task never runs, when the pool refused it: it is closed, broken or full (on_full =
  /// fail), or the arguments could not be encoded.
  template <auto Fn, class... A>
  bool detach(A&&... args) {
    return Pool::accepted(pool().template submit_call<Fn>(nullptr, std::forward<A>(args)...));
  }

  /// Per-call options (crew/call.hpp): pool.with({.timeout = 1s, .name = "x", .retries = 2})
  /// .submit<&fn>(args...); what each means on this pool is in its own header.
  [[nodiscard]] call_with<Pool> with(call_options options) {
    return call_with<Pool>{pool(), std::move(options)};
  }

  /// What with(options).submit<Fn>(args...) calls. A timeout of zero or less: the task never
  /// runs and its future holds timed_out at once.
  template <auto Fn, class... A>
  auto submit_with(const call_options& options, A&&... args)
      -> future<std::decay_t<typename task_traits<Fn>::result>> {
    using R = std::decay_t<typename task_traits<Fn>::result>;
    if (expired(options)) {
      return make_failed_future<R>(pool().expired_call(options, function_name<Fn>()));
    }
    return pool().template submit_call<Fn>(&options, std::forward<A>(args)...);
  }

  /// What with(options).detach<Fn>(args...) calls: false when the task will never run.
  template <auto Fn, class... A>
  bool detach_with(const call_options& options, A&&... args) {
    if (expired(options)) {
      (void)pool().expired_call(options, function_name<Fn>());
      return false;
    }
    return Pool::accepted(pool().template submit_call<Fn>(&options, std::forward<A>(args)...));
  }

 protected:
  remote_calls() = default;

 private:
  static bool expired(const call_options& options) noexcept {
    return options.timeout && options.timeout->count() <= 0;
  }
  template <auto Fn>
  static std::string function_name() {
    return std::string{registered_task<Fn>.name};
  }
  Pool& pool() noexcept { return static_cast<Pool&>(*this); }
};

}  // namespace crew::detail
