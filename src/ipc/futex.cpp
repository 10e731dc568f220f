#include "ipc/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <system_error>

namespace crew::detail::ipc {

futex_status futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                        std::optional<std::chrono::nanoseconds> timeout) {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout) {
    auto ns = timeout->count() < 0 ? 0 : timeout->count();
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    tsp = &ts;
  }
  // FUTEX_WAIT (not FUTEX_WAIT_PRIVATE): the word is shared between processes.
  long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT, expected, tsp,
                     nullptr, 0);
  if (r == 0) return futex_status::woken;
  switch (errno) {
    case EAGAIN:
      return futex_status::not_expected;
    case ETIMEDOUT:
      return futex_status::timed_out;
    case EINTR:
      return futex_status::interrupted;
    default:
      throw std::system_error(errno, std::system_category(), "futex");
  }
}

int futex_wake(std::atomic<std::uint32_t>* word, int count) noexcept {
  long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE, count, nullptr,
                     nullptr, 0);
  return r < 0 ? 0 : static_cast<int>(r);
}

}  // namespace crew::detail::ipc
