#include "crew/detail/shared_state.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

namespace crew::detail {
namespace {

// Private futexes: a state lives in one process. Spurious wake-ups are fine: every caller loops.
void futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                const timespec* relative) noexcept {
  syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,
          relative, nullptr, 0);
}

void futex_wake_all(const std::atomic<std::uint32_t>& word) noexcept {
  syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT32_MAX,
          nullptr, nullptr, 0);
}

continuation* const fired = reinterpret_cast<continuation*>(std::uintptr_t{1});

}  // namespace

wait_helper*& current_wait_helper() noexcept {
  thread_local wait_helper* helper = nullptr;
  return helper;
}

namespace {
deferred_continuations*& innermost_deferral() noexcept {
  thread_local deferred_continuations* scope = nullptr;
  return scope;
}
}  // namespace

deferred_continuations::deferred_continuations() noexcept : outer_(innermost_deferral()) {
  innermost_deferral() = this;
}

deferred_continuations::~deferred_continuations() {
  innermost_deferral() = outer_;
  run_all(kept_);
}

deferred_continuations* deferred_continuations::current() noexcept {
  return innermost_deferral();
}

bool deferred_continuations::keep(state_base& state, continuation* next) noexcept {
  try {
    kept_.emplace_back(&state, next);
  } catch (...) {
    return false;
  }
  state.add_ref();
  return true;
}

void deferred_continuations::run_all(std::vector<entry>& entries) noexcept {
  for (auto& [state, next] : entries) {
    next->on_ready(*state);
    state->release();
  }
  entries.clear();
}

bool state_base::try_start() noexcept {
  std::uint32_t word = word_.load(std::memory_order_relaxed);
  while ((word & status_mask) == pending) {
    if (word_.compare_exchange_weak(word, (word & ~status_mask) | running,
                                    std::memory_order_acquire, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

bool state_base::claim() noexcept {
  std::uint32_t word = word_.load(std::memory_order_relaxed);
  while ((word & status_mask) == pending || (word & status_mask) == running) {
    if (word_.compare_exchange_weak(word, (word & ~status_mask) | completing,
                                    std::memory_order_acquire, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void state_base::publish() noexcept {
  // Release: the result written after claim() happens-before any acquire load that sees `ready`.
  const std::uint32_t before = word_.exchange(ready, std::memory_order_acq_rel);
  // Pairs with the fetch_or of sleeper_bit in sleep_until_ready(): either the sleeper set the bit
  // before this exchange (we wake it) or it sees `ready` and never sleeps.
  if ((before & sleeper_bit) != 0) futex_wake_all(word_);
  // The completing executor holds a reference, so the state outlives the continuation call.
  continuation* next = next_.exchange(fired, std::memory_order_acq_rel);
  if (next == nullptr) return;
  deferred_continuations* later = deferred_continuations::current();
  if (later == nullptr || !later->keep(*this, next)) next->on_ready(*this);
}

bool state_base::fail(task_error error) noexcept {
  if (!claim()) return false;
  error_.emplace(std::move(error));
  publish();
  return true;
}

void state_base::set_continuation(continuation* next) noexcept {
  continuation* expected = nullptr;
  if (!next_.compare_exchange_strong(expected, next, std::memory_order_acq_rel)) {
    next->on_ready(*this);  // already fired: the state is ready
  }
}

bool state_base::spin_until_ready() const noexcept {
  // A result due within microseconds (a short task on another thread or process) is cheaper to
  // wait for awake: a futex sleep plus its wake-up costs the waiter and the completer a system
  // call each. Spin ~10 µs, then offer the core a few times (the completer may need it on a
  // busy machine), then sleep.
  const auto spin_end = std::chrono::steady_clock::now() + std::chrono::microseconds{10};
  do {
    for (int i = 0; i < 64; ++i) {
      if (is_ready()) return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  } while (std::chrono::steady_clock::now() < spin_end);
  for (int i = 0; i < 8; ++i) {
    if (is_ready()) return true;
    sched_yield();
  }
  return is_ready();
}

void state_base::sleep_until_ready(const std::chrono::steady_clock::time_point* deadline) const {
  for (;;) {
    std::uint32_t word = word_.load(std::memory_order_acquire);
    if ((word & status_mask) == ready) return;
    if ((word & sleeper_bit) == 0) {
      word = word_.fetch_or(sleeper_bit, std::memory_order_acq_rel) | sleeper_bit;
      if ((word & status_mask) == ready) return;
    }
    if (deadline == nullptr) {
      futex_wait(word_, word, nullptr);
      continue;
    }
    const auto left = *deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    const timespec relative{static_cast<time_t>(ns / 1'000'000'000),
                            static_cast<long>(ns % 1'000'000'000)};
    futex_wait(word_, word, &relative);
  }
}

void state_base::wait() const {
  if (is_ready()) return;
  if (wait_helper* helper = current_wait_helper(); helper != nullptr) {
    // Fork-join's usual case first, without the loop's set-up: the awaited child is the newest
    // task of this worker's deque and running it is all the wait takes.
    if (helper->try_run_one(const_cast<state_base*>(this)) && is_ready()) return;
    (void)help_until_ready(*helper, nullptr);
    return;
  }
  // Not started yet: run it here rather than sleep until a worker gets to it. The state is never
  // const itself, only this view of it.
  if (status() == pending && const_cast<state_base*>(this)->run_inline()) return;
  // A remote pool's waiter collects results itself rather than wait for its collector.
  if (drive_until(nullptr)) return;
  if (spin_until_ready()) return;
  sleep_until_ready(nullptr);
}

bool state_base::wait_until(std::chrono::steady_clock::time_point deadline) const {
  if (is_ready()) return true;
  if (wait_helper* helper = current_wait_helper(); helper != nullptr) {
    return help_until_ready(*helper, &deadline);
  }
  // A thread outside any pool never runs the task itself here: a timed wait must not turn into
  // running a task of unknown length.
  if (drive_until(&deadline)) return true;
  sleep_until_ready(&deadline);
  return is_ready();
}

bool state_base::help_until_ready(wait_helper& helper,
                                  const std::chrono::steady_clock::time_point* deadline) const {
  // On a pool worker: run what the helper allows (this task first, if nobody started it) until
  // ours is done; when there is nothing to run, sleep on the state for a short, growing while so
  // that work submitted meanwhile is still picked up.
  auto nap = std::chrono::microseconds{20};
  auto* self = const_cast<state_base*>(this);  // never const itself, only this view of it
  while (!is_ready()) {
    // The clock is read only by timed waits: fork-join waits (fib) come through here per task.
    if (deadline != nullptr && std::chrono::steady_clock::now() >= *deadline) return is_ready();
    if (helper.try_run_one(self)) {
      nap = std::chrono::microseconds{20};
      continue;
    }
    auto until = std::chrono::steady_clock::now() + nap;
    if (deadline != nullptr) until = std::min(until, *deadline);
    sleep_until_ready(&until);
    nap = std::min(nap * 2, std::chrono::microseconds{1000});
  }
  return true;
}

bool state_base::cancel() noexcept {
  std::uint32_t word = word_.load(std::memory_order_acquire);
  for (;;) {
    switch (word & status_mask) {
      case pending:
        if (word_.compare_exchange_weak(word, (word & ~status_mask) | completing,
                                        std::memory_order_acquire, std::memory_order_acquire)) {
          error_.emplace(error_kind::cancelled, "task cancelled before it started");
          publish();
          return true;
        }
        break;
      case running:
        return cancel_running();
      default:
        return false;
    }
  }
}

}  // namespace crew::detail
