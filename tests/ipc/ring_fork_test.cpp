// spsc_ring between a parent and forked children: integrity, streaming, sleeping peers, dead
// peers, a shared doorbell, attach by descriptor, and descriptor hygiene.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <random>
#include <thread>

#include "ipc/child.hpp"
#include "ipc/fd_passing.hpp"
#include "ipc/shared_region.hpp"
#include "ipc/spsc_ring.hpp"
#include "support/process.hpp"

namespace crew::detail::ipc {
namespace {

using test::checksum;
using test::fill_pattern;
using test::forked_child;
using test::parent_alive;
using test::pattern;
using test::test_wait;

// A request ring (parent → child) and a result ring (child → parent) in one region.
struct duplex {
  explicit duplex(std::size_t capacity)
      : region(shared_region::create("duplex", 2 * spsc_ring::footprint(capacity))),
        request(spsc_ring::create(region.bytes(), 0, capacity)),
        result(spsc_ring::create(region.bytes(), spsc_ring::footprint(capacity), capacity)) {}
  shared_region region;
  spsc_ring request;
  spsc_ring result;
};

wait_options child_wait(std::chrono::nanoseconds spin = std::chrono::microseconds(5)) {
  auto w = test_wait(100, spin);
  w.peer_alive = parent_alive();
  return w;
}

wait_options parent_wait(forked_child& child,
                         std::chrono::nanoseconds spin = std::chrono::microseconds(5)) {
  auto w = test_wait(100, spin);
  w.peer_alive = [&child] { return child.alive(); };
  return w;
}

// The child echoes every message back until it gets an empty one.
int echo(const duplex& d, std::chrono::nanoseconds spin = std::chrono::microseconds(5)) {
  ring_reader in(d.request);
  ring_writer out(d.result);
  const auto w = child_wait(spin);
  std::vector<std::byte> buf;
  for (;;) {
    in.receive(buf, w);
    if (buf.empty()) return 0;
    out.write(buf, w);
  }
}

TEST(RingFork, MillionSmallMessagesEchoedInOrder) {
  duplex d(1 << 16);
  forked_child child([&] { return echo(d); });
  constexpr std::uint64_t count = 1'000'000;
  std::thread sender([&] {
    ring_writer w(d.request);
    const auto opts = parent_wait(child);
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::size_t n = 8 + i % 41;
      auto s = w.reserve(n, opts);
      std::memcpy(s.data(), &i, 8);
      for (std::size_t k = 8; k < n; ++k) s[k] = static_cast<std::byte>(i ^ k);
      w.commit();
    }
  });
  ring_reader r(d.result);
  const auto opts = test_wait(100);
  std::uint64_t bad = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    auto m = r.wait_peek(opts);
    std::uint64_t got = ~0ull;
    std::memcpy(&got, m.bytes.data(), 8);
    bad += got != i || m.size != 8 + i % 41;
    for (std::size_t k = 8; k < m.size; ++k) bad += m.bytes[k] != static_cast<std::byte>(i ^ k);
    r.release();
  }
  sender.join();
  EXPECT_EQ(bad, 0u);
  ring_writer(d.request).write({});
  EXPECT_EQ(child.exit_code(), 0);
}

TEST(RingFork, RandomSizesIncludingCapacityAndStreamed) {
  constexpr std::size_t cap = 1 << 14;
  duplex d(cap);
  forked_child child([&] { return echo(d); });
  std::vector<std::size_t> sizes = {1, cap - 8, cap - 7, cap, cap + 1, 5 * cap + 13};
  std::mt19937_64 rng(3);
  for (int i = 0; i < 3000; ++i) sizes.push_back(1 + rng() % (3 * cap));
  std::thread sender([&] {
    ring_writer w(d.request);
    const auto opts = parent_wait(child);
    for (std::size_t i = 0; i < sizes.size(); ++i) w.write(pattern(sizes[i], i), opts);
    w.write({}, opts);
  });
  ring_reader r(d.result);
  std::vector<std::byte> got;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    r.receive(got, test_wait(100));
    ASSERT_EQ(got.size(), sizes[i]) << i;
    ASSERT_EQ(checksum(got), checksum(pattern(sizes[i], i))) << i;
  }
  sender.join();
  EXPECT_EQ(child.exit_code(), 0);
}

// Streams `bytes` from a child through a 4 MiB ring and checks it end to end.
void stream_from_child(std::size_t bytes) {
  duplex d(4 << 20);
  forked_child child([&] {
    std::vector<std::byte> big(bytes);
    fill_pattern(big, 99);
    ring_writer(d.result).write(big, child_wait());
    return 0;
  });
  ring_reader r(d.result);
  auto m = r.wait_peek(parent_wait(child));
  ASSERT_TRUE(m.streamed);
  ASSERT_EQ(m.size, bytes);
  std::vector<std::byte> got(bytes);
  r.read_streamed(got, test_wait(100));
  EXPECT_EQ(child.exit_code(), 0);
  std::vector<std::byte> want(bytes);
  fill_pattern(want, 99);
  EXPECT_EQ(checksum(got), checksum(want));
}

