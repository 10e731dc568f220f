// crew::outcome spelled as std::expected: *, ->, value_or, has_value, bool, value(), error().
#include "crew/outcome.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace {

using crew::error_kind;
using crew::outcome;
using crew::task_error;

static_assert(std::is_same_v<outcome<int>::value_type, int>);
static_assert(std::is_same_v<outcome<int>::error_type, task_error>);
static_assert(!std::is_convertible_v<outcome<int>, bool>, "operator bool must be explicit");

TEST(Outcome, ValueAccessorsLikeExpected) {
  outcome<std::string> o{std::string{"hello"}};
  ASSERT_TRUE(o.has_value());
  ASSERT_TRUE(o);
  EXPECT_EQ(*o, "hello");
  EXPECT_EQ(o->size(), 5U);
  EXPECT_EQ(o.value(), "hello");
  EXPECT_EQ(o.value_or("fallback"), "hello");
  (*o)[0] = 'j';
  EXPECT_EQ(o.value(), "jello");
  const outcome<std::string>& c = o;
  EXPECT_EQ(c->front(), 'j');
  EXPECT_THROW((void)o.error(), std::logic_error);
  std::string moved = *std::move(o);
  EXPECT_EQ(moved, "jello");
}

TEST(Outcome, ErrorAccessorsThrowTheTaskError) {
  outcome<std::string> o{task_error{error_kind::timed_out, "too slow"}};
  EXPECT_FALSE(o.has_value());
  EXPECT_FALSE(o);
  EXPECT_EQ(o.error().kind(), error_kind::timed_out);
  EXPECT_EQ(o.value_or("fallback"), "fallback");
  EXPECT_EQ(std::move(o).value_or("moved fallback"), "moved fallback");
  for (int form = 0; form < 3; ++form) {
    try {
      if (form == 0) (void)o.value();
      if (form == 1) (void)*o;
      if (form == 2) (void)o->size();
      FAIL() << "form " << form << " did not throw";
    } catch (const task_error& e) {
      EXPECT_EQ(e.kind(), error_kind::timed_out) << form;
      EXPECT_STREQ(e.what(), "too slow");
    }
  }
}

TEST(Outcome, MoveOnlyValuesAndVoid) {
  outcome<std::unique_ptr<int>> p{std::make_unique<int>(7)};
  EXPECT_EQ(**p, 7);
  std::unique_ptr<int> taken = std::move(p).value_or(nullptr);
  EXPECT_EQ(*taken, 7);

  outcome<void> ok;
  EXPECT_TRUE(ok);
  EXPECT_NO_THROW(*ok);
  EXPECT_THROW((void)ok.error(), std::logic_error);
  outcome<void> bad{task_error{error_kind::cancelled, "c"}};
  EXPECT_THROW(*bad, task_error);
  EXPECT_THROW(bad.value(), task_error);
  EXPECT_EQ(bad.error().kind(), error_kind::cancelled);
}

// A task_error is handed from the thread that fails a future to the thread that reads it; each
// copy owns its message, so no copy reads memory another thread may free.
TEST(TaskError, CopiesOwnTheirMessage) {
  const task_error first{error_kind::crashed, "worker 3 was killed by signal 11"};
  task_error copy = first;
  EXPECT_STREQ(copy.what(), first.what());
  EXPECT_NE(static_cast<const void*>(copy.what()), static_cast<const void*>(first.what()));
  const task_error moved = std::move(copy);
  EXPECT_STREQ(moved.what(), "worker 3 was killed by signal 11");
  const std::runtime_error& as_base = moved;
  EXPECT_STREQ(as_base.what(), "worker 3 was killed by signal 11");
  EXPECT_TRUE(std::is_nothrow_move_constructible_v<task_error>);
}

}  // namespace
