// Experiment 2 — switching and hand-off: a futex ping-pong between two threads and between two
// processes, on one core and across cores.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <thread>

#include "experiments/common.hpp"
#include "experiments/registry.hpp"
#include "lab/child.hpp"

namespace crew::lab {
namespace {

// A shared word: 1 = ball with B, 0 = ball with A, 2 = stop. Non-private futex ops so the same
// code works between processes sharing the mapping.
struct alignas(64) court {
  std::atomic<std::uint32_t> ball{0};
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

void futex_wait(std::atomic<std::uint32_t>* w, std::uint32_t seen) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(w), FUTEX_WAIT, seen, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>* w) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(w), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// Waits until the ball is no longer `from`; returns what it is now.
std::uint32_t await_change(court& c, std::uint32_t from) noexcept {
  for (;;) {
    const auto v = c.ball.load(std::memory_order_acquire);
    if (v != from) return v;
    futex_wait(&c.ball, from);
  }
}

void throw_to(court& c, std::uint32_t v) noexcept {
  c.ball.store(v, std::memory_order_release);
  futex_wake(&c.ball);
}

// Side B: returns the ball until told to stop.
void responder(court& c) noexcept {
  while (await_change(c, 0) != 2) throw_to(c, 0);
}

// Side A: `rounds` round trips per sample, `n` samples; returns seconds per round trip.
std::vector<double> serve(court& c, int rounds, int n) {
  std::vector<double> v;
  for (int s = 0; s < n; ++s) {
    const auto t0 = clock::now();
    for (int i = 0; i < rounds; ++i) {
      throw_to(c, 1);
      await_change(c, 1);
    }
    v.push_back(seconds_since(t0) / rounds);
  }
  throw_to(c, 2);
  return v;
}

std::vector<double> ping_pong(bool processes, bool same_core, int rounds, int n) {
  auto* c = new (map_shared(sizeof(court))) court{};
  std::vector<double> v;
  if (processes) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      pin_to_cpu(same_core ? 0 : 1);
      responder(*c);
      ::_exit(0);
    }
    pin_to_cpu(0);
    v = serve(*c, rounds, n);
    wait_for(pid);
  } else {
    std::thread b([&] {
      pin_to_cpu(same_core ? 0 : 1);
      responder(*c);
    });
    pin_to_cpu(0);
    v = serve(*c, rounds, n);
    b.join();
  }
  unmap(c, sizeof(court));
  return v;
}

result run(const config& cfg, progress& prog) {
  result r;
  const int rounds = cfg.quick ? 2000 : 20000;
  const int n = cfg.warmup + cfg.repeat;
  for (bool same_core : {true, false}) {
    for (bool processes : {false, true}) {
      const std::string name = std::string(processes ? "processes" : "threads") +
                               (same_core ? ", one core" : ", across cores");
      if (!same_core && cfg.cores < 2) {
        r.data.push_back(absent(name, series_state::skipped, "this machine has one usable core"));
        continue;
      }
      prog.step(name);
      series s;
      s.name = name;
      s.unit = "s";
      // In a child, so pinning the CPU does not stick to the bench.
      auto out = run_in_child(
          [&](int) { return pack_doubles(ping_pong(processes, same_core, rounds, n)); }, 60);
      if (out.ok()) {
        file_samples(s, unpack_doubles(out.output), cfg.warmup);
      } else {
        s.state = series_state::failed;
        s.note = "the ping-pong child did not finish";
      }
      r.data.push_back(std::move(s));
    }
  }
  r.method =
      "Two parties pass a ball through one shared 32-bit word; each waits with FUTEX_WAIT "
      "and wakes the other with FUTEX_WAKE. A sample is " +
      std::to_string(rounds) +
      " round trips (two hand-offs each), divided. Threads share the word in the process; "
      "processes share it in a MAP_SHARED page. Each case runs pinned with "
      "sched_setaffinity in a child of the bench.";
  r.chart = {chart_kind::bars, "", "time per round trip (two hand-offs)", "", false, false, true};
  const double one =
      median_ratio(find_series(r, "processes, one core"), find_series(r, "threads, one core"));
  const double across = median_ratio(find_series(r, "processes, across cores"),
                                     find_series(r, "threads, across cores"));
  r.derived.columns = {"comparison", "processes / threads"};
  r.derived.rows.push_back({"one core", format_value(one, "x")});
  r.derived.rows.push_back({"across cores", format_value(across, "x")});
  r.measured = "process hand-off costs " + format_value(one, "x") + " a thread's on one core, " +
               format_value(across, "x") + " across cores";
  if (std::isnan(one)) {
    r.verdict = verdict_kind::not_measured;
    r.verdict_text = "a measurement failed";
  } else {
    const bool close_one = one < 2, close_across = std::isnan(across) || across < 2;
    r.verdict = close_one && close_across   ? verdict_kind::confirmed
                : close_one || close_across ? verdict_kind::mixed
                                            : verdict_kind::refuted;
    r.verdict_text =
        close_one && close_across
            ? "a futex hand-off between processes costs within 2× of one between threads"
            : "processes paid more than 2× the threads' hand-off";
  }
  return r;
}

}  // namespace

experiment switching_experiment() {
  return {"switching", "Switching and hand-off",
          "Handing work to another process costs about the same as handing it to another thread: "
          "both are a futex wake-up and a context switch.",
          run};
}

}  // namespace crew::lab
