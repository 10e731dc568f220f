// Progress reporting (crew/progress.hpp): the callback's contract on every algorithm and stream,
// on every executor (thread_pool, process_pool, hybrid_pool), and progress_bar's text in both
// modes. Every timed expectation has a generous margin: nothing here depends on how fast a
// loaded machine runs, only on what must have happened by then.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <numeric>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/algorithm.hpp"
#include "crew/hybrid_pool.hpp"
#include "crew/process_pool.hpp"
#include "crew/progress.hpp"
#include "crew/stream.hpp"
#include "crew/thread_pool.hpp"

namespace {

using namespace std::chrono_literals;
using crew::progress_info;

int square(int x) {
  return x * x;
}
long add(long a, long b) {
  return a + b;
}
long widen(int x) {
  return x;
}
void accept(int) {}
void accept_block(int, int) {}
int slow_square(int x) {
  std::this_thread::sleep_for(10ms);
  return x * x;
}
int sleeps_a_second(int x) {
  std::this_thread::sleep_for(1s);
  return x;
}
int crashes_on_13(int x) {
  if (x == 13) raise(SIGSEGV);
  return x;
}

std::atomic<int> items_run{0};  // thread pool only: counts slow_counted calls
int slow_counted(int x) {
  items_run.fetch_add(1);
  std::this_thread::sleep_for(10ms);
  return x;
}

std::vector<int> iota_vector(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

/// Records every progress call and what the contract forbids: two calls at once, a call on
/// another thread than the one that made the recorder.
class recorder {
 public:
  crew::progress_callback callback() {
    return [this](const progress_info& p) {
      if (inside_.fetch_add(1) != 0) concurrent_ = true;
      if (std::this_thread::get_id() != caller_) wrong_thread_ = true;
      {
        std::lock_guard lock{mutex_};
        calls_.push_back(p);
      }
      inside_.fetch_sub(1);
    };
  }

  std::vector<progress_info> calls() const {
    std::lock_guard lock{mutex_};
    return calls_;
  }

  /// The contract: one thread, one call at a time, done never decreasing, done == total only in
  /// the final call, which is the last and comes exactly once.
  void check(std::size_t total, std::size_t final_done) const {
    const auto calls = this->calls();
    EXPECT_FALSE(concurrent_.load());
    EXPECT_FALSE(wrong_thread_.load());
    ASSERT_FALSE(calls.empty());
    EXPECT_TRUE(calls.back().final);
    std::size_t finals = 0;
    for (std::size_t i = 0; i < calls.size(); ++i) {
      SCOPED_TRACE("call " + std::to_string(i));
      EXPECT_EQ(calls[i].total, total);
      if (calls[i].final) ++finals;
      if (!calls[i].final && total > 0) {
        EXPECT_LT(calls[i].done, total);
      }
      if (i > 0) {
        EXPECT_GE(calls[i].done, calls[i - 1].done);
        EXPECT_GE(calls[i].elapsed, calls[i - 1].elapsed);
      }
    }
    EXPECT_EQ(finals, 1U);
    EXPECT_EQ(calls.back().done, final_done);
  }
  void check(std::size_t total) const { check(total, total); }

 private:
  std::thread::id caller_ = std::this_thread::get_id();
  mutable std::mutex mutex_;
  std::vector<progress_info> calls_;
  std::atomic<int> inside_{0};
  std::atomic<bool> concurrent_{false};
  std::atomic<bool> wrong_thread_{false};
};

// ------------------------------------------------------------------------- progress_bar's text

progress_info at(std::size_t done, std::size_t total, double seconds, bool final = false) {
  return {done, total,
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
              std::chrono::duration<double>(seconds)),
          final};
}

TEST(ProgressBar, FormatsATerminalLine) {
  std::ostringstream out;
  const crew::progress_bar bar{{.label = "squares", .out = &out, .tty = true, .width = 10}};
  EXPECT_TRUE(bar.tty());
  EXPECT_EQ(bar.format(at(250, 1000, 10)),
            "squares: 25% [##........] 250/1000 0:10<0:30, 25.0 items/s");
  EXPECT_EQ(bar.format(at(0, 1000, 0)), "squares: 0% [..........] 0/1000 0:00<?, 0.0 items/s");
  EXPECT_EQ(bar.format(at(1000, 1000, 4000, true)),
            "squares: 100% [##########] 1000/1000 1:06:40<0:00, 0.2 items/s");
  EXPECT_EQ(bar.format(at(999, 1000, 1)).substr(0, 26), "squares: 99% [#########.] ")
      << "99.9% is drawn as 99%: 100% means all of it";
  EXPECT_EQ(bar.format(at(3'000'000, 0, 2)), "squares: 3000000 items 0:02, 1.50M items/s")
      << "total unknown: no percent, no ETA";
  EXPECT_EQ(bar.format(at(50'000, 0, 2)), "squares: 50000 items 0:02, 25.0k items/s");
}

TEST(ProgressBar, RedrawsInPlaceOnATerminal) {
  std::ostringstream out;
  {
    const crew::progress_bar bar{{.out = &out, .tty = true, .width = 4, .unit = "docs"}};
    bar(at(1, 4, 1));
    bar(at(2, 4, 2));
    bar(at(4, 4, 4, true));
  }
  EXPECT_EQ(out.str(),
            "\r25% [#...] 1/4 0:01<0:03, 1.0 docs/s\x1b[K"
            "\r50% [##..] 2/4 0:02<0:02, 1.0 docs/s\x1b[K"
            "\r100% [####] 4/4 0:04<0:00, 1.0 docs/s\x1b[K\n");
}

TEST(ProgressBar, TheLastCopyEndsALineLeftOpen) {
  std::ostringstream out;
  {
    const crew::progress_bar bar{{.out = &out, .tty = true}};
    const crew::progress_callback stored = bar;  // copies share the bar
    stored(at(1, 0, 1));
  }
  const std::string text = out.str();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n') << "a stream abandoned early leaves no half line";
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
}

TEST(ProgressBar, PrintsPlainLinesEveryIntervalWhenNotATerminal) {
  std::ostringstream out;
  const crew::progress_bar bar{{.label = "job", .out = &out, .line_interval = 5s}};
  EXPECT_FALSE(bar.tty()) << "a stream other than std::cerr is not a terminal";
  for (int second = 0; second <= 12; ++second)
    bar(at(static_cast<std::size_t>(second), 20, second));
  bar(at(20, 20, 13.5, true));
  EXPECT_EQ(out.str(),
            "job: 5/20 (25%) in 0:05, 1.0 items/s, ETA 0:15\n"
            "job: 10/20 (50%) in 0:10, 1.0 items/s, ETA 0:10\n"
            "job: 20/20 (100%) in 0:13, 1.5 items/s, done\n");
}

TEST(ProgressBar, PlainModeWithUnknownTotalAndARunAfterAnother) {
  std::ostringstream out;
  const crew::progress_bar bar{{.out = &out, .line_interval = 0s}};
  bar(at(7, 0, 1));
  bar(at(9, 0, 2, true));
  bar(at(3, 0, 1));  // a second run: the clock restarts
  EXPECT_EQ(out.str(),
            "7 items in 0:01, 7.0 items/s\n"
            "9 items in 0:02, 4.5 items/s, done\n"
            "3 items in 0:01, 3.0 items/s\n");
}

TEST(ProgressBar, RefusesBadOptions) {
  EXPECT_THROW(crew::progress_bar({.width = 0}), std::invalid_argument);
  EXPECT_THROW(crew::progress_bar({.line_interval = -1s}), std::invalid_argument);
}

TEST(ProgressBar, FormatsDurations) {
  using crew::detail::format_duration;
  EXPECT_EQ(format_duration(0s), "0:00");
  EXPECT_EQ(format_duration(59s), "0:59");
  EXPECT_EQ(format_duration(61s), "1:01");
  EXPECT_EQ(format_duration(3600s + 62s), "1:01:02");
  EXPECT_EQ(format_duration(-5s), "0:00");
}

// ---------------------------------------------------------------- the contract on every executor

template <class Pool>
struct maker;
template <>
struct maker<crew::thread_pool> {
  static auto make(std::size_t workers) { return std::make_unique<crew::thread_pool>(workers); }
};
template <>
struct maker<crew::process_pool> {
  static auto make(std::size_t workers) {
    crew::process_pool_options options;
    options.workers = workers;
    return std::make_unique<crew::process_pool>(options);
  }
};
template <>
struct maker<crew::hybrid_pool> {
  static auto make(std::size_t workers) {
    crew::hybrid_pool_options options;
    options.threads_per_process = workers >= 2 ? 2 : 1;
    options.processes = workers / options.threads_per_process;
    return std::make_unique<crew::hybrid_pool>(options);
  }
};

template <class Pool>
class Progress : public ::testing::Test {
 protected:
  std::unique_ptr<Pool> pool_ = maker<Pool>::make(2);
};
using executors = ::testing::Types<crew::thread_pool, crew::process_pool, crew::hybrid_pool>;
TYPED_TEST_SUITE(Progress, executors);

TYPED_TEST(Progress, EveryAlgorithmReportsUpToItsTotalOnce) {
  auto& pool = *this->pool_;
  const std::vector<int> inputs = iota_vector(1000);
  const std::vector<long> longs(inputs.begin(), inputs.end());
  for (auto interval : {0ms, 1ms, 100ms}) {
    SCOPED_TRACE("interval " + std::to_string(interval.count()) + " ms");
    {
      recorder r;
      const auto out = crew::map<&square>(
          pool, inputs, {.progress = r.callback(), .progress_interval = interval});
      EXPECT_EQ(out[999], 999 * 999);
      r.check(1000);
    }
    {
      recorder r;
      crew::for_each<&accept>(
          pool, inputs, {.grain = 7, .progress = r.callback(), .progress_interval = interval});
      r.check(1000);
    }
    {
      recorder r;
      crew::parallel_for<&accept>(pool, -500, 500,
                                  {.progress = r.callback(), .progress_interval = interval});
      r.check(1000);
    }
    {
      recorder r;
      crew::parallel_for_blocks<&accept_block>(
          pool, 0, 1000, {.grain = 64, .progress = r.callback(), .progress_interval = interval});
      r.check(1000);
    }
    {
      recorder r;
      EXPECT_EQ(crew::reduce<&add>(pool, longs, 0L,
                                   {.progress = r.callback(), .progress_interval = interval}),
                499'500L);
      r.check(1000);
    }
    {
      recorder r;
      EXPECT_EQ((crew::transform_reduce<&widen, &add>(
                    pool, inputs, 0L, {.progress = r.callback(), .progress_interval = interval})),
                499'500L);
      r.check(1000);
    }
  }
}

TYPED_TEST(Progress, IntervalZeroReportsEveryChunk) {
  recorder r;
  (void)crew::map<&square>(*this->pool_, iota_vector(100),
                           {.grain = 10, .progress = r.callback(), .progress_interval = 0ms});
  r.check(100);
  // Ten chunks: nine reports of a change (10, 20, ... 90 in some order of completion), then the
  // final one.
  const auto calls = r.calls();
  ASSERT_EQ(calls.size(), 10U);
  for (std::size_t i = 0; i + 1 < calls.size(); ++i) EXPECT_EQ(calls[i].done, 10 * (i + 1));
}

TYPED_TEST(Progress, ReportsOnATimerWhileAChunkRuns) {
  // One chunk of a second, reports every 10 ms: the caller reports done == 0 with a growing
  // elapsed time before the chunk ends (a frozen bar would look hung).
  recorder r;
  (void)crew::map<&sleeps_a_second>(*this->pool_, std::vector<int>{1},
                                    {.progress = r.callback(), .progress_interval = 10ms});
  r.check(1);
  const auto calls = r.calls();
  ASSERT_GE(calls.size(), 2U);
  EXPECT_EQ(calls.front().done, 0U);
  EXPECT_GE(calls.back().elapsed, 900ms);
}

TYPED_TEST(Progress, AnEmptyRangeReportsZeroOfZeroOnce) {
  auto& pool = *this->pool_;
  recorder r;
  EXPECT_TRUE(crew::map<&square>(pool, std::vector<int>{}, {.progress = r.callback()}).empty());
  crew::parallel_for<&accept>(pool, 5, 5, {.progress = r.callback()});
  EXPECT_EQ(crew::reduce<&add>(pool, std::vector<long>{}, 3L, {.progress = r.callback()}), 3L);
  const auto calls = r.calls();
  ASSERT_EQ(calls.size(), 3U);
  for (const auto& c : calls) {
    EXPECT_TRUE(c.final);
    EXPECT_EQ(c.done, 0U);
    EXPECT_EQ(c.total, 0U);
  }
}

TYPED_TEST(Progress, AnEndlessIntervalMeansOnlyTheFinalCall) {
  constexpr auto endless = std::chrono::steady_clock::duration::max();
  recorder r;
  (void)crew::map<&square>(*this->pool_, iota_vector(100),
                           {.grain = 10, .progress = r.callback(), .progress_interval = endless});
  for (auto& item : crew::imap_unordered<&square>(
           *this->pool_, iota_vector(100),
           {.grain = 10, .progress = r.callback(), .progress_interval = endless})) {
    EXPECT_TRUE(item);
  }
  const auto calls = r.calls();
  ASSERT_EQ(calls.size(), 2U);
  EXPECT_TRUE(calls[0].final);
  EXPECT_TRUE(calls[1].final);
}

TYPED_TEST(Progress, ANegativeIntervalIsRefusedBeforeAnythingRuns) {
  auto& pool = *this->pool_;
  const std::vector<int> inputs = iota_vector(10);
  EXPECT_THROW((void)crew::map<&square>(pool, inputs, {.progress_interval = -1ms}),
               std::invalid_argument);
  EXPECT_THROW(crew::parallel_for<&accept>(pool, 0, 10, {.progress_interval = -1ms}),
               std::invalid_argument);
  EXPECT_THROW((void)crew::imap<&square>(pool, inputs, {.progress_interval = -1ms}),
               std::invalid_argument);
  EXPECT_THROW((void)crew::submit_for<&accept>(pool, 0, 10, {.progress = [](auto&) {}}),
               std::invalid_argument)
      << "a call that does not wait cannot report";
}

TYPED_TEST(Progress, ACallbackThatThrowsStopsTheMap) {
  int calls = 0;
  const auto throwing = [&calls](const progress_info&) {
    ++calls;
    throw std::domain_error("enough");
  };
  EXPECT_THROW(
      (void)crew::map<&slow_square>(*this->pool_, iota_vector(200),
                                    {.grain = 1, .progress = throwing, .progress_interval = 0ms}),
      std::domain_error);
  EXPECT_EQ(calls, 1) << "no call after the one that threw";
  // The pool is fine afterwards (a process pool replaced the workers it stopped).
  EXPECT_EQ(crew::map<&square>(*this->pool_, iota_vector(10))[9], 81);
}

TYPED_TEST(Progress, ConcurrentMapsOnOnePoolEachReportTheirOwn) {
  auto& pool = *this->pool_;
  std::vector<std::thread> callers;
  std::vector<std::unique_ptr<recorder>> recorders;
  std::vector<std::size_t> sizes{300, 500, 700};
  for (std::size_t i = 0; i < sizes.size(); ++i) recorders.push_back(nullptr);
  std::atomic<int> failures{0};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    callers.emplace_back([&, i] {
      recorders[i] = std::make_unique<recorder>();  // made on the calling thread
      const auto out = crew::map<&square>(
          pool, iota_vector(static_cast<int>(sizes[i])),
          {.grain = 10, .progress = recorders[i]->callback(), .progress_interval = 0ms});
      if (out.size() != sizes[i]) failures.fetch_add(1);
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    SCOPED_TRACE("map " + std::to_string(i));
    recorders[i]->check(sizes[i]);
  }
}

TYPED_TEST(Progress, StreamsReportItemsTheCallerIsDoneWith) {
  auto& pool = *this->pool_;
  for (bool ordered : {true, false}) {
    SCOPED_TRACE(ordered ? "imap" : "imap_unordered");
    recorder r;
    const crew::stream_options options{
        .grain = 3, .progress = r.callback(), .progress_interval = 0ms};
    std::size_t seen = 0;
    const auto consume = [&](auto&& stream) {
      for (auto& item : stream) {
        ASSERT_TRUE(item);
        // The item being looked at is not done yet.
        EXPECT_EQ(r.calls().empty() ? 0U : r.calls().back().done, seen);
        ++seen;
      }
    };
    if (ordered) {
      consume(crew::imap<&square>(pool, iota_vector(100), options));
    } else {
      consume(crew::imap_unordered<&square>(pool, iota_vector(100), options));
    }
    EXPECT_EQ(seen, 100U);
    r.check(100);
    EXPECT_EQ(r.calls().size(), 100U) << "99 changes, then the final call";
  }
}

TYPED_TEST(Progress, AnUnsizedStreamReportsTotalZero) {
  recorder r;
  std::size_t seen = 0;
  for (auto& item : crew::imap<&square>(*this->pool_, std::views::iota(0) | std::views::take(50),
                                        {.progress = r.callback()})) {
    EXPECT_TRUE(item);
    ++seen;
  }
  EXPECT_EQ(seen, 50U);
  r.check(0, 50);
}

TYPED_TEST(Progress, AnEmptyStreamReportsOnce) {
  recorder r;
  auto stream =
      crew::imap_unordered<&square>(*this->pool_, std::vector<int>{}, {.progress = r.callback()});
  EXPECT_TRUE(stream.begin() == stream.end());
  r.check(0, 0);
  EXPECT_EQ(r.calls().size(), 1U);
}

TYPED_TEST(Progress, AStreamReportsWhileItWaitsForASlowItem) {
  for (bool ordered : {true, false}) {
    SCOPED_TRACE(ordered ? "imap" : "imap_unordered");
    recorder r;
    const crew::stream_options options{.progress = r.callback(), .progress_interval = 10ms};
    std::size_t seen = 0;
    if (ordered) {
      for (auto& item : crew::imap<&sleeps_a_second>(*this->pool_, std::vector<int>{1}, options))
        seen += item ? 1 : 0;
    } else {
      for (auto& item :
           crew::imap_unordered<&sleeps_a_second>(*this->pool_, std::vector<int>{1}, options))
        seen += item ? 1 : 0;
    }
    EXPECT_EQ(seen, 1U);
    r.check(1);
    const auto calls = r.calls();
    ASSERT_GE(calls.size(), 2U) << "reports during the second the item takes";
    EXPECT_EQ(calls.front().done, 0U);
  }
}

TYPED_TEST(Progress, AStreamPastItsDeadlineReportsWhatItHandedOut) {
  recorder r;
  auto stream = crew::imap<&slow_square>(
      *this->pool_, iota_vector(10'000),
      {.max_in_flight = 2, .timeout = 200ms, .progress = r.callback(), .progress_interval = 0ms});
  std::size_t seen = 0;
  for (auto& item : stream) {
    (void)item;
    ++seen;
  }
  EXPECT_TRUE(stream.timed_out());
  EXPECT_LT(seen, 10'000U);
  r.check(10'000, seen);
}

TYPED_TEST(Progress, AStreamCallbackThatThrowsPropagatesFromIncrement) {
  int calls = 0;
  crew::stream_options options{.progress_interval = 0ms};
  options.progress = [&calls](const progress_info& p) {
    ++calls;
    if (p.done == 5) throw std::domain_error("stop reporting");
  };
  auto stream = crew::imap<&square>(*this->pool_, iota_vector(20), options);
  auto it = stream.begin();
  for (int i = 0; i < 4; ++i) ++it;  // done 1..4: reported
  EXPECT_THROW(++it, std::domain_error);
  ASSERT_TRUE(it != stream.end());
  EXPECT_EQ(stream.index(), 5U) << "the iterator is on the item it was handed";
  EXPECT_EQ(**it, 25);
  std::size_t rest = 1;
  for (++it; it != stream.end(); ++it) ++rest;
  EXPECT_EQ(rest, 15U) << "the stream goes on";
  EXPECT_EQ(calls, 5) << "without progress calls";
}

TYPED_TEST(Progress, ABarFedByARealMapEndsAtTotalOnce) {
  std::ostringstream out;
  const crew::progress_bar bar{{.label = "map", .out = &out, .line_interval = 0s}};
  (void)crew::map<&square>(*this->pool_, iota_vector(5000),
                           {.grain = 100, .progress = bar, .progress_interval = 0ms});
  std::istringstream lines{out.str()};
  std::vector<std::string> all;
  for (std::string line; std::getline(lines, line);) all.push_back(line);
  ASSERT_EQ(all.size(), 50U) << out.str();  // 49 changes, then the final line
  for (std::size_t i = 0; i + 1 < all.size(); ++i) {
    EXPECT_EQ(all[i].rfind("map: " + std::to_string(100 * (i + 1)) + "/5000 (", 0), 0U) << all[i];
  }
  EXPECT_EQ(all.back().rfind("map: 5000/5000 (100%) in ", 0), 0U) << all.back();
  EXPECT_NE(all.back().find(", done"), std::string::npos);
}

// ------------------------------------------------------------------- faults, on processes only

template <class Pool>
class ProgressFaults : public Progress<Pool> {};
using process_executors = ::testing::Types<crew::process_pool, crew::hybrid_pool>;
TYPED_TEST_SUITE(ProgressFaults, process_executors);

TYPED_TEST(ProgressFaults, ACrashedChunkCountsAsDoneAndTheMapThrows) {
  recorder r;
  try {
    (void)crew::map<&crashes_on_13>(
        *this->pool_, iota_vector(40),
        {.grain = 1, .progress = r.callback(), .progress_interval = 0ms});
    ADD_FAILURE() << "the crash was not reported";
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.kind(), crew::error_kind::crashed);
  }
  r.check(40);  // every chunk finished, one of them by crashing: the final call says 40 of 40
}

// ------------------------------------------------------------ the thread pool's callable forms

TEST(ProgressThreadPool, CallableFormsReport) {
  crew::thread_pool pool{2};
  std::vector<int> values = iota_vector(1000);
  {
    recorder r;
    (void)crew::map(pool, values, [](int v) { return v + 1; }, {.progress = r.callback()});
    r.check(1000);
  }
  {
    recorder r;
    crew::for_each(pool, values, [](int& v) { v *= 2; }, {.progress = r.callback()});
    r.check(1000);
  }
  {
    recorder r;
    crew::parallel_for(pool, 0, 1000, [](int) {}, {.progress = r.callback()});
    r.check(1000);
  }
  {
    recorder r;
    crew::parallel_for_blocks(pool, 0, 1000, [](int, int) {}, {.progress = r.callback()});
    r.check(1000);
  }
  {
    recorder r;
    EXPECT_EQ(crew::reduce(pool, values, 0L, std::plus<>{}, {.progress = r.callback()}), 999'000L);
    r.check(1000);
  }
  {
    recorder r;
    EXPECT_EQ(crew::transform_reduce(pool, values, 0L, std::plus<>{}, [](int v) { return v / 2; },
                                     {.progress = r.callback()}),
              499'500L);
    r.check(1000);
  }
  int f_calls = 0;
  auto f = [&f_calls](int) { ++f_calls; };
  EXPECT_THROW((void)crew::submit_for(pool, 0, 10, f, {.progress = [](auto&) {}}),
               std::invalid_argument);
}

TEST(ProgressThreadPool, ACallbackThatThrowsCancelsTheChunksNotStarted) {
  crew::thread_pool pool{2};
  items_run = 0;
  // 400 items of 10 ms on 2 workers: 2 s of work; the callback throws after the first one, so the
  // map ends long before most have started.
  EXPECT_THROW((void)crew::map<&slow_counted>(pool, iota_vector(400),
                                              {.grain = 1,
                                               .progress = [](const progress_info&) { throw 42; },
                                               .progress_interval = 0ms}),
               int);
  EXPECT_LT(items_run.load(), 400);
  pool.wait_idle();
  EXPECT_LT(items_run.load(), 400) << "cancelled chunks never run";
}

TEST(ProgressThreadPool, ANestedMapReportsOnTheWorkerThatCalledIt) {
  crew::thread_pool pool{2};
  auto outer = pool.submit([&pool] {
    recorder r;  // made on the worker
    (void)crew::map<&square>(pool, iota_vector(500), {.grain = 10, .progress = r.callback()});
    r.check(500);
    return !::testing::Test::HasFailure();
  });
  EXPECT_TRUE(outer.get());
}

}  // namespace
