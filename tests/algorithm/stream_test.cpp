// crew/stream.hpp: imap / imap_unordered on a thread pool, a copying (serializing-style) executor
// and a process pool.
#include "crew/stream.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/process_pool.hpp"
#include "crew/thread_pool.hpp"

namespace {

using namespace std::chrono_literals;
using crew::stream_options;
using crew::thread_pool;

/// Only what every executor has — concurrency() and submit<&fn> — forwarded to a thread pool:
/// the stream takes its remote path (items' exceptions encoded), as on a process pool.
class copying_executor {
 public:
  explicit copying_executor(thread_pool& pool) : pool_(&pool) {}
  [[nodiscard]] std::size_t concurrency() const noexcept { return pool_->concurrency(); }
  template <auto Fn, class... A>
  auto submit(A&&... args) {
    return pool_->template submit<Fn>(std::forward<A>(args)...);
  }

 private:
  thread_pool* pool_;
};
static_assert(crew::executor<copying_executor>);
static_assert(!crew::detail::local_executor<copying_executor>);
static_assert(crew::detail::local_executor<thread_pool>);

long square(long x) {
  return x * x;
}

int fails_on_sevens(int x) {
  if (x % 7 == 0) throw std::invalid_argument("seven divides " + std::to_string(x));
  return x;
}

std::atomic<int> calls{0};
int counted(int x) {
  calls.fetch_add(1);
  return x;
}

std::atomic<bool> release{false};
int blocks_on_three(int x) {
  if (x == 3) {
    while (!release.load()) std::this_thread::sleep_for(1ms);
  }
  return x;
}

void nothing(int /*x*/) {}

std::string label(long x) {
  return std::string(100, static_cast<char>('a' + x % 26));
}

int crashes_on_five(int x) {
  if (x == 5) std::abort();
  return x;
}

/// An input_range that is not forward: reads are counted, and it may throw at one position.
struct counting_source {
  struct state {
    int next = 0;
    int limit = -1;     ///< -1: infinite
    int throw_at = -1;  ///< position whose read throws
    int reads = 0;
  };
  state* s;
  struct iterator {
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    state* s = nullptr;
    int operator*() const {
      if (s->next == s->throw_at) throw std::runtime_error("the input broke");
      ++s->reads;
      return s->next;
    }
    iterator& operator++() {
      ++s->next;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) {
      return it.s->limit >= 0 && it.s->next >= it.s->limit;
    }
  };
  iterator begin() const { return iterator{s}; }
  std::default_sentinel_t end() const { return {}; }
};
static_assert(std::ranges::input_range<counting_source>);
static_assert(!std::ranges::forward_range<counting_source>);

template <class Stream>
auto values_of(Stream& stream) {
  std::vector<typename Stream::result_type> out;
  for (auto& r : stream) out.push_back(r.value());
  return out;
}

TEST(Stream, ImapYieldsInInputOrder) {
  thread_pool pool{{.workers = 3}};
  std::vector<long> inputs(1000);
  std::iota(inputs.begin(), inputs.end(), 0L);
  for (std::size_t grain : {1U, 7U, 1000U, 5000U}) {
    auto stream = crew::imap<&square>(pool, inputs, {.grain = grain});
    std::size_t expected = 0;
    for (auto& r : stream) {
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(stream.index(), expected);
      EXPECT_EQ(*r, static_cast<long>(expected * expected));
      ++expected;
    }
    EXPECT_EQ(expected, inputs.size()) << "grain " << grain;
    EXPECT_FALSE(stream.timed_out());
  }
}

TEST(Stream, ImapUnorderedYieldsEveryItemOnceWithItsIndex) {
  thread_pool pool{{.workers = 3}};
  copying_executor copying{pool};
  auto check = [](auto&& stream) {
    std::set<std::size_t> seen;
    for (auto& r : stream) {
      ASSERT_TRUE(r.has_value());
      const std::size_t i = stream.index();
      EXPECT_EQ(*r, static_cast<long>(i * i));
      EXPECT_TRUE(seen.insert(i).second) << "index " << i << " twice";
    }
    EXPECT_EQ(seen.size(), 500U);
  };
  check(crew::imap_unordered<&square>(pool, std::views::iota(0L, 500L), {.grain = 3}));
  check(crew::imap_unordered<&square>(copying, std::views::iota(0L, 500L)));
}

TEST(Stream, EachItemFailsAloneWithItsOwnException) {
  thread_pool pool{{.workers = 2}};
  copying_executor copying{pool};
  auto check = [](auto&& stream) {
    int failed = 0;
    for (auto& r : stream) {
      const int i = static_cast<int>(stream.index());
      if (i % 7 == 0) {
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().kind(), crew::error_kind::exception);
        EXPECT_EQ(r.error().remote_type(), "std::invalid_argument");
        EXPECT_THROW(std::rethrow_exception(r.error().original()), std::invalid_argument);
        ++failed;
      } else {
        EXPECT_EQ(r.value(), i);
      }
    }
    EXPECT_EQ(failed, 15);  // 0, 7, ..., 98
  };
  // Grain 4: a failure ends some batches; grain 50: values before, between and after failures
  // inside one batch (the runs of values handed out by assignment).
  for (std::size_t grain : {4U, 50U}) {
    check(crew::imap<&fails_on_sevens>(pool, std::views::iota(0, 100), {.grain = grain}));
    check(crew::imap<&fails_on_sevens>(copying, std::views::iota(0, 100), {.grain = grain}));
    check(crew::imap_unordered<&fails_on_sevens>(copying, std::views::iota(0, 100),
                                                 {.grain = grain}));
  }
}

