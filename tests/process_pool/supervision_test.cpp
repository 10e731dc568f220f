// The remote pools' edge paths: messages that do not fit a ring, workers that cannot start,
// cancels that race with work, shutdown from several threads, process trees, and blame on a
// hybrid pool. Every case uses real worker processes and real signals.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/codec.hpp"
#include "crew/hybrid_pool.hpp"
#include "crew/process_pool.hpp"
#include "crew/when.hpp"
#include "support/process.hpp"

namespace {

using namespace std::chrono_literals;
using crew::error_kind;
using crew::process_pool;

std::size_t length_of(const std::string& text) {
  return text.size();
}
std::string echo(const std::string& text) {
  return text;
}
std::string filled(std::size_t bytes) {
  return std::string(bytes, 'y');
}
/// Takes `mib` MiB, touches every page and holds it for `hold_ms`.
int hogs_mib(std::size_t mib, int hold_ms) {
  std::vector<char> block(mib << 20);
  for (std::size_t i = 0; i < block.size(); i += 4096) block[i] = 1;
  std::this_thread::sleep_for(std::chrono::milliseconds{hold_ms});
  return block[block.size() / 2];
}
int sleeps_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return ms;
}
int square(int x) {
  return x * x;
}
int my_pid() {
  return static_cast<int>(getpid());
}
/// Sleeps, then leaves a file behind: the side effect a cancelled task must never have.
int touches_after_ms(std::string path, int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  std::ofstream{path} << "ran\n";
  return ms;
}
int throws_huge(std::size_t bytes) {
  throw std::invalid_argument(std::string(bytes, 'x'));
}
int segfaults_after_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  raise(SIGSEGV);
  return 0;
}
/// Starts a helper process (as system() does), writes its pid to `path`, then hangs.
int starts_helper_then_hangs(std::string path) {
  const std::string command = "sleep 120 & echo $! > " + path;
  if (std::system(command.c_str()) != 0) return -1;
  std::this_thread::sleep_for(120s);
  return 0;
}

void hangs_forever() {
  for (;;) std::this_thread::sleep_for(1s);
}
void throws_at_start() {
  throw std::runtime_error("no licence server");
}
void exits_at_start() {
  std::exit(3);
}

/// Decodes fine in the worker, refuses to decode in the parent: a result the parent cannot read.
struct unreadable {
  int value = 0;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(value);
    if constexpr (Archive::is_loading) {
      if (value == 13) throw crew::serialization_error("thirteen is not accepted here", 0);
    }
  }
};
unreadable makes_unreadable(int value) {
  return unreadable{value};
}

std::string temp_path(const char* what) {
  return (std::filesystem::temp_directory_path() /
          (std::string{"crew-"} + what + "-" + std::to_string(getpid()) + "-" +
           std::to_string(std::random_device{}())))
      .string();
}

crew::process_pool_options opts(std::size_t workers) {
  crew::process_pool_options o;
  o.workers = workers;
  return o;
}

// --- messages of any size ---------------------------------------------------------------------

TEST(Supervision, AnArgumentLargerThanTheRingGetsThrough) {
  auto o = opts(1);
  o.channel_bytes = 32 * 1024;
  process_pool pool{o};
  const std::string big(50 * 1024, 'a');
  EXPECT_EQ(pool.submit<&length_of>(big).get(), big.size());
  EXPECT_EQ(pool.submit<&echo>(big).get(), big);
  EXPECT_EQ(pool.stats().restarts, 0U) << "no worker may be taken for broken";
}

