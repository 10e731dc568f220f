// futex_wait / futex_wake on shared memory, within and across processes.
#include "ipc/futex.hpp"

#include <gtest/gtest.h>

#include <new>
#include <thread>

#include "ipc/child.hpp"
#include "ipc/shared_region.hpp"

namespace crew::detail::ipc {
namespace {

using namespace std::chrono_literals;

TEST(Futex, ReturnsAtOnceWhenTheValueDiffers) {
  std::atomic<std::uint32_t> word{5};
  EXPECT_EQ(futex_wait(&word, 4, 10s), futex_status::not_expected);
}

TEST(Futex, TimesOut) {
  std::atomic<std::uint32_t> word{0};
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(futex_wait(&word, 0, 20ms), futex_status::timed_out);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 15ms);
}

TEST(Futex, WakeWithNoWaitersWakesNobody) {
  std::atomic<std::uint32_t> word{0};
  EXPECT_EQ(futex_wake(&word, 1), 0);
}

TEST(Futex, WakesAWaiterInAnotherProcess) {
  auto region = shared_region::create("futex-test", 4096);
  auto* word = ::new (region.data()) std::atomic<std::uint32_t>(0);
  auto* ready = ::new (region.data() + 64) std::atomic<std::uint32_t>(0);
  test::forked_child child([&] {
    ready->store(1);
    // Sleep until the parent changes the word; the 60 s timeout only guards against a bug.
    while (word->load() == 0) {
      if (futex_wait(word, 0, 60s) == futex_status::timed_out) return 2;
    }
    return word->load() == 7 ? 0 : 3;
  });
  while (ready->load() == 0) std::this_thread::yield();
  std::this_thread::sleep_for(50ms);  // let the child reach futex_wait
  word->store(7);
  int woken = 0;
  for (int i = 0; i < 1000 && woken == 0 && child.alive(); ++i) {
    woken = futex_wake(word, 1);
    if (woken == 0) std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(child.exit_code(), 0);
}

}  // namespace
}  // namespace crew::detail::ipc
