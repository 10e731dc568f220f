// crew/future.hpp — the result of a task on any crew executor.
//
// A future<T> is the single consumer of one task's result. It is move-only; get() and result()
// consume it, after which valid() is false and every further read throws
// std::future_error(std::future_errc::no_state). A future may outlive the pool that made it: it
// keeps its result alive itself.
//
// Thread-safety: one future must not be used by several threads at once (like std::future);
// different futures are independent. wait*/get/result block until the task completes (wait_for
// and wait_until at most until their deadline). On a crew::thread_pool worker they run work of
// that pool while they wait — the awaited task if nobody started it, and tasks the waiting task
// submitted (directly or not), never an unrelated one — so a task may wait for tasks it submitted
// without deadlocking the pool, and may hold a lock across such a wait. On the thread outside
// the pool that submitted a task, get/wait/result run the task there if it has not started.
// crew/thread_pool.hpp, "Waiting", states the policy in full.
#pragma once

#include <chrono>
#include <future>
#include <utility>

#include "crew/detail/shared_state.hpp"
#include "crew/error.hpp"
#include "crew/outcome.hpp"

namespace crew {

template <class T>
class [[nodiscard]] future {
 public:
  using value_type = T;

  future() noexcept = default;
  explicit future(detail::state_ptr<detail::shared_state<T>> state) noexcept
      : state_(std::move(state)) {}

  future(future&&) noexcept = default;
  future& operator=(future&&) noexcept = default;
  future(const future&) = delete;
  future& operator=(const future&) = delete;
  ~future() = default;

  /// Whether this future still refers to a result (false once consumed or moved from).
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(state_); }

  /// Whether the result is available; never blocks.
  [[nodiscard]] bool ready() const { return checked().is_ready(); }

  /// Blocks until the result is available.
  void wait() const { checked().wait(); }

  /// Blocks until the result is available or `timeout` has passed. On a pool worker it runs
  /// work meanwhile, as wait() does, and may then return after the deadline by as long as the
  /// task it started last runs.
  template <class Rep, class Period>
  std::future_status wait_for(const std::chrono::duration<Rep, Period>& timeout) const {
    return wait_until(std::chrono::steady_clock::now() + timeout);
  }
  template <class Clock, class Duration>
  std::future_status wait_until(const std::chrono::time_point<Clock, Duration>& deadline) const {
    const auto steady =
        std::chrono::steady_clock::now() +
        std::chrono::ceil<std::chrono::steady_clock::duration>(deadline - Clock::now());
    return checked().wait_until(steady) ? std::future_status::ready : std::future_status::timeout;
  }

  /// Waits, then returns the value or throws: the task's own exception (on a thread pool; from
  /// another process when its type is standard or registered, see crew/exception.hpp), a
  /// task_error otherwise. Consumes the future.
  T get() {
    wait();
    auto state = std::move(state_);
    return state->take();
  }

  /// Waits, then returns the value or the task_error; never throws for a task failure.
  /// Consumes the future.
  outcome<T> result() {
    wait();
    auto state = std::move(state_);
    return state->take_outcome();
  }

  /// Asks for the task to be cancelled. Returns true only when the task's code will not run (it
  /// had not started) or its executor stopped it; the future then holds error_kind::cancelled.
  /// Returns false when the task already completed or keeps running (a thread-pool task sees the
  /// request on its std::stop_token); the future then holds the task's own result. Racing with
  /// completion, exactly one of the two happens. Thread-safe with respect to the executor; never
  /// blocks.
  bool cancel() { return checked().cancel(); }

  /// For executors and algorithms: the shared state.
  [[nodiscard]] detail::shared_state<T>* state() const noexcept { return state_.get(); }

 private:
  detail::shared_state<T>& checked() const {
    if (!state_) throw std::future_error(std::future_errc::no_state);
    return *state_;
  }

  detail::state_ptr<detail::shared_state<T>> state_;
};

/// A future that already holds `error` (for example pool_closed after shutdown).
template <class T>
future<T> make_failed_future(task_error error) {
  auto state = detail::make_state<detail::shared_state<T>>();
  state->fail(std::move(error));
  return future<T>{std::move(state)};
}

/// A future that already holds `value`.
template <class T>
future<std::decay_t<T>> make_ready_future(T&& value) {
  auto state = detail::make_state<detail::shared_state<std::decay_t<T>>>();
  state->set_value(std::forward<T>(value));
  return future<std::decay_t<T>>{std::move(state)};
}
inline future<void> make_ready_future() {
  auto state = detail::make_state<detail::shared_state<void>>();
  state->set_value();
  return future<void>{std::move(state)};
}

}  // namespace crew