TEST(Supervision, ASmallestRingCarriesMessagesOfEverySize) {
  auto o = opts(2);
  o.channel_bytes = 4096;
  process_pool pool{o};
  std::vector<crew::future<std::string>> futures;
  for (std::size_t size :
       {0UL, 100UL, 900UL, 1000UL, 1100UL, 4000UL, 8000UL, 100'000UL, 3UL << 20}) {
    futures.push_back(pool.submit<&echo>(std::string(size, 'z')));
  }
  std::size_t i = 0;
  for (std::size_t size :
       {0UL, 100UL, 900UL, 1000UL, 1100UL, 4000UL, 8000UL, 100'000UL, 3UL << 20}) {
    EXPECT_EQ(futures[i++].get().size(), size);
  }
  EXPECT_EQ(pool.stats().restarts, 0U);
}

TEST(Supervision, ChannelBytesOutOfRangeIsAClearError) {
  auto o = opts(1);
  o.channel_bytes = 1000;
  EXPECT_THROW(process_pool{o}, std::invalid_argument);
  o.channel_bytes = std::size_t{4} << 30;
  EXPECT_THROW(process_pool{o}, std::invalid_argument);
  o.channel_bytes = 5000;  // rounded up to 8 KiB
  process_pool pool{o};
  EXPECT_EQ(pool.submit<&square>(3).get(), 9);
}

TEST(Supervision, AnExceptionWithAHugeMessageIsAnException) {
  process_pool pool{opts(1)};
  auto r = pool.submit<&throws_huge>(std::size_t{2} << 20).result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::exception);
  EXPECT_EQ(std::string{r.error().what()}.size(), std::size_t{2} << 20);
  EXPECT_EQ(pool.submit<&square>(5).get(), 25);
  EXPECT_EQ(pool.stats().restarts, 0U);
}

TEST(Supervision, AResultTheParentCannotDecodeFailsOnlyItsTask) {
  process_pool pool{opts(1)};
  const int pid = pool.submit<&my_pid>().get();
  auto bad = pool.submit<&makes_unreadable>(13);
  auto good = pool.submit<&makes_unreadable>(14);
  auto r = bad.result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::serialization);
  EXPECT_EQ(good.get().value, 14) << "the next task is not blamed";
  EXPECT_EQ(pool.submit<&my_pid>().get(), pid) << "the worker is not killed";
}

// --- workers that cannot start -------------------------------------------------------------------

TEST(Supervision, AHangingInitializerFailsTasksClearlyAndGivesUp) {
  auto o = opts(2);
  o.initializer = crew::task<&hangs_forever>;
  o.start_timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  {
    process_pool pool{o};
    auto r = pool.submit<&square>(2).result();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), error_kind::worker_lost);
    EXPECT_NE(std::string{r.error().what()}.find("did not become ready within 300 ms"),
              std::string::npos)
        << r.error().what();
    EXPECT_TRUE(pool.stats().broken);
    auto later = pool.submit<&square>(3).result();
    ASSERT_FALSE(later);
    EXPECT_EQ(later.error().kind(), error_kind::worker_lost);
    EXPECT_LE(pool.stats().start_failures, 2U * 3U);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
}

TEST(Supervision, AThrowingInitializerIsNamedAndDoesNotRespawnForever) {
  auto o = opts(2);
  o.initializer = crew::task<&throws_at_start>;
  process_pool pool{o};
  auto r = pool.submit<&square>(2).result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::worker_lost);
  const std::string what = r.error().what();
  EXPECT_NE(what.find("initializer threw"), std::string::npos) << what;
  EXPECT_NE(what.find("no licence server"), std::string::npos) << what;
  const std::size_t failures = pool.stats().start_failures;
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(pool.stats().start_failures, failures) << "a broken pool stops starting workers";
  EXPECT_TRUE(pool.worker_pids().empty());
}

TEST(Supervision, AnExitingInitializerDoesNotPoisonATaskThatNeverRan) {
  auto o = opts(1);
  o.initializer = crew::task<&exits_at_start>;
  o.retries = 2;
  process_pool pool{o};
  auto r = pool.submit<&square>(2).result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::worker_lost);
  EXPECT_FALSE(r.error().poisoned()) << "the task never ran";
  EXPECT_NE(std::string{r.error().what()}.find("exited with code 3"), std::string::npos)
      << r.error().what();
}

// --- cancellation ------------------------------------------------------------------------------

TEST(Supervision, ACancelledTaskSentAheadNeverRuns) {
  auto o = opts(1);
  o.pipeline_depth = 4;
  process_pool pool{o};
  const std::string marker = temp_path("cancel");
  auto first = pool.submit<&sleeps_ms>(300);
  auto second = pool.submit<&touches_after_ms>(marker, 0);
  EXPECT_TRUE(second.cancel());
  EXPECT_EQ(second.result().error().kind(), error_kind::cancelled);
  EXPECT_EQ(first.get(), 300);
  pool.wait_idle();
  EXPECT_EQ(pool.submit<&square>(4).get(), 16);
  EXPECT_FALSE(std::filesystem::exists(marker)) << "cancel() said true, but the task ran";
  std::filesystem::remove(marker);
}

