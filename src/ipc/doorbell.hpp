// ipc/doorbell.hpp — spin-then-sleep waiting across processes, with a wake-up only when needed.
//
// Purpose: a `doorbell` is a small object in shared memory that a waiter sleeps on and a
// publisher rings. The waiter first spins (wait_options::spin, a few µs by default), then
// announces that it is asleep and futex-waits; the publisher, after publishing, makes a system
// call ONLY if someone announced sleep. While both sides are awake the hot path is system-call
// free. Several publishers may ring one doorbell (e.g. every worker's result ring rings the
// collector's doorbell), so one thread can sleep until any of many rings has data.
//
// Memory ordering (a Dekker pair; both halves are read-modify-writes of `sleepers`, which
// name each other):
//   publisher                                   waiter
//   P1  store state (release)                   W0  s = seq (acquire)
//   P3  n = sleepers.fetch_add(0, acq_rel)      W1  sleepers.fetch_add(1, acq_rel)
//   P4  if n != 0: seq += 1 (release), wake     W3  if ready(): sleepers -= 1, return
//                                               W4  futex_wait(seq, s)
// Every write to `sleepers` is an RMW, so its modification order is total and each RMW reads
// the latest value. If P3 comes after W1 in that order, P3 reads n != 0 and the publisher
// wakes. If P3 comes before W1, W1 (acquire) reads from P3's release sequence, so P1 happens
// before W3 and the waiter sees the state and does not sleep. The wake bumps `seq` before
// futex_wake and the waiter read `seq` at W0, before W1: if the bump lands before W4 the
// kernel refuses to sleep (value changed), if after, the wake finds the sleeper; and if W0
// already saw the bump, it synchronises with it (P1 before P4), so W3 sees the state. No lost
// wake-up. (RMWs rather than two seq_cst fences: same cost on x86 — one locked instruction —
// and ThreadSanitizer understands them, so the tests check this protocol too.)
//
// Untrusted peer: `seq` and `sleepers` may be scribbled on by a broken peer. That costs at most
// a needless wake or a slept-through ring; every sleep is bounded by wait_options::poll, after
// which the waiter re-checks its condition, the deadline and peer_alive, so it never hangs.
//
// Thread-safety: ring() from any number of threads/processes. wait_until() from any number of
// waiters. Blocking: wait_until() blocks until the condition, the deadline or a dead peer;
// ring() never blocks. Lifetime: the doorbell lives in the shared region (construct it in place
// once, by the region's creator); it has no destructor work.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <thread>

#include "ipc/error.hpp"
#include "ipc/futex.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace crew::detail::ipc {

/// How a blocking ipc call waits. Cheap to pass by reference; build one per channel.
struct wait_options {
  /// Busy-wait this long before sleeping. 0 = sleep at once; nanoseconds::max() = never sleep
  /// (lowest latency, burns a core). 5 µs covers a peer that is running and about to publish
  /// (a hand-off is ~0.2 µs) without burning much when it is not.
  std::chrono::nanoseconds spin = std::chrono::microseconds(5);
  /// While spinning, yield the core between probes after this long (see wait_until).
  std::chrono::nanoseconds yield_after = std::chrono::microseconds(2);
  /// Longest single sleep; the deadline and peer_alive are checked at least this often.
  std::chrono::nanoseconds poll = std::chrono::milliseconds(5);
  /// Give up with wait_timeout after this instant.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  /// Checked every `poll`; false ends the wait with peer_lost. Empty: the peer is assumed alive.
  std::function<bool()> peer_alive;
};

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Lives in shared memory; 64-byte aligned so it shares its cache line with nothing that is
/// written on the hot path.
struct alignas(64) doorbell {
  std::atomic<std::uint32_t> seq{0};       ///< futex word; bumped by every ring that wakes
  std::atomic<std::uint32_t> sleepers{0};  ///< waiters between W1 and their return

  /// Call after publishing (with a release store) the state that waiters wait for.
  void ring() noexcept {
    // P3: an RMW, not a load, so it reads the latest `sleepers`; pairs with W1 in wait_until.
    if (sleepers.fetch_add(0, std::memory_order_acq_rel) != 0) {
      seq.fetch_add(1, std::memory_order_release);  // P4
      futex_wake(&seq, std::numeric_limits<int>::max());
    }
  }
};
static_assert(sizeof(doorbell) == 64);

/// Constructs a doorbell at `offset` of `region` (done once, by the region's creator). Throws
/// std::invalid_argument if it does not fit or `offset` is not 64-byte aligned.
doorbell& make_doorbell(std::span<std::byte> region, std::size_t offset);

/// The doorbell that make_doorbell constructed at `offset` (e.g. in a process that attached the
/// region by descriptor). Same checks as make_doorbell.
doorbell& doorbell_at(std::span<std::byte> region, std::size_t offset);

namespace detail_wait {
[[noreturn]] void throw_timeout();
[[noreturn]] void throw_peer_lost();
}  // namespace detail_wait

/// Blocks until `ready()` returns true (spin, then sleep on `bell`). `ready` must be cheap and
/// may throw (e.g. corrupt_channel), which propagates. Throws wait_timeout / peer_lost.
template <class Ready>
void wait_until(doorbell& bell, Ready&& ready, const wait_options& opts) {
  using clock = std::chrono::steady_clock;
  if (ready()) return;

  auto now = clock::now();
  auto next_check = now + opts.poll;
  // Checks the deadline and the peer; the peer is given one last chance to have published.
  auto check = [&](clock::time_point t) {
    if (t >= opts.deadline) {
      if (ready()) return true;
      detail_wait::throw_timeout();
    }
    if (opts.peer_alive && !opts.peer_alive()) {
      if (ready()) return true;
      detail_wait::throw_peer_lost();
    }
    return false;
  };

  // Spin phase: the clock is read every 64 probes (a clock read costs ~20 ns; a probe ~ns).
  // A peer that is running publishes within ~0.2 µs, so past `yield_after` it is probably not
  // running: then each batch also yields the core, which on an oversubscribed machine (the
  // peer waiting for a CPU) is what lets it run at all.
  if (opts.spin.count() > 0) {
    const auto spin_start = now;
    const auto spin_end =
        opts.spin == std::chrono::nanoseconds::max() ? clock::time_point::max() : now + opts.spin;
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (ready()) return;
        cpu_relax();
      }
      now = clock::now();
      if (now >= next_check) {
        if (check(now)) return;
        next_check = now + opts.poll;
      }
      if (now >= spin_end) break;
      if (now - spin_start >= opts.yield_after) std::this_thread::yield();
    }
  }

  // Sleep phase.
  for (;;) {
    now = clock::now();
    if (check(now)) return;
    const std::uint32_t seen = bell.seq.load(std::memory_order_acquire);  // W0
    bell.sleepers.fetch_add(1, std::memory_order_acq_rel);  // W1: pairs with P3 in ring()
    // Leave the announcement on every path, including a throwing ready() or futex_wait.
    struct announced {
      doorbell& b;
      ~announced() { b.sleepers.fetch_sub(1, std::memory_order_relaxed); }
    };
    bool done;
    {
      announced guard{bell};
      done = ready();  // W3
      if (!done) {
        auto slice = opts.poll;
        if (opts.deadline != clock::time_point::max()) {
          slice = std::min<std::chrono::nanoseconds>(slice, opts.deadline - now);
        }
        futex_wait(&bell.seq, seen, slice);  // W4
      }
    }
    if (done || ready()) return;
  }
}

}  // namespace crew::detail::ipc