#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer instruments every byte of the pattern and checksum loops; 64 MiB still
// streams through 16 ring-fulls, which is what the test is about, and keeps it far from the
// timeout on a loaded machine.
TEST(RingFork, Streams64MiBThroughA4MiBRing) {
  stream_from_child(std::size_t{64} << 20);
}
#else
TEST(RingFork, Streams256MiBThroughA4MiBRing) {
  stream_from_child(std::size_t{256} << 20);
}
#endif

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
TEST(RingFork, Streams1GiBThroughA4MiBRing) {
  stream_from_child(std::size_t{1} << 30);
}
#endif

// Both sides sleep (spin 0) before every message, so every hand-off goes through the doorbell.
// A lost wake-up would stall a side for the whole poll interval (30 s) and blow the bound.
TEST(RingFork, PingPongWithBothSidesSleeping) {
  duplex d(4096);
  constexpr int round_trips = 100'000;
  forked_child child([&] {
    ring_reader in(d.request);
    ring_writer out(d.result);
    auto w = child_wait(std::chrono::nanoseconds(0));
    w.poll = std::chrono::seconds(30);
    for (int i = 0; i < round_trips; ++i) {
      auto m = in.wait_peek(w);
      std::uint32_t v;
      std::memcpy(&v, m.bytes.data(), 4);
      in.release();
      ++v;
      auto s = out.reserve(4, w);
      std::memcpy(s.data(), &v, 4);
      out.commit();
    }
    return 0;
  });
  ring_writer out(d.request);
  ring_reader in(d.result);
  auto w = parent_wait(child, std::chrono::nanoseconds(0));
  w.poll = std::chrono::seconds(30);
  const auto start = std::chrono::steady_clock::now();
  std::uint32_t v = 0;
  for (int i = 0; i < round_trips; ++i) {
    auto s = out.reserve(4, w);
    std::memcpy(s.data(), &v, 4);
    out.commit();
    auto m = in.wait_peek(w);
    std::uint32_t back;
    std::memcpy(&back, m.bytes.data(), 4);
    in.release();
    ASSERT_EQ(back, v + 1);
    v = back;
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_LT(took, std::chrono::seconds(90));
  // Evidence that the sleeping path ran: the doorbells were rung.
  EXPECT_GT(d.result.data_bell().seq.load() + d.request.data_bell().seq.load(), 1000u);
}

// The child streams a message far larger than the ring and is SIGKILLed while the parent
// reads it: the parent's read must end with peer_lost, not hang.
TEST(RingFork, ReaderNoticesAChildKilledMidStream) {
  duplex d(1 << 16);
  forked_child child([&] {
    std::vector<std::byte> big(std::size_t{256} << 20);
    ring_writer(d.result).write(big, child_wait());
    return 0;
  });
  ring_reader r(d.result);
  auto opts = parent_wait(child);
  auto m = r.wait_peek(opts);
  ASSERT_TRUE(m.streamed);
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    child.kill();
  });
  std::vector<std::byte> got(m.size);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(r.read_streamed(got, opts), peer_lost);
  killer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
  EXPECT_EQ(child.exit_code(), -SIGKILL);
}

// The parent writes to a child that stops reading and dies: the blocked writer gets peer_lost.
TEST(RingFork, WriterNoticesAChildKilledWhileItWaitsForSpace) {
  duplex d(4096);
  forked_child child([&] {
    ring_reader in(d.request);
    (void)in.wait_peek(child_wait());  // read nothing, so the ring fills up
    ::pause();
    return 0;
  });
  ring_writer w(d.request);
  auto opts = parent_wait(child);
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    child.kill();
  });
  EXPECT_THROW(for (int i = 0; i < 1'000'000; ++i) w.write(pattern(100, i), opts), peer_lost);
  killer.join();
  EXPECT_EQ(child.exit_code(), -SIGKILL);
}

