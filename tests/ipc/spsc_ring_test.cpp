// spsc_ring in one process: ordering, sizes, wrap-around, streaming, timeouts and corruption.
#include "ipc/spsc_ring.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <random>
#include <set>
#include <thread>

#include "ipc/child.hpp"
#include "ipc/shared_region.hpp"

namespace crew::detail::ipc {
namespace {

using test::checksum;
using test::pattern;
using test::test_wait;

struct ring_fixture {
  explicit ring_fixture(std::size_t capacity)
      : region(shared_region::create("ring_test", spsc_ring::footprint(capacity))),
        ring(spsc_ring::create(region.bytes(), 0, capacity)) {}
  shared_region region;
  spsc_ring ring;
};

TEST(SpscRing, CreateRejectsBadLayouts) {
  auto region = shared_region::create("ring_test", 1 << 16);
  EXPECT_THROW((void)spsc_ring::create(region.bytes(), 0, 1000), std::invalid_argument);
  EXPECT_THROW((void)spsc_ring::create(region.bytes(), 0, 128), std::invalid_argument);
  EXPECT_THROW((void)spsc_ring::create(region.bytes(), 64, 1024), std::invalid_argument);
  EXPECT_THROW((void)spsc_ring::create(region.bytes(), 0, 1 << 16), std::invalid_argument);
  EXPECT_NO_THROW((void)spsc_ring::create(region.bytes(), 0, 1 << 15));
}

TEST(SpscRing, AttachSeesTheSameRing) {
  ring_fixture f(1024);
  auto again = spsc_ring::attach(f.region.bytes(), 0);
  EXPECT_EQ(again.capacity(), 1024u);
  EXPECT_EQ(&again.data_bell(), &f.ring.data_bell());
  ring_writer w(f.ring);
  ring_reader r(again);
  const auto msg = pattern(100, 7);
  w.write(msg);
  auto m = r.peek();
  ASSERT_TRUE(m);
  EXPECT_TRUE(std::equal(m->bytes.begin(), m->bytes.end(), msg.begin(), msg.end()));
}

TEST(SpscRing, AttachRejectsGarbage) {
  auto region = shared_region::create("ring_test", 1 << 16);
  EXPECT_THROW((void)spsc_ring::attach(region.bytes(), 0), corrupt_channel);  // zeros
  auto ring = spsc_ring::create(region.bytes(), 0, 1024);
  ring.header().capacity = 1 << 20;  // larger than the region
  EXPECT_THROW((void)spsc_ring::attach(region.bytes(), 0), corrupt_channel);
  ring.header().capacity = 1024;
  ring.header().data_bell_offset = region.size() - 8;
  EXPECT_THROW((void)spsc_ring::attach(region.bytes(), 0), corrupt_channel);
}

TEST(SpscRing, ReserveCommitPeekRelease) {
  ring_fixture f(1024);
  ring_writer w(f.ring);
  ring_reader r(f.ring);
  EXPECT_FALSE(r.readable());
  EXPECT_FALSE(r.peek());
  auto span = w.try_reserve(100);
  ASSERT_TRUE(span);
  ASSERT_EQ(span->size(), 100u);
  std::memset(span->data(), 0x5a, 100);
  EXPECT_FALSE(r.peek()) << "nothing is visible before commit";
  w.commit(40);  // keep only the first 40 bytes
  ASSERT_TRUE(r.readable());
  auto m = r.peek();
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->streamed);
  ASSERT_EQ(m->size, 40u);
  for (auto b : m->bytes) EXPECT_EQ(b, std::byte{0x5a});
  auto again = r.peek();  // peek is idempotent until release
  ASSERT_TRUE(again);
  EXPECT_EQ(again->bytes.data(), m->bytes.data());
  r.release();
  EXPECT_FALSE(r.peek());
  EXPECT_EQ(f.ring.header().tail.load(), f.ring.header().head.load());
}

TEST(SpscRing, MisusedCommitAndReleaseAreHarmless) {
  ring_fixture f(1024);
  ring_writer w(f.ring);
  ring_reader r(f.ring);
  w.commit();  // nothing reserved
  EXPECT_FALSE(r.peek());
  std::thread producer([&] { w.write(pattern(5000, 3), test_wait()); });
  auto m = r.wait_peek(test_wait());
  ASSERT_TRUE(m.streamed);
  r.release();  // a streamed message is not released piecemeal...
  std::vector<std::byte> out(m.size);
  r.read_streamed(out, test_wait());  // ...so it still reads whole
  producer.join();
  EXPECT_EQ(checksum(out), checksum(pattern(5000, 3)));
  std::thread producer2([&] { w.write(pattern(5000, 4), test_wait()); });
  std::vector<std::byte> wrong(10);
  (void)r.wait_peek(test_wait());
  EXPECT_THROW(r.read_streamed(wrong, test_wait()), std::invalid_argument);
  r.read_streamed(out, test_wait());
  producer2.join();
  EXPECT_EQ(checksum(out), checksum(pattern(5000, 4)));
  EXPECT_THROW(r.read_streamed(out, test_wait()), std::logic_error) << "peek() first";
}

TEST(SpscRing, EmptyMessagesAreMessages) {
  ring_fixture f(256);
  ring_writer w(f.ring);
  ring_reader r(f.ring);
  for (int i = 0; i < 100; ++i) {
    w.write({});
    auto m = r.peek();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->size, 0u);
    r.release();
  }
}

