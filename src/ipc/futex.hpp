// ipc/futex.hpp — process-shared futex wait/wake on a 32-bit word.
//
// Purpose: the sleeping half of crew's spin-then-sleep waits. The word normally lives in a
// MAP_SHARED mapping (shared_region), so these use the shared futex operations (no
// FUTEX_PRIVATE_FLAG): the kernel keys the futex by file and offset, and a waiter in one process
// is woken by a wake in another even when the two map the region at different addresses.
// Memory ordering: none beyond what the kernel gives — futex_wait compares *word with `expected`
// atomically with going to sleep, so a wake issued after the word changed is never lost. Callers
// order their own data with atomics (see doorbell.hpp).
// Thread-safety: any thread, any process. Blocking: futex_wait blocks up to `timeout`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace crew::detail::ipc {

static_assert(sizeof(std::atomic<std::uint32_t>) == 4 &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "a futex word must be a plain lock-free 32-bit word");

enum class futex_status {
  woken,         ///< woken by futex_wake (or spuriously): re-check the condition
  not_expected,  ///< *word != expected on entry: the condition may already have changed
  timed_out,     ///< `timeout` elapsed
  interrupted,   ///< a signal arrived
};

/// Sleeps while *word == expected, at most `timeout` (none: indefinitely). Throws
/// std::system_error("futex") only for errors that mean misuse (EFAULT, EINVAL, ENOSYS).
futex_status futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                        std::optional<std::chrono::nanoseconds> timeout = std::nullopt);

/// Wakes up to `count` waiters on `word`; returns how many were woken. Never fails on a valid
/// address, so it is noexcept and returns 0 on error.
int futex_wake(std::atomic<std::uint32_t>* word, int count) noexcept;

}  // namespace crew::detail::ipc
