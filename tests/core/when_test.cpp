// crew/when.hpp: when_any, wait, as_completed over the caller's vector and with a timeout, then.
#include "crew/when.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/thread_pool.hpp"

namespace {

using namespace std::chrono_literals;
using crew::future;
using crew::return_when;
using int_state = crew::detail::shared_state<int>;
using state_ref = crew::detail::state_ptr<int_state>;

/// n futures whose states the test completes by hand.
struct manual {
  std::vector<state_ref> states;
  std::vector<future<int>> futures;
  explicit manual(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      states.push_back(crew::detail::make_state<int_state>());
      futures.emplace_back(states.back());
    }
  }
  manual(const manual&) = delete;
  manual& operator=(const manual&) = delete;
  /// Completes what the test left pending, as an executor would (a watched state is kept alive
  /// until it is ready).
  ~manual() {
    for (auto& s : states) (void)s->set_value(-1);
  }
};

TEST(WhenAny, ReadyWhenTheFirstIsReadyAndHoldsThemAll) {
  manual m{4};
  auto any = crew::when_any(std::move(m.futures));
  EXPECT_FALSE(any.ready());
  m.states[2]->set_value(20);
  ASSERT_TRUE(any.ready());
  m.states[0]->set_value(0);  // later ones change nothing
  auto result = any.get();
  EXPECT_EQ(result.index, 2U);
  ASSERT_EQ(result.futures.size(), 4U);
  EXPECT_EQ(result.futures[2].get(), 20);
  EXPECT_EQ(result.futures[0].get(), 0);
  EXPECT_FALSE(result.futures[1].ready());
}

TEST(WhenAny, AlreadyReadyAndEmptyAndInvalid) {
  manual m{3};
  m.states[1]->set_value(1);
  EXPECT_EQ(crew::when_any(std::move(m.futures)).get().index, 1U);

  auto none = crew::when_any(std::vector<future<int>>{});
  ASSERT_TRUE(none.ready()) << "when_any of nothing is ready at once";
  auto result = none.get();
  EXPECT_EQ(result.index, crew::when_any_result<int>::npos);
  EXPECT_TRUE(result.futures.empty());

  std::vector<future<int>> bad(1);
  EXPECT_THROW((void)crew::when_any(std::move(bad)), std::future_error);
}

TEST(Wait, FirstCompletedFirstExceptionAllCompleted) {
  manual m{3};
  auto r = crew::wait(m.futures, return_when::first_completed, 0ms);
  EXPECT_TRUE(r.done.empty());
  EXPECT_EQ(r.not_done, (std::vector<std::size_t>{0, 1, 2}));

  std::thread completer([&] {
    std::this_thread::sleep_for(20ms);  // only to make the waiter really sleep first
    m.states[1]->set_value(1);
  });
  r = crew::wait(m.futures, return_when::first_completed);
  completer.join();
  EXPECT_EQ(r.done, (std::vector<std::size_t>{1}));
  EXPECT_EQ(r.not_done, (std::vector<std::size_t>{0, 2}));

  // FIRST_EXCEPTION: a value does not end it, a failure does.
  r = crew::wait(m.futures, return_when::first_exception, 0ms);
  EXPECT_EQ(r.not_done.size(), 2U);
  std::thread failer(
      [&] { m.states[2]->set_exception(std::make_exception_ptr(std::runtime_error{"x"})); });
  r = crew::wait(m.futures, return_when::first_exception, 60s);
  failer.join();
  EXPECT_EQ(r.done, (std::vector<std::size_t>{1, 2}));
  EXPECT_EQ(r.not_done, (std::vector<std::size_t>{0}));

  // The futures were not consumed; waiting again and again does not pile up watchers.
  for (int i = 0; i < 1000; ++i) (void)crew::wait(m.futures, return_when::all_completed, 0ms);
  std::thread last([&] { m.states[0]->set_value(0); });
  r = crew::wait(m.futures);
  last.join();
  EXPECT_EQ(r.done.size(), 3U);
  EXPECT_EQ(m.futures[0].get(), 0);
  EXPECT_EQ(m.futures[1].get(), 1);
  EXPECT_THROW((void)m.futures[2].get(), std::runtime_error);
}

TEST(Wait, FirstExceptionWithoutFailuresWaitsForAll) {
  manual m{2};
  m.states[0]->set_value(0);
  std::thread t([&] { m.states[1]->set_value(1); });
  const auto r = crew::wait(m.futures, return_when::first_exception);
  t.join();
  EXPECT_EQ(r.done.size(), 2U);
}

