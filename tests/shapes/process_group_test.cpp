// crew::process_group: roles in supervised processes, OTP's restart strategies and intensity,
// readiness, ordered start and reverse stop — tested by really killing role processes.
#include "crew/process_group.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/shared_array.hpp"
#include "crew/sync.hpp"
#include "support/process.hpp"

namespace {

using namespace std::chrono_literals;
using crew::group_error;
using crew::process_group;
using crew::role_context;
using crew::role_exit;
using crew::role_options;
using crew::role_state;
using crew::test::process_alive;

/// Polls `done` every 5 ms up to `bound`; true once it holds.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds bound = 30s) {
  const auto until = std::chrono::steady_clock::now() + bound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

void serve_forever(role_context& ctx) {
  ctx.ready();
  for (;;) ::pause();
}

/// The events on_exit saw, for a test to read from its own thread.
struct exit_log {
  std::mutex mu;
  std::vector<role_exit> exits;
  std::function<void(const role_exit&)> recorder() {
    return [this](const role_exit& e) {
      std::lock_guard lock{mu};
      exits.push_back(e);
    };
  }
  std::vector<role_exit> snapshot() {
    std::lock_guard lock{mu};
    return exits;
  }
  std::size_t count() {
    std::lock_guard lock{mu};
    return exits.size();
  }
};

bool running_with_new_pid(const process_group& g, const char* role, pid_t old) {
  for (const auto& s : g.status())
    if (s.name == role) return s.state == role_state::running && s.pid != 0 && s.pid != old;
  return false;
}

// --- start, readiness, stop -----------------------------------------------------------------

TEST(ProcessGroup, StartsInOrderEachReadyBeforeTheNextAndStopsInReverse) {
  auto ready_order = crew::shared_array<int>::create(3);
  auto stop_order = crew::shared_array<int>::create(3);
  auto ticket = crew::shared_counter::create();
  process_group group;
  for (int i = 0; i < 3; ++i) {
    // Later roles are faster to get ready: only waiting for each keeps the order.
    group.add("role" + std::to_string(i),
              [=](role_context& ctx) mutable {
                std::this_thread::sleep_for(std::chrono::milliseconds{150 - 50 * i});
                ready_order[static_cast<std::size_t>(i)] = static_cast<int>(ticket.fetch_add(1));
                ctx.ready();
                while (!ctx.stop_requested()) std::this_thread::sleep_for(1ms);
                stop_order[static_cast<std::size_t>(i)] = static_cast<int>(ticket.fetch_add(1));
              },
              {.await_ready = true, .handles_stop = true});
  }
  group.start();
  EXPECT_TRUE(group.running());
  EXPECT_EQ(ready_order[0], 0);
  EXPECT_EQ(ready_order[1], 1);
  EXPECT_EQ(ready_order[2], 2);
  std::vector<pid_t> pids;
  for (const auto& s : group.status()) {
    EXPECT_EQ(s.state, role_state::running) << s.name;
    EXPECT_EQ(s.starts, 1u);
    pids.push_back(s.pid);
  }
  group.stop();
  EXPECT_FALSE(group.running());
  EXPECT_EQ(stop_order[2], 3);
  EXPECT_EQ(stop_order[1], 4);
  EXPECT_EQ(stop_order[0], 5);
  for (pid_t p : pids) EXPECT_FALSE(process_alive(p));
  group.wait();  // stopped by stop(): no error
}

TEST(ProcessGroup, RoleContextKnowsItsNameAndIncarnation) {
  auto seen = crew::shared_array<int>::create(4);
  auto names_ok = crew::shared_counter::create();
  process_group group{{.max_restarts = 5}};
  group.add("counted",
            [=](role_context& ctx) mutable {
              if (ctx.name() == "counted") ++names_ok;
              seen[ctx.incarnation() - 1] = static_cast<int>(ctx.incarnation());
              if (ctx.incarnation() < 3) ::_exit(4);
              serve_forever(ctx);
            },
            {.restart = crew::role_restart::transient});
  group.start();
  ASSERT_TRUE(eventually([&] { return group.status()[0].starts == 3; }));
  ASSERT_TRUE(eventually([&] { return seen[2] == 3; }));
  EXPECT_EQ(seen[0], 1);
  EXPECT_EQ(seen[1], 2);
  EXPECT_EQ(names_ok.load(), 3);
  EXPECT_EQ(group.status()[0].last_exit, "exited with code 4");
}

TEST(ProcessGroup, ARoleThatNeverSaysReadyFailsTheStartNamingItAndStopsTheOthers) {
  process_group group;
  group.add("first", serve_forever);
  group.add("mute",
            [](role_context&) {
              for (;;) ::pause();
            },
            {.await_ready = true, .ready_timeout = 300ms});
  group.add("never-started", serve_forever);
  try {
    group.start();
    FAIL() << "start() returned";
  } catch (const group_error& e) {
    EXPECT_EQ(e.role(), "mute");
    EXPECT_NE(std::string{e.what()}.find("role 'mute' failed to start"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string{e.what()}.find("did not say it was ready"), std::string::npos)
        << e.what();
  }
  for (const auto& s : group.status()) {
    EXPECT_EQ(s.state, role_state::idle) << s.name;
    EXPECT_EQ(s.pid, 0) << s.name;
  }
  EXPECT_EQ(group.status()[2].starts, 0u) << "a role after the failed one is not started";
  EXPECT_FALSE(group.running());
  EXPECT_THROW(group.wait(), group_error);
}

TEST(ProcessGroup, ARoleThatIgnoresSigtermIsKilledAtItsStopTimeout) {
  exit_log log;
  process_group group{{.on_exit = log.recorder()}};
  group.add("stubborn",
            [](role_context& ctx) {
              ::signal(SIGTERM, SIG_IGN);
              serve_forever(ctx);
            },
            {.await_ready = true, .stop_timeout = 300ms});
  group.start();
  const pid_t pid = group.pid("stubborn");
  const auto before = std::chrono::steady_clock::now();
  group.stop();
  EXPECT_GE(std::chrono::steady_clock::now() - before, 250ms);
  EXPECT_FALSE(process_alive(pid));
  const auto exits = log.snapshot();
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_TRUE(exits[0].stopped);
  EXPECT_TRUE(exits[0].stop_forced);
  EXPECT_EQ(exits[0].signal, SIGKILL);
  EXPECT_FALSE(exits[0].restarting);
  EXPECT_TRUE(exits[0].normal());
}

TEST(ProcessGroup, CommandRolesSayReadyThroughCrewReadyFd) {
  process_group group;
  group.add_command("shell",
                    {"sh", "-c", "sleep 0.1; echo > /proc/self/fd/$CREW_READY_FD; exec sleep 600"},
                    {.await_ready = true, .ready_timeout = 10s});
  group.start();
  const pid_t pid = group.pid("shell");
  EXPECT_GT(pid, 0);
  EXPECT_EQ(group.status()[0].state, role_state::running);
  group.stop();
  EXPECT_FALSE(process_alive(pid));
}

TEST(ProcessGroup, ACommandThatCannotRunFailsTheStartWithTheReason) {
  process_group group;
  group.add_command("missing", {"/nonexistent/crew-role"});
  try {
    group.start();
    FAIL() << "start() returned";
  } catch (const group_error& e) {
    EXPECT_EQ(e.role(), "missing");
    EXPECT_NE(std::string{e.what()}.find("cannot run '/nonexistent/crew-role': No such file"),
              std::string::npos)
        << e.what();
  }
}

// --- restart strategies ---------------------------------------------------------------------

struct three_roles {
  exit_log log;
  process_group group;
  explicit three_roles(crew::restart_strategy strategy)
      : group{{.strategy = strategy, .max_restarts = 10, .on_exit = log.recorder()}} {
    for (const char* name : {"a", "b", "c"}) group.add(name, serve_forever, {.await_ready = true});
    group.start();
  }
  std::vector<pid_t> pids() {
    std::vector<pid_t> out;
    for (const auto& s : group.status()) out.push_back(s.pid);
    return out;
  }
};

TEST(ProcessGroup, OneForOneRestartsOnlyTheKilledRole) {
  three_roles t{crew::restart_strategy::one_for_one};
  const auto before = t.pids();
  ASSERT_EQ(::kill(before[1], SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return running_with_new_pid(t.group, "b", before[1]); }));
  const auto after = t.pids();
  EXPECT_EQ(after[0], before[0]);
  EXPECT_EQ(after[2], before[2]);
  EXPECT_TRUE(process_alive(after[0]));
  EXPECT_TRUE(process_alive(after[2]));
  const auto exits = t.log.snapshot();
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].role, "b");
  EXPECT_EQ(exits[0].pid, before[1]);
  EXPECT_EQ(exits[0].signal, SIGKILL);
  EXPECT_TRUE(exits[0].restarting);
  EXPECT_FALSE(exits[0].normal());
  EXPECT_EQ(exits[0].describe(), "killed by signal 9 (Killed)");
}