TEST(Supervision, CancelRacingCompletionNeverLies) {
  process_pool pool{opts(2)};
  std::mt19937 random{12345};
  for (int i = 0; i < 200; ++i) {
    auto f = pool.submit<&sleeps_ms>(static_cast<int>(random() % 3));
    std::this_thread::sleep_for(std::chrono::microseconds{random() % 3000});
    const bool cancelled = f.cancel();
    auto r = f.result();
    if (cancelled) {
      ASSERT_FALSE(r) << "cancel() returned true, yet the future holds a value";
      EXPECT_EQ(r.error().kind(), error_kind::cancelled);
    } else {
      ASSERT_TRUE(r) << "cancel() returned false, yet the task failed: " << r.error().what();
    }
  }
}

TEST(Supervision, ShutdownCancelPendingNeverRunsTasksSentAhead) {
  auto o = opts(1);
  o.pipeline_depth = 8;
  process_pool pool{o};
  std::vector<std::string> markers;
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 3; ++i) {
    markers.push_back(temp_path("shutdown"));
    futures.push_back(pool.submit<&touches_after_ms>(markers.back(), 200));
  }
  while (pool.stats().running == 0) std::this_thread::sleep_for(1ms);
  pool.shutdown(crew::shutdown_mode::cancel_pending);
  EXPECT_EQ(futures[0].get(), 200);
  for (int i = 1; i < 3; ++i) {
    auto r = futures[i].result();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), error_kind::cancelled);
    EXPECT_FALSE(std::filesystem::exists(markers[i])) << "task " << i << " ran";
  }
  for (auto& m : markers) std::filesystem::remove(m);
}

// --- shutdown ----------------------------------------------------------------------------------

TEST(Supervision, ShutdownFromManyThreadsAtOnce) {
  for (int round = 0; round < 5; ++round) {
    process_pool pool{opts(2)};
    std::vector<crew::future<int>> futures;
    for (int i = 0; i < 20; ++i) futures.push_back(pool.submit<&sleeps_ms>(i % 3));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&pool, t] {
        if (t == 3) {
          pool.wait_idle();
        } else {
          pool.shutdown(t == 1 ? crew::shutdown_mode::cancel_pending : crew::shutdown_mode::drain);
        }
      });
    }
    for (auto& t : threads) t.join();
    for (auto& f : futures) {
      auto r = f.result();
      if (!r) {
        EXPECT_EQ(r.error().kind(), error_kind::cancelled);
      }
    }
    EXPECT_TRUE(pool.worker_pids().empty());
  }
}

// --- process trees -------------------------------------------------------------------------------

TEST(Supervision, ATimedOutTaskTakesItsHelperProcessesWithIt) {
  const std::string pid_file = temp_path("helper");
  int helper = 0;
  {
    auto o = opts(1);
    o.task_timeout = 500ms;
    process_pool pool{o};
    auto r = pool.submit<&starts_helper_then_hangs>(pid_file).result();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), error_kind::timed_out);
    std::ifstream{pid_file} >> helper;
    ASSERT_GT(helper, 0);
  }
  EXPECT_TRUE(crew::test::still_alive_after({helper}, 5s).empty())
      << "helper " << helper << " outlived its worker";
  std::filesystem::remove(pid_file);
}

// --- blame on a hybrid pool ----------------------------------------------------------------------

TEST(Supervision, AHybridSiblingKilledByACrashSaysWhoCrashed) {
  crew::hybrid_pool_options o;
  o.processes = 1;
  o.threads_per_process = 2;
  crew::hybrid_pool pool{o};
  auto culprit = pool.submit<&segfaults_after_ms>(200);
  auto innocent = pool.submit<&sleeps_ms>(5000);
  auto c = culprit.result();
  auto i = innocent.result();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind(), error_kind::crashed);
  EXPECT_EQ(c.error().signal(), SIGSEGV);
  EXPECT_NE(std::string{c.error().what()}.find("signal 11"), std::string::npos) << c.error().what();
  ASSERT_FALSE(i);
  EXPECT_EQ(i.error().kind(), error_kind::crashed);
  const std::string what = i.error().what();
  EXPECT_NE(what.find("failed because task"), std::string::npos) << what;
  EXPECT_NE(what.find("segfaults_after_ms"), std::string::npos) << what;
  EXPECT_EQ(pool.submit<&square>(6).get(), 36);
}

}  // namespace

