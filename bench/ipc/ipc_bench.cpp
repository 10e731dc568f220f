// Parent ↔ forked child transports: crew's spsc_ring (spinning and sleeping) against a pipe
// pair and a Unix socketpair. Reference case: memcpy for bandwidth.
//
//   bench_ipc [--benchmark_repetitions=N] [--benchmark_min_time=S]
//
// Prints a markdown report (bench/common/markdown_report.hpp): medians, ranges and each case's
// ratio to its reference, measured in the same run. scripts/bench-report.sh ipc keeps one run in
// docs/benchmarks/ipc.md, which docs/ipc.md cites.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "../common/markdown_report.hpp"
#include "ipc/shared_region.hpp"
#include "ipc/spsc_ring.hpp"

namespace {

using namespace crew::detail::ipc;
using namespace std::chrono_literals;

constexpr std::size_t small_message = 64;

// A forked peer, killed and reaped when the benchmark ends.
class child_process {
 public:
  explicit child_process(const std::function<void()>& body) {
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) std::abort();
    if (pid_ == 0) {
      try {
        body();
      } catch (...) {  // peer_lost when the parent is gone: nothing left to do
      }
      ::_exit(0);
    }
  }
  ~child_process() {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  [[nodiscard]] wait_options waiting(std::chrono::nanoseconds spin) const {
    wait_options w;
    w.spin = spin;
    w.peer_alive = [pid = pid_] { return ::waitpid(pid, nullptr, WNOHANG) == 0; };
    return w;
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

 private:
  pid_t pid_;
};

// How each side waits. The child stops when its parent is gone; the parent stops when the
// child is. Both checks run only every wait_options::poll, off the hot path.
wait_options child_waiting(std::chrono::nanoseconds spin, pid_t parent) {
  wait_options w;
  w.spin = spin;
  w.peer_alive = [parent] { return ::getppid() == parent; };
  return w;
}

struct duplex {
  explicit duplex(std::size_t capacity)
      : region(shared_region::create("bench", 2 * spsc_ring::footprint(capacity))),
        request(spsc_ring::create(region.bytes(), 0, capacity)),
        result(spsc_ring::create(region.bytes(), spsc_ring::footprint(capacity), capacity)) {}
  shared_region region;
  spsc_ring request;
  spsc_ring result;
};

// --- round trip of one 64-byte message ----------------------------------------------------

void ring_round_trip(benchmark::State& state, std::chrono::nanoseconds spin) {
  duplex d(1 << 16);
  const pid_t parent = ::getpid();
  child_process child([&] {
    ring_reader in(d.request);
    ring_writer out(d.result);
    const auto w = child_waiting(spin, parent);
    for (;;) {
      auto m = in.wait_peek(w);
      auto s = out.reserve(m.bytes.size(), w);
      std::memcpy(s.data(), m.bytes.data(), m.bytes.size());
      in.release();
      out.commit();
    }
  });
  ring_writer out(d.request);
  ring_reader in(d.result);
  const auto w = child.waiting(spin);
  std::byte msg[small_message] = {};
  for (auto _ : state) {
    auto s = out.reserve(small_message, w);
    std::memcpy(s.data(), msg, small_message);
    out.commit();
    auto m = in.wait_peek(w);
    std::memcpy(msg, m.bytes.data(), m.bytes.size());
    in.release();
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_round_trip_ring_spinning(benchmark::State& state) {
  ring_round_trip(state, std::chrono::nanoseconds::max());
}
void BM_round_trip_ring_sleeping(benchmark::State& state) {
  ring_round_trip(state, 0ns);
}
void BM_round_trip_ring_default(benchmark::State& state) {
  ring_round_trip(state, wait_options{}.spin);
}

void full_read(int fd, void* p, std::size_t n) {
  auto* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = ::read(fd, c, n);
    if (r <= 0) ::_exit(0);
    c += r;
    n -= static_cast<std::size_t>(r);
  }
}
void full_write(int fd, const void* p, std::size_t n) {
  auto* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t r = ::write(fd, c, n);
    if (r <= 0) ::_exit(0);
    c += r;
    n -= static_cast<std::size_t>(r);
  }
}

// `to_child` and `from_child`: [parent end, child end] of each direction.
void fd_round_trip(benchmark::State& state, int to_child_w, int to_child_r, int from_child_w,
                   int from_child_r) {
  child_process child([&] {
    char buf[small_message];
    for (;;) {
      full_read(to_child_r, buf, sizeof buf);
      full_write(from_child_w, buf, sizeof buf);
    }
  });
  char msg[small_message] = {};
  for (auto _ : state) {
    full_write(to_child_w, msg, sizeof msg);
    full_read(from_child_r, msg, sizeof msg);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_round_trip_pipe(benchmark::State& state) {
  int a[2], b[2];
  if (::pipe(a) != 0 || ::pipe(b) != 0) std::abort();
  fd_round_trip(state, a[1], a[0], b[1], b[0]);
  for (int fd : {a[0], a[1], b[0], b[1]}) ::close(fd);
}

void BM_round_trip_socketpair(benchmark::State& state) {
  int s[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0) std::abort();
  fd_round_trip(state, s[0], s[1], s[1], s[0]);
  ::close(s[0]);
  ::close(s[1]);
}

// --- one million 64-byte messages one way -------------------------------------------------

constexpr int burst = 1'000'000;

void BM_one_way_1M_ring(benchmark::State& state) {
  duplex d(1 << 20);
  const pid_t parent = ::getpid();
  child_process child([&] {
    ring_reader in(d.request);
    ring_writer out(d.result);
    const auto w = child_waiting(5us, parent);
    for (;;) {
      for (int i = 0; i < burst; ++i) {
        (void)in.wait_peek(w);
        in.release();
      }
      (void)out.reserve(0, w);
      out.commit();  // ack the burst
    }
  });
  ring_writer out(d.request);
  ring_reader in(d.result);
  const auto w = child.waiting(5us);
  for (auto _ : state) {
    for (int i = 0; i < burst; ++i) {
      auto s = out.reserve(small_message, w);
      std::memset(s.data(), i, small_message);
      out.commit();
    }
    (void)in.wait_peek(w);
    in.release();
  }
  state.SetItemsProcessed(state.iterations() * burst);
}

void BM_one_way_1M_pipe(benchmark::State& state) {
  int to[2], back[2];
  if (::pipe(to) != 0 || ::pipe(back) != 0) std::abort();
  child_process child([&] {
    char buf[small_message];
    for (;;) {
      for (int i = 0; i < burst; ++i) full_read(to[0], buf, sizeof buf);
      full_write(back[1], buf, 1);
    }
  });
  char msg[small_message] = {};
  for (auto _ : state) {
    for (int i = 0; i < burst; ++i) full_write(to[1], msg, sizeof msg);
    full_read(back[0], msg, 1);
  }
  state.SetItemsProcessed(state.iterations() * burst);
  for (int fd : {to[0], to[1], back[0], back[1]}) ::close(fd);
}

// --- 64 MiB messages: bandwidth -----------------------------------------------------------

constexpr std::size_t big_message = std::size_t{64} << 20;

void BM_bandwidth_64MiB_ring(benchmark::State& state) {
  duplex d(std::size_t{4} << 20);
  const pid_t parent = ::getpid();
  child_process child([&] {
    ring_reader in(d.request);
    ring_writer out(d.result);
    const auto w = child_waiting(5us, parent);
    std::vector<std::byte> sink(big_message);
    for (;;) {
      auto m = in.wait_peek(w);
      if (!m.streamed || m.size != big_message) ::_exit(1);
      in.read_streamed(sink, w);
      (void)out.reserve(0, w);
      out.commit();
    }
  });
  ring_writer out(d.request);
  ring_reader in(d.result);
  const auto w = child.waiting(5us);
  std::vector<std::byte> message(big_message, std::byte{1});
  for (auto _ : state) {
    out.write(message, w);
    (void)in.wait_peek(w);
    in.release();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * big_message));
}

void BM_bandwidth_64MiB_memcpy(benchmark::State& state) {
  std::vector<std::byte> from(big_message, std::byte{1});
  std::vector<std::byte> to(big_message);
  for (auto _ : state) {
    std::memcpy(to.data(), from.data(), big_message);
    benchmark::DoNotOptimize(to.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * big_message));
}

}  // namespace

BENCHMARK(BM_round_trip_ring_spinning)->UseRealTime();
BENCHMARK(BM_round_trip_ring_sleeping)->UseRealTime();
BENCHMARK(BM_round_trip_ring_default)->UseRealTime();
BENCHMARK(BM_round_trip_pipe)->UseRealTime();
BENCHMARK(BM_round_trip_socketpair)->UseRealTime();
BENCHMARK(BM_one_way_1M_ring)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_one_way_1M_pipe)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bandwidth_64MiB_ring)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bandwidth_64MiB_memcpy)->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  constexpr double big = static_cast<double>(big_message);
  return crew_bench::markdown_main(
      argc, argv, "bench_ipc: crew's shared-memory ring against a pipe and a socketpair",
      "Parent and forked child. Round trips carry one 64-byte message each way; \"one way\" sends "
      "1 M messages of 64 bytes and waits for one acknowledgement; the 64 MiB message is streamed "
      "through a 4 MiB ring (two copies, two processes) and compared with one memcpy of 64 MiB in "
      "one process. Ring waits: spinning = spin for ever (yielding after 2 µs); sleeping = spin 0, "
      "a futex at every hand-off; default = spin 5 µs, then futex.",
      {
          {"BM_round_trip_ring_spinning", "round trip 64 B, ring, both sides spinning", ""},
          {"BM_round_trip_pipe", "round trip 64 B, pipe pair", "BM_round_trip_ring_spinning"},
          {"BM_round_trip_socketpair", "round trip 64 B, Unix socketpair",
           "BM_round_trip_ring_spinning"},
          {"BM_round_trip_ring_sleeping", "round trip 64 B, ring, both sides sleeping (spin 0)",
           "BM_round_trip_pipe"},
          {"BM_round_trip_ring_default", "round trip 64 B, ring, default wait",
           "BM_round_trip_pipe"},
          {"BM_one_way_1M_pipe", "1 M × 64 B one way, pipe", "", 0, burst},
          {"BM_one_way_1M_ring", "1 M × 64 B one way, ring (default wait)", "BM_one_way_1M_pipe", 0,
           burst},
          {"BM_bandwidth_64MiB_memcpy", "`memcpy` 64 MiB", "", big},
          {"BM_bandwidth_64MiB_ring", "64 MiB message through a 4 MiB ring",
           "BM_bandwidth_64MiB_memcpy", big},
      });
}