TEST(ProcessGroup, OneForAllRestartsEveryRoleButTemporaryOnes) {
  exit_log log;
  process_group group{{.strategy = crew::restart_strategy::one_for_all,
                       .max_restarts = 10,
                       .on_exit = log.recorder()}};
  for (const char* name : {"a", "b", "c"}) group.add(name, serve_forever, {.await_ready = true});
  group.add("once", serve_forever, {.restart = crew::role_restart::temporary});
  group.start();
  std::vector<pid_t> before;
  for (const auto& s : group.status()) before.push_back(s.pid);
  ASSERT_EQ(::kill(before[1], SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return running_with_new_pid(group, "c", before[2]); }));
  ASSERT_TRUE(eventually([&] { return log.count() == 4; }));
  const auto now = group.status();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(now[static_cast<std::size_t>(i)].state, role_state::running);
    EXPECT_NE(now[static_cast<std::size_t>(i)].pid, before[static_cast<std::size_t>(i)]);
    EXPECT_FALSE(process_alive(before[static_cast<std::size_t>(i)]));
  }
  EXPECT_EQ(now[3].state, role_state::idle) << "a temporary role is stopped, not restarted";
  EXPECT_FALSE(process_alive(before[3]));
  // The killed role first; the others stopped in reverse order of their start.
  const auto exits = log.snapshot();
  EXPECT_EQ(exits[0].role, "b");
  EXPECT_EQ(exits[1].role, "once");
  EXPECT_EQ(exits[2].role, "c");
  EXPECT_EQ(exits[3].role, "a");
  for (std::size_t i = 1; i < 4; ++i) EXPECT_TRUE(exits[i].stopped);
}

