// crew/detail/shared_state.hpp — the state a future shares with the executor running its task.
//
// One state per task, reference counted (the future holds one reference, the executor one).
// Its 32-bit word holds the status and a "someone sleeps on me" bit:
//
//   pending ──try_start()──> running ──claim()──> completing ──publish()──> ready
//      └──────────────claim() (cancel, shutdown, ...)─┘
//
// Exactly one party wins claim() and writes the result; readers see it after observing `ready`
// with acquire ordering (pairs with the release exchange in publish()). Waiters set the sleep bit
// before they futex-wait, so publish() makes a system call only when somebody actually sleeps.
//
// Executors extend a state (the thread pool stores the callable in it) and may override
// cancel_running() to stop a task that has already started.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <future>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/error.hpp"
#include "crew/outcome.hpp"

namespace crew::detail {

class state_base;

/// Called once when a state becomes ready (as_completed, when_all, continuations).
class continuation {
 public:
  virtual void on_ready(state_base& state) noexcept = 0;

 protected:
  ~continuation() = default;
};

/// A thread that can do useful work while it waits (a pool worker). While such a thread waits on a
/// future it runs other tasks, so fork-join inside a pool never deadlocks. Which tasks it may run
/// is the executor's policy (crew/thread_pool.hpp, "Waiting").
class wait_helper {
 public:
  /// Runs one task that the waiting thread may run safely while it waits for `awaited` (null when
  /// it waits for something else, e.g. one of several futures); returns whether it ran one.
  virtual bool try_run_one(state_base* awaited) = 0;

 protected:
  ~wait_helper() = default;
};

/// The helper for the calling thread, or null. Set by pool workers for their lifetime.
wait_helper*& current_wait_helper() noexcept;

/// While one of these is alive on a thread, continuations of the states that thread makes ready
/// are kept instead of run, and run when it ends (or are handed to another thread with take()).
/// A pool's service thread completes tasks while it holds something a continuation may need —
/// the result ring of a worker it is reading, or the supervisor's loop that must go on to start
/// a replacement worker — and a continuation that waits on another task of the same pool would
/// otherwise wait for that thread itself. Scopes nest; each keeps only its own.
class deferred_continuations {
 public:
  using entry = std::pair<state_base*, continuation*>;  // the state holds a reference

  deferred_continuations() noexcept;
  deferred_continuations(const deferred_continuations&) = delete;
  deferred_continuations& operator=(const deferred_continuations&) = delete;
  /// Runs what was kept (after this scope stops keeping).
  ~deferred_continuations();

  /// What was kept, in order; the caller runs it with run_all() (on any thread).
  [[nodiscard]] std::vector<entry> take() noexcept { return std::exchange(kept_, {}); }
  /// Runs each continuation and drops its reference to the state.
  static void run_all(std::vector<entry>& entries) noexcept;

  /// The calling thread's innermost scope, or null.
  [[nodiscard]] static deferred_continuations* current() noexcept;
  /// Keeps `next` for `state`; false when it could not (out of memory): run it now.
  bool keep(state_base& state, continuation* next) noexcept;

 private:
  deferred_continuations* outer_;
  std::vector<entry> kept_;
};

class state_base {
 public:
  static constexpr std::uint32_t pending = 0;
  static constexpr std::uint32_t running = 1;
  static constexpr std::uint32_t completing = 2;
  static constexpr std::uint32_t ready = 3;
  static constexpr std::uint32_t status_mask = 3;
  static constexpr std::uint32_t sleeper_bit = 4;

  state_base() noexcept = default;
  state_base(const state_base&) = delete;
  state_base& operator=(const state_base&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy();
  }

  [[nodiscard]] std::uint32_t status() const noexcept {
    return word_.load(std::memory_order_acquire) & status_mask;
  }
  [[nodiscard]] bool is_ready() const noexcept { return status() == ready; }

  /// Executor: pending -> running. False when the task was cancelled (or completed) meanwhile.
  [[nodiscard]] bool try_start() noexcept;

  /// Claims the right to write the result (from pending or running). Exactly one caller wins.
  [[nodiscard]] bool claim() noexcept;

  /// Makes the written result visible, wakes sleepers and runs the continuation.
  void publish() noexcept;

  /// claim() + store the error + publish(). Returns false if somebody else completed the state.
  bool fail(task_error error) noexcept;

  [[nodiscard]] bool has_error() const noexcept { return error_.has_value(); }
  [[nodiscard]] const task_error& error() const noexcept { return *error_; }

  /// Blocks until ready. On a pool worker, runs other tasks meanwhile (wait_helper).
  void wait() const;
  /// Blocks until ready or the deadline; returns whether it is ready. On a pool worker, runs other
  /// tasks meanwhile, as wait() does, until the deadline: it may then return later than the
  /// deadline, by as long as the task it started last runs.
  bool wait_until(std::chrono::steady_clock::time_point deadline) const;