TEST(SpscRing, FullRingRefusesAndTooLargeThrows) {
  ring_fixture f(256);
  ring_writer w(f.ring);
  ring_reader r(f.ring);
  EXPECT_THROW((void)w.try_reserve(249), std::length_error);
  int written = 0;
  while (auto s = w.try_reserve(24)) {  // 32-byte records: 8 fit
    w.commit();
    ++written;
  }
  EXPECT_EQ(written, 8);
  auto m = r.peek();
  ASSERT_TRUE(m);
  r.release();
  EXPECT_TRUE(w.try_reserve(24)) << "room again after one release";
}

TEST(SpscRing, ExactlyMaxMessageSizeAtEveryPosition) {
  ring_fixture f(256);
  ring_writer w(f.ring);
  ring_reader r(f.ring);
  const std::size_t max = w.max_message_size();
  ASSERT_EQ(max, 248u);
  for (std::size_t shift = 0; shift < 256; shift += 8) {
    // Move head and tail to `shift` with one message of the right size.
    if (shift != 0) {
      w.write(pattern(shift - 8, 0));
      ASSERT_TRUE(r.peek());
      r.release();
    }
    const auto msg = pattern(max, shift);
    std::optional<std::span<std::byte>> s;
    for (int attempt = 0; attempt < 3 && !(s = w.try_reserve(max)); ++attempt) {
      // The writer has published padding; the reader must consume it before room appears.
      EXPECT_FALSE(r.peek());
    }
    ASSERT_TRUE(s) << "shift " << shift;
    std::memcpy(s->data(), msg.data(), max);
    w.commit();
    auto m = r.peek();
    ASSERT_TRUE(m);
    ASSERT_EQ(m->size, max);
    EXPECT_EQ(std::memcmp(m->bytes.data(), msg.data(), max), 0);
    r.release();
    // Re-align head to 0 mod capacity for the next shift.
    const std::size_t off = f.ring.header().head.load() % 256;
    if (off != 0) {
      w.write(pattern(256 - off - 8, 1));
      ASSERT_TRUE(r.peek());
      r.release();
    }
  }
}

// One thread plays both sides: put() writes with try_reserve and, whenever the ring is full,
// drains the oldest message and checks it, so messages of every size start at every offset
// with 0, 1 or 2 others in flight.
struct single_thread_pair {
  explicit single_thread_pair(const spsc_ring& ring) : w(ring), r(ring) {}
  ring_writer w;
  ring_reader r;
  std::deque<std::vector<std::byte>> in_flight;
  int drained = 0;

