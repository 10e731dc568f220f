// crew/detail/notifier.hpp — an event count: threads sleep until notify() is called after they
// looked at some condition, without lost wake-ups and without a system call when nobody sleeps.
//
//   waiter:   key = prepare_wait(); if (condition) { cancel_wait(); ...} else commit_wait(key);
//   notifier: make condition true; notify_all();
//
// prepare_wait's seq_cst increment of waiters_ pairs with the seq_cst load in notify_all(): the
// notifier either sees the waiter (and wakes it) or the waiter sees the condition.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace crew::detail {

class notifier {
 public:
  std::uint32_t prepare_wait() noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    return epoch_.load(std::memory_order_seq_cst);
  }
  void cancel_wait() noexcept { waiters_.fetch_sub(1, std::memory_order_relaxed); }
  /// Sleeps until notified after prepare_wait (or the timeout passes, or spuriously).
  void commit_wait(std::uint32_t key,
                   std::chrono::nanoseconds timeout = std::chrono::nanoseconds{-1}) noexcept;
  void notify_all() noexcept;

 private:
  std::atomic<std::uint32_t> epoch_{0};
  std::atomic<std::uint32_t> waiters_{0};
};

}  // namespace crew::detail
