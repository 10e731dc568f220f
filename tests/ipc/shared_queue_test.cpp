// crew::shared_queue and crew::make_channel: between threads, between forked processes and with
// pool workers; full, empty, timeouts and close; messages that cannot fit; and participants
// SIGKILLed while they hold the queue's lock or in the middle of pushing and popping.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "crew/process_pool.hpp"
#include "crew/shared_queue.hpp"
#include "crew/thread_pool.hpp"
#include "support/process.hpp"

namespace {

using namespace std::chrono_literals;
using crew::shared_array;
using crew::shared_queue;

struct item {
  std::uint32_t producer = 0;
  std::uint64_t seq = 0;
  std::string text;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(producer, seq, text);
  }
};

std::int64_t drain_sum(shared_queue<std::int64_t> q) {
  std::int64_t sum = 0;
  while (auto v = q.pop()) sum += *v;
  return sum;
}

TEST(SharedQueue, ManyProducersAndConsumersBetweenThreads) {
  auto q = shared_queue<item>::create(4096);  // small: producers often wait for room
  constexpr std::uint32_t producers = 4;
  constexpr std::uint64_t per_producer = 5000;
  std::vector<std::thread> threads;
  for (std::uint32_t p = 0; p < producers; ++p) {
    threads.emplace_back([q, p]() mutable {
      for (std::uint64_t s = 0; s < per_producer; ++s) q.push(item{p, s, std::string(s % 50, 'x')});
    });
  }
  std::vector<std::vector<item>> got(4);
  std::vector<std::thread> consumers;
  for (std::size_t c = 0; c < got.size(); ++c) {
    consumers.emplace_back([q, &mine = got[c]]() mutable {
      while (auto v = q.pop()) mine.push_back(std::move(*v));
    });
  }
  for (auto& t : threads) t.join();
  q.close();
  for (auto& t : consumers) t.join();
  std::map<std::uint32_t, std::vector<std::uint64_t>> by_producer;
  for (const auto& mine : got) {
    std::map<std::uint32_t, std::uint64_t> last;
    for (const item& i : mine) {
      // What one consumer sees of one producer is in the producer's order.
      if (last.count(i.producer) != 0) {
        EXPECT_LT(last[i.producer], i.seq);
      }
      last[i.producer] = i.seq;
      EXPECT_EQ(i.text.size(), i.seq % 50);
      by_producer[i.producer].push_back(i.seq);
    }
  }
  for (std::uint32_t p = 0; p < producers; ++p) {
    auto& seqs = by_producer[p];
    std::sort(seqs.begin(), seqs.end());
    ASSERT_EQ(seqs.size(), per_producer) << "producer " << p << ": every value exactly once";
    for (std::uint64_t s = 0; s < per_producer; ++s) ASSERT_EQ(seqs[s], s);
  }
}

TEST(SharedQueue, BetweenProcessesInOrderAcrossTheRingsEnd) {
  // Messages of many sizes in a small ring: records wrap around its end again and again.
  auto q = shared_queue<std::string>::create(1000);
  const pid_t child = crew::test::fork_running([q]() mutable {
    for (int i = 0; i < 20000; ++i)
      q.push(std::string(static_cast<std::size_t>(i % 300), 'a' + i % 26));
    q.close();
  });
  int n = 0;
  while (auto s = q.pop()) {
    ASSERT_EQ(s->size(), static_cast<std::size_t>(n % 300));
    if (!s->empty()) {
      ASSERT_EQ((*s)[0], 'a' + n % 26);
    }
    ++n;
  }
  EXPECT_EQ(n, 20000);
  EXPECT_EQ(crew::test::wait_for_child(child), 0);
}

TEST(SharedQueue, TheSameTaskOnThreadsAndOnProcesses) {
  for (int model = 0; model < 2; ++model) {
    auto q = shared_queue<std::int64_t>::create(1 << 12);
    std::int64_t expect = 0;
    crew::future<std::int64_t> sum;
    std::unique_ptr<crew::thread_pool> threads;
    std::unique_ptr<crew::process_pool> processes;
    if (model == 0) {
      threads = std::make_unique<crew::thread_pool>(2);
      sum = threads->submit(drain_sum, q);
    } else {
      crew::process_pool_options o;
      o.workers = 1;
      processes = std::make_unique<crew::process_pool>(o);
      sum = processes->submit<&drain_sum>(q);  // the queue crosses as its memory's descriptor
    }
    for (std::int64_t i = 1; i <= 10000; ++i) {
      q.push(i);
      expect += i;
    }
    q.close();
    EXPECT_EQ(sum.get(), expect) << (model == 0 ? "threads" : "processes");
  }
}