namespace {

TEST(Supervision, CancellingTasksSentAheadThenDestroyingThePoolReturns) {
  for (int round = 0; round < 3; ++round) {
    auto o = opts(2);
    std::vector<crew::future<int>> futures;
    {
      process_pool pool{o};
      for (int i = 0; i < 64; ++i) futures.push_back(pool.submit<&sleeps_ms>(1));
      EXPECT_EQ(futures.front().get(), 1);
      for (std::size_t i = 1; i < futures.size(); ++i) futures[i].cancel();
    }  // the destructor drains what was not cancelled and returns
    for (std::size_t i = 1; i < futures.size(); ++i) {
      auto r = futures[i].result();
      if (!r) {
        EXPECT_EQ(r.error().kind(), error_kind::cancelled);
      }
    }
  }
}

TEST(Supervision, GetRethrowsTheTasksOwnExceptionType) {
  process_pool pool{opts(1)};
  EXPECT_THROW(pool.submit<&throws_huge>(std::size_t{10}).get(), std::invalid_argument);
  auto r = pool.submit<&throws_huge>(std::size_t{10}).result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::exception);
  EXPECT_EQ(r.error().remote_type(), "std::invalid_argument");
}

// --- continuations on the pool's own threads ----------------------------------------------------
// A continuation runs on the thread that completes its task: for a process pool, the thread that
// collects results, or the supervisor for a task whose worker died. One that waits for another
// task of the same pool must not wait for the very thread it runs on.

TEST(Supervision, AContinuationMayWaitForAnotherTaskOfTheSamePool) {
  for (std::size_t workers : {1, 2}) {
    process_pool pool{opts(workers)};
    std::vector<crew::future<int>> chained;
    for (int i = 0; i < 8; ++i) {
      chained.push_back(crew::then(pool.submit<&square>(i), [&pool](crew::outcome<int> r) {
        return pool.submit<&square>(r.value() + 1).get();
      }));
    }
    for (int i = 0; i < 8; ++i) {
      ASSERT_EQ(chained[i].wait_for(60s), std::future_status::ready) << "workers " << workers;
      EXPECT_EQ(chained[i].get(), (i * i + 1) * (i * i + 1));
    }
  }
}

TEST(Supervision, AContinuationOfACrashedTaskMayWaitForItsReplacementWorker) {
  process_pool pool{opts(1)};
  auto retried = crew::then(pool.submit<&segfaults_after_ms>(0), [&pool](crew::outcome<int> r) {
    if (r || r.error().kind() != error_kind::crashed) return -1;
    // Needs a worker the supervisor has yet to start: it must not be the thread running this.
    return pool.submit<&square>(7).get();
  });
  ASSERT_EQ(retried.wait_for(60s), std::future_status::ready);
  EXPECT_EQ(retried.get(), 49);
}

TEST(Supervision, AHybridContinuationMayWaitForATaskOfTheSameProcess) {
  crew::hybrid_pool pool{{.threads_per_process = 2, .processes = 1}};
  auto chained = crew::then(pool.submit<&square>(2), [&pool](crew::outcome<int> r) {
    return pool.submit<&square>(r.value()).get();
  });
  ASSERT_EQ(chained.wait_for(60s), std::future_status::ready);
  EXPECT_EQ(chained.get(), 16);
}

TEST(Supervision, WaitIdleFromAContinuationCollectsItself) {
  process_pool pool{opts(1)};
  auto idle = crew::then(pool.submit<&square>(1), [&pool](crew::outcome<int>) {
    for (int i = 0; i < 4; ++i) (void)pool.submit<&sleeps_ms>(20);
    pool.wait_idle();
    const auto s = pool.stats();
    return static_cast<int>(s.queued + s.running);
  });
  ASSERT_EQ(idle.wait_for(60s), std::future_status::ready);
  EXPECT_EQ(idle.get(), 0);
}