  bool drain_one() {
    auto m = r.peek();  // may consume padding and find nothing
    if (!m) return false;
    EXPECT_FALSE(in_flight.empty());
    EXPECT_EQ(m->size, in_flight.front().size());
    EXPECT_EQ(checksum(m->bytes), checksum(in_flight.front()));
    in_flight.pop_front();
    r.release();
    ++drained;
    return true;
  }
  void put(std::vector<std::byte> msg) {
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 10) << "no room even after draining";
      if (auto s = w.try_reserve(msg.size())) {
        std::copy(msg.begin(), msg.end(), s->begin());
        w.commit();
        in_flight.push_back(std::move(msg));
        return;
      }
      drain_one();
    }
  }
};

TEST(SpscRing, WrapAroundAtEveryOffsetAndSize) {
  constexpr std::size_t cap = 256;
  ring_fixture f(cap);
  single_thread_pair p(f.ring);
  std::uint64_t id = 0;
  std::set<std::size_t> offsets_seen;
  for (std::size_t start = 0; start < cap; start += 8) {
    for (std::size_t size = 0; size <= cap - 8; ++size) {
      offsets_seen.insert(f.ring.header().head.load() % cap);
      p.put(pattern(size, id++));
      if (size % 3 == 0) p.put(pattern(size / 3, id++));
      while (p.in_flight.size() > 2) p.drain_one();
    }
    while (!p.in_flight.empty()) p.drain_one();
    p.put(pattern(start % 40, id++));  // shift the position for the next round
  }
  while (!p.in_flight.empty()) p.drain_one();
  EXPECT_EQ(static_cast<std::uint64_t>(p.drained), id);
  EXPECT_EQ(offsets_seen.size(), cap / 8) << "a message started at every 8-byte offset";
  EXPECT_EQ(f.ring.header().head.load(), f.ring.header().tail.load());
}

TEST(SpscRing, MillionSmallMessagesInOrderAcrossThreads) {
  ring_fixture f(1 << 16);
  constexpr std::uint64_t count = 1'000'000;
  std::thread producer([&] {
    ring_writer w(f.ring);
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::size_t n = 8 + i % 57;
      auto s = w.reserve(n, test_wait());
      std::memcpy(s.data(), &i, 8);
      for (std::size_t k = 8; k < n; ++k) s[k] = static_cast<std::byte>(i + k);
      w.commit();
    }
  });
  ring_reader r(f.ring);
  const auto opts = test_wait();
  std::uint64_t bad = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    auto m = r.wait_peek(opts);
    std::uint64_t got = ~0ull;
    if (m.size != 8 + i % 57) ++bad;
    std::memcpy(&got, m.bytes.data(), 8);
    if (got != i) ++bad;
    for (std::size_t k = 8; k < m.size; ++k) {
      if (m.bytes[k] != static_cast<std::byte>(i + k)) ++bad;
    }
    r.release();
  }
  producer.join();
  EXPECT_EQ(bad, 0u);
  EXPECT_FALSE(r.peek());
}

TEST(SpscRing, RandomSizesIncludingStreamedAcrossThreads) {
  constexpr std::size_t cap = 4096;
  ring_fixture f(cap);
  std::vector<std::size_t> sizes = {0, cap - 8, cap - 7, cap, cap + 1, 3 * cap, 10 * cap + 3};
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) sizes.push_back(rng() % (3 * cap));
  std::thread producer([&] {
    ring_writer w(f.ring);
    for (std::size_t i = 0; i < sizes.size(); ++i) w.write(pattern(sizes[i], i), test_wait());
  });
  ring_reader r(f.ring);
  std::vector<std::byte> got;
  int streamed = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    auto m = r.wait_peek(test_wait());
    streamed += m.streamed;
    EXPECT_EQ(m.streamed, sizes[i] > cap - 8);
    r.receive(got, test_wait());
    ASSERT_EQ(got.size(), sizes[i]) << i;
    ASSERT_EQ(checksum(got), checksum(pattern(sizes[i], i))) << i;
  }
  producer.join();
  EXPECT_GT(streamed, 100);
}

TEST(SpscRing, WaitsTimeOutAndNoticeADeadPeer) {
  ring_fixture f(256);
  ring_writer w(f.ring);
  ring_reader r(f.ring);
  wait_options opts;
  opts.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  EXPECT_THROW((void)r.wait_peek(opts), wait_timeout);

  wait_options dead;
  dead.poll = std::chrono::milliseconds(1);
  dead.peer_alive = [] { return false; };
  EXPECT_THROW((void)r.wait_peek(dead), peer_lost);

  while (w.try_reserve(100)) w.commit();
  EXPECT_THROW((void)w.reserve(100, opts), wait_timeout);
  EXPECT_THROW((void)w.reserve(100, dead), peer_lost);
  EXPECT_THROW(w.write(pattern(10000, 1), dead), peer_lost);
}

