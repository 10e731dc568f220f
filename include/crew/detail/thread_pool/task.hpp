// crew/detail/thread_pool/task.hpp — what the thread pool's queues hold.
//
// A queued task is one allocation: the future's shared state, the callable and its arguments
// together (like std::packaged_task). The queues hold a `task_node*` that owns one reference to
// it; run() and discard() give that reference up, so a node must be run or discarded exactly once.
// A thread waiting on the task's future may take it before the queue's consumer does (try_take)
// and run it itself; the consumer then finds a dead node and only drops its reference.
// A detached task (no future) is a plain node that deletes itself.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "crew/detail/shared_state.hpp"
#include "crew/error.hpp"

namespace crew::detail {

/// How a node ended, for the pool's statistics.
enum class run_status : std::uint8_t {
  completed,        ///< ran on a worker and returned
  failed,           ///< ran on a worker and threw
  cancelled,        ///< cancelled before it started (by its future or by shutdown)
  taken_by_waiter,  ///< a thread waiting on its future ran it and counted it: nothing to count
};

class pool_core;
class task_node;

/// Who took a node (task_node::take): whoever takes it first decides how the task ends.
enum class taker : std::uint8_t {
  nobody,          ///< still queued and untouched
  queue,           ///< the worker that dequeued it, or shutdown's discard
  outside_waiter,  ///< a thread outside the pool waiting on its future (run_inline)
  worker_waiter,   ///< a pool worker waiting on its future (run_on_worker)
};

/// A thread outside the pool that waits on `node` (run_inline) asks the pool for the task:
/// `removed` when the pool took it back out of its injection queue (the caller then owns the
/// queue's reference), `taken` when the caller took it where it lies (the queue keeps a dead
/// entry), `none` when it may not run it here. On success the pool counts the caller as running
/// until end_outside_run(). Defined in thread_pool.cpp.
enum class outside_claim : std::uint8_t { none, removed, taken };
outside_claim claim_for_outside_waiter(pool_core* pool, task_node& node) noexcept;
void end_outside_run(pool_core* pool, run_status status) noexcept;
/// A worker of `pool` that waits on `node` runs it now, if nobody took it yet. Returns whether it
/// took it. Defined in thread_pool.cpp.
bool run_awaited_on_worker(pool_core* pool, task_node& node) noexcept;
/// A task counted against `pool`'s max_queued left the queue (it was taken). Defined in
/// thread_pool.cpp.
void release_queued(pool_core* pool) noexcept;

class task_node {
 public:
  /// Claims the node for `who` if nobody took it yet: true means the caller decides how the task
  /// ends (runs it or discards it), exactly once.
  bool try_take(taker who) noexcept {
    auto expected = static_cast<std::uint8_t>(taker::nobody);
    const bool won =
        taken_.compare_exchange_strong(expected, static_cast<std::uint8_t>(who),
                                       std::memory_order_acq_rel, std::memory_order_acquire);
    if (won && bounded) release_queued(pool);
    return won;
  }
  /// The consumer holding the queue's reference claims the node; returns who had it before
  /// (nobody: the consumer now owns the task; anybody else ran it and counted it).
  taker take_for_queue() noexcept {
    const auto before = static_cast<taker>(
        taken_.exchange(static_cast<std::uint8_t>(taker::queue), std::memory_order_acq_rel));
    if (before == taker::nobody && bounded) release_queued(pool);
    return before;
  }

  /// Runs the task unless it was cancelled or a waiter ran it, then drops the queue's reference.
  virtual run_status run() noexcept = 0;
  /// Ends the task without running it (its future holds `error`), then drops the queue's
  /// reference. Returns cancelled, or what run() returns when a waiter took the task first.
  virtual run_status discard(task_error error) noexcept = 0;
  /// Precondition: the caller took the node (try_take) and holds a reference of its own. Runs the
  /// task, or ends it with `*cancel` when cancel is not null; touches no reference.
  virtual run_status finish_taken(const task_error* cancel) noexcept = 0;

  /// The pool it was submitted to (set before it is queued).
  pool_core* pool = nullptr;
  /// Lineage: the serial of the task that submitted it on one of `pool`'s workers, 0 when it came
  /// from outside (see thread_pool.cpp, "Waiting").
  std::uint64_t parent = 0;
  /// In `pool`'s injection queue (submitted from a thread outside the pool).
  bool injected = false;
  /// Counted against the pool's max_queued until it is taken (the first take releases it).
  bool bounded = false;
  /// Never run by a thread outside the pool that waits for it (a task with a per-call timeout:
  /// that waiter must be free to return at the deadline). A waiting worker may still run it:
  /// that keeps fork-join deadlock-free (see thread_pool::with).
  bool pool_only = false;

