#include <gtest/gtest.h>

#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/future.hpp"
#include "crew/when.hpp"

namespace {

using crew::error_kind;
using crew::future;
using crew::task_error;
using int_state = crew::detail::shared_state<int>;

struct producer {
  crew::detail::state_ptr<int_state> state = crew::detail::make_state<int_state>();
  future<int> make_future() { return future<int>{state}; }
};

TEST(Future, ValueIsDeliveredOnce) {
  producer p;
  future<int> f = p.make_future();
  EXPECT_TRUE(f.valid());
  EXPECT_FALSE(f.ready());
  EXPECT_TRUE(p.state->set_value(42));
  EXPECT_FALSE(p.state->set_value(43)) << "a second completion must lose";
  EXPECT_TRUE(f.ready());
  EXPECT_EQ(f.get(), 42);
  EXPECT_FALSE(f.valid());
}

TEST(Future, ReadingAConsumedFutureThrowsNoState) {
  future<int> f = crew::make_ready_future(7);
  EXPECT_EQ(f.get(), 7);
  try {
    (void)f.get();
    FAIL() << "second get() must throw";
  } catch (const std::future_error& e) {
    EXPECT_EQ(e.code(), std::make_error_code(std::future_errc::no_state));
  }
  EXPECT_THROW((void)f.result(), std::future_error);
  EXPECT_THROW(f.wait(), std::future_error);
  EXPECT_THROW((void)f.cancel(), std::future_error);
  future<int> empty;
  EXPECT_THROW((void)empty.ready(), std::future_error);
}

TEST(Future, OriginalExceptionIsRethrownByGetAndWrappedByResult) {
  producer p;
  future<int> f1 = p.make_future();
  p.state->set_exception(std::make_exception_ptr(std::out_of_range{"index 9"}));
  EXPECT_THROW((void)f1.get(), std::out_of_range);

  producer q;
  future<int> f2 = q.make_future();
  q.state->set_exception(std::make_exception_ptr(std::out_of_range{"index 9"}));
  crew::outcome<int> r = f2.result();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), error_kind::exception);
  EXPECT_STREQ(r.error().what(), "index 9");
  EXPECT_EQ(r.error().remote_type(), "std::out_of_range");
  EXPECT_THROW((void)r.value(), task_error);
}

TEST(Future, NonStdExceptionKeepsItsTypeOnGet) {
  producer p;
  future<int> f = p.make_future();
  p.state->set_exception(std::make_exception_ptr(17));
  try {
    (void)f.get();
    FAIL();
  } catch (int value) {
    EXPECT_EQ(value, 17);
  }
  producer q;
  future<int> g = q.make_future();
  q.state->set_exception(std::make_exception_ptr(17));
  auto r = g.result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().remote_type(), "int");
}

TEST(Future, TaskErrorIsThrownAsItself) {
  future<std::string> f =
      crew::make_failed_future<std::string>(task_error{error_kind::pool_closed, "closed"});
  try {
    (void)f.get();
    FAIL();
  } catch (const task_error& e) {
    EXPECT_EQ(e.kind(), error_kind::pool_closed);
  }
}

TEST(Future, CancelBeforeStartWinsAndStartLoses) {
  producer p;
  future<int> f = p.make_future();
  EXPECT_TRUE(f.cancel());
  EXPECT_FALSE(p.state->try_start());
  EXPECT_FALSE(p.state->set_value(1));
  auto r = f.result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::cancelled);
}

TEST(Future, CancelAfterStartIsRefusedByDefault) {
  producer p;
  future<int> f = p.make_future();
  ASSERT_TRUE(p.state->try_start());
  EXPECT_FALSE(f.cancel());
  p.state->set_value(5);
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(f.get(), 5);
}

TEST(Future, CancelRacingWithCompletionResolvesExactlyOnce) {
  for (int round = 0; round < 2000; ++round) {
    producer p;
    future<int> f = p.make_future();
    std::thread worker{[&] {
      if (p.state->try_start()) p.state->set_value(round);
    }};
    const bool cancelled = f.cancel();
    worker.join();
    auto r = f.result();
    if (cancelled) {
      ASSERT_FALSE(r);
      ASSERT_EQ(r.error().kind(), error_kind::cancelled);
    } else {
      ASSERT_TRUE(r);
      ASSERT_EQ(r.value(), round);
    }
  }
}

