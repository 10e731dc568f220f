// crew/detail/thread_pool/spin_lock.hpp — a lock for critical sections of a few instructions.
//
// The injection queue is locked by the submitter for one push and by a worker for a batch pop.
// std::mutex (glibc) sleeps in the kernel as soon as it is contended, which under a flood of
// submissions costs two context switches per collision; this lock spins on a relaxed load (no
// cache-line ping-pong while waiting), pauses, and yields only when the holder seems descheduled.
#pragma once

#include <atomic>
#include <thread>

namespace crew::detail {

class spin_lock {
 public:
  void lock() noexcept {
    for (unsigned spins = 0;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < 128) {
          pause();
        } else {
          std::this_thread::yield();  // the holder was probably preempted
        }
      }
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  std::atomic<bool> locked_{false};
};

}  // namespace crew::detail
