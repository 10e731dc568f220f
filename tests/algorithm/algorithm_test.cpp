#include "crew/algorithm.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <numeric>
#include <ranges>
#include <stdexcept>
#include <string>
#include <vector>

#include "crew/thread_pool.hpp"

// ThreadSanitizer cannot see the reference count inside libstdc++'s exception_ptr (its atomics are
// compiled into the uninstrumented libstdc++.so), so the last release of a task's exception on a
// worker, after the test thread caught and dropped its copy, looks like a race. Only frees made
// from inside libstdc++ (the exception's release and destructor) are suppressed; crew's own code
// stays checked. The hook is read by the TSan runtime only; other builds never call it.
extern "C" const char* __tsan_default_suppressions() {
  return "race:std::__exception_ptr::exception_ptr::_M_release\n"
         "called_from_lib:libstdc++.so.6\n";
}

namespace {

using crew::thread_pool;

/// Exposes only what every executor has — concurrency() and submit<&fn> — and forwards to a
/// thread pool, so the algorithms' generic (copying) path is tested exactly as a process pool
/// would drive it. Counts the tasks it is given.
class copying_executor {
 public:
  explicit copying_executor(thread_pool& pool) : pool_(&pool) {}
  [[nodiscard]] std::size_t concurrency() const noexcept { return pool_->concurrency(); }
  template <auto Fn, class... A>
  auto submit(A&&... args) {
    submitted_.fetch_add(1);
    return pool_->template submit<Fn>(std::forward<A>(args)...);
  }
  [[nodiscard]] std::size_t submitted() const { return submitted_.load(); }

