// Start methods in a program that never calls crew::init: this binary's main() is GoogleTest's.
// Spawn workers and the forkserver are exec'd copies of the binary that enter from crew's
// start-up entry after the last static initializer, so main() never runs in them. Also: a task
// the worker does not know fails clearly, the forkserver is replaced when killed, and the warning
// about forking a threaded process fires at each such fork, and only then.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crew/process_pool.hpp"
#include "executors/process/launch.hpp"
#include "late_tasks.hpp"
#include "support/process.hpp"

namespace {

using namespace std::chrono_literals;
using crew::error_kind;
using crew::start_method;

int square(int x) {
  return x * x;
}
int crashes() {
  raise(SIGSEGV);
  return 0;
}
int my_parent() {
  return static_cast<int>(getppid());
}

// Set by a static initializer (every process started from the binary has it) and changed by the
// test at run time (only the parent, and workers forked from it, see the change).
int set_statically = 0;
const bool set_at_load = [] {
  set_statically = 5;
  return true;
}();
int read_state() {
  return set_statically;
}

std::string method_name(start_method m) {
  switch (m) {
    case start_method::fork:
      return "fork";
    case start_method::spawn:
      return "spawn";
    default:
      return "forkserver";
  }
}

pid_t parent_of(pid_t pid) {
  std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
  std::string all{std::istreambuf_iterator<char>{stat}, std::istreambuf_iterator<char>{}};
  std::istringstream rest{all.substr(all.rfind(')') + 2)};
  char state = 0;
  pid_t ppid = 0;
  rest >> state >> ppid;
  return ppid;
}

class WithoutInit : public ::testing::TestWithParam<start_method> {
 protected:
  crew::process_pool_options options(std::size_t workers) const {
    crew::process_pool_options o;
    o.workers = workers;
    o.start = GetParam();
    return o;
  }
};

TEST_P(WithoutInit, RunsTasks) {
  ASSERT_TRUE(crew::detail::process::initialized()) << "crew is linked into this executable";
  crew::process_pool pool{options(2)};
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 500; ++i) futures.push_back(pool.submit<&square>(i));
  for (int i = 0; i < 500; ++i) ASSERT_EQ(futures[i].get(), i * i);
}

TEST_P(WithoutInit, MainNeverRunsInAnExecdWorker) {
  ASSERT_TRUE(set_at_load);
  set_statically = 6;  // at run time, in this process only
  crew::process_pool pool{options(1)};
  const int seen = pool.submit<&read_state>().get();
  set_statically = 5;
  if (GetParam() == start_method::fork) {
    EXPECT_EQ(seen, 6) << "a forked worker is a copy of this process";
  } else {
    EXPECT_EQ(seen, 5) << "an exec'd worker ran the static initializers, and nothing of main()";
  }
}

TEST_P(WithoutInit, KnowsTasksRegisteredAfterCrewsEntry) {
  ASSERT_TRUE(crew::test::late_tasks_initialized_after_crew_entry())
      << "premise: late_tasks.cpp must be linked after crew (see tests/process_pool/CMakeLists)";
  crew::process_pool pool{options(1)};
  EXPECT_EQ(crew::test::submit_late_cube(pool, 3).get(), 27);
}

TEST_P(WithoutInit, WorkerParentage) {
  crew::process_pool pool{options(1)};
  const int parent = pool.submit<&my_parent>().get();
  if (GetParam() == start_method::forkserver) {
    EXPECT_NE(parent, getpid());
    EXPECT_EQ(parent_of(parent), getpid()) << "the server is a child of this process";
  } else {
    EXPECT_EQ(parent, getpid());
  }
}

TEST_P(WithoutInit, EachWorkerLeadsItsOwnProcessGroup) {
  crew::process_pool pool{options(2)};
  (void)pool.submit<&square>(1).get();
  for (const int pid : pool.worker_pids()) EXPECT_EQ(getpgid(pid), pid);
}

TEST_P(WithoutInit, CrashIsIsolated) {
  crew::process_pool pool{options(2)};
  auto crash = pool.submit<&crashes>();
  auto fine = pool.submit<&square>(9);
  auto r = crash.result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::crashed) << r.error().what();
  EXPECT_EQ(fine.get(), 81);
  EXPECT_EQ(pool.submit<&square>(3).get(), 9);
}