TEST(ProcessGroup, RestForOneRestartsTheKilledRoleAndThoseAfterIt) {
  three_roles t{crew::restart_strategy::rest_for_one};
  const auto before = t.pids();
  ASSERT_EQ(::kill(before[1], SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return running_with_new_pid(t.group, "c", before[2]); }));
  ASSERT_TRUE(eventually([&] { return running_with_new_pid(t.group, "b", before[1]); }));
  const auto after = t.pids();
  EXPECT_EQ(after[0], before[0]);
  EXPECT_TRUE(process_alive(before[0]));
  EXPECT_FALSE(process_alive(before[2]));
}

TEST(ProcessGroup, TransientAndTemporaryRolesThatEndLetTheGroupEndOnItsOwn) {
  exit_log log;
  process_group group{{.on_exit = log.recorder()}};
  group.add("job", [](role_context&) {}, {.restart = crew::role_restart::transient});
  group.add("probe", [](role_context&) { ::_exit(3); }, {.restart = crew::role_restart::temporary});
  group.start();
  ASSERT_TRUE(group.wait_for(30s));
  EXPECT_FALSE(group.running());
  const auto exits = log.snapshot();
  ASSERT_EQ(exits.size(), 2u);
  for (const auto& e : exits) EXPECT_FALSE(e.restarting) << e.role;
  for (const auto& s : group.status()) EXPECT_EQ(s.starts, 1u) << s.name;
}

// --- failures -------------------------------------------------------------------------------