TEST(Stream, InfiniteInputStreamsUntilTheCallerStops) {
  thread_pool pool{{.workers = 2}};
  counting_source::state state;
  auto stream =
      crew::imap<&counted>(pool, counting_source{&state}, {.max_in_flight = 4, .grain = 8});
  int taken = 0;
  for (auto& r : stream) {
    EXPECT_EQ(r.value(), taken);
    EXPECT_LE(stream.in_flight(), 4U);
    // Read lazily: never more items ahead of the caller than the tasks in flight and the one
    // task being handed out hold.
    ASSERT_LE(state.reads, taken + (4 + 1) * 8);
    if (++taken == 20000) break;
  }
  EXPECT_EQ(taken, 20000);
}

TEST(Stream, BadOptionsAreClearErrors) {
  thread_pool pool{{.workers = 1}};
  std::vector<int> v{1, 2, 3};
  EXPECT_THROW((void)crew::imap<&counted>(pool, v, {.max_in_flight = 0}), std::invalid_argument);
  EXPECT_THROW((void)crew::imap_unordered<&counted>(pool, v, {.max_in_flight = 0}),
               std::invalid_argument);
}

std::atomic<long> automatic_reads{0};
long count_read(long x) {
  automatic_reads.fetch_add(1, std::memory_order_relaxed);
  return x;
}