TEST(SharedQueue, FullEmptyAndTimeouts) {
  auto q = shared_queue<std::int64_t>::create(64);  // 64 bytes: four 8-byte values (+8 each)
  int pushed = 0;
  while (q.try_push(pushed)) ++pushed;
  EXPECT_EQ(pushed, 4);
  EXPECT_EQ(q.size(), 4U);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(q.push_for(99, 50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(q.try_pop(), std::optional<std::int64_t>{i});
  EXPECT_EQ(q.try_pop(), std::nullopt);
  const auto t1 = std::chrono::steady_clock::now();
  EXPECT_EQ(q.pop_for(50ms), std::nullopt);
  EXPECT_GE(std::chrono::steady_clock::now() - t1, 50ms);
  EXPECT_TRUE(q.empty());
}

TEST(SharedQueue, AWaitingPushIsWokenByAPopInAnotherProcess) {
  auto q = shared_queue<std::int64_t>::create(64);
  while (q.try_push(1)) {
  }
  const pid_t child = crew::test::fork_running([q]() mutable {
    std::this_thread::sleep_for(20ms);
    (void)q.pop();
  });
  EXPECT_TRUE(q.push_for(2, 30s));
  EXPECT_EQ(crew::test::wait_for_child(child), 0);
}

TEST(SharedQueue, CloseEndsPopsAfterTheDrainAndRefusesPushes) {
  auto q = shared_queue<int>::create(1024);
  std::thread waiter([q]() mutable { EXPECT_EQ(q.pop(), std::nullopt); });
  std::this_thread::sleep_for(20ms);
  q.close();  // wakes the waiter
  waiter.join();
  EXPECT_TRUE(q.closed());
  EXPECT_THROW(q.push(1), crew::queue_closed);
  EXPECT_THROW((void)q.try_push(1), crew::queue_closed);

  auto r = shared_queue<int>::create(1024);
  r.push(1);
  r.push(2);
  r.close();
  EXPECT_EQ(r.pop(), std::optional<int>{1});
  EXPECT_EQ(r.pop(), std::optional<int>{2});
  EXPECT_EQ(r.pop(), std::nullopt);
}

TEST(SharedQueue, AMessageThatCanNeverFitIsRefusedWithBothSizes) {
  auto q = shared_queue<std::string>::create(256);
  try {
    q.push(std::string(1000, 'x'));
    FAIL() << "a 1000-byte message cannot fit a 256-byte queue";
  } catch (const std::length_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("1008 bytes"), std::string::npos) << what;  // 8 length + 1000
    EXPECT_NE(what.find("120 bytes"), std::string::npos) << what;   // half the ring, less 8
  }
  EXPECT_TRUE(q.empty()) << "nothing was pushed";
  EXPECT_THROW(q.push(std::string(113, 'z')), std::length_error);  // 8 + 113 = 121
  // The largest that fits (8 + 112 = 120), again and again wherever the ring's end falls.
  for (int i = 0; i < 50; ++i) {
    q.push(std::string(112, 'y'));
    EXPECT_EQ(q.pop()->size(), 112U);
    q.push(std::string(static_cast<std::size_t>(i), 'w'));
    EXPECT_EQ(q.pop()->size(), static_cast<std::size_t>(i));
  }
}

TEST(SharedQueue, AnEmptyHandleAndForeignMemoryAreRefused) {
  shared_queue<int> empty;
  EXPECT_THROW(empty.push(1), std::logic_error);
  EXPECT_THROW((void)empty.pop(), std::logic_error);
  // Memory that is not a queue, sent where a queue is expected.
  auto zeros = shared_array<std::byte>::create(4096);
  crew::detail::outgoing_attachments sent;
  std::vector<std::byte> bytes;
  {
    const crew::detail::sending_attachments with{&sent};
    bytes = crew::codec::encode(zeros);
  }
  const std::vector<int> fds = sent.fds();
  const crew::detail::incoming_attachments received{fds};
  const crew::detail::receiving_attachments with{&received};
  shared_queue<int> q;
  EXPECT_THROW(crew::codec::decode_into(bytes, q), crew::serialization_error);
}

TEST(SharedQueue, ALockHolderKilledInsideIsTakenOver) {
  crew::detail::queue_core core = crew::detail::queue_core::create(1024);
  const std::vector<std::byte> one(10, std::byte{1});
  ASSERT_EQ(core.push(one, std::nullopt), crew::detail::queue_core::status::ok);
  // The producers' mutex is the first thing in the queue's memory: hold it, and die holding it.
  auto* mu = reinterpret_cast<pthread_mutex_t*>(core.memory().data());
  const pid_t child = crew::test::fork_running([mu] {
    pthread_mutex_lock(mu);
    raise(SIGKILL);
  });
  const int status = crew::test::wait_for_child(child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  const std::vector<std::byte> two(20, std::byte{2});
  ASSERT_EQ(core.push(two, std::chrono::steady_clock::now() + 10s),
            crew::detail::queue_core::status::ok);
  EXPECT_EQ(core.recoveries(), 1U) << "the dead producer's lock was taken over";
  EXPECT_EQ(core.size(), 2U);
  std::vector<std::byte> out;
  ASSERT_EQ(core.pop(out, std::chrono::steady_clock::now() + 10s),
            crew::detail::queue_core::status::ok);
  EXPECT_EQ(out, one) << "the message queued before survives";
  ASSERT_EQ(core.pop(out, std::chrono::steady_clock::now() + 10s),
            crew::detail::queue_core::status::ok);
  EXPECT_EQ(out, two);
}

// Producers and consumers in child processes, SIGKILLed at random moments while the parent
// keeps the queue busy. Each child logs, after every operation returns, what it did; a push that
// returned must be popped exactly once (by a consumer that logged it, or by the parent at the
// end), and at most one value per killed consumer may go missing (popped, then killed before it
// could log it).
TEST(SharedQueue, ParticipantsKilledMidOperationLoseAndDuplicateNothingCommitted) {
  auto q = shared_queue<std::uint64_t>::create(2048);
  constexpr int rounds = 40;
  constexpr std::uint64_t stride = 1'000'000;
  // Per round: [0] the producer's last returned value; consumers append to a log.
  auto last_pushed = shared_array<std::uint64_t>::create(rounds);
  auto log = shared_array<std::uint64_t>::create(rounds * 4096);
  auto log_used = shared_array<std::uint64_t>::create(rounds);
  std::mt19937 rng{20261124};
  int consumers_killed = 0;
  for (int round = 0; round < rounds; ++round) {
    const std::uint64_t base = static_cast<std::uint64_t>(round + 1) * stride;
    const pid_t producer = crew::test::fork_running([=]() mutable {
      for (std::uint64_t i = 0;; ++i) {
        q.push(base + i);
        last_pushed[static_cast<std::size_t>(round)] = base + i + 1;  // count that returned
      }
    });
    const pid_t consumer = crew::test::fork_running([=]() mutable {
      std::size_t& used = log_used[static_cast<std::size_t>(round)];
      for (;;) {
        const auto v = q.pop();
        if (!v || used == 4096) break;
        log[static_cast<std::size_t>(round) * 4096 + used] = *v;
        ++used;
      }
      for (;;) pause();  // full log: wait to be killed
    });
    std::this_thread::sleep_for(
        std::chrono::microseconds{std::uniform_int_distribution<int>{200, 3000}(rng)});
    kill(producer, SIGKILL);
    kill(consumer, SIGKILL);
    crew::test::wait_for_child(producer);
    crew::test::wait_for_child(consumer);
    ++consumers_killed;
  }
  q.close();
  std::map<std::uint64_t, int> seen;
  while (auto v = q.pop()) ++seen[*v];
  for (int round = 0; round < rounds; ++round) {
    for (std::size_t i = 0; i < log_used[static_cast<std::size_t>(round)]; ++i) {
      ++seen[log[static_cast<std::size_t>(round) * 4096 + i]];
    }
  }
  int missing = 0;
  for (int round = 0; round < rounds; ++round) {
    const std::uint64_t base = static_cast<std::uint64_t>(round + 1) * stride;
    const std::uint64_t returned = last_pushed[static_cast<std::size_t>(round)];
    for (std::uint64_t v = base; v < std::max(returned, base); ++v) {
      const auto it = seen.find(v);
      if (it == seen.end()) {
        ++missing;
      } else {
        EXPECT_EQ(it->second, 1) << "value " << v << " delivered more than once";
      }
    }
  }
  for (const auto& [v, n] : seen)
    EXPECT_EQ(n, 1) << "value " << v << " delivered " << n << " times";
  EXPECT_GT(seen.size(), 0U) << "the producers got something through";
  RecordProperty("values", static_cast<int>(seen.size()));
  RecordProperty("lock_takeovers", static_cast<int>(q.recoveries()));
  EXPECT_LE(missing, consumers_killed) << "only a value popped by a consumer killed before it "
                                          "logged it may be missing";
}

TEST(Channel, RequestsAndRepliesBetweenTwoProcesses) {
  auto [left, right] = crew::make_channel<std::string, std::size_t>(4096);
  const pid_t child = crew::test::fork_running([right = right]() mutable {
    while (auto request = right.receive()) right.send(request->size());
    right.close();
  });
  for (std::size_t n = 0; n < 2000; ++n) {
    left.send(std::string(n % 100, 'q'));
    const auto reply = left.receive_for(30s);
    ASSERT_TRUE(reply.has_value());
    ASSERT_EQ(*reply, n % 100);
  }
  left.close();
  EXPECT_EQ(left.receive_for(30s), std::nullopt) << "the other end closed after our close";
  EXPECT_EQ(crew::test::wait_for_child(child), 0);
}

}  // namespace