 protected:
  ~task_node() = default;

 private:
  std::atomic<std::uint8_t> taken_{static_cast<std::uint8_t>(taker::nobody)};
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
    if (take_for_queue() != taker::nobody) return run_status::taken_by_waiter;
    return finish_taken(nullptr);
  }

  run_status discard(task_error error) noexcept override {
    state_ptr<task_state> hold{this};
    if (take_for_queue() != taker::nobody) return run_status::taken_by_waiter;
    return finish_taken(&error);
  }

  run_status finish_taken(const task_error* cancel) noexcept override {
    if (!this->try_start()) return run_status::cancelled;  // its future's cancel() won
    if (cancel == nullptr) return execute();
    call_.reset();
    this->fail(*cancel);
    return run_status::cancelled;
  }

 protected:
  // A thread outside the pool waits on the task before it started: run it right here.
  bool run_inline() noexcept override {
    const outside_claim claim = claim_for_outside_waiter(task_node::pool, *this);
    if (claim == outside_claim::none) return false;
    // Taken back out of the queue: nobody else can reach the node, and the queue's reference is
    // ours. Otherwise the queue's consumer drops its dead entry later.
    state_ptr<task_state> hold{claim == outside_claim::removed ? this : nullptr};
    const run_status status = finish_taken(nullptr);
    end_outside_run(task_node::pool, status);
    return status != run_status::cancelled;
  }

  // A worker of the same pool waits on the task before it started: run it on that worker.
  bool run_on_worker() noexcept override { return run_awaited_on_worker(task_node::pool, *this); }

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

/// A task submitted with per-call options (crew/call.hpp) on a thread pool.
struct call_watch {
  std::string name;                     ///< empty: none given
  std::chrono::nanoseconds timeout{0};  ///< 0: none; counted from the start
  pool_core* pool = nullptr;
  state_base* state = nullptr;  ///< the task's state (alive while the task runs)
};
/// Starts the task's timeout (returns its timer id) and ends it. Defined in thread_pool.cpp.
std::uint64_t arm_call_timeout(const call_watch& watch) noexcept;
void disarm_call_timeout(pool_core* pool, std::uint64_t id) noexcept;
/// Rethrown with the call's name: the task's exception as a task_error whose original() it is.
[[noreturn]] void rethrow_named(const std::string& name);

/// The callable of a task with per-call options: times the call, names its exception.
template <class F>
struct watched_call {
  F fn;
  std::unique_ptr<call_watch> watch;

  template <class... X>
  auto operator()(X&&... x) -> decltype(std::invoke(fn, std::forward<X>(x)...)) {
    struct timing {
      pool_core* pool;
      std::uint64_t id;
      ~timing() {
        if (id != 0) disarm_call_timeout(pool, id);
      }
    } armed{watch->pool, watch->timeout.count() > 0 ? arm_call_timeout(*watch) : 0};
    if (watch->name.empty()) return std::invoke(fn, std::forward<X>(x)...);
    try {
      return std::invoke(fn, std::forward<X>(x)...);
    } catch (...) {
      rethrow_named(watch->name);
    }
  }
};

/// A task without a future: runs, counts a failure if it throws, deletes itself.
template <class F, class... A>
class detached_task final : public task_node {
 public:
  template <class G, class... X>
  explicit detached_task(G&& fn, X&&... args)
      : fn_(std::forward<G>(fn)), args_(std::forward<X>(args)...) {}

  run_status run() noexcept override {
    if (bounded) release_queued(pool);
    run_status status = run_status::completed;
    try {
      (void)invoke_task(fn_, args_, std::stop_token{});
    } catch (...) {
      status = run_status::failed;  // nobody holds a future: the pool's stats() count it
    }
    delete this;
    return status;
  }
  run_status discard(task_error) noexcept override {
    if (bounded) release_queued(pool);
    delete this;
    return run_status::cancelled;
  }
  // Nobody can wait on a detached task, so nobody takes it but its queue.
  run_status finish_taken(const task_error*) noexcept override { return run_status::cancelled; }

 private:
  F fn_;
  std::tuple<A...> args_;
};

}  // namespace crew::detail