TEST(Stream, AutomaticGrainIsMapsGrainForAShortInput) {
  thread_pool pool{{.workers = 2}};
  std::vector<long> inputs(100'000);
  std::iota(inputs.begin(), inputs.end(), 0L);
  auto stream = crew::imap<&square>(pool, inputs, {.grain = 0});
  EXPECT_EQ(stream.grain(), crew::detail::plan_chunks(inputs.size(), pool.concurrency(), 0).grain);
  EXPECT_GT(stream.grain(), 1U);
  EXPECT_EQ(values_of(stream).size(), inputs.size());
  // With a progress callback, finer: as map's.
  auto reporting = crew::imap<&square>(pool, inputs,
                                       {.grain = 0, .progress = [](const crew::progress_info&) {}});
  EXPECT_EQ(reporting.grain(), crew::detail::plan_chunks(inputs.size(), pool.concurrency(), 0,
                                                         crew::detail::progress_chunks_per_worker)
                                   .grain);
  EXPECT_EQ(values_of(reporting).size(), inputs.size());
}

TEST(Stream, AutomaticGrainOfAnUnsizedOrEmptyInputIsOne) {
  thread_pool pool{{.workers = 2}};
  counting_source::state state{.limit = 100};
  auto unsized = crew::imap<&counted>(pool, counting_source{&state}, {.grain = 0});
  EXPECT_EQ(unsized.grain(), 1U);
  EXPECT_EQ(values_of(unsized).size(), 100U);
  std::vector<int> empty;
  auto nothing_to_do = crew::imap_unordered<&counted>(pool, empty, {.grain = 0});
  EXPECT_EQ(nothing_to_do.grain(), 1U);
  EXPECT_TRUE(nothing_to_do.begin() == nothing_to_do.end());
}

TEST(Stream, AutomaticGrainOfAHugeInputKeepsWhatIsReadAheadBounded) {
  // 10^12 items: map's automatic grain would be 10^12 / 8 per task. The stream's stays within
  // its byte budget, and the items read ahead of the caller (counted as the input is read) stay
  // within (max_in_flight + 1) tasks of that grain, whatever the input's length.
  thread_pool pool{{.workers = 2}};
  automatic_reads = 0;
  auto huge = std::views::iota(0L, 1'000'000'000'000L) | std::views::transform(&count_read);
  static_assert(std::ranges::sized_range<decltype(huge)>);
  const std::size_t bound = pool.concurrency() * crew::detail::stream_tasks_per_worker;
  for (bool ordered : {true, false}) {
    automatic_reads = 0;
    auto run = [&](auto&& stream) {
      const std::size_t grain = stream.grain();
      EXPECT_GT(grain, 1U);
      ASSERT_LE((bound + 1) * grain * 2 * sizeof(long), crew::detail::stream_automatic_bytes);
      long taken = 0;
      long most_ahead = 0;
      for (auto& r : stream) {
        ASSERT_TRUE(r.has_value());
        ++taken;
        most_ahead = std::max(most_ahead, automatic_reads.load() - taken);
        if (taken == static_cast<long>(3 * bound * grain)) break;
      }
      EXPECT_EQ(taken, static_cast<long>(3 * bound * grain));
      EXPECT_GT(most_ahead, 0);
      EXPECT_LE(most_ahead, static_cast<long>((bound + 1) * grain));
    };
    if (ordered) {
      run(crew::imap<&square>(pool, huge, {.grain = 0}));
    } else {
      run(crew::imap_unordered<&square>(pool, huge, {.grain = 0}));
    }
  }
}

TEST(Stream, EmptyInputYieldsNothing) {
  thread_pool pool{{.workers = 1}};
  std::vector<int> empty;
  auto ordered = crew::imap<&counted>(pool, empty);
  EXPECT_TRUE(ordered.begin() == ordered.end());
  auto unordered = crew::imap_unordered<&counted>(pool, empty);
  EXPECT_TRUE(unordered.begin() == unordered.end());
  EXPECT_FALSE(unordered.timed_out());
}

TEST(Stream, ZeroOrNegativeTimeoutReadsNothing) {
  thread_pool pool{{.workers = 1}};
  calls = 0;
  for (const auto timeout :
       {std::chrono::steady_clock::duration::zero(), std::chrono::steady_clock::duration{-1s}}) {
    counting_source::state state;
    auto stream = crew::imap<&counted>(pool, counting_source{&state}, {.timeout = timeout});
    EXPECT_TRUE(stream.begin() == stream.end());
    EXPECT_TRUE(stream.timed_out());
    EXPECT_EQ(state.reads, 0);
  }
  pool.wait_idle();
  EXPECT_EQ(calls.load(), 0);
}

TEST(Stream, DeadlineEndsTheStreamAndTimesOutWhatIsLate) {
  thread_pool pool{{.workers = 2}};
  release = false;
  for (const bool ordered : {true, false}) {
    SCOPED_TRACE(ordered);
    std::vector<int> seen_ok;
    std::vector<int> seen_late;
    auto consume = [&](auto&& stream) {
      for (auto& r : stream) {
        const int i = static_cast<int>(stream.index());
        if (r) {
          seen_ok.push_back(i);
        } else {
          EXPECT_EQ(r.error().kind(), crew::error_kind::timed_out);
          seen_late.push_back(i);
        }
      }
      EXPECT_TRUE(stream.timed_out());
    };
    // Item 3 blocks until released; the input is infinite: only the deadline ends the stream.
    const stream_options options{.max_in_flight = 4, .timeout = 300ms};
    if (ordered) {
      consume(crew::imap<&blocks_on_three>(pool, std::views::iota(0), options));
    } else {
      consume(crew::imap_unordered<&blocks_on_three>(pool, std::views::iota(0), options));
    }
    EXPECT_TRUE(std::find(seen_late.begin(), seen_late.end(), 3) != seen_late.end());
    EXPECT_TRUE(std::find(seen_ok.begin(), seen_ok.end(), 0) != seen_ok.end());
    EXPECT_LE(seen_ok.size() + seen_late.size(), 3U + 4U * 100000U);
    if (ordered) {
      // In input order, every submitted item once: 0..n-1, with 3 late; items submitted after
      // 3 may have completed in time on the other worker.
      std::vector<int> all = seen_ok;
      all.insert(all.end(), seen_late.begin(), seen_late.end());
      std::sort(all.begin(), all.end());
      for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], static_cast<int>(i));
      EXPECT_EQ(std::vector<int>(seen_ok.begin(), seen_ok.begin() + 3),
                (std::vector<int>{0, 1, 2}));
    }
  }
  release = true;
}