TEST(Future, WaitForTimesOutThenSucceeds) {
  producer p;
  future<int> f = p.make_future();
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds{5}), std::future_status::timeout);
  std::thread setter{[&] { p.state->set_value(3); }};
  EXPECT_EQ(f.wait_for(std::chrono::seconds{60}), std::future_status::ready);
  setter.join();
  EXPECT_EQ(f.get(), 3);
}

TEST(Future, BlockingWaitIsWokenByAnotherThread) {
  for (int round = 0; round < 200; ++round) {
    producer p;
    future<int> f = p.make_future();
    std::thread setter{[&] { p.state->set_value(round); }};
    EXPECT_EQ(f.get(), round);
    setter.join();
  }
}

TEST(Future, VoidFuture) {
  auto void_state = crew::detail::make_state<crew::detail::shared_state<void>>();
  future<void> f{void_state};
  void_state->set_value();
  EXPECT_NO_THROW(f.get());
  auto failed = crew::make_failed_future<void>(task_error{error_kind::crashed, "boom"});
  auto r = failed.result();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), error_kind::crashed);
}

TEST(Future, FutureOutlivesItsProducer) {
  future<int> f;
  {
    producer p;
    f = p.make_future();
    p.state->set_value(9);
  }
  EXPECT_EQ(f.get(), 9);
}

TEST(AsCompleted, YieldsInCompletionOrder) {
  std::vector<producer> producers(5);
  std::vector<future<int>> futures;
  for (auto& p : producers) futures.push_back(p.make_future());
  producers[3].state->set_value(3);  // before the range exists
  auto range = crew::as_completed(std::move(futures));
  producers[1].state->set_value(1);
  std::thread rest{[&] {
    producers[4].state->set_value(4);
    producers[0].state->set_value(0);
    producers[2].state->set_value(2);
  }};
  std::vector<int> order;
  for (future<int>& f : range) order.push_back(f.get());
  rest.join();
  ASSERT_EQ(order.size(), 5U);
  EXPECT_EQ(order[0], 3);
  EXPECT_EQ(order[1], 1);
  EXPECT_EQ((std::vector<int>{order[2], order[3], order[4]}), (std::vector<int>{4, 0, 2}));
}

TEST(AsCompleted, RangeMayDieBeforeItsTasks) {
  producer p;
  {
    std::vector<future<int>> futures;
    futures.push_back(p.make_future());
    auto range = crew::as_completed(std::move(futures));
  }
  EXPECT_TRUE(p.state->set_value(1));  // continuation fires into a still-alive set
}

TEST(AsCompleted, RejectsConsumedFutures) {
  std::vector<future<int>> futures(1);
  EXPECT_THROW((void)crew::as_completed(std::move(futures)), std::future_error);
  auto empty = crew::as_completed(std::vector<future<int>>{});
  EXPECT_FALSE(empty.next().has_value());
}

TEST(WhenAll, ReadyOnlyWhenAllAreReady) {
  std::vector<producer> producers(3);
  std::vector<future<int>> futures;
  for (auto& p : producers) futures.push_back(p.make_future());
  auto all = crew::when_all(std::move(futures));
  producers[0].state->set_value(10);
  producers[2].state->set_value(30);
  EXPECT_FALSE(all.ready());
  producers[1].state->fail(task_error{error_kind::timed_out, "late"});
  ASSERT_TRUE(all.ready());
  auto done = all.get();
  ASSERT_EQ(done.size(), 3U);
  EXPECT_EQ(done[0].get(), 10);
  EXPECT_EQ(done[1].result().error().kind(), error_kind::timed_out);
  EXPECT_EQ(done[2].get(), 30);
  auto none = crew::when_all(std::vector<future<int>>{});
  EXPECT_TRUE(none.ready());
  EXPECT_TRUE(none.get().empty());
}

}  // namespace