TEST(SpscRing, SleepingReaderIsWokenByCommit) {
  ring_fixture f(1024);
  ring_reader r(f.ring);
  wait_options sleepy = test_wait(60, std::chrono::nanoseconds(0));
  sleepy.poll = std::chrono::seconds(30);  // a lost wake-up would show as a 30 s stall
  std::thread producer([&] {
    ring_writer w(f.ring);
    for (int i = 0; i < 2000; ++i) {
      // Wait until the reader is asleep before most messages, to exercise the wake path.
      for (int k = 0; k < 1000 && f.ring.data_bell().sleepers.load() == 0; ++k) {
        std::this_thread::yield();
      }
      w.write(pattern(16, i), test_wait());
    }
  });
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 2000; ++i) {
    auto m = r.wait_peek(sleepy);
    ASSERT_EQ(checksum(m.bytes), checksum(pattern(16, i)));
    r.release();
  }
  producer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(25));
}

// Large records force padding often; with both sides sleeping at once, a padding record that
// did not wake the reader would leave the writer waiting for space the reader never frees
// (until the 30 s poll).
TEST(SpscRing, PaddingWakesASleepingReader) {
  ring_fixture f(4096);
  auto sleepy = test_wait(60, std::chrono::nanoseconds(0));
  sleepy.poll = std::chrono::seconds(30);
  constexpr int count = 300;
  std::thread producer([&] {
    ring_writer w(f.ring);
    for (int i = 0; i < count; ++i) w.write(pattern(i % 2 ? 3000 : 2000, i), sleepy);
  });
  ring_reader r(f.ring);
  std::vector<std::byte> got;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    r.receive(got, sleepy);
    ASSERT_EQ(checksum(got), checksum(pattern(i % 2 ? 3000 : 2000, i)));
    std::this_thread::sleep_for(std::chrono::microseconds(100));  // let the writer get ahead
  }
  producer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(25));
}