  /// For a pool worker's wait_helper: runs this state's task on the calling worker if it has not
  /// started and the executor allows it (the thread pool: the worker belongs to the task's pool).
  /// Returns whether it ran it.
  bool run_here() noexcept { return status() == pending && run_on_worker(); }

  /// Cancels a task that has not started (true: it will never run, its error is `cancelled`);
  /// for a started one, asks the executor through cancel_running().
  bool cancel() noexcept;

  /// Registers the one continuation; runs it at once if the state is already ready.
  void set_continuation(continuation* next) noexcept;

 protected:
  virtual ~state_base() = default;
  virtual void destroy() noexcept { delete this; }
  /// Executor hook: stop a running task. Returns true when the task will end as cancelled.
  virtual bool cancel_running() noexcept { return false; }
  /// Executor hook, called by wait() while the task is pending: run the task on the waiting
  /// thread instead of sleeping until a worker reaches it. Returns true when it ran it (the state
  /// is then ready), false when it cannot (default) or somebody else took the task first.
  virtual bool run_inline() noexcept { return false; }
  /// Executor hook, called by a waiter (not a pool worker) before it sleeps: make progress on
  /// the waiting thread (a remote pool collects results) until the state is ready, the deadline
  /// (null: none) passes, or there is nothing useful to do. Returns whether the state is ready.
  virtual bool drive_until(
      const std::chrono::steady_clock::time_point* /*deadline*/) const noexcept {
    return is_ready();
  }
  /// Executor hook, called by a pool worker that waits on this state while the task is pending
  /// (run_here): run the task on that worker. Returns true when it ran it; false (default) when
  /// the executor does not allow it or somebody else took the task first.
  virtual bool run_on_worker() noexcept { return false; }

  std::optional<task_error> error_;

 private:
  void sleep_until_ready(const std::chrono::steady_clock::time_point* deadline) const;
  bool help_until_ready(wait_helper& helper,
                        const std::chrono::steady_clock::time_point* deadline) const;
  bool spin_until_ready() const noexcept;

  mutable std::atomic<std::uint32_t> word_{pending};
  std::atomic<std::uint32_t> refs_{1};
  std::atomic<continuation*> next_{nullptr};
};

template <class T>
class shared_state : public state_base {
 public:
  template <class... A>
  bool set_value(A&&... args) {
    if (!claim()) return false;
    try {
      value_.emplace(std::forward<A>(args)...);
    } catch (...) {
      error_.emplace(task_error::from_exception(std::current_exception()));
    }
    publish();
    return true;
  }
  bool set_exception(std::exception_ptr error) noexcept {
    return fail(task_error::from_exception(std::move(error)));
  }

  /// Precondition: ready. Moves the value out, or throws the task's exception.
  T take() {
    if (error_) rethrow();
    return std::move(*value_);
  }
  outcome<T> take_outcome() {
    if (error_) return outcome<T>{*error_};
    return outcome<T>{std::move(*value_)};
  }

 private:
  [[noreturn]] void rethrow() const {
    if (error_->original()) std::rethrow_exception(error_->original());
    throw *error_;
  }
  std::optional<T> value_;
};

template <>
class shared_state<void> : public state_base {
 public:
  bool set_value() noexcept {
    if (!claim()) return false;
    publish();
    return true;
  }
  bool set_exception(std::exception_ptr error) noexcept {
    return fail(task_error::from_exception(std::move(error)));
  }
  void take() const {
    if (!error_) return;
    if (error_->original()) std::rethrow_exception(error_->original());
    throw *error_;
  }
  outcome<void> take_outcome() const { return error_ ? outcome<void>{*error_} : outcome<void>{}; }
};

/// An intrusive reference to a state.
template <class S>
class state_ptr {
 public:
  state_ptr() noexcept = default;
  /// Adopts one reference.
  explicit state_ptr(S* state) noexcept : state_(state) {}
  state_ptr(const state_ptr& other) noexcept : state_(other.state_) {
    if (state_ != nullptr) state_->add_ref();
  }
  state_ptr(state_ptr&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  /// From a reference to a derived state (e.g. an executor's task state).
  template <class U>
  requires std::is_convertible_v<U*, S*> state_ptr(state_ptr<U>&& other)
  noexcept : state_(other.detach()) {}  // NOLINT
  state_ptr& operator=(state_ptr other) noexcept {
    std::swap(state_, other.state_);
    return *this;
  }
  ~state_ptr() {
    if (state_ != nullptr) state_->release();
  }
  S* get() const noexcept { return state_; }
  S* operator->() const noexcept { return state_; }
  S& operator*() const noexcept { return *state_; }
  explicit operator bool() const noexcept { return state_ != nullptr; }
  S* detach() noexcept { return std::exchange(state_, nullptr); }

 private:
  S* state_ = nullptr;
};

template <class S, class... A>
state_ptr<S> make_state(A&&... args) {
  return state_ptr<S>{new S(std::forward<A>(args)...)};
}

}  // namespace crew::detail
