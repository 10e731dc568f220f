// The three ways to start workers — fork, spawn (fork + exec) and forkserver — give the same
// results and the same fault handling. This binary has its own main() that calls crew::init(),
// so exec'd workers and the forkserver enter there, after main() ran up to it
// (start_without_init_test covers programs that do not call it).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "crew/process_pool.hpp"
#include "support/process.hpp"

namespace {

using namespace std::chrono_literals;
using crew::error_kind;
using crew::start_method;

int square(int x) {
  return x * x;
}
int my_parent() {
  return static_cast<int>(getppid());
}
int crashes() {
  raise(SIGSEGV);
  return 0;
}
// Set in main() before crew::init(); a forked worker inherits it, an exec'd one recomputes it.
int loaded_before_pool = 0;
int read_loaded() {
  return loaded_before_pool;
}

class StartMethod : public ::testing::TestWithParam<start_method> {
 protected:
  crew::process_pool_options options(std::size_t workers) const {
    crew::process_pool_options o;
    o.workers = workers;
    o.start = GetParam();
    return o;
  }
};

TEST_P(StartMethod, RunsTasks) {
  crew::process_pool pool{options(2)};
  std::vector<crew::future<int>> futures;
  for (int i = 0; i < 1000; ++i) futures.push_back(pool.submit<&square>(i));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(futures[i].get(), i * i);
}

TEST_P(StartMethod, WorkerParentage) {
  crew::process_pool pool{options(1)};
  const int parent = pool.submit<&my_parent>().get();
  if (GetParam() == start_method::forkserver) {
    EXPECT_NE(parent, getpid()) << "forkserver workers are children of the server";
  } else {
    EXPECT_EQ(parent, getpid());
  }
}

TEST_P(StartMethod, ForkSharesLoadedDataExecRecomputesIt) {
  crew::process_pool pool{options(1)};
  const int seen = pool.submit<&read_loaded>().get();
  if (GetParam() == start_method::fork) {
    EXPECT_EQ(seen, 77) << "a forked worker sees what the parent loaded";
  } else {
    EXPECT_EQ(seen, 77) << "main() sets it before crew::init() in every process";
  }
}

TEST_P(StartMethod, CrashIsIsolated) {
  crew::process_pool pool{options(2)};
  auto crash = pool.submit<&crashes>();
  auto fine = pool.submit<&square>(9);
  auto r = crash.result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::crashed);
  EXPECT_EQ(r.error().signal(), SIGSEGV) << r.error().what();
  EXPECT_EQ(fine.get(), 81);
  EXPECT_EQ(pool.submit<&square>(3).get(), 9);
}

TEST_P(StartMethod, NoWorkerOutlivesAKilledParent) {
  const std::vector<int> pids = crew::test::pids_of_a_killed_parent([this](const auto& report) {
    crew::process_pool pool{options(2)};
    (void)pool.submit<&square>(1).get();
    report(pool.worker_pids());
  });
  EXPECT_EQ(pids.size(), 2U);
  EXPECT_EQ(crew::test::still_alive_after(pids, 20s), std::vector<int>{})
      << "workers outlived their parent";
}

INSTANTIATE_TEST_SUITE_P(All, StartMethod,
                         ::testing::Values(start_method::fork, start_method::spawn,
                                           start_method::forkserver),
                         [](const auto& param_info) {
                           switch (param_info.param) {
                             case start_method::fork:
                               return std::string{"fork"};
                             case start_method::spawn:
                               return std::string{"spawn"};
                             default:
                               return std::string{"forkserver"};
                           }
                         });

TEST(ForkWarning, WarnsOnceWhenThreadsRun) {
  const auto status = crew::test::run_in_child([] {
    std::atomic<bool> stop{false};
    std::thread busy{[&] {
      while (!stop) std::this_thread::sleep_for(1ms);
    }};
    {
      crew::process_pool a{{.workers = 1, .start = start_method::fork}};
      crew::process_pool b{{.workers = 1, .start = start_method::fork}};
      (void)a.submit<&square>(2).get();
    }
    stop = true;
    busy.join();
  });
  EXPECT_TRUE(status.exited && status.exit_code == 0) << status.output;
  const auto first = status.output.find("crew: warning: process_pool forks");
  EXPECT_NE(first, std::string::npos) << status.output;
  EXPECT_EQ(status.output.find("crew: warning", first + 1), std::string::npos) << "warn once";
  EXPECT_NE(status.output.find("start_method::spawn"), std::string::npos);
}

}  // namespace

int main(int argc, char** argv) {
  loaded_before_pool = 77;
  crew::init(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