TEST(Wait, TimeoutsZeroNegativeAndPassing) {
  manual m{2};
  const auto start = std::chrono::steady_clock::now();
  for (const auto timeout : {0ms, -5ms, 30ms}) {
    const auto r = crew::wait(m.futures, return_when::all_completed, timeout);
    EXPECT_EQ(r.not_done.size(), 2U);
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  std::vector<future<int>> empty;
  EXPECT_TRUE(crew::wait(empty).done.empty());
  std::vector<future<int>> bad(1);
  EXPECT_THROW((void)crew::wait(bad), std::future_error);
  m.states[0]->set_value(0);
  m.states[1]->set_value(1);
}

TEST(AsCompleted, OverTheCallersVectorInCompletionOrder) {
  manual m{3};
  m.states[2]->set_value(2);
  std::vector<int> order;
  std::thread t;
  for (future<int>& f : crew::as_completed(m.futures)) {
    order.push_back(f.get());
    if (!t.joinable()) {  // only 2 was ready when the range started; now complete 1, then 0
      t = std::thread([&] {
        m.states[1]->set_value(1);
        m.states[0]->set_value(0);
      });
    }
  }
  t.join();
  EXPECT_EQ(order, (std::vector<int>{2, 1, 0}));
  EXPECT_FALSE(m.futures[2].valid()) << "the caller's future was consumed by get()";
}

TEST(AsCompleted, TimeoutEndsIterationAndLeavesTheRest) {
  manual m{3};
  m.states[1]->set_value(1);
  auto range = crew::as_completed(m.futures, 50ms);
  std::vector<int> got;
  for (future<int>& f : range) got.push_back(f.get());
  EXPECT_EQ(got, (std::vector<int>{1}));
  EXPECT_TRUE(range.timed_out());
  EXPECT_TRUE(m.futures[0].valid());
  EXPECT_FALSE(m.futures[0].ready());

  // Owning form with a zero timeout: hands out what is ready now, keeps the rest.
  manual n{2};
  n.states[0]->set_value(7);
  auto owning = crew::as_completed(std::move(n.futures), 0ms);
  int count = 0;
  for (future<int>& f : owning) {
    EXPECT_EQ(f.get(), 7);
    ++count;
  }
  EXPECT_EQ(count, 1);
  EXPECT_TRUE(owning.timed_out());
  ASSERT_EQ(owning.futures().size(), 2U);
  n.states[1]->set_value(8);
  EXPECT_EQ(owning.futures()[1].get(), 8);
  m.states[0]->set_value(0);
  m.states[2]->set_value(2);
}

TEST(Then, RunsOnTheResultAndChains) {
  crew::thread_pool pool{{.workers = 2}};
  auto f = pool.submit([] { return 20; });
  auto g = crew::then(std::move(f), [](crew::outcome<int> r) { return *r + 1; });
  auto h = crew::then(std::move(g), [](crew::outcome<int> r) { return std::to_string(*r * 2); });
  EXPECT_EQ(h.get(), "42");
  // Already ready: runs at once.
  auto now = crew::then(crew::make_ready_future(1), [](crew::outcome<int> r) { return *r; });
  ASSERT_TRUE(now.ready());
  EXPECT_EQ(now.get(), 1);
}

TEST(Then, SeesFailuresAndACallbackThatThrowsFailsItsFuture) {
  crew::thread_pool pool{{.workers = 1}};
  auto failing = pool.submit([]() -> int { throw std::out_of_range{"task"}; });
  auto seen = crew::then(std::move(failing), [](crew::outcome<int> r) {
    return r ? std::string{"value"} : std::string{r.error().what()};
  });
  EXPECT_EQ(seen.get(), "task");

  auto throws = crew::then(crew::make_ready_future(1),
                           [](crew::outcome<int>) -> int { throw std::domain_error{"callback"}; });
  EXPECT_THROW((void)throws.get(), std::domain_error);
  auto throws2 = crew::then(crew::make_ready_future(1),
                            [](crew::outcome<int>) { throw std::domain_error{"callback"}; });
  auto r = throws2.result();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), crew::error_kind::exception);
  EXPECT_EQ(r.error().remote_type(), "std::domain_error");

  future<int> invalid;
  EXPECT_THROW((void)crew::then(std::move(invalid), [](crew::outcome<int>) { return 0; }),
               std::future_error);
}

TEST(Then, AfterWaitOnTheSameFuture) {
  manual m{1};
  (void)crew::wait(m.futures, return_when::first_completed, 0ms);
  auto next = crew::then(std::move(m.futures[0]), [](crew::outcome<int> r) { return *r * 3; });
  EXPECT_FALSE(next.ready());
  m.states[0]->set_value(5);
  EXPECT_EQ(next.get(), 15);
}

}  // namespace