TEST(Supervision, ShutdownFromAContinuationIsAClearErrorNotAHang) {
  process_pool pool{opts(1)};
  // The continuation must run on the pool's result thread: it is attached long before the task
  // ends. Were the caller held off for the whole half second, it would run here instead, where
  // shutdown() is allowed, and the case would not be tested.
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> ran_on_caller{false};
  auto refused = crew::then(pool.submit<&sleeps_ms>(500), [&](crew::outcome<int>) {
    if (std::this_thread::get_id() == caller) {
      ran_on_caller = true;
      return 0;
    }
    pool.shutdown();
    return 0;
  });
  ASSERT_EQ(refused.wait_for(60s), std::future_status::ready);
  if (ran_on_caller) GTEST_SKIP() << "the task ended before its continuation was attached";
  EXPECT_THROW(refused.get(), std::logic_error);
  EXPECT_EQ(pool.submit<&square>(6).get(), 36) << "the pool is still open";
  pool.shutdown();
  EXPECT_TRUE(pool.worker_pids().empty());
}

// --- descriptors run out -------------------------------------------------------------------------

/// Holds this process at its open-files limit while alive: every descriptor up to the limit is
/// taken (the soft limit is lowered first, so that few are needed).
class descriptors_exhausted {
 public:
  descriptors_exhausted() {
    getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit low = saved_;
    low.rlim_cur = std::min<rlim_t>(saved_.rlim_cur, 512);
    setrlimit(RLIMIT_NOFILE, &low);
    take_more();
  }
  /// Takes the descriptors that were closed since (a dead worker's, say).
  void take_more() {
    for (;;) {
      const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      held_.push_back(fd);
    }
  }
  ~descriptors_exhausted() {
    for (int fd : held_) close(fd);
    setrlimit(RLIMIT_NOFILE, &saved_);
  }
  descriptors_exhausted(const descriptors_exhausted&) = delete;
  descriptors_exhausted& operator=(const descriptors_exhausted&) = delete;
  [[nodiscard]] bool holding() const { return !held_.empty() && errno == EMFILE; }

 private:
  rlimit saved_{};
  std::vector<int> held_;
};

TEST(Supervision, OutOfDescriptorsFailsOnlyTheLargeMessagesAndBlamesNoWorker) {
#if defined(__SANITIZE_ADDRESS__)
  // UBSan (built with ASan here) checks an object's dynamic type the first time it meets the
  // type, and the check needs descriptors of its own: with none left it reports every new type.
  GTEST_SKIP() << "the sanitizer runtime needs descriptors of its own";
#endif
  process_pool pool{opts(1)};
  ASSERT_EQ(pool.submit<&square>(3).get(), 9);
  const std::vector<int> before = pool.worker_pids();
  const std::string big(8 << 20, 'x');
  {
    descriptors_exhausted full;
    ASSERT_TRUE(full.holding());
    // Small messages travel through the rings: no descriptor needed.
    EXPECT_EQ(pool.submit<&square>(4).get(), 16);
    // A large argument needs a memfd here: a clear error on its future, at once.
    auto sent = pool.submit<&length_of>(big).result();
    ASSERT_FALSE(sent);
    EXPECT_EQ(sent.error().kind(), error_kind::serialization) << sent.error().what();
    EXPECT_NE(std::string{sent.error().what()}.find("Too many open files"), std::string::npos)
        << sent.error().what();
    // A large result arrives as a descriptor this process cannot take: its task fails, and
    // the worker, which did nothing wrong, is neither blamed nor replaced.
    auto back = pool.submit<&filled>(std::size_t{2} << 20).result();
    ASSERT_FALSE(back);
    EXPECT_EQ(back.error().kind(), error_kind::serialization) << back.error().what();
    EXPECT_NE(std::string{back.error().what()}.find("could not be received"), std::string::npos)
        << back.error().what();
    EXPECT_EQ(pool.submit<&square>(5).get(), 25);
  }
  EXPECT_EQ(pool.worker_pids(), before) << "no worker was stopped";
  EXPECT_EQ(pool.stats().restarts, 0U);
  // With descriptors back, large messages go through again.
  EXPECT_EQ(pool.submit<&length_of>(big).get(), big.size());
  EXPECT_EQ(pool.submit<&filled>(std::size_t{2} << 20).get().size(), std::size_t{2} << 20);
}