TEST_P(WithoutInit, NoWorkerOutlivesAKilledParent) {
  const std::vector<int> pids = crew::test::pids_of_a_killed_parent([this](const auto& report) {
    crew::process_pool pool{options(2)};
    (void)pool.submit<&square>(1).get();
    report(pool.worker_pids());
  });
  EXPECT_EQ(pids.size(), 2U);
  EXPECT_EQ(crew::test::still_alive_after(pids, 20s), std::vector<int>{})
      << "workers outlived their parent";
}

TEST_P(WithoutInit, ATaskTheWorkerDoesNotKnowFailsClearly) {
  if (GetParam() == start_method::fork &&
      dlopen(CREW_TEST_PLUGIN, RTLD_NOW | RTLD_NOLOAD) != nullptr) {
    GTEST_SKIP() << "the plugin is loaded already (an earlier test in this process): a forked "
                    "worker would have it. CTest runs each test in a process of its own";
  }
  crew::process_pool pool{options(1)};
  (void)pool.submit<&square>(1).get();  // the worker runs before the plugin is loaded
  void* plugin = dlopen(CREW_TEST_PLUGIN, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(plugin, nullptr) << dlerror();
  using run_fn = int (*)(crew::process_pool&, int, std::string*, int*);
  auto run = reinterpret_cast<run_fn>(dlsym(plugin, "crew_test_plugin_run"));
  ASSERT_NE(run, nullptr) << dlerror();
  std::string error;
  int kind = -1;
  EXPECT_EQ(run(pool, 4, &error, &kind), -1) << "the worker never loaded the plugin";
  EXPECT_EQ(kind, static_cast<int>(error_kind::serialization)) << error;
  EXPECT_NE(error.find("no task with this id"), std::string::npos) << error;
  EXPECT_EQ(pool.submit<&square>(5).get(), 25) << "the pool goes on";
  // The plugin is not unloaded: its registry entry must stay valid.
}

INSTANTIATE_TEST_SUITE_P(All, WithoutInit,
                         ::testing::Values(start_method::fork, start_method::spawn,
                                           start_method::forkserver),
                         [](const auto& param_info) { return method_name(param_info.param); });

// The server is replaced when it dies: its workers die with it, and the pool's replacements come
// from a new server.
TEST(Forkserver, IsReplacedWhenKilled) {
  crew::process_pool pool{{.workers = 1, .start = start_method::forkserver}};
  const int first_server = pool.submit<&my_parent>().get();
  ASSERT_EQ(parent_of(first_server), getpid());
  ASSERT_EQ(kill(first_server, SIGKILL), 0);
  // The worker dies with the server; tasks submitted meanwhile may be lost with it (retries = 0),
  // so wait for a task that completes on a worker of the new server.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  int server = first_server;
  while (server == first_server && std::chrono::steady_clock::now() < deadline) {
    auto r = pool.submit<&my_parent>().result();
    if (r) server = r.value();
  }
  EXPECT_NE(server, first_server);
  EXPECT_EQ(parent_of(server), getpid());
  EXPECT_EQ(pool.submit<&square>(6).get(), 36);
}

// Two pools share one server; many threads start pools at once.
TEST(Forkserver, PoolsMadeConcurrentlyShareOneServer) {
  std::vector<std::thread> makers;
  std::vector<int> servers(4, 0);
  for (std::size_t t = 0; t < servers.size(); ++t) {
    makers.emplace_back([t, &servers] {
      crew::process_pool pool{{.workers = 2, .start = start_method::forkserver}};
      servers[t] = pool.submit<&my_parent>().get();
      EXPECT_EQ(pool.submit<&square>(static_cast<int>(t)).get(), static_cast<int>(t * t));
    });
  }
  for (auto& m : makers) m.join();
  for (const int s : servers) EXPECT_EQ(s, servers[0]);
}

// A malformed request in the environment ends the exec'd copy with a message; main() never runs.
TEST(ExecdChild, MalformedRequestIsReportedNotRun) {
  for (const char* variable : {"CREW_WORKER", "CREW_FORKSERVER"}) {
    const auto status = crew::test::run_in_child([variable] {
      setenv(variable, "load:not a request", 1);
      execl("/proc/self/exe", "start_without_init_test", "--gtest_list_tests",
            static_cast<char*>(nullptr));
      std::_Exit(99);
    });
    EXPECT_TRUE(status.exited && status.exit_code == 2) << variable << ": " << status.output;
    EXPECT_NE(status.output.find(std::string{"crew: malformed "} + variable), std::string::npos)
        << status.output;
    EXPECT_EQ(status.output.find("WithoutInit"), std::string::npos) << "main() ran";
  }
}

// --- the warning about forking a threaded process -------------------------------------------

constexpr const char* warning = "crew: warning: process_pool forks a worker while";

TEST(ForkWarning, HazardCountsThreadsOtherThanTheCallerAndCrewsOwn) {
  const auto status = crew::test::run_in_child([] {
    using crew::detail::process::fork_hazard_threads;
    // A sanitizer's runtime may run threads of its own, started with the first thread the
    // program makes, and a joined thread may still be counted for a moment while it exits:
    // start one, then take the lowest count seen over 100 ms as the base.
    std::thread{[] {}}.join();
    std::size_t base = fork_hazard_threads();
    for (auto end = std::chrono::steady_clock::now() + 100ms;
         std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(1ms)) {
      base = std::min(base, fork_hazard_threads());
    }
    auto settles_at = [](std::size_t expected) {
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (fork_hazard_threads() != expected) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
      }
      return true;
    };
    std::atomic<bool> stop{false};
    std::thread service = crew::detail::process::start_service_thread([&] {
      while (!stop) std::this_thread::sleep_for(1ms);
    });
    if (!settles_at(base)) std::_Exit(11);
    std::thread plain{[&] {
      while (!stop) std::this_thread::sleep_for(1ms);
    }};
    if (!settles_at(base + 1)) std::_Exit(12);
    stop = true;
    plain.join();
    service.join();
  });
  EXPECT_TRUE(status.exited && status.exit_code == 0) << status.exit_code << status.output;
}