TEST(Stream, DestroyingMidwayCancelsTasksNotStarted) {
  thread_pool pool{{.workers = 1}};
  release = false;
  calls = 0;
  {
    // Item 3 holds the only worker; items behind it are queued when the stream goes.
    auto stream =
        crew::imap<&blocks_on_three>(pool, std::views::iota(0, 1000), {.max_in_flight = 8});
    auto it = stream.begin();
    EXPECT_EQ(it->value(), 0);
  }
  // The destructor did not wait for the running item 3 (released only now).
  release = true;
  pool.wait_idle();
  calls = 0;
  {
    auto stream = crew::imap<&counted>(pool, std::views::iota(0, 1000), {.max_in_flight = 8});
    auto it = stream.begin();
    EXPECT_EQ(it->value(), 0);
    ++it;
    EXPECT_EQ(it->value(), 1);
  }
  pool.wait_idle();
  EXPECT_LE(calls.load(), 2 + 8) << "tasks beyond the bound ran after the stream was destroyed";
}

TEST(Stream, AnInputThatThrowsStopsReadingAndKeepsWhatWasSubmitted) {
  thread_pool pool{{.workers = 2}};
  counting_source::state state;
  state.throw_at = 10;
  auto stream =
      crew::imap<&counted>(pool, counting_source{&state}, {.max_in_flight = 2, .grain = 3});
  std::vector<int> got;
  bool threw = false;
  try {
    for (auto& r : stream) got.push_back(r.value());
  } catch (const std::runtime_error& e) {
    threw = true;
    EXPECT_STREQ(e.what(), "the input broke");
  }
  EXPECT_TRUE(threw);
  // Carry on after the error: what was submitted still arrives, then the stream ends.
  auto it = stream.begin();
  for (; it != stream.end(); ++it) got.push_back(it->value());
  std::vector<int> expected(static_cast<std::size_t>(got.size()));
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(got, expected);
  EXPECT_LE(got.size(), 10U);
}

TEST(Stream, VoidResultsAndRvalueInputs) {
  thread_pool pool{{.workers = 2}};
  std::size_t n = 0;
  for (auto& r : crew::imap<&nothing>(pool, std::vector<int>(50, 1))) {
    EXPECT_TRUE(r.has_value());
    ++n;
  }
  EXPECT_EQ(n, 50U);
}

// ------------------------------------------------------------------------ process pool

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