TEST(ProcessGroup, ACrashLoopReachesTheIntensityAndStopsTheGroupNamingTheRole) {
  exit_log log;
  process_group group{{.max_restarts = 3, .restart_window = 60s, .on_exit = log.recorder()}};
  group.add("steady", serve_forever);
  group.add("crasher",
            [](role_context& ctx) {
              ctx.ready();
              std::this_thread::sleep_for(20ms);
              ::raise(SIGSEGV);
            },
            {.await_ready = true});
  group.start();
  const pid_t steady = group.pid("steady");
  try {
    group.wait();
    FAIL() << "wait() returned";
  } catch (const group_error& e) {
    EXPECT_EQ(e.role(), "crasher");
    EXPECT_NE(std::string{e.what()}.find("ended 4 times within 60000 ms"), std::string::npos)
        << e.what();
    ASSERT_EQ(e.failures().size(), 4u);
    for (const auto& f : e.failures()) EXPECT_EQ(f, "killed by signal 11 (Segmentation fault)");
  }
  EXPECT_FALSE(process_alive(steady)) << "the group stops every role";
  EXPECT_EQ(group.status()[1].starts, 4u);
  EXPECT_FALSE(group.running());
  const auto exits = log.snapshot();
  ASSERT_EQ(exits.size(), 5u);
  EXPECT_FALSE(exits[3].restarting) << "the last crash is not restarted";
  EXPECT_EQ(exits[4].role, "steady");
  EXPECT_TRUE(exits[4].stopped);
}

TEST(ProcessGroup, AnExceptionIsReportedWithItsTypeAndMessage) {
  exit_log log;
  process_group group{{.on_exit = log.recorder()}};
  group.add("thrower",
            [](role_context& ctx) {
              ctx.ready();
              if (ctx.incarnation() == 1) throw std::out_of_range("index 7 past 3");
            },
            {.restart = crew::role_restart::transient, .await_ready = true});
  group.start();
  ASSERT_TRUE(group.wait_for(30s));
  const auto exits = log.snapshot();
  ASSERT_EQ(exits.size(), 2u);
  EXPECT_EQ(exits[0].exception, "std::out_of_range: index 7 past 3");
  EXPECT_EQ(exits[0].exit_code, 70);
  EXPECT_TRUE(exits[0].restarting) << "a transient role is restarted after an abnormal end";
  EXPECT_EQ(exits[0].describe(), "threw std::out_of_range: index 7 past 3");
  EXPECT_TRUE(exits[1].normal());
  EXPECT_FALSE(exits[1].restarting) << "... and not after a normal one";
}

TEST(ProcessGroup, ARolesHelperProcessesGoWithItWhenItCrashesAndWhenItIsStopped) {
  auto helpers = crew::shared_array<int>::create(4);
  process_group group{{.max_restarts = 5}};
  group.add("parent",
            [=](role_context& ctx) mutable {
              const pid_t helper = ::fork();
              if (helper == 0) {
                for (;;) ::pause();
              }
              helpers[ctx.incarnation() - 1] = helper;
              ctx.ready();
              if (ctx.incarnation() == 1) ::raise(SIGSEGV);
              for (;;) ::pause();
            },
            {.await_ready = true});
  group.start();
  ASSERT_TRUE(eventually([&] { return helpers[1] != 0 && group.status()[0].starts == 2; }));
  EXPECT_TRUE(eventually([&] { return !process_alive(helpers[0]); }))
      << "the crashed role's helper is killed";
  EXPECT_TRUE(process_alive(helpers[1]));
  group.stop();
  EXPECT_TRUE(eventually([&] { return !process_alive(helpers[1]); }))
      << "the stopped role's helper is killed";
}

// --- misuse and concurrency -----------------------------------------------------------------

