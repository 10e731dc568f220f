// crew/detail/thread_pool/task.hpp — what the thread pool's queues hold.
//
// A queued task is one allocation: the future's shared state, the callable and its arguments
// together (like std::packaged_task). The queues hold a `task_node*` that owns one reference to
// it; run() and discard() give that reference up, so a node must be run or discarded exactly once.
// A detached task (no future) is a plain node that deletes itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include "crew/detail/shared_state.hpp"
#include "crew/error.hpp"

namespace crew::detail {

/// How a node ended, for the pool's statistics.
enum class run_status : std::uint8_t {
  completed,  ///< ran on a worker and returned
  failed,     ///< ran on a worker and threw
  cancelled,  ///< cancelled before it started
  inlined,    ///< the thread waiting for it ran it (state_base::run_inline); nothing to do here
};

class pool_core;
class task_node;

/// Removes `node` from `pool`'s injection queue if the calling thread submitted it there and it is
/// still the newest entry; then the caller owns the queue's reference. Safe on any thread: it
/// touches the pool only when the calling thread itself keeps that pool's core alive.
bool unqueue_newest(pool_core* pool, task_node* node) noexcept;
/// Counts a task that its waiter took back from the queue and ran (stats().inlined).
void count_inlined(pool_core* pool) noexcept;

class task_node {
 public:
  /// Exactly one of the worker that dequeues the node, a thread waiting on its future
  /// (run_inline) and shutdown's discard gets true: that one decides how the task ends.
  bool take() noexcept { return !taken_.exchange(true, std::memory_order_acq_rel); }

  /// Runs the task unless it was cancelled, then drops the queue's reference.
  virtual run_status run() noexcept = 0;
  /// Ends the task without running it (its future holds `error`), then drops the reference.
  virtual void discard(task_error error) noexcept = 0;

  /// The pool whose injection queue the node was put in (null for a worker's own deque).
  pool_core* injected_into = nullptr;

 protected:
  ~task_node() = default;

 private:
  std::atomic<bool> taken_{false};
};

/// Whether F wants a std::stop_token before its arguments.
template <class F, class... A>
inline constexpr bool takes_stop_token_v = std::is_invocable_v<F&, std::stop_token, A...>;

template <class F, class... A>
struct call_result {
  using type = std::invoke_result_t<F&, A...>;
};
template <class F, class... A>
requires takes_stop_token_v<F, A...>
struct call_result<F, A...> {
  using type = std::invoke_result_t<F&, std::stop_token, A...>;
};

/// What a task made of F and arguments A returns (decayed, like std::async).
template <class F, class... A>
using task_result_t = std::decay_t<typename call_result<std::decay_t<F>, std::decay_t<A>...>::type>;

/// Calls `f(token, args...)` when f takes a stop_token first, `f(args...)` otherwise. A task runs
/// once, so its arguments are passed as rvalues (move-only arguments work, as with std::async).
template <class F, class Tuple>
decltype(auto) invoke_task(F& f, Tuple& args, std::stop_token token) {
  return std::apply(
      [&](auto&... a) -> decltype(auto) {
        if constexpr (takes_stop_token_v<F, std::remove_reference_t<decltype(a)>...>) {
          return std::invoke(f, std::move(token), std::move(a)...);
        } else {
          return std::invoke(f, std::move(a)...);
        }
      },
      args);
}

/// A compile-time function as a stateless callable (submit<&fn> and submit<lambda>).
template <auto Fn>
struct constant_fn {
  template <class... X>
  auto operator()(X&&... x) const -> decltype(std::invoke(Fn, std::forward<X>(x)...)) {
    return std::invoke(Fn, std::forward<X>(x)...);
  }
};

struct no_stop_source {};

/// The state of one submitted task: future state + callable + arguments.
template <class R, class F, class... A>
class task_state final : public shared_state<R>, public task_node {
 public:
  static constexpr bool stoppable = takes_stop_token_v<F, A...>;

  template <class G, class... X>
  explicit task_state(G&& fn, X&&... args)
      : call_(std::in_place, std::forward<G>(fn), std::tuple<A...>(std::forward<X>(args)...)) {
    this->add_ref();  // one reference for the future, one for the queue
  }

  run_status run() noexcept override {
    state_ptr<task_state> hold{this};  // adopts the queue's reference
    if (!task_node::take()) return run_status::inlined;
    if (!this->try_start()) return run_status::cancelled;
    return execute();
  }

  void discard(task_error error) noexcept override {
    state_ptr<task_state> hold{this};
    if (!task_node::take() || !this->try_start()) return;  // run by its waiter, or cancelled
    call_.reset();
    this->fail(std::move(error));
  }

 protected:
  // The node stays queued; the worker that dequeues it later sees take() fail and drops it.
  bool run_inline() noexcept override {
    pool_core* pool = injected_into;
    if (pool != nullptr && unqueue_newest(pool, this)) {
      // Out of the queue: nobody else can reach the node, and the queue's reference is ours.
      state_ptr<task_state> hold{this};
      if (!task_node::take() || !this->try_start()) return false;  // cancelled meanwhile
      (void)execute();
      count_inlined(pool);
      return true;
    }
    if (!task_node::take()) return false;
    if (!this->try_start()) return false;  // cancelled meanwhile: the state is ready anyway
    (void)execute();
    return true;
  }

  // The task may still complete normally: it decides whether it looks at its stop_token.
  bool cancel_running() noexcept override {
    if constexpr (stoppable) stop_.request_stop();
    return false;
  }

 private:
  // Precondition: this thread moved the state to running.
  run_status execute() noexcept {
    try {
      std::stop_token token;
      if constexpr (stoppable) token = stop_.get_token();
      auto& [fn, args] = *call_;
      if constexpr (std::is_void_v<R>) {
        invoke_task(fn, args, std::move(token));
        call_.reset();  // the callable and its arguments are gone before the future is ready
        this->set_value();
      } else {
        R result = invoke_task(fn, args, std::move(token));
        call_.reset();
        this->set_value(std::move(result));
      }
      return this->has_error() ? run_status::failed : run_status::completed;
    } catch (...) {
      call_.reset();
      this->set_exception(std::current_exception());
      return run_status::failed;
    }
  }

  std::optional<std::pair<F, std::tuple<A...>>> call_;
  [[no_unique_address]] std::conditional_t<stoppable, std::stop_source, no_stop_source> stop_;
};

/// A task without a future: runs, counts a failure if it throws, deletes itself.
template <class F, class... A>
class detached_task final : public task_node {
 public:
  template <class G, class... X>
  explicit detached_task(G&& fn, X&&... args)
      : fn_(std::forward<G>(fn)), args_(std::forward<X>(args)...) {}

  run_status run() noexcept override {
    run_status status = run_status::completed;
    try {
      (void)invoke_task(fn_, args_, std::stop_token{});
    } catch (...) {
      status = run_status::failed;  // nobody holds a future: the pool's stats() count it
    }
    delete this;
    return status;
  }
  void discard(task_error) noexcept override { delete this; }

 private:
  F fn_;
  std::tuple<A...> args_;
};

}  // namespace crew::detail
