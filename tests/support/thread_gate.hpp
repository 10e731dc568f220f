// Test support for thread_pool suites: a gate that holds tasks until the test opens it, the
// patience every wait gets, and the ThreadSanitizer hook those suites share.
// Include it from exactly one source file of a test binary (it defines the TSan hook).
#pragma once

#include <atomic>
#include <chrono>

// ThreadSanitizer cannot see the reference count inside libstdc++'s exception_ptr (its atomics are
// compiled into the uninstrumented libstdc++.so), so the last release of a task's exception on a
// worker, after the test thread caught and dropped its copy, looks like a race. Only frees made
// from inside libstdc++ (the exception's release and destructor) are suppressed; crew's own code
// stays checked. The hook is read by the TSan runtime only; other builds never call it.
extern "C" const char* __tsan_default_suppressions() {
  return "race:std::__exception_ptr::exception_ptr::_M_release\n"
         "called_from_lib:libstdc++.so.6\n";
}

namespace crew::test {

// Generous: only a hang, never a slow machine, gets near it.
inline constexpr auto patience = std::chrono::seconds{60};

/// Holds tasks until opened. Tasks call wait(); the test calls open().
class gate {
 public:
  void wait() const {
    while (!open_.load(std::memory_order_acquire)) open_.wait(false, std::memory_order_acquire);
  }
  void open() {
    open_.store(true, std::memory_order_release);
    open_.notify_all();
  }
  [[nodiscard]] bool is_open() const { return open_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> open_{false};
};

}  // namespace crew::test