TEST(ProcessGroup, BadInputIsAClearError) {
  process_group group;
  EXPECT_THROW(group.add("", serve_forever), std::invalid_argument);
  EXPECT_THROW(group.add("x", nullptr), std::invalid_argument);
  EXPECT_THROW(group.add_command("x", {}), std::invalid_argument);
  EXPECT_THROW(group.add("x", serve_forever, {.await_ready = true, .ready_timeout = 0ms}),
               std::invalid_argument);
  group.add("x", serve_forever);
  EXPECT_THROW(group.add("x", serve_forever), std::invalid_argument);
  EXPECT_THROW(group.add_command("x", {"true"}), std::invalid_argument);
  EXPECT_THROW(group.wait(), std::logic_error);
  EXPECT_THROW((void)group.pid("y"), std::invalid_argument);
  group.start();
  EXPECT_THROW(group.start(), std::logic_error);
  EXPECT_THROW(group.add("z", serve_forever), std::logic_error);
  group.stop();
  group.stop();  // idempotent
  EXPECT_THROW(group.start(), std::logic_error);
}

TEST(ProcessGroup, StopOrWaitFromOnExitIsALogicErrorNotAHang) {
  std::atomic<int> refused{0};
  process_group* self = nullptr;
  process_group group{{.max_restarts = 10, .on_exit = [&](const role_exit&) {
                         try {
                           self->stop();
                         } catch (const std::logic_error&) {
                           ++refused;
                         }
                         try {
                           self->wait();
                         } catch (const std::logic_error&) {
                           ++refused;
                         }
                       }}};
  self = &group;
  group.add("victim", serve_forever, {.await_ready = true});
  group.start();
  const pid_t first = group.pid("victim");
  ::kill(first, SIGKILL);
  ASSERT_TRUE(eventually([&] { return refused.load() == 2; }));
  EXPECT_TRUE(eventually([&] { return running_with_new_pid(group, "victim", first); }));
}

TEST(ProcessGroup, ConcurrentStopsAllReturnAndLeaveNothing) {
  for (int round = 0; round < 5; ++round) {
    process_group group;
    for (const char* name : {"a", "b", "c"}) group.add(name, serve_forever, {.await_ready = true});
    group.start();
    std::vector<pid_t> pids;
    for (const auto& s : group.status()) pids.push_back(s.pid);
    std::vector<std::thread> stoppers;
    for (int i = 0; i < 4; ++i) stoppers.emplace_back([&] { group.stop(); });
    for (auto& t : stoppers) t.join();
    for (pid_t p : pids) EXPECT_FALSE(process_alive(p));
  }
}

TEST(ProcessGroup, StopDuringStartEndsTheStartWithAClearError) {
  process_group group;
  group.add("quick", serve_forever);
  group.add("slow",
            [](role_context&) {
              for (;;) ::pause();
            },
            {.await_ready = true, .ready_timeout = 60s});
  std::thread stopper([&] {
    ASSERT_TRUE(eventually([&] { return group.pid("slow") != 0; }));
    group.stop();
  });
  const auto before = std::chrono::steady_clock::now();
  EXPECT_THROW(group.start(), group_error);
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 30s);
  for (const auto& s : group.status()) EXPECT_EQ(s.pid, 0) << s.name;
}

TEST(ProcessGroup, DestroyingARunningGroupLeavesNoProcessAndNoDescriptor) {
  const int fds_before = crew::test::open_fd_count();
  std::vector<pid_t> pids;
  {
    process_group group;
    for (const char* name : {"a", "b", "c"}) group.add(name, serve_forever, {.await_ready = true});
    group.start();
    for (const auto& s : group.status()) pids.push_back(s.pid);
  }
  for (pid_t p : pids) EXPECT_FALSE(process_alive(p));
  EXPECT_EQ(crew::test::open_fd_count(), fds_before);
}

TEST(ProcessGroup, AGroupWithNoRolesStartsAndEndsAtOnce) {
  process_group group;
  group.start();
  EXPECT_TRUE(group.wait_for(30s));
  EXPECT_FALSE(group.running());
  group.stop();
}

TEST(ProcessGroup, TheGroupCalledFromInsideARoleIsALogicErrorNotADeadlock) {
  auto refused = crew::shared_array<int>::create(3);
  process_group group;
  group.add("curious",
            [&group, refused](role_context& ctx) {
              // The supervising thread held the group's lock at the fork: a lock here would hang.
              try {
                (void)group.status();
              } catch (const std::logic_error&) {
                refused[0] = 1;
              }
              try {
                group.stop();
              } catch (const std::logic_error&) {
                refused[1] = 1;
              }
              try {
                (void)group.pid("curious");
              } catch (const std::logic_error&) {
                refused[2] = 1;
              }
              serve_forever(ctx);
            },
            {.await_ready = true, .ready_timeout = 30s});
  group.start();
  EXPECT_EQ(refused[0], 1);
  EXPECT_EQ(refused[1], 1);
  EXPECT_EQ(refused[2], 1);
  EXPECT_TRUE(group.running());
}

