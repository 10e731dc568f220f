// crew/sync.hpp between threads, between forked processes and with pool workers; and with
// participants SIGKILLed while they hold the mutex or before they arrive.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crew/process_pool.hpp"
#include "crew/shared_array.hpp"
#include "crew/sync.hpp"
#include "crew/thread_pool.hpp"
#include "support/process.hpp"

namespace {

using namespace std::chrono_literals;

bool exited_cleanly(int status) {
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A plain (non-atomic) increment under the mutex, many times: the total is exact only if the
// mutex excludes.
std::int64_t add_under_lock(crew::process_mutex m, crew::shared_array<std::int64_t> total,
                            int times) {
  for (int i = 0; i < times; ++i) {
    std::lock_guard lock{m};
    total[0] = total[0] + 1;
  }
  return times;
}

std::int64_t bump(crew::shared_counter c, int times) {
  for (int i = 0; i < times; ++i) ++c;
  return times;
}

TEST(ProcessMutex, ExcludesAcrossThreadsProcessesAndPoolWorkers) {
  auto m = crew::process_mutex::create();
  auto total = crew::shared_array<std::int64_t>::create(1);
  constexpr int times = 20000;
  const pid_t child = crew::test::fork_running([=] { add_under_lock(m, total, times); });
  std::thread thread([=] { add_under_lock(m, total, times); });
  crew::process_pool_options o;
  o.workers = 2;
  crew::process_pool pool{o};
  auto a = pool.submit<&add_under_lock>(m, total, times);
  auto b = pool.submit<&add_under_lock>(m, total, times);
  add_under_lock(m, total, times);
  thread.join();
  EXPECT_EQ(a.get() + b.get(), 2 * times);
  EXPECT_TRUE(exited_cleanly(crew::test::wait_for_child(child)));
  EXPECT_EQ(total[0], 5 * times);
}

TEST(ProcessMutex, AHolderKilledInsideIsReportedToTheNextHolderWhoRepairs) {
  auto m = crew::process_mutex::create();
  auto data = crew::shared_array<int>::create(2);
  const pid_t child = crew::test::fork_running([=]() mutable {
    m.lock();
    data[0] = 1;  // half of an update that should keep data[0] == data[1]
    raise(SIGKILL);
  });
  const int status = crew::test::wait_for_child(child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  {
    std::unique_lock lock{m, std::defer_lock};
    ASSERT_TRUE(lock.try_lock_for(10s));
    ASSERT_TRUE(m.owner_died()) << "the next holder learns that the last one died inside";
    EXPECT_NE(data[0], data[1]);
    data[1] = data[0];  // repair
    m.consistent();
    EXPECT_FALSE(m.owner_died());
  }
  std::lock_guard again{m};  // usable as before
  EXPECT_FALSE(m.owner_died());
  EXPECT_EQ(data[0], data[1]);
}

TEST(ProcessMutex, UnlockingWithoutRepairMakesItUnrecoverableNotSilent) {
  auto m = crew::process_mutex::create();
  const pid_t child = crew::test::fork_running([=]() mutable {
    m.lock();
    raise(SIGKILL);
  });
  crew::test::wait_for_child(child);
  m.lock();
  EXPECT_TRUE(m.owner_died());
  m.unlock();  // without consistent()
  try {
    m.lock();
    FAIL() << "an unrepaired mutex must not be handed out again";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOTRECOVERABLE);
    EXPECT_NE(std::string{e.what()}.find("without calling consistent()"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)m.try_lock(), std::system_error);
}

TEST(ProcessMutex, TimedLockGivesUpWhileAnotherProcessHoldsIt) {
  auto m = crew::process_mutex::create();
  auto held = crew::process_latch::create(1);
  auto release = crew::process_latch::create(1);
  const pid_t child = crew::test::fork_running([=]() mutable {
    std::lock_guard lock{m};
    held.count_down();
    (void)release.wait_for(30s);
  });
  ASSERT_TRUE(held.wait_for(30s));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(m.try_lock_for(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  EXPECT_FALSE(m.try_lock());
  release.count_down();
  EXPECT_TRUE(m.try_lock_for(30s));
  m.unlock();
  EXPECT_TRUE(exited_cleanly(crew::test::wait_for_child(child)));
}

TEST(ProcessMutex, AnEmptyHandleIsAClearError) {
  crew::process_mutex m;
  EXPECT_THROW(m.lock(), std::logic_error);
  crew::shared_counter c;
  EXPECT_THROW((void)c.load(), std::logic_error);
}

TEST(ProcessConditionVariable, WaitsForAnotherProcessAndTimesOut) {
  auto m = crew::process_mutex::create();
  auto cv = crew::process_condition_variable::create();
  auto flag = crew::shared_array<int>::create(1);
  {
    std::unique_lock lock{m};
    EXPECT_FALSE(cv.wait_for(lock, 30ms, [&] { return flag[0] == 1; }));
  }
  const pid_t child = crew::test::fork_running([=]() mutable {
    std::this_thread::sleep_for(20ms);
    {
      std::lock_guard lock{m};
      flag[0] = 1;
    }
    cv.notify_all();
  });
  {
    std::unique_lock lock{m};
    EXPECT_TRUE(cv.wait_for(lock, 30s, [&] { return flag[0] == 1; }));
  }
  EXPECT_TRUE(exited_cleanly(crew::test::wait_for_child(child)));
}

TEST(ProcessConditionVariable, AWaiterKilledWhileWaitingDoesNotSwallowANotify) {
  auto m = crew::process_mutex::create();
  auto cv = crew::process_condition_variable::create();
  auto state = crew::shared_array<int>::create(2);  // [0]: waiters in, [1]: go
  const pid_t doomed = crew::test::fork_running([=]() mutable {
    std::unique_lock lock{m};
    ++state[0];
    cv.wait(lock, [&] { return state[1] == 1; });
  });
  const pid_t survivor = crew::test::fork_running([=]() mutable {
    std::unique_lock lock{m};
    ++state[0];
    if (!cv.wait_for(lock, 30s, [&] { return state[1] == 1; })) _exit(3);
  });
  for (int i = 0; i < 3000; ++i) {
    {
      std::lock_guard lock{m};
      if (state[0] == 2) break;
    }
    std::this_thread::sleep_for(1ms);
  }
  std::this_thread::sleep_for(10ms);  // both in wait (not required for correctness)
  kill(doomed, SIGKILL);
  crew::test::wait_for_child(doomed);
  {
    std::lock_guard lock{m};
    state[1] = 1;
  }
  cv.notify_one();
  EXPECT_TRUE(exited_cleanly(crew::test::wait_for_child(survivor)));
}

TEST(ProcessSemaphore, CountsAcrossProcessesAndTimesOut) {
  auto sem = crew::process_semaphore::create(0);
  EXPECT_FALSE(sem.try_acquire());
  EXPECT_FALSE(sem.try_acquire_for(30ms));
  const pid_t child = crew::test::fork_running([=]() mutable {
    for (int i = 0; i < 1000; ++i) sem.release();
  });
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(sem.try_acquire_for(30s)) << i;
  EXPECT_TRUE(exited_cleanly(crew::test::wait_for_child(child)));
  EXPECT_EQ(sem.value(), 0U);
  sem.release(3);
  EXPECT_EQ(sem.value(), 3U);
  EXPECT_THROW(sem.release(0x7fffffffU), std::invalid_argument);
  EXPECT_EQ(sem.value(), 3U) << "a refused release adds nothing";
  EXPECT_THROW((void)crew::process_semaphore::create(0x80000000U), std::invalid_argument);
}

TEST(ProcessBarrier, PhasesAcrossProcessesAndThreads) {
  auto barrier = crew::process_barrier::create(3);
  auto arrivals = crew::shared_counter::create();
  constexpr int phases = 200;
  // Each participant checks, after every phase, that all three arrived in it.
  auto participant = [=]() mutable {
    for (int p = 0; p < phases; ++p) {
      ++arrivals;
      barrier.arrive_and_wait();
      if (arrivals.load() < 3 * (p + 1)) _exit(4);
      barrier.arrive_and_wait();  // nobody starts the next phase before all have checked
    }
  };
  // Three participants: a forked process, a thread and this thread.
  const pid_t child = crew::test::fork_running(participant);
  std::thread thread(participant);
  participant();
  thread.join();
  EXPECT_TRUE(exited_cleanly(crew::test::wait_for_child(child)));
  EXPECT_EQ(arrivals.load(), 3 * phases);
  EXPECT_THROW((void)crew::process_barrier::create(0), std::invalid_argument);
}

TEST(ProcessBarrier, AParticipantKilledBeforeArrivingTimesTheOthersOut) {
  auto barrier = crew::process_barrier::create(2);
  const pid_t doomed = crew::test::fork_running([] { pause(); });
  kill(doomed, SIGKILL);
  crew::test::wait_for_child(doomed);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(barrier.arrive_and_wait_for(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  // The timed-out arrival was taken back: the phase still needs two.
  const pid_t partner = crew::test::fork_running([=]() mutable {
    if (!barrier.arrive_and_wait_for(30s)) _exit(5);
  });
  EXPECT_TRUE(barrier.arrive_and_wait_for(30s));
  EXPECT_TRUE(exited_cleanly(crew::test::wait_for_child(partner)));
}

TEST(ProcessLatch, OpensAtZeroAcrossProcesses) {
  auto latch = crew::process_latch::create(4);
  EXPECT_FALSE(latch.try_wait());
  EXPECT_FALSE(latch.wait_for(20ms));
  std::vector<pid_t> children;
  for (int i = 0; i < 4; ++i) {
    children.push_back(crew::test::fork_running([=]() mutable { latch.count_down(); }));
  }
  EXPECT_TRUE(latch.wait_for(30s));
  EXPECT_TRUE(latch.try_wait());
  for (pid_t c : children) EXPECT_TRUE(exited_cleanly(crew::test::wait_for_child(c)));
  EXPECT_THROW(latch.count_down(), std::invalid_argument);
  auto two = crew::process_latch::create(2);
  try {
    two.count_down(3);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string{e.what()}.find("2 left"), std::string::npos) << e.what();
  }
}

TEST(SharedCounter, TheSameTaskOnThreadsAndProcesses) {
  auto c = crew::shared_counter::create(10);
  crew::thread_pool threads{2};
  crew::process_pool_options o;
  o.workers = 2;
  crew::process_pool processes{o};
  std::vector<crew::future<std::int64_t>> fs;
  for (int i = 0; i < 4; ++i) {
    fs.push_back(threads.submit(bump, c, 10000));
    fs.push_back(processes.submit<&bump>(c, 10000));
  }
  for (auto& f : fs) EXPECT_EQ(f.get(), 10000);
  EXPECT_EQ(c.load(), 10 + 8 * 10000);
  std::int64_t expected = c.load();
  EXPECT_TRUE(c.compare_exchange_strong(expected, 0));
  EXPECT_EQ(c.exchange(5), 0);
  EXPECT_EQ(c += 2, 7);
}

TEST(Sync, MemoryOfAnotherKindIsRefused) {
  auto latch = crew::process_latch::create(1);
  crew::detail::outgoing_attachments sent;
  std::vector<std::byte> bytes;
  {
    const crew::detail::sending_attachments with{&sent};
    bytes = crew::codec::encode(latch);
  }
  const std::vector<int> fds = sent.fds();
  const crew::detail::incoming_attachments received{fds};
  const crew::detail::receiving_attachments with{&received};
  crew::process_mutex m;
  EXPECT_THROW(crew::codec::decode_into(bytes, m), crew::serialization_error);
  crew::process_latch same;
  crew::codec::decode_into(bytes, same);
  same.count_down();
  EXPECT_TRUE(latch.try_wait()) << "the decoded handle is the same latch";
}

}  // namespace