TEST(StreamProcessPool, MillionItemsWithFlatMemory) {
  crew::process_pool pool{{.workers = 2}};
  const long before = peak_rss_kib();
  std::size_t n = 0;
  std::size_t bytes = 0;
  // 10^6 results of 100 bytes: ~130 MB if they were all held at once.
  auto stream = crew::imap<&label>(pool, std::views::iota(0L, 1'000'000L), {.grain = 1000});
  for (auto& r : stream) {
    ASSERT_TRUE(r.has_value()) << r.error().what();
    ASSERT_EQ((*r)[0], static_cast<char>('a' + static_cast<long>(stream.index()) % 26));
    bytes += r->size();
    ++n;
  }
  const long growth_mib = (peak_rss_kib() - before) / 1024;
  RecordProperty("peak_rss_growth_mib", static_cast<int>(growth_mib));
  EXPECT_EQ(n, 1'000'000U);
  EXPECT_EQ(bytes, 100'000'000U);
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed memory in its quarantine (256 MiB by default): RSS says nothing.
  (void)growth_mib;
#else
  EXPECT_LT(growth_mib, 64) << "peak RSS grew by " << growth_mib << " MiB";
#endif
}

TEST(StreamProcessPool, PerItemExceptionsKeepTheirType) {
  crew::process_pool pool{{.workers = 2}};
  int failed = 0;
  auto stream = crew::imap_unordered<&fails_on_sevens>(pool, std::views::iota(0, 50), {.grain = 5});
  for (auto& r : stream) {
    if (stream.index() % 7 == 0) {
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error().remote_type(), "std::invalid_argument");
      EXPECT_THROW(std::rethrow_exception(r.error().original()), std::invalid_argument);
      ++failed;
    } else {
      EXPECT_EQ(r.value(), static_cast<int>(stream.index()));
    }
  }
  EXPECT_EQ(failed, 8);
}

TEST(StreamProcessPool, ACrashFailsOnlyItsTasksItems) {
  crew::process_pool pool{{.workers = 2}};
  int crashed = 0;
  int ok = 0;
  auto stream = crew::imap<&crashes_on_five>(pool, std::views::iota(0, 20));
  for (auto& r : stream) {
    if (stream.index() == 5) {
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error().kind(), crew::error_kind::crashed);
      ++crashed;
    } else {
      EXPECT_EQ(r.value(), static_cast<int>(stream.index()));
      ++ok;
    }
  }
  EXPECT_EQ(crashed, 1);
  EXPECT_EQ(ok, 19);
}

TEST(StreamProcessPool, InfiniteInputAndEarlyStop) {
  crew::process_pool pool{{.workers = 2}};
  long taken = 0;
  const stream_options options{
      .max_in_flight = 6, .grain = 16, .on_close = crew::stream_close::detach};
  for (auto& r : crew::imap<&square>(pool, std::views::iota(0L), options)) {
    EXPECT_EQ(r.value(), taken * taken);
    if (++taken == 5000) break;
  }
  EXPECT_EQ(taken, 5000);
}

// Cancelling tasks already sent to workers, then destroying the pool, returns (the pool's side of
// it: Supervision.CancellingTasksSentAheadThenDestroyingThePoolReturns).
TEST(StreamProcessPool, EarlyStopCancelsTasksInFlight) {
  crew::process_pool pool{{.workers = 2}};
  long taken = 0;
  for (auto& r : crew::imap<&square>(pool, std::views::iota(0L), {.max_in_flight = 6})) {
    EXPECT_EQ(r.value(), taken * taken);
    if (++taken == 100) break;
  }
  pool.wait_idle();
}

TEST(Stream, DetachedTasksRunToTheirEnd) {
  thread_pool pool{{.workers = 1}};
  calls = 0;
  {
    auto stream =
        crew::imap<&counted>(pool, std::views::iota(0, 1000),
                             {.max_in_flight = 8, .on_close = crew::stream_close::detach});
    EXPECT_EQ(stream.begin()->value(), 0);
  }
  pool.wait_idle();
  EXPECT_GE(calls.load(), 1 + 8) << "detached tasks in flight were cancelled";
  EXPECT_LE(calls.load(), 2 + 8);
}

}  // namespace