// And the other way round: a child blocked on its parent's ring notices the parent is gone.
TEST(RingFork, ChildNoticesItsParentIsGone) {
  duplex d(4096);
  auto status = crew::test::run_in_child([&] {
    // Middle process: forks a grandchild that waits on the ring, then dies.
    forked_child grandchild([&] {
      ring_reader in(d.request);
      auto w = child_wait();
      w.poll = std::chrono::milliseconds(2);
      try {
        (void)in.wait_peek(w);
      } catch (const peer_lost&) {
        // Report through the result ring: the one who cares (the test) is still alive.
        ring_writer out(d.result);
        auto s = out.reserve(1, test_wait());
        s[0] = std::byte{42};
        out.commit();
        return 0;
      }
      return 1;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ::_exit(0);  // dies without killing the grandchild (~forked_child would)
  });
  EXPECT_TRUE(status.exited);
  ring_reader r(d.result);
  auto m = r.wait_peek(test_wait(30));
  ASSERT_EQ(m.size, 1u);
  EXPECT_EQ(m.bytes[0], std::byte{42});
}

// Several children, one result ring each, one shared doorbell: a single collector thread
// sleeps until any of them produced something.
TEST(RingFork, OneCollectorSleepsOnASharedDoorbell) {
  constexpr std::size_t cap = 4096;
  constexpr int workers = 3;
  constexpr int per_worker = 20'000;
  const std::size_t ring_bytes = spsc_ring::footprint(cap);
  auto region = shared_region::create("collector", 128 + workers * ring_bytes);
  doorbell& bell = make_doorbell(region.bytes(), 0);
  std::vector<spsc_ring> rings;
  for (int i = 0; i < workers; ++i) {
    rings.push_back(spsc_ring::create(region.bytes(), 128 + i * ring_bytes, cap, 0));
  }
  std::vector<std::unique_ptr<forked_child>> children;
  for (int i = 0; i < workers; ++i) {
    children.push_back(std::make_unique<forked_child>([&, i] {
      ring_writer w(rings[i]);
      const auto opts = child_wait();
      for (int k = 0; k < per_worker; ++k) {
        auto s = w.reserve(8, opts);
        const std::uint64_t v = static_cast<std::uint64_t>(i) << 32 | k;
        std::memcpy(s.data(), &v, 8);
        w.commit();
        if (k % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return 0;
    }));
  }
  std::vector<ring_reader> readers(rings.begin(), rings.end());
  std::vector<int> next(workers, 0);
  int total = 0;
  const auto opts = test_wait(100, std::chrono::nanoseconds(0));
  while (total < workers * per_worker) {
    wait_until(
        bell,
        [&] {
          for (auto& r : readers) {
            if (r.readable()) return true;
          }
          return false;
        },
        opts);
    for (int i = 0; i < workers; ++i) {
      while (auto m = readers[i].peek()) {
        std::uint64_t v;
        std::memcpy(&v, m->bytes.data(), 8);
        ASSERT_EQ(v >> 32, static_cast<std::uint64_t>(i));
        ASSERT_EQ(static_cast<int>(v & 0xffffffff), next[i]++);
        readers[i].release();
        ++total;
      }
    }
  }
  for (auto& c : children) EXPECT_EQ(c->exit_code(), 0);
  EXPECT_GT(bell.seq.load(), 0u) << "the collector slept at least once";
}

// A worker that maps the region anew from a descriptor (as after exec) sees it at another
// address; rings are found by offset.
TEST(RingFork, ChildAttachesTheRegionByDescriptor) {
  duplex d(4096);
  const int fd = d.region.fd();
  const std::size_t size = d.region.size();
  forked_child child([&] {
    // Forget the inherited mapping, as an exec'd process would not have it.
    ::munmap(d.region.data(), size);
    auto region = shared_region::attach(unique_fd(::dup(fd)), size);
    auto request = spsc_ring::attach(region.bytes(), 0);
    auto result = spsc_ring::attach(region.bytes(), spsc_ring::footprint(4096));
    ring_reader in(request);
    ring_writer out(result);
    std::vector<std::byte> buf;
    for (int i = 0; i < 1000; ++i) {
      in.receive(buf, child_wait());
      out.write(buf, child_wait());
    }
    ::_exit(0);  // the inherited shared_region would munmap again on return
    return 0;
  });
  ring_writer w(d.request);
  ring_reader r(d.result);
  std::vector<std::byte> got;
  for (int i = 0; i < 1000; ++i) {
    w.write(pattern(i * 13 % 9000, i), parent_wait(child));
    r.receive(got, parent_wait(child));
    ASSERT_EQ(checksum(got), checksum(pattern(i * 13 % 9000, i)));
  }
  EXPECT_EQ(child.exit_code(), 0);
}

TEST(RingFork, NoDescriptorOrMappingLeaks) {
  const int fds_before = crew::test::open_fd_count();
  const int maps_before = test::memfd_mapping_count();
  for (int round = 0; round < 5; ++round) {
    duplex d(4096);
    auto [a, b] = make_socketpair();
    forked_child child([&] {
      auto fds = recv_fds(b.get());
      auto extra = shared_region::attach(std::move(fds.at(0)), 4096);
      std::memset(extra.data(), 1, 4096);
      return echo(d);
    });
    auto extra = shared_region::create("extra", 4096);
    const int fd = extra.fd();
    send_fds(a.get(), std::span(&fd, 1));
    ring_writer w(d.request);
    ring_reader r(d.result);
    std::vector<std::byte> got;
    w.write(pattern(50000, 1), parent_wait(child));
    r.receive(got, parent_wait(child));
    w.write({}, parent_wait(child));
    EXPECT_EQ(child.exit_code(), 0);
    EXPECT_EQ(extra.data()[4095], std::byte{1});
  }
  EXPECT_EQ(crew::test::open_fd_count(), fds_before);
  EXPECT_EQ(test::memfd_mapping_count(), maps_before);
}

}  // namespace
}  // namespace crew::detail::ipc