/// Stops every worker of `pool` with SIGKILL.
void kill_workers(const process_pool& pool) {
  for (int pid : pool.worker_pids()) kill(pid, SIGKILL);
}

/// Waits (at most `limit`) until `pool` has counted at least `count` failed starts, taking the
/// descriptors that its dead workers give back meanwhile.
bool start_failures_reach(const process_pool& pool, descriptors_exhausted& full, std::size_t count,
                          std::chrono::seconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (pool.stats().start_failures < count) {
    if (std::chrono::steady_clock::now() > deadline || pool.stats().broken) return false;
    full.take_more();
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// A replacement worker that cannot be started because this process is out of descriptors is
// tried again until it can: the tasks wait, and run once descriptors are back. (Three failed
// starts used to break the pool for good, in about 70 ms.) One worker: a dead worker gives back
// three descriptors and a start needs five, so no start can succeed before the test takes them.
TEST(Supervision, AShortageOfDescriptorsAtStartIsWaitedOut) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the sanitizer runtime needs descriptors of its own";
#endif
  for (const auto start : {crew::start_method::forkserver, crew::start_method::fork}) {
    SCOPED_TRACE(start == crew::start_method::fork ? "fork" : "forkserver");
    auto o = opts(1);
    o.start = start;
    process_pool pool{o};
    ASSERT_EQ(pool.submit<&square>(3).get(), 9);
    std::vector<crew::future<int>> waiting;
    {
      descriptors_exhausted full;
      ASSERT_TRUE(full.holding());
      kill_workers(pool);
      // More failed starts than used to break the pool (10 + 20 + 40 ms of backoff), and at
      // least ~300 ms of shortage.
      ASSERT_TRUE(start_failures_reach(pool, full, 5))
          << "start failures " << pool.stats().start_failures;
      for (int i = 0; i < 6; ++i) waiting.push_back(pool.submit<&square>(i));
      EXPECT_FALSE(pool.stats().broken);
      EXPECT_EQ(pool.stats().workers, 0U);
      EXPECT_EQ(waiting.front().wait_for(0s), std::future_status::timeout);
    }
    for (int i = 0; i < 6; ++i) {
      ASSERT_EQ(waiting[i].wait_for(30s), std::future_status::ready) << i;
      auto r = waiting[i].result();
      ASSERT_TRUE(r) << r.error().what();
      EXPECT_EQ(*r, i * i);
    }
    EXPECT_FALSE(pool.stats().broken);
    EXPECT_EQ(pool.submit<&square>(7).get(), 49);
  }
}

// A shortage that lasts past the retry limit (5 s) breaks the pool, naming the cause; what was
// queued fails with it, and so does what comes later.
TEST(Supervision, AShortageOfDescriptorsThatLastsBreaksThePoolWithItsCause) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the sanitizer runtime needs descriptors of its own";
#endif
  process_pool pool{opts(1)};
  ASSERT_EQ(pool.submit<&square>(3).get(), 9);
  std::optional<crew::outcome<int>> queued;
  std::optional<crew::outcome<int>> later;
  std::chrono::steady_clock::duration waited{};
  {
    descriptors_exhausted full;
    ASSERT_TRUE(full.holding());
    const auto killed = std::chrono::steady_clock::now();
    kill_workers(pool);
    auto f = pool.submit<&square>(5);
    ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
    waited = std::chrono::steady_clock::now() - killed;
    queued.emplace(f.result());
    later.emplace(pool.submit<&square>(6).result());
  }
  EXPECT_GE(waited, 4500ms) << "retried for the whole limit first";
  ASSERT_FALSE(*queued);
  EXPECT_EQ(queued->error().kind(), error_kind::worker_lost);
  const std::string what = queued->error().what();
  EXPECT_NE(what.find("Too many open files"), std::string::npos) << what;
  EXPECT_NE(what.find("for want of descriptors"), std::string::npos) << what;
  ASSERT_FALSE(*later);
  EXPECT_EQ(later->error().kind(), error_kind::worker_lost);
  EXPECT_TRUE(pool.stats().broken);
  // Broken is final: descriptors back or not.
  auto after = pool.submit<&square>(7).result();
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().kind(), error_kind::worker_lost);
}