TEST(SpscRing, SharedDoorbellWakesOneCollectorForManyRings) {
  constexpr std::size_t cap = 1024;
  constexpr int rings = 3;
  constexpr int per_ring = 3000;
  const std::size_t ring_bytes = spsc_ring::footprint(cap);
  auto region = shared_region::create("ring_test", 128 + rings * ring_bytes);
  doorbell& bell = make_doorbell(region.bytes(), 0);
  std::vector<spsc_ring> views;
  for (int i = 0; i < rings; ++i) {
    views.push_back(spsc_ring::create(region.bytes(), 128 + i * ring_bytes, cap, 0));
    EXPECT_EQ(&views.back().data_bell(), &bell);
  }
  std::vector<std::thread> producers;
  for (int i = 0; i < rings; ++i) {
    producers.emplace_back([&, i] {
      ring_writer w(views[i]);
      for (int k = 0; k < per_ring; ++k) {
        const std::uint64_t v = static_cast<std::uint64_t>(i) << 32 | k;
        auto s = w.reserve(8, test_wait());
        std::memcpy(s.data(), &v, 8);
        w.commit();
        if (k % 100 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }
  std::vector<ring_reader> readers;
  for (auto& v : views) readers.emplace_back(v);
  std::vector<int> next(rings, 0);
  int total = 0;
  const auto opts = test_wait(60, std::chrono::nanoseconds(0));
  while (total < rings * per_ring) {
    wait_until(
        bell,
        [&] {
          for (auto& rd : readers) {
            if (rd.readable()) return true;
          }
          return false;
        },
        opts);
    for (int i = 0; i < rings; ++i) {
      while (auto m = readers[i].peek()) {
        std::uint64_t v;
        std::memcpy(&v, m->bytes.data(), 8);
        EXPECT_EQ(v >> 32, static_cast<std::uint64_t>(i));
        EXPECT_EQ(static_cast<int>(v & 0xffffffff), next[i]++);
        readers[i].release();
        ++total;
      }
    }
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(total, rings * per_ring);
}

// --- corruption: the peer scribbles; the reader/writer must report it, never crash ---------

struct corrupt_fixture : ring_fixture {
  corrupt_fixture() : ring_fixture(1024) {}
  ring_writer w{ring};
  ring_reader r{ring};
  std::uint32_t* record_at(std::size_t off) {
    return reinterpret_cast<std::uint32_t*>(ring.data() + off);
  }
};

TEST(SpscRingCorruption, HeadBeyondCapacity) {
  corrupt_fixture f;
  f.ring.header().head.store(1024 + 8);
  EXPECT_THROW((void)f.r.peek(), corrupt_channel);
  EXPECT_THROW((void)f.r.peek(), corrupt_channel) << "stays broken";
  f.ring.header().head.store(0);
  EXPECT_THROW((void)f.r.peek(), corrupt_channel) << "stays broken after a repair too";
}

TEST(SpscRingCorruption, HeadBehindTail) {
  corrupt_fixture f;
  f.w.write(pattern(100, 1));
  ASSERT_TRUE(f.r.peek());
  f.r.release();
  f.ring.header().head.store(8);  // behind our tail (112)
  EXPECT_THROW((void)f.r.peek(), corrupt_channel);
}

TEST(SpscRingCorruption, HeadMisaligned) {
  corrupt_fixture f;
  f.ring.header().head.store(13);
  EXPECT_THROW((void)f.r.peek(), corrupt_channel);
}

TEST(SpscRingCorruption, RecordLengthPastPublishedData) {
  corrupt_fixture f;
  f.w.write(pattern(16, 1));
  f.record_at(0)[0] = 0xfffffff0;
  EXPECT_THROW((void)f.r.peek(), corrupt_channel);
}

TEST(SpscRingCorruption, RecordLengthWithinHeadButPastRingEnd) {
  corrupt_fixture f;
  f.w.write(pattern(1000, 1));  // occupies [0, 1008)
  ASSERT_TRUE(f.r.peek());
  f.r.release();
  f.w.write(pattern(8, 2));                // at 1008: 16 bytes, up to the end
  f.record_at(1008)[0] = 64;               // would cross the end of the ring
  f.ring.header().head.store(1008 + 512);  // and claim enough is published
  EXPECT_THROW((void)f.r.peek(), corrupt_channel);
}

TEST(SpscRingCorruption, UnknownKind) {
  corrupt_fixture f;
  f.w.write(pattern(16, 1));
  f.record_at(0)[1] = 77;
  EXPECT_THROW((void)f.r.peek(), corrupt_channel);
}

TEST(SpscRingCorruption, PaddingNotAtTheEnd) {
  corrupt_fixture f;
  f.w.write(pattern(16, 1));
  f.record_at(0)[1] = static_cast<std::uint32_t>(record_kind::padding);
  EXPECT_THROW((void)f.r.peek(), corrupt_channel);
}

TEST(SpscRingCorruption, FragmentWithoutFirst) {
  corrupt_fixture f;
  f.w.write(pattern(16, 1));
  f.record_at(0)[1] = static_cast<std::uint32_t>(record_kind::middle);
  EXPECT_THROW((void)f.r.peek(), corrupt_channel);
}

TEST(SpscRingCorruption, FragmentsThatDoNotAddUp) {
  corrupt_fixture f;
  std::thread producer([&] {
    try {
      f.w.write(pattern(5000, 1), test_wait(5));
    } catch (const channel_error&) {
      // expected: the reader stops reading once it sees the lie
    }
  });
  auto m = f.r.wait_peek(test_wait());
  ASSERT_TRUE(m.streamed);
  ASSERT_EQ(m.size, 5000u);
  // Claim the message is bigger than it is: the `last` fragment arrives too early.
  std::uint64_t lie = 6000;
  std::memcpy(f.ring.data() + 8, &lie, 8);
  auto m2 = f.r.peek();  // a fresh peek sees the new total
  ASSERT_TRUE(m2);
  std::vector<std::byte> out(m2->size);
  EXPECT_THROW(f.r.read_streamed(out, test_wait(5)), corrupt_channel);
  producer.join();
}

TEST(SpscRingCorruption, FirstFragmentClaimsLessThanItCarries) {
  corrupt_fixture f;
  f.w.write(pattern(16, 1));
  f.record_at(0)[1] = static_cast<std::uint32_t>(record_kind::first);
  std::uint64_t total = 4;  // but the record carries 8 data bytes after the total
  std::memcpy(f.ring.data() + 8, &total, 8);
  EXPECT_THROW((void)f.r.peek(), corrupt_channel);
}

TEST(SpscRingCorruption, ReceiveRefusesAnAbsurdAnnouncedSize) {
  corrupt_fixture f;
  f.w.write(pattern(16, 1));
  f.record_at(0)[1] = static_cast<std::uint32_t>(record_kind::first);
  std::uint64_t total = std::uint64_t{1} << 62;
  std::memcpy(f.ring.data() + 8, &total, 8);
  std::vector<std::byte> out;
  EXPECT_THROW(f.r.receive(out, test_wait(5)), corrupt_channel);
  EXPECT_TRUE(out.empty());
}

TEST(SpscRingCorruption, WriterRejectsTailOutOfRange) {
  corrupt_fixture f;
  f.w.write(pattern(100, 1));
  f.ring.header().tail.store(4096);  // ahead of what was published
  // 112 bytes are in use; asking for more than the rest makes the writer re-read tail.
  EXPECT_THROW((void)f.w.try_reserve(950), corrupt_channel);
  EXPECT_THROW(f.w.write(pattern(1, 1)), corrupt_channel) << "stays broken";
}

TEST(SpscRingCorruption, EndpointsRefuseInconsistentCounters) {
  ring_fixture f(1024);
  f.ring.header().head.store(5000);
  EXPECT_THROW(ring_reader{f.ring}, corrupt_channel);
  EXPECT_THROW(ring_writer{f.ring}, corrupt_channel);
}

// Random garbage anywhere in header counters and data: the reader either reports corruption
// or returns messages that lie inside the data area. Run under ASan/UBSan this also proves no
// out-of-bounds access.
TEST(SpscRingCorruption, RandomGarbageNeverEscapesTheRing) {
  std::mt19937_64 rng(7);
  int reported = 0;
  for (int round = 0; round < 3000; ++round) {
    ring_fixture f(256);
    {
      ring_writer w(f.ring);
      ring_reader r0(f.ring);
      for (int i = 0; i < static_cast<int>(rng() % 6); ++i) {
        if (auto s = w.try_reserve(rng() % 60)) w.commit();
        if (rng() % 2 && r0.peek()) r0.release();
      }
    }
    // Scribble.
    const int hits = 1 + static_cast<int>(rng() % 4);
    for (int h = 0; h < hits; ++h) {
      switch (rng() % 4) {
        case 0:
          f.ring.header().head.fetch_add((rng() % 64) * 8);
          break;
        case 1:
          f.ring.header().head.store(rng());
          break;
        default: {
          std::uint32_t junk = static_cast<std::uint32_t>(rng() % 3 ? rng() % 300 : rng());
          std::memcpy(f.ring.data() + (rng() % 64) * 4, &junk, 4);
        }
      }
    }
    try {
      ring_reader r(f.ring);
      std::vector<std::byte> out;
      for (int i = 0; i < 20; ++i) {
        auto m = r.peek();
        if (!m) break;
        if (m->streamed) {
          ASSERT_LE(m->size, std::size_t{1} << 40);
          wait_options quick;
          quick.deadline = std::chrono::steady_clock::now();
          try {
            r.receive(out, quick, 1 << 20);
          } catch (const wait_timeout&) {
            break;
          }
          continue;
        }
        ASSERT_GE(m->bytes.data(), f.ring.data());
        ASSERT_LE(m->bytes.data() + m->bytes.size(), f.ring.data() + f.ring.capacity());
        r.release();
      }
    } catch (const corrupt_channel&) {
      ++reported;
    }
  }
  EXPECT_GT(reported, 100) << "most scribbles are detectable";
}

}  // namespace
}  // namespace crew::detail::ipc
