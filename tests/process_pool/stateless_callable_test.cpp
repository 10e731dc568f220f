// submit(f, args...) and detach(f, args...) with stateless callables on pools of worker
// processes, under every start method: the worker makes its own callable from the type, found in
// the task registry under a name that must mean the same task in a forked, an exec'd (spawn) and
// a forkserver worker — including for lambdas whose names collide. The executor contract
// (tests/contract) covers the calls on every executor; this file the process-specific edges.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/auto_pool.hpp"
#include "crew/hybrid_pool.hpp"
#include "crew/process_pool.hpp"
#include "crew/thread_pool.hpp"

namespace {

using crew::error_kind;
using crew::start_method;

// Under GCC these three have one type name ("{anonymous}::<lambda(int)>"), so one registry name:
// their ids differ only by registration order, which every process of the binary repeats.
constexpr auto add_one = [](int x) { return x + 1; };
constexpr auto times_ten = [](int x) { return x * 10; };
constexpr auto minus_five = [](int x) { return x - 5; };

// One lambda expression in a function template: a distinct closure type per instantiation.
template <int N>
auto make_adder() {
  return [](int x) { return x + N; };
}

constexpr auto my_pid = []() { return static_cast<int>(getpid()); };
constexpr auto fails = [](int x) -> int { throw std::out_of_range("index " + std::to_string(x)); };
constexpr auto sums = [](const std::vector<int>& v) {
  return std::accumulate(v.begin(), v.end(), 0L);
};

// An argument whose encoding throws: the task never reaches the pool.
struct unsendable {
  int value = 0;
  template <class Archive>
  void serialize(Archive& archive) {
    if constexpr (!Archive::is_loading) {
      if (value == 13) throw std::runtime_error("thirteen cannot be sent");
    }
    archive(value);
  }
};
constexpr auto reads = [](unsendable u) { return u.value; };

class StatelessCallable : public ::testing::TestWithParam<start_method> {
 protected:
  crew::process_pool_options options(std::size_t workers) const {
    crew::process_pool_options o;
    o.workers = workers;
    o.start = GetParam();
    return o;
  }
};

TEST_P(StatelessCallable, LambdasWithCollidingNamesEachRunAsThemselves) {
  crew::process_pool pool{options(2)};
  for (int round = 0; round < 50; ++round) {
    ASSERT_EQ(pool.submit(add_one, round).get(), round + 1);
    ASSERT_EQ(pool.submit(times_ten, round).get(), round * 10);
    ASSERT_EQ(pool.submit(minus_five, round).get(), round - 5);
  }
  EXPECT_EQ(pool.submit(make_adder<1>(), 10).get(), 11);
  EXPECT_EQ(pool.submit(make_adder<2>(), 10).get(), 12);
}

TEST_P(StatelessCallable, RunsInTheWorkerNotTheCaller) {
  crew::process_pool pool{options(1)};
  const int worker = pool.submit(my_pid).get();
  EXPECT_NE(worker, static_cast<int>(getpid()));
  const auto pids = pool.worker_pids();
  ASSERT_EQ(pids.size(), 1U);
  EXPECT_EQ(worker, pids[0]);
}

TEST_P(StatelessCallable, AThrowingLambdaNamesItselfInTheError) {
  crew::process_pool pool{options(1)};
  EXPECT_THROW(pool.submit(fails, 3).get(), std::out_of_range);
  auto r = pool.submit(fails, 4).result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::exception);
  EXPECT_STREQ(r.error().what(), "index 4");
  EXPECT_NE(r.error().task_name().find("lambda"), std::string::npos) << r.error().task_name();
  EXPECT_EQ(pool.submit(add_one, 1).get(), 2) << "the worker goes on";
}

TEST_P(StatelessCallable, LargeArgumentsTravel) {
  crew::process_pool pool{options(1)};
  std::vector<int> big(4 << 20, 1);  // 16 MiB: past the ring, through a memfd
  EXPECT_EQ(pool.submit(sums, big).get(), static_cast<long>(big.size()));
}

TEST_P(StatelessCallable, ArgumentsThatCannotBeEncodedFailTheSubmission) {
  crew::process_pool pool{options(1)};
  auto r = pool.submit(reads, unsendable{13}).result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::serialization);
  EXPECT_NE(std::string{r.error().what()}.find("thirteen cannot be sent"), std::string::npos);
  EXPECT_FALSE(pool.detach(reads, unsendable{13})) << "refused: it can never run";
  EXPECT_TRUE(pool.detach(reads, unsendable{12}));
  pool.wait_idle();
  EXPECT_EQ(pool.stats().completed, 1U);
}

TEST_P(StatelessCallable, HybridAndAutoPoolsToo) {
  {
    crew::hybrid_pool_options h;
    h.processes = 1;
    h.threads_per_process = 2;
    h.start = GetParam();
    crew::hybrid_pool hybrid{h};
    EXPECT_EQ(hybrid.submit(times_ten, 4).get(), 40);
    EXPECT_EQ(hybrid.submit(add_one, 4).get(), 5);
  }

  crew::recommendation choice;
  choice.model = crew::execution_model::processes;
  choice.workers = 1;
  crew::auto_pool automatic{choice, {.start = GetParam()}};
  ASSERT_NE(automatic.processes(), nullptr);
  EXPECT_EQ(automatic.submit(minus_five, 4).get(), -1);
  EXPECT_TRUE(automatic.detach(add_one, 1));
  automatic.wait_idle();
  EXPECT_EQ(automatic.stats().completed, 2U);
}

INSTANTIATE_TEST_SUITE_P(EveryStartMethod, StatelessCallable,
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

// The switch between a thread pool and a process pool, for lambdas: a thread pool takes any
// callable (captures, move-only arguments), a process pool the stateless ones with serializable
// arguments — and the same stateless line gives the same result on both.
TEST(StatelessCallableSwitch, MoveOnlyArgumentsOnAThreadPoolSerializableOnAProcessPool) {
  crew::thread_pool threads{2};
  auto deref = [](std::unique_ptr<int> p) { return *p * 2; };
  EXPECT_EQ(threads.submit(deref, std::make_unique<int>(21)).get(), 42);
  const int offset = 5;
  EXPECT_EQ(threads.submit([offset](int x) { return x + offset; }, 1).get(), 6);

  crew::process_pool processes{{.workers = 1}};
  auto join = [](std::vector<std::string> parts, const std::string& separator) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : separator) + p;
    return out;
  };
  const std::vector<std::string> parts{"a", "b", "c"};
  EXPECT_EQ(processes.submit(join, parts, "-").get(), "a-b-c");
  EXPECT_EQ(threads.submit(join, parts, "-").get(), "a-b-c");
}

}  // namespace