// A persistent failure is not mistaken for a shortage: a throwing initializer still breaks the
// pool after three attempts per worker, well before the shortage limit.
TEST(Supervision, AThrowingInitializerBreaksThePoolWithoutTheShortageWait) {
  auto o = opts(2);
  o.initializer = crew::task<&throws_at_start>;
  const auto start = std::chrono::steady_clock::now();
  process_pool pool{o};
  auto r = pool.submit<&square>(2).result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::worker_lost);
  EXPECT_NE(std::string{r.error().what()}.find("3 attempts each"), std::string::npos)
      << r.error().what();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
}

// --- limits
// ---------------------------------------------------------------------------------------

/// Resident pages of this process while alive: a big parent.
class parent_pages {
 public:
  explicit parent_pages(std::size_t mib) : block_(mib << 20) {
    for (std::size_t i = 0; i < block_.size(); i += 4096) block_[i] = 1;
  }

 private:
  std::vector<char> block_;
};

// memory_limit counts what a worker adds to what it started with: a forked worker starts with
// every resident page of its parent (shared until written), which is not its tasks' doing.
TEST(Supervision, MemoryLimitCountsWhatTheWorkerAddsNotItsParentsPages) {
  const parent_pages big{300};
  for (const auto start : {crew::start_method::fork, crew::start_method::forkserver}) {
    SCOPED_TRACE(start == crew::start_method::fork ? "fork" : "forkserver");
    auto o = opts(1);
    o.start = start;
    o.memory_limit = std::size_t{128} << 20;
    process_pool pool{o};
    auto small = pool.submit<&square>(4).result();
    ASSERT_TRUE(small) << small.error().what();
    EXPECT_EQ(*small, 16);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    constexpr std::size_t modest_mib = 8;  // the sanitizer's shadow memory adds ~3 times as much
#else
    constexpr std::size_t modest_mib = 32;
#endif
    auto modest = pool.submit<&hogs_mib>(modest_mib, 50).result();
    ASSERT_TRUE(modest) << modest.error().what();

    auto hog = pool.submit<&hogs_mib>(256, 20'000).result();
    ASSERT_FALSE(hog);
    EXPECT_EQ(hog.error().kind(), error_kind::out_of_memory) << hog.error().what();
    // The peak is what was measured against the limit: past it, and nowhere near the parent's
    // 300 MiB on top of the task's 256.
    EXPECT_GT(hog.error().peak_memory(), o.memory_limit) << hog.error().what();
    EXPECT_LT(hog.error().peak_memory(), std::size_t{256 + 40} << 20) << hog.error().what();
    const std::string what = hog.error().what();
    EXPECT_NE(what.find("over the"), std::string::npos) << what;
    EXPECT_NE(what.find("started with"), std::string::npos) << what;

    // The replacement starts as big as the first did, and is measured the same way.
    auto again = pool.submit<&square>(5).result();
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_EQ(*again, 25);
    EXPECT_EQ(pool.stats().restarts, 1U);
  }
}

// A task over its memory limit is stopped for its memory, not later for its time, on every start
// method, with several workers and recycling (found by the soak on spawn pools).
TEST(Supervision, AMemoryHogIsOutOfMemoryNotTimedOut) {
  for (const auto start :
       {crew::start_method::spawn, crew::start_method::fork, crew::start_method::forkserver}) {
    auto o = opts(2);
    o.start = start;
    o.memory_limit = 120U << 20;
    o.task_timeout = 1850ms;
    o.max_tasks_per_worker = 3;
    o.pipeline_depth = 1;
    process_pool pool{o};
    std::vector<crew::future<int>> hogs;
    std::vector<crew::future<int>> others;
    for (int i = 0; i < 6; ++i) {
      hogs.push_back(pool.submit<&hogs_mib>(149, 30'000));
      others.push_back(pool.submit<&square>(i));
    }
    for (auto& f : hogs) {
      auto r = f.result();
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().kind(), error_kind::out_of_memory)
          << "start method " << static_cast<int>(start) << ": " << r.error().what();
    }
    for (int i = 0; i < 6; ++i) EXPECT_EQ(others[i].get(), i * i);
  }
}

}  // namespace