// The warning's state is per process: these need a process that has not forked workers yet.
bool fresh_process() {
  return crew::detail::process::threaded_fork_count() == 0;
}
constexpr const char* not_fresh = "this process forked workers already; CTest runs each alone";

TEST(ForkWarning, FiresAtEachForkFromAThreadedProcessAndPrintsSparingly) {
  if (!fresh_process()) GTEST_SKIP() << not_fresh;
  const auto status = crew::test::run_in_child([] {
    std::atomic<bool> stop{false};
    std::thread busy{[&] {
      while (!stop) std::this_thread::sleep_for(1ms);
    }};
    std::size_t forks = 0;
    {
      crew::process_pool pool{{.workers = 1, .start = start_method::fork}};
      for (int i = 0; i < 3; ++i) (void)pool.submit<&crashes>().result();
      EXPECT_EQ(pool.submit<&square>(2).get(), 4);
      forks = 1 + pool.stats().restarts;
    }
    EXPECT_GE(forks, 4U);
    EXPECT_EQ(crew::detail::process::threaded_fork_count(), forks) << "one count per fork";
    stop = true;
    busy.join();
    if (::testing::Test::HasFailure()) std::_Exit(1);
  });
  EXPECT_TRUE(status.exited && status.exit_code == 0) << status.output;
  const auto first = status.output.find(warning);
  ASSERT_NE(first, std::string::npos) << status.output;
  EXPECT_EQ(status.output.find("crew: warning", first + 1), std::string::npos)
      << "later forks within the interval are counted, not printed: " << status.output;
  EXPECT_NE(status.output.find("start_method::forkserver"), std::string::npos);
}

TEST(ForkWarning, SpawnAndForkserverNeverWarn) {
  if (!fresh_process()) GTEST_SKIP() << not_fresh;
  const auto status = crew::test::run_in_child([] {
    std::atomic<bool> stop{false};
    std::thread busy{[&] {
      while (!stop) std::this_thread::sleep_for(1ms);
    }};
    for (const start_method m : {start_method::spawn, start_method::forkserver}) {
      crew::process_pool pool{{.workers = 1, .start = m}};
      (void)pool.submit<&crashes>().result();
      EXPECT_EQ(pool.submit<&square>(2).get(), 4);
    }
    EXPECT_EQ(crew::detail::process::threaded_fork_count(), 0U);
    stop = true;
    busy.join();
    if (::testing::Test::HasFailure()) std::_Exit(1);
  });
  EXPECT_TRUE(status.exited && status.exit_code == 0) << status.output;
  EXPECT_EQ(status.output.find("crew: warning"), std::string::npos) << status.output;
}

}  // namespace