 private:
  thread_pool* pool_;
  std::atomic<std::size_t> submitted_{0};
};

static_assert(crew::executor<copying_executor>);
static_assert(!crew::closure_executor<copying_executor>);
static_assert(crew::closure_executor<thread_pool>);

int square(int x) {
  return x * x;
}
long add(long a, long b) {
  return a + b;
}
long widen(int x) {
  return x;
}
std::string to_text(int x) {
  return std::to_string(x);
}

std::atomic<long> g_sum{0};
void accumulate(int x) {
  g_sum.fetch_add(x);
}

constexpr std::size_t index_count = 10'000;
std::vector<std::atomic<int>> g_hits(index_count);
void hit(std::size_t i) {
  g_hits[i].fetch_add(1);
}

void throw_at_25_and_75(std::size_t i) {
  if (i == 25) throw std::out_of_range{"item 25"};
  if (i == 75) throw std::invalid_argument{"item 75"};
  g_sum.fetch_add(1);
}

std::vector<int> iota(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

class Algorithm : public ::testing::TestWithParam<std::size_t> {
 protected:
  void SetUp() override {
    g_sum.store(0);
    for (auto& h : g_hits) h.store(0);
  }
  thread_pool pool_{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(Workers, Algorithm, ::testing::Values(1, 2, 8),
                         [](const ::testing::TestParamInfo<std::size_t>& p) {
                           return "w" + std::to_string(p.param);
                         });

// --------------------------------------------------------------------------------- chunking

TEST(Chunking, GrainZeroMeansAFewChunksPerWorker) {
  using crew::detail::plan_chunks;
  EXPECT_EQ(plan_chunks(0, 4, 0).count, 0U);
  EXPECT_EQ(plan_chunks(1'000'000, 2, 0).count, 8U);
  EXPECT_EQ(plan_chunks(1'000'000, 2, 0).grain, 125'000U);
  EXPECT_EQ(plan_chunks(3, 8, 0).count, 3U) << "never more chunks than items";
  EXPECT_EQ(plan_chunks(10, 2, 3).count, 4U);
  EXPECT_EQ(plan_chunks(10, 2, 100).count, 1U);
  EXPECT_EQ(plan_chunks(10, 0, 0).count, 4U) << "concurrency 0 is treated as 1";
}

// ------------------------------------------------------------- generic path (any executor)

TEST_P(Algorithm, MapKeepsInputOrderForEveryGrain) {
  copying_executor ex{pool_};
  const auto inputs = iota(1000);
  for (std::size_t grain : {0U, 1U, 7U, 999U, 1000U, 5000U}) {
    auto out = crew::map<&square>(ex, inputs, {.grain = grain});
    ASSERT_EQ(out.size(), inputs.size());
    for (std::size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], square(inputs[i])) << grain;
  }
  auto text = crew::map<&to_text>(ex, iota(12), {.grain = 5});
  EXPECT_EQ(text.front(), "0");
  EXPECT_EQ(text.back(), "11");
}

TEST_P(Algorithm, AutomaticGrainMakesFewTasks) {
  copying_executor ex{pool_};
  const auto inputs = iota(40'000);  // square() stays within int
  (void)crew::map<&square>(ex, inputs);
  EXPECT_EQ(ex.submitted(), 4 * pool_.concurrency());
}

TEST_P(Algorithm, EmptyInputsSubmitNothing) {
  copying_executor ex{pool_};
  const std::vector<int> none;
  EXPECT_TRUE(crew::map<&square>(ex, none).empty());
  crew::for_each<&accumulate>(ex, none);
  crew::parallel_for<&hit>(ex, 5, 5);
  crew::parallel_for<&hit>(ex, 9, 3);
  EXPECT_EQ(crew::reduce<&add>(ex, std::vector<long>{}, 17L), 17L);
  EXPECT_EQ((crew::transform_reduce<&widen, &add>(ex, none, 3L)), 3L);
  EXPECT_EQ(ex.submitted(), 0U);
}

TEST_P(Algorithm, ForEachAndParallelForVisitEveryItemOnce) {
  copying_executor ex{pool_};
  crew::for_each<&accumulate>(ex, iota(1000), {.grain = 33});
  EXPECT_EQ(g_sum.load(), 999L * 1000 / 2);
  crew::parallel_for<&hit>(ex, 100, index_count);
  for (std::size_t i = 0; i < index_count; ++i) ASSERT_EQ(g_hits[i].load(), i < 100 ? 0 : 1) << i;
}

TEST_P(Algorithm, ReduceAndTransformReduce) {
  copying_executor ex{pool_};
  std::vector<long> longs(10'001);
  std::iota(longs.begin(), longs.end(), 0L);
  EXPECT_EQ(crew::reduce<&add>(ex, longs, 0L), 10'000L * 10'001 / 2);
  EXPECT_EQ(crew::reduce<&add>(ex, longs, 0L, {.grain = 1}), 10'000L * 10'001 / 2);
  EXPECT_EQ((crew::transform_reduce<&widen, &add>(ex, iota(100), 0L, {.grain = 9})), 4950L);
}

TEST_P(Algorithm, GenericPathRethrowsTheFirstFailureAfterAllChunksFinished) {
  copying_executor ex{pool_};
  try {
    crew::parallel_for<&throw_at_25_and_75>(ex, 0, 100, {.grain = 10});
    FAIL() << "must throw";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "item 25");
  }
  // Every chunk ran to its end or its throw: [20,30) stopped after 5 items, [70,80) too.
  EXPECT_EQ(g_sum.load(), 90);
}

// ----------------------------------------------------- callable path (shared-memory executors)

TEST_P(Algorithm, ParallelForWithALambdaCoversTheRange) {
  std::vector<int> hits(1'000'000, 0);
  crew::parallel_for(pool_, 0, hits.size(), [&hits](std::size_t i) { hits[i] += 1; });
  EXPECT_EQ(std::count(hits.begin(), hits.end(), 1), 1'000'000);
  crew::parallel_for(pool_, 10, 20, [&hits](std::size_t i) { hits[i] += 1; }, {.grain = 3});
  EXPECT_EQ(hits[9], 1);
  EXPECT_EQ(hits[10], 2);
  EXPECT_EQ(hits[19], 2);
  EXPECT_EQ(hits[20], 1);
}

TEST_P(Algorithm, CallableMapDoesNotCopyInputs) {
  std::vector<std::unique_ptr<int>> inputs;  // not copyable: any copy would not compile
  for (int i = 0; i < 500; ++i) inputs.push_back(std::make_unique<int>(i));
  auto out = crew::map(pool_, inputs, [](const std::unique_ptr<int>& p) { return *p * 2; });
  ASSERT_EQ(out.size(), 500U);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(out[static_cast<std::size_t>(i)], 2 * i);
}

TEST_P(Algorithm, CallableForEachModifiesInPlace) {
  auto values = iota(1000);
  crew::for_each(pool_, values, [](int& x) { x *= 3; }, {.grain = 64});
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(values[static_cast<std::size_t>(i)], 3 * i);
}

TEST_P(Algorithm, CallableReduceAndTransformReduce) {
  const auto values = iota(10'000);
  const long sum =
      crew::reduce(pool_, values, 0L, [](long acc, long x) { return acc + x; }, {.grain = 0});
  EXPECT_EQ(sum, 9'999L * 10'000 / 2);
  const long squares = crew::transform_reduce(
      pool_, values, 0L, [](long a, long b) { return a + b; },
      [](int x) { return static_cast<long>(x) * x; });
  long expected = 0;
  for (int v : values) expected += static_cast<long>(v) * v;
  EXPECT_EQ(squares, expected);
  EXPECT_EQ(crew::reduce(pool_, std::vector<int>{}, 5, [](int a, int b) { return a + b; }), 5);
}

TEST_P(Algorithm, CallableFailureWaitsForAllChunksThenRethrowsTheFirst) {
  std::atomic<int> done{0};
  try {
    crew::parallel_for(pool_, 0, 100,
                       [&done](std::size_t i) {
                         if (i == 75) throw 75;  // not a std::exception
                         if (i == 25) throw 25;
                         done.fetch_add(1);
                       },
                       {.grain = 10});
    FAIL() << "must throw";
  } catch (int first) {
    EXPECT_EQ(first, 25);
  }
  EXPECT_EQ(done.load(), 90) << "returned before every chunk had finished";
}

TEST_P(Algorithm, AlgorithmsNestInsideTasksOfTheSamePool) {
  auto f = pool_.submit([this] {
    const auto values = iota(2000);
    return crew::reduce(pool_, values, 0L, [](long a, long b) { return a + b; }, {.grain = 50});
  });
  EXPECT_EQ(f.get(), 1999L * 2000 / 2);
}

TEST_P(Algorithm, GrainZeroAndHugeGrainBothWork) {
  std::atomic<long> sum{0};
  crew::parallel_for(pool_, 0, 1000, [&sum](std::size_t i) { sum += static_cast<long>(i); },
                     {.grain = 0});
  crew::parallel_for(pool_, 0, 1000, [&sum](std::size_t i) { sum += static_cast<long>(i); },
                     {.grain = 1'000'000});
  EXPECT_EQ(sum.load(), 2 * 999L * 1000 / 2);
}

// ------------------------------------------------------- loops over any integral type, views

std::atomic<long> g_index_sum{0};
std::atomic<int> g_index_calls{0};
void record_index(std::int64_t i) {
  g_index_sum += i;
  ++g_index_calls;
}
void record_block(std::int64_t b, std::int64_t e) {
  for (auto i = b; i < e; ++i) g_index_sum += i;
  g_index_calls += static_cast<int>(e - b);
}
void record_small(std::int8_t i) {
  g_index_sum += i;
  ++g_index_calls;
}
long twice(long x) {
  return 2 * x;
}

TEST_P(Algorithm, ParallelForOverSignedBoundsRunsEveryIndex) {
  copying_executor ex{pool_};
  g_index_sum = 0;
  g_index_calls = 0;
  crew::parallel_for<&record_index>(ex, std::int64_t{-5}, std::int64_t{5});
  EXPECT_EQ(g_index_calls.load(), 10);
  EXPECT_EQ(g_index_sum.load(), -5);
  std::atomic<int> calls{0};
  std::atomic<long> sum{0};
  crew::parallel_for(pool_, std::int64_t{-5}, std::int64_t{5}, [&](std::int64_t i) {
    ++calls;
    sum += i;
  });
  EXPECT_EQ(calls.load(), 10);
  EXPECT_EQ(sum.load(), -5);
  // The extremes of a small type: no overflow, every value once.
  g_index_sum = 0;
  g_index_calls = 0;
  crew::parallel_for<&record_small>(ex, std::int8_t{-128}, std::int8_t{127}, {.grain = 7});
  EXPECT_EQ(g_index_calls.load(), 255);
  EXPECT_EQ(g_index_sum.load(), -255);  // -128 + ... + 126
  // Empty and reversed ranges run nothing.
  calls = 0;
  crew::parallel_for(pool_, -3, -3, [&](int) { ++calls; });
  crew::parallel_for(pool_, 3, -3, [&](int) { ++calls; });
  EXPECT_EQ(calls.load(), 0);
}

TEST_P(Algorithm, BlockFormAndFutureFormsCoverTheRangeOnce) {
  copying_executor ex{pool_};
  g_index_sum = 0;
  g_index_calls = 0;
  crew::parallel_for_blocks<&record_block>(ex, std::int64_t{-100}, std::int64_t{100}, {.grain = 9});
  EXPECT_EQ(g_index_calls.load(), 200);
  EXPECT_EQ(g_index_sum.load(), -100);

  std::vector<std::atomic<int>> hits(100);
  auto body = [&hits](int i) { ++hits[static_cast<std::size_t>(i)]; };
  auto futures = crew::submit_for(pool_, 0, 100, body, {.grain = 8});
  EXPECT_EQ(futures.size(), 13U);
  for (auto& f : futures) f.get();
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);

  std::atomic<int> blocks{0};
  std::atomic<int> covered{0};
  auto block = [&](long b, long e) {
    ++blocks;
    covered += static_cast<int>(e - b);
  };
  auto block_futures = crew::submit_for_blocks(pool_, 0L, 1000L, block, {.grain = 100});
  for (auto& f : block_futures) f.get();
  EXPECT_EQ(blocks.load(), 10);
  EXPECT_EQ(covered.load(), 1000);

  g_index_calls = 0;
  auto remote = crew::submit_for<&record_index>(ex, std::int64_t{0}, std::int64_t{50});
  for (auto& f : remote) f.get();
  EXPECT_EQ(g_index_calls.load(), 50);
  EXPECT_TRUE(crew::submit_for<&record_index>(ex, 5, 5).empty());
}

TEST_P(Algorithm, MapAcceptsViewsWithWideDifferenceTypes) {
  copying_executor ex{pool_};
  // iota_view<long, long>'s difference type is wider than std::ptrdiff_t.
  const auto out = crew::map<&twice>(ex, std::views::iota(0L, 10L), {.grain = 3});
  ASSERT_EQ(out.size(), 10U);
  for (std::size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], 2 * static_cast<long>(i));
  EXPECT_EQ(crew::reduce<&add>(ex, std::views::iota(1L, 101L), 0L), 5050L);
  const auto local = crew::map(pool_, std::views::iota(0L, 10L), [](long x) { return x + 1; });
  EXPECT_EQ(local.back(), 10L);
  // A transformed view and a subrange of a vector are random access and sized too.
  const std::vector<long> v{1, 2, 3, 4};
  EXPECT_EQ(crew::map<&twice>(ex, std::views::transform(v, [](long x) { return x * 10; })).back(),
            80L);
  EXPECT_EQ(crew::map<&twice>(ex, std::ranges::subrange(v.begin() + 1, v.end())).front(), 4L);
}

}  // namespace