/// Holds this process at a low open-files limit, every descriptor taken, while alive.
class descriptors_exhausted {
 public:
  descriptors_exhausted() {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit low = saved_;
    low.rlim_cur = std::min<rlim_t>(saved_.rlim_cur, 256);
    ::setrlimit(RLIMIT_NOFILE, &low);
    for (;;) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      taken_.push_back(fd);
    }
  }
  ~descriptors_exhausted() {
    for (int fd : taken_) ::close(fd);
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }
  descriptors_exhausted(const descriptors_exhausted&) = delete;
  descriptors_exhausted& operator=(const descriptors_exhausted&) = delete;

 private:
  rlimit saved_{};
  std::vector<int> taken_;
};

TEST(ProcessGroup, NoDescriptorsForARestartStopsTheGroupWithTheCause) {
  // Reaping the killed role frees its 3 descriptors (pidfd, status pipe, stop socket); starting
  // it again needs 5: every restart fails for want of descriptors until the intensity is reached.
  process_group group{{.max_restarts = 2, .restart_window = 60s}};
  group.add("victim", serve_forever, {.await_ready = true, .handles_stop = true});
  group.start();
  {
    descriptors_exhausted exhausted;
    ::kill(group.pid("victim"), SIGKILL);
    try {
      ASSERT_TRUE(group.wait_for(60s)) << "the group did not stop: " << group.status()[0].last_exit;
      FAIL() << "wait() returned";
    } catch (const group_error& e) {
      EXPECT_EQ(e.role(), "victim");
      ASSERT_FALSE(e.failures().empty());
      EXPECT_EQ(e.failures().back(), "could not be started: socketpair: Too many open files");
    }
  }
  EXPECT_EQ(group.pid("victim"), 0);
}

// Kills at any moment — while a role is starting, running, or being restarted with its
// siblings — never loses a role, never leaves a process, and each kill is one reported end.
TEST(ProcessGroup, AKillStormLeavesEveryRoleRunningAndNothingBehind) {
  exit_log log;
  process_group group{{.strategy = crew::restart_strategy::rest_for_one,
                       .max_restarts = 1000,
                       .on_exit = log.recorder()}};
  auto started = crew::shared_counter::create();
  for (const char* name : {"a", "b", "c"}) {
    group.add(name,
              [=](role_context& ctx) mutable {
                ++started;
                std::this_thread::sleep_for(std::chrono::milliseconds{ctx.incarnation() % 3});
                serve_forever(ctx);
              },
              {.await_ready = true});
  }
  group.start();
  std::vector<pid_t> seen;
  for (int k = 0; k < 40; ++k) {
    const auto s = group.status()[static_cast<std::size_t>(k % 3)];
    if (s.pid != 0 && ::kill(s.pid, SIGKILL) == 0) seen.push_back(s.pid);
    std::this_thread::sleep_for(std::chrono::milliseconds{k % 7});
  }
  ASSERT_TRUE(eventually([&] {
    for (const auto& s : group.status())
      if (s.state != role_state::running) return false;
    return true;
  }));
  std::vector<pid_t> last;
  for (const auto& s : group.status()) last.push_back(s.pid);
  group.stop();
  for (pid_t p : seen) EXPECT_FALSE(process_alive(p));
  for (pid_t p : last) EXPECT_FALSE(process_alive(p));
  // Every start ended exactly once, and was reported once.
  unsigned starts = 0;
  for (const auto& s : group.status()) starts += s.starts;
  EXPECT_EQ(log.count(), starts);
  EXPECT_LE(static_cast<unsigned>(started.load()), starts);  // a fork killed early never runs
  EXPECT_GE(started.load(), 3);
}

}  // namespace
