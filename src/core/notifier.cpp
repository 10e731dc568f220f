#include "crew/detail/notifier.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>

namespace crew::detail {

void notifier::commit_wait(std::uint32_t key, std::chrono::nanoseconds timeout) noexcept {
  timespec relative{};
  const timespec* limit = nullptr;
  if (timeout.count() >= 0) {
    relative.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
    relative.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    limit = &relative;
  }
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&epoch_), FUTEX_WAIT_PRIVATE, key, limit,
          nullptr, 0);
  waiters_.fetch_sub(1, std::memory_order_relaxed);
}

void notifier::notify_all() noexcept {
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) != 0) {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&epoch_), FUTEX_WAKE_PRIVATE, INT_MAX,
            nullptr, nullptr, 0);
  }
}

}  // namespace crew::detail
