// bench_process_pool — what a crew::process_pool costs, next to what it replaces, in one run.
//
//   bench_process_pool [--quick] [--only abcdefp] [--python /usr/bin/python3] [--peers peers.py]
//
// Sections (each a markdown table on stdout, then one table of the targets):
//   a  100,000 no-op tasks: submit all then get all, and crew::map (grain 1 and automatic);
//      process_pool vs crew::thread_pool; CPython's pools come from section p.
//   b  one submit-to-result round trip (median of many): process_pool vs thread_pool.
//   c  start-up to first result of a 2-worker pool, per start method, vs two bare fork+waitpid.
//   d  64 MiB and 1 GiB argument to a task and result back, vs memcpy in this process.
//   e  a worker's SIGSEGV to the failed future, and to a replacement that answers, vs bare fork.
//   f  RSS/PSS of idle workers (N = 2, 8) vs the same number of idle threads.
//   i  CPU time an idle pool uses (parent threads and workers) over 2 s after its last task.
//   p  CPython's ProcessPoolExecutor and multiprocessing.Pool (peers.py, run with --python).
//   s  (only when asked) the process_pool's 100,000-task case alone, for perf record / strace -c;
//   r  (only when asked) the process_pool's round trip alone, likewise.
// Every figure is the median of several repeats after a discarded warm-up; [min–max] follow.
// Reference cases (thread_pool, bare fork, memcpy, CPython) are measured in the same run, so
// ratios hold on a loaded machine better than the absolute figures do. Every pool has 2 workers
// unless a row says otherwise. Figures and the machine: docs/benchmarks/process_pool.md.
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "crew/algorithm.hpp"
#include "crew/process_pool.hpp"
#include "crew/thread_pool.hpp"
#include "ipc/shared_region.hpp"
#include "ipc/spsc_ring.hpp"

namespace {

/// CLOCK_MONOTONIC in ns: one clock for every process on the machine, so a worker's stamp and
/// the parent's can be subtracted.
std::uint64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

double seconds_since(std::uint64_t start_ns) noexcept {
  return static_cast<double>(now_ns() - start_ns) * 1e-9;
}

// --- the tasks (registered before main; every worker is this binary) -------------------------

void noop() {}

int identity(int x) {
  return x;
}

/// Runs long enough that the next task of a batch goes to another worker; says where it ran.
int sleepy_pid() {
  std::this_thread::sleep_for(std::chrono::milliseconds{20});
  return static_cast<int>(getpid());
}

std::uint64_t checksum(const std::vector<std::byte>& data) noexcept {
  std::uint64_t sum = 0;
  const std::size_t words = data.size() / sizeof sum;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t w = 0;
    std::memcpy(&w, data.data() + i * sizeof w, sizeof w);
    sum += w;
  }
  return sum;
}

/// {when the argument had arrived (decoded, task entered), its checksum}.
std::pair<std::uint64_t, std::uint64_t> arrive(const std::vector<std::byte>& data) {
  const std::uint64_t at = now_ns();
  return {at, checksum(data)};
}

/// {when the result was built, the result}: n zero bytes (std::vector value-initialises, so every
/// page is touched, as in build_in_process below).
std::pair<std::uint64_t, std::vector<std::byte>> produce(std::uint64_t n) {
  std::vector<std::byte> out(n);
  const std::uint64_t built = now_ns();
  return {built, std::move(out)};
}

// A page shared with forked workers, where the crashing task notes when it crashed.
std::atomic<std::uint64_t>* crash_stamp = nullptr;

void crash() {
  crash_stamp->store(now_ns(), std::memory_order_release);
  raise(SIGSEGV);
}

// --- statistics and formatting ---------------------------------------------------------------

struct summary {
  double median = 0;
  double min = 0;
  double max = 0;
  std::size_t n = 0;
  [[nodiscard]] bool valid() const noexcept { return n > 0; }
};

summary summarize(std::vector<double> values) {
  summary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.n = values.size();
  s.min = values.front();
  s.max = values.back();
  const std::size_t mid = s.n / 2;
  s.median = s.n % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
  return s;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

/// 3 significant digits.
std::string sig3(double value) {
  const double size = value < 0 ? -value : value;
  if (size >= 100) return fixed(value, 0);
  if (size >= 10) return fixed(value, 1);
  return fixed(value, 2);
}

std::string fmt_time(double s) {
  if (s < 1e-6) return sig3(s * 1e9) + " ns";
  if (s < 1e-3) return sig3(s * 1e6) + " µs";
  if (s < 1) return sig3(s * 1e3) + " ms";
  return sig3(s) + " s";
}

std::string fmt_time(const summary& s) {
  if (!s.valid()) return "n/a";
  if (s.n == 1) return fmt_time(s.median);
  return fmt_time(s.median) + " [" + fmt_time(s.min) + "–" + fmt_time(s.max) + "]";
}

std::string fmt_rate(double bytes_per_s) {
  return sig3(bytes_per_s / (1024.0 * 1024 * 1024)) + " GiB/s";
}

std::string fmt_ratio(double r) {
  return sig3(r) + "×";
}

std::string fmt_kib(double kib) {
  if (kib >= 10 * 1024) return sig3(kib / 1024) + " MiB";
  return sig3(kib) + " KiB";
}

// --- targets -----------------------------------------------------------------------------------

struct target_row {
  std::string what;
  std::string measured;
  double ratio = 0;  // oriented so that "smaller is better" for at_most, "larger" for at_least
  double goal = 0;
  bool at_most = true;
  bool known = true;
};

std::vector<target_row> targets;

void add_target(std::string what, std::string measured, double ratio, double goal, bool at_most,
                bool known = true) {
  targets.push_back({std::move(what), std::move(measured), ratio, goal, at_most, known});
}

std::string verdict(const target_row& t) {
  if (!t.known) return "n/a (peer not measured)";
  if (t.at_most) {
    if (t.ratio <= t.goal) return "**met**";
    return "**missed** by " + fmt_ratio(t.ratio / t.goal);
  }
  if (t.ratio >= t.goal) return "**met**";
  return "**missed** by " + fmt_ratio(t.goal / t.ratio);
}

// --- machine -------------------------------------------------------------------------------

std::string cpu_model() {
  std::ifstream in{"/proc/cpuinfo"};
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown";
}

std::string load_average() {
  std::ifstream in{"/proc/loadavg"};
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string kernel() {
  utsname u{};
  if (uname(&u) != 0) return "unknown";
  return std::string{u.sysname} + " " + u.release;
}

// --- memory ------------------------------------------------------------------------------------

struct memory_kib {
  double rss = 0;
  double pss = 0;
};

memory_kib rollup(int pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/smaps_rollup"};
  memory_kib out;
  std::string key;
  double value = 0;
  std::string unit;
  while (in >> key) {
    if (key == "Rss:" || key == "Pss:") {
      in >> value >> unit;
      (key == "Rss:" ? out.rss : out.pss) = value;
    } else {
      std::string rest;
      std::getline(in, rest);
    }
  }
  return out;
}

// --- bare process baselines ------------------------------------------------------------------

/// Two children that _exit(0) at once, both reaped: the floor of starting 2 workers.
double two_bare_forks() {
  const std::uint64_t start = now_ns();
  const pid_t a = fork();
  if (a == 0) _exit(0);
  const pid_t b = fork();
  if (b == 0) _exit(0);
  int status = 0;
  waitpid(a, &status, 0);
  waitpid(b, &status, 0);
  return seconds_since(start);
}

double one_bare_fork() {
  const std::uint64_t start = now_ns();
  const pid_t a = fork();
  if (a == 0) _exit(0);
  int status = 0;
  waitpid(a, &status, 0);
  return seconds_since(start);
}

/// A child raises SIGSEGV; from its stamp to waitpid's return in the parent.
double bare_segv() {
  crash_stamp->store(0);
  const pid_t a = fork();
  if (a == 0) {
    crash_stamp->store(now_ns(), std::memory_order_release);
    raise(SIGSEGV);
    _exit(1);
  }
  int status = 0;
  waitpid(a, &status, 0);
  const std::uint64_t end = now_ns();
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV) throw std::runtime_error("bare segv");
  return static_cast<double>(end - crash_stamp->load(std::memory_order_acquire)) * 1e-9;
}

// --- the run -------------------------------------------------------------------------------

struct config {
  bool quick = false;
  std::string only = "abcdefip";  // sections to run; 's' and 'r' only on request
  std::string python = "/usr/bin/python3";
  std::string peers = CREW_BENCH_PEERS_PY;
  [[nodiscard]] bool runs(char section) const { return only.find(section) != std::string::npos; }
};

crew::process_pool_options pool_options(std::size_t workers,
                                        crew::start_method start = crew::start_method::fork) {
  crew::process_pool_options options;
  options.workers = workers;
  options.start = start;
  return options;
}

constexpr std::size_t tasks_a = 100'000;

struct per_task_results {
  summary process_submit, thread_submit, process_submit_deep, process_submit_polling;
  summary process_map1, thread_map1;
  summary process_map, thread_map;
};

template <class Pool>
double submit_all(Pool& pool, std::size_t n) {
  std::vector<crew::future<void>> futures;
  futures.reserve(n);
  const std::uint64_t start = now_ns();
  for (std::size_t i = 0; i < n; ++i) futures.push_back(pool.template submit<&noop>());
  for (auto& f : futures) f.get();
  return seconds_since(start) / static_cast<double>(n);
}

/// As submit_all, but the caller polls ready() (yielding the core between polls) before get(), so
/// it never sleeps on the future's futex and the manager never has to wake it: what a future
/// wait that spins before it sleeps would give.
double submit_all_polling(crew::process_pool& pool, std::size_t n) {
  std::vector<crew::future<void>> futures;
  futures.reserve(n);
  const std::uint64_t start = now_ns();
  for (std::size_t i = 0; i < n; ++i) futures.push_back(pool.submit<&noop>());
  for (auto& f : futures) {
    while (!f.ready()) std::this_thread::yield();
    f.get();
  }
  return seconds_since(start) / static_cast<double>(n);
}

template <class Pool>
double map_items(Pool& pool, const std::vector<int>& inputs, std::size_t grain) {
  const std::uint64_t start = now_ns();
  const std::vector<int> out = crew::map<&identity>(pool, inputs, {.grain = grain});
  const double s = seconds_since(start);
  if (out.size() != inputs.size() || out.back() != inputs.back()) throw std::runtime_error("map");
  return s / static_cast<double>(inputs.size());
}

per_task_results section_a(const config& cfg, crew::process_pool& pp, crew::process_pool& deep,
                           crew::thread_pool& tp) {
  const int reps = cfg.quick ? 2 : 7;
  std::vector<int> inputs(tasks_a);
  for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i] = static_cast<int>(i);
  std::vector<double> ps, ts, pm1, tm1, pm, tm, pd, pq;
  // Interleaved, so that a burst of load from elsewhere hits both pools alike.
  for (int i = 0; i < 1 + reps; ++i) {
    const double a = submit_all(pp, tasks_a);
    const double b = submit_all(tp, tasks_a);
    const double c = map_items(pp, inputs, 1);
    const double d = map_items(tp, inputs, 1);
    const double e = map_items(pp, inputs, 0);
    const double f = map_items(tp, inputs, 0);
    const double g = submit_all(deep, tasks_a);
    const double h = submit_all_polling(pp, tasks_a);
    if (i == 0) continue;  // warm-up
    ps.push_back(a);
    ts.push_back(b);
    pm1.push_back(c);
    tm1.push_back(d);
    pm.push_back(e);
    tm.push_back(f);
    pd.push_back(g);
    pq.push_back(h);
  }
  return {summarize(ps),  summarize(ts),  summarize(pd), summarize(pq),
          summarize(pm1), summarize(tm1), summarize(pm), summarize(tm)};
}

struct round_trip_results {
  std::vector<double> process, thread, thread_handoff, raw_ring;
};

/// The floor under a process pool's round trip: crew's own ring between this process and a
/// forked child that echoes 64-byte messages, both sides waiting as a pool's worker does (spin
/// 50 µs, then sleep on the doorbell), timed like the pool's round trips.
std::vector<double> raw_ring_round_trips(int blocks, int per_block) {
  using namespace crew::detail::ipc;
  constexpr std::size_t capacity = std::size_t{1} << 16;
  shared_region region = shared_region::create("bench-ring", 2 * spsc_ring::footprint(capacity));
  spsc_ring request = spsc_ring::create(region.bytes(), 0, capacity);
  spsc_ring result = spsc_ring::create(region.bytes(), spsc_ring::footprint(capacity), capacity);
  wait_options w;
  w.spin = std::chrono::microseconds{50};
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child == 0) {
    wait_options cw = w;
    cw.peer_alive = [parent] { return getppid() == parent; };
    try {
      ring_reader in(request);
      ring_writer out(result);
      for (;;) {
        auto m = in.wait_peek(cw);
        auto slot = out.reserve(m.bytes.size(), cw);
        std::memcpy(slot.data(), m.bytes.data(), m.bytes.size());
        in.release();
        out.commit();
      }
    } catch (...) {
    }
    _exit(0);
  }
  std::vector<double> trips;
  {
    ring_writer out(request);
    ring_reader in(result);
    std::byte message[64] = {};
    for (int block = 0; block < 1 + blocks; ++block) {
      for (int i = 0; i < per_block; ++i) {
        const std::uint64_t start = now_ns();
        auto slot = out.reserve(sizeof message, w);
        std::memcpy(slot.data(), message, sizeof message);
        out.commit();
        auto m = in.wait_peek(w);
        std::memcpy(message, m.bytes.data(), m.bytes.size());
        in.release();
        if (block > 0) trips.push_back(seconds_since(start));
      }
    }
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  return trips;
}

round_trip_results section_b(const config& cfg, crew::process_pool& pp, crew::thread_pool& tp) {
  const int blocks = cfg.quick ? 4 : 10;
  const int per_block = cfg.quick ? 1000 : 2000;
  round_trip_results r;
  r.raw_ring = raw_ring_round_trips(blocks, per_block);
  for (int block = 0; block < 1 + blocks; ++block) {
    const bool keep = block > 0;
    for (int i = 0; i < per_block; ++i) {
      const std::uint64_t start = now_ns();
      pp.submit<&noop>().get();
      const double s = seconds_since(start);
      if (keep) r.process.push_back(s);
    }
    for (int i = 0; i < per_block; ++i) {
      const std::uint64_t start = now_ns();
      tp.submit<&noop>().get();
      const double s = seconds_since(start);
      if (keep) r.thread.push_back(s);
    }
    // The thread pool's get() runs a task that has not started on the waiting thread; wait_for
    // does not, so this is the round trip through a worker thread.
    for (int i = 0; i < per_block; ++i) {
      const std::uint64_t start = now_ns();
      auto f = tp.submit<&noop>();
      f.wait_for(std::chrono::hours{1});
      f.get();
      const double s = seconds_since(start);
      if (keep) r.thread_handoff.push_back(s);
    }
  }
  return r;
}

struct startup_results {
  summary bare, fork, spawn, forkserver;
  summary fork_teardown;
};

double pool_startup(crew::start_method method, double* teardown) {
  const std::uint64_t start = now_ns();
  std::optional<crew::process_pool> pool{std::in_place, pool_options(2, method)};
  pool->submit<&noop>().get();
  const double s = seconds_since(start);
  const std::uint64_t stop = now_ns();
  pool.reset();
  if (teardown != nullptr) *teardown = seconds_since(stop);
  return s;
}

startup_results section_c(const config& cfg) {
  const int reps = cfg.quick ? 5 : 20;
  std::vector<double> bare, fork, spawn, server, teardown;
  for (int i = 0; i < 2 + reps; ++i) {
    double down = 0;
    const double b = two_bare_forks();
    const double f = pool_startup(crew::start_method::fork, &down);
    const double s = pool_startup(crew::start_method::spawn, nullptr);
    const double v = pool_startup(crew::start_method::forkserver, nullptr);
    if (i < 2) continue;
    bare.push_back(b);
    fork.push_back(f);
    spawn.push_back(s);
    server.push_back(v);
    teardown.push_back(down);
  }
  return {summarize(bare), summarize(fork), summarize(spawn), summarize(server),
          summarize(teardown)};
}

struct transfer_results {
  std::size_t bytes = 0;
  summary memcpy_warm, copy_fresh, build;
  summary arg_arrival, arg_total, result_back, result_total;
};

transfer_results section_d_size(const config& cfg, crew::process_pool& pp, std::size_t bytes) {
  const bool huge = bytes >= (std::size_t{1} << 30);
  const int reps = cfg.quick ? 2 : (huge ? 3 : 7);
  transfer_results r;
  r.bytes = bytes;
  std::vector<std::byte> src(bytes);
  for (std::size_t i = 0; i < bytes; i += 64) src[i] = static_cast<std::byte>(i >> 6);
  const std::uint64_t expected = checksum(src);

  std::vector<double> warm, fresh, build, arrival, arg_total, back, result_total;
  {
    std::vector<std::byte> dst(bytes, std::byte{1});  // touched: no page faults in the copies
    for (int i = 0; i < 1 + reps; ++i) {
      std::uint64_t start = now_ns();
      std::memcpy(dst.data(), src.data(), bytes);
      const double w = seconds_since(start);
      start = now_ns();
      std::vector<std::byte> copy(src.begin(), src.end());
      const double f = seconds_since(start);
      if (copy[bytes - 64] != src[bytes - 64]) throw std::runtime_error("copy");
      copy = {};
      start = now_ns();
      std::vector<std::byte> built(bytes);
      const double b = seconds_since(start);
      if (built[bytes / 2] != std::byte{0}) throw std::runtime_error("build");
      if (i == 0) continue;
      warm.push_back(w);
      fresh.push_back(f);
      build.push_back(b);
    }
  }
  for (int i = 0; i < 1 + reps; ++i) {
    std::uint64_t start = now_ns();
    const auto [arrived, sum] = pp.submit<&arrive>(src).get();
    const std::uint64_t end = now_ns();
    if (sum != expected) throw std::runtime_error("the argument arrived damaged");
    const double a = static_cast<double>(arrived - start) * 1e-9;
    const double at = static_cast<double>(end - start) * 1e-9;

    start = now_ns();
    auto [built, value] = pp.submit<&produce>(static_cast<std::uint64_t>(bytes)).get();
    const std::uint64_t got = now_ns();
    if (value.size() != bytes) throw std::runtime_error("the result arrived damaged");
    const double bk = static_cast<double>(got - built) * 1e-9;
    const double rt = static_cast<double>(got - start) * 1e-9;
    value = {};
    if (i == 0) continue;
    arrival.push_back(a);
    arg_total.push_back(at);
    back.push_back(bk);
    result_total.push_back(rt);
  }
  r.memcpy_warm = summarize(warm);
  r.copy_fresh = summarize(fresh);
  r.build = summarize(build);
  r.arg_arrival = summarize(arrival);
  r.arg_total = summarize(arg_total);
  r.result_back = summarize(back);
  r.result_total = summarize(result_total);
  return r;
}

struct crash_results {
  summary pool_detect, pool_replace, pool_total, bare_detect, bare_fork;
};

crash_results section_e(const config& cfg) {
  const int reps = cfg.quick ? 5 : 15;
  crew::process_pool pool{pool_options(1)};
  pool.submit<&noop>().get();
  std::vector<double> detect, replace, total, bare_d, bare_f;
  for (int i = 0; i < 1 + reps; ++i) {
    crash_stamp->store(0);
    auto outcome = pool.submit<&crash>().result();
    const std::uint64_t failed = now_ns();
    if (outcome.has_value() || outcome.error().kind() != crew::error_kind::crashed) {
      throw std::runtime_error("the crashing task did not fail as crashed");
    }
    const std::uint64_t crashed = crash_stamp->load(std::memory_order_acquire);
    pool.submit<&noop>().get();
    const std::uint64_t replaced = now_ns();
    const double d = bare_segv();
    const double f = one_bare_fork();
    if (i == 0) continue;
    detect.push_back(static_cast<double>(failed - crashed) * 1e-9);
    replace.push_back(static_cast<double>(replaced - failed) * 1e-9);
    total.push_back(static_cast<double>(replaced - crashed) * 1e-9);
    bare_d.push_back(d);
    bare_f.push_back(f);
  }
  return {summarize(detect), summarize(replace), summarize(total), summarize(bare_d),
          summarize(bare_f)};
}

struct memory_row {
  std::size_t n = 0;
  double process_total_pss = 0;  // parent + workers, minus the parent before: KiB
  double parent_pss_delta = 0;
  double worker_pss_mean = 0;
  double worker_rss_mean = 0;
  double parent_rss_delta = 0;
  double thread_pss_delta = 0;
  double thread_rss_delta = 0;
};

memory_row section_f_size(std::size_t n) {
  memory_row row;
  row.n = n;
  const int self = static_cast<int>(getpid());
  {
    const memory_kib before = rollup(self);
    crew::process_pool pool{pool_options(n)};
    // One task each: batches of n slow tasks until every worker has answered one.
    std::set<int> seen;
    for (int round = 0; round < 20 && seen.size() < n; ++round) {
      std::vector<crew::future<int>> futures;
      for (std::size_t i = 0; i < n; ++i) futures.push_back(pool.submit<&sleepy_pid>());
      for (auto& f : futures) seen.insert(f.get());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{100});  // idle: workers asleep
    const memory_kib parent = rollup(self);
    memory_kib workers;
    const std::vector<int> pids = pool.worker_pids();
    for (int pid : pids) {
      const memory_kib w = rollup(pid);
      workers.rss += w.rss;
      workers.pss += w.pss;
    }
    const auto count = static_cast<double>(pids.size());
    row.process_total_pss = parent.pss + workers.pss - before.pss;
    row.parent_pss_delta = parent.pss - before.pss;
    row.parent_rss_delta = parent.rss - before.rss;
    row.worker_pss_mean = workers.pss / count;
    row.worker_rss_mean = workers.rss / count;
  }
  {
    const memory_kib before = rollup(self);
    crew::thread_pool pool{n};
    for (std::size_t i = 0; i < n; ++i) pool.detach(&sleepy_pid);
    pool.wait_idle();
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
    const memory_kib after = rollup(self);
    row.thread_pss_delta = after.pss - before.pss;
    row.thread_rss_delta = after.rss - before.rss;
  }
  return row;
}

std::optional<nlohmann::json> run_peers(const config& cfg) {
  const std::string cmd =
      cfg.python + " " + cfg.peers +
      (cfg.quick ? " --tasks-ppe 2000 --tasks-mp 10000 --reps 1 --startup-reps 5"
                 : " --tasks-ppe 30000 --tasks-mp 100000 --reps 3 --startup-reps 15");
  std::fflush(nullptr);
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string text;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) text.append(buffer, n);
  const int status = pclose(pipe);
  if (status != 0) {
    std::fprintf(stderr, "bench_process_pool: `%s` failed (status %d)\n", cmd.c_str(), status);
    return std::nullopt;
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_process_pool: peers.py printed no JSON: %s\n", e.what());
    return std::nullopt;
  }
}

summary from_json(const nlohmann::json& j) {
  summary s;
  s.median = j.at("median").get<double>();
  s.min = j.at("min").get<double>();
  s.max = j.at("max").get<double>();
  s.n = j.at("n").get<std::size_t>();
  return s;
}

int run(const config& cfg) {
  std::cout << "# bench_process_pool" << (cfg.quick ? " --quick" : "") << "\n\n";
  std::cout << "- CPU: " << cpu_model() << "\n";
  std::cout << "- cores (online): " << sysconf(_SC_NPROCESSORS_ONLN) << "\n";
  std::cout << "- kernel: " << kernel() << "\n";
  std::cout << "- load average at start: " << load_average() << "\n";
  std::cout << "- every pool: 2 workers, fork start method, unless a row says otherwise\n\n"
            << std::flush;
  double startup_fork_median = 0;  // (c), compared with CPython's in (p)
  double peers_startup_ppe = 0;

  // Sections c and f first: they fork, and fork's cost grows with the parent's mappings.
  if (cfg.runs('c')) {
    const startup_results r = section_c(cfg);
    std::cout << "## (c) start-up to first result, 2 workers\n\n"
              << "| case | time | vs two bare fork+waitpid |\n|---|---|---|\n";
    auto line = [&](const char* name, const summary& s) {
      std::cout << "| " << name << " | " << fmt_time(s) << " | "
                << fmt_ratio(s.median / r.bare.median) << " |\n";
    };
    line("two bare fork + _exit + waitpid", r.bare);
    line("process_pool, fork", r.fork);
    line("process_pool, spawn", r.spawn);
    line("process_pool, forkserver", r.forkserver);
    std::cout << "| (teardown of the fork pool, not in the figures above) | "
              << fmt_time(r.fork_teardown) << " | |\n\n"
              << std::flush;
    add_target("(c) fork start-up ≤ 3× two bare forks",
               fmt_time(r.fork.median) + " vs " + fmt_time(r.bare.median),
               r.fork.median / r.bare.median, 3, true);
    startup_fork_median = r.fork.median;
  }
  if (cfg.runs('f')) {
    std::cout << "## (f) memory of idle workers after one task each (KiB from smaps_rollup)\n\n"
              << "| N | process_pool: PSS of parent + workers − parent before, per worker | "
                 "worker PSS (mean) | worker RSS (mean) | parent PSS change | thread_pool: "
                 "parent PSS change, per thread | RSS change, per thread | ratio (PSS per "
                 "worker / per thread) |\n|---|---|---|---|---|---|---|---|\n";
    // Flushed before every pool: a forked worker inherits whatever stdout still buffers, and a
    // worker that flushes its stdio when it exits prints it a second time.
    std::cout << std::flush;
    for (std::size_t n : {std::size_t{2}, std::size_t{8}}) {
      const memory_row m = section_f_size(n);
      const auto count = static_cast<double>(n);
      const double per_worker = m.process_total_pss / count;
      const double per_thread = m.thread_pss_delta / count;
      std::cout << "| " << n << " | " << fmt_kib(per_worker) << " | " << fmt_kib(m.worker_pss_mean)
                << " | " << fmt_kib(m.worker_rss_mean) << " | " << fmt_kib(m.parent_pss_delta)
                << " | " << fmt_kib(per_thread) << " | " << fmt_kib(m.thread_rss_delta / count)
                << " | " << (per_thread > 0 ? fmt_ratio(per_worker / per_thread) : "n/a") << " |\n"
                << std::flush;
    }
    std::cout << "\n" << std::flush;
  }

  if (cfg.runs('i')) {
    // CPU ticks (utime + stime) of a process, all its threads.
    auto cpu_seconds = [](pid_t pid) {
      std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
      std::string text;
      std::getline(stat, text);
      const auto close = text.rfind(')');
      if (close == std::string::npos) return 0.0;
      std::istringstream fields{text.substr(close + 2)};
      std::string skip;
      for (int i = 0; i < 11; ++i) fields >> skip;  // state .. cmajflt
      double utime = 0;
      double stime = 0;
      fields >> utime >> stime;
      return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    };
    crew::process_pool pool{pool_options(2)};
    for (int i = 0; i < 1000; ++i) pool.submit<&noop>().get();
    std::this_thread::sleep_for(std::chrono::milliseconds{300});  // bounded spins end
    const std::vector<int> pids = pool.worker_pids();
    auto total = [&] {
      double sum = cpu_seconds(getpid());
      for (int pid : pids) sum += cpu_seconds(pid);
      return sum;
    };
    const double before = total();
    const auto window = std::chrono::seconds{cfg.quick ? 2 : 5};
    std::this_thread::sleep_for(window);
    const double used = total() - before;
    const double share = used / std::chrono::duration<double>(window).count();
    std::cout << "## (i) an idle process_pool (2 workers) after 1,000 tasks\n\n"
              << "CPU used by the parent and its workers over "
              << std::chrono::duration<double>(window).count() << " s of idleness: " << used
              << " s (" << share * 100 << "% of one core; clock tick "
              << 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK)) << " s)\n\n"
              << std::flush;
    add_target("(i) an idle pool uses < 1% of a core", std::to_string(share * 100) + "%",
               share / 0.01, 1, true);
  }

  if (cfg.runs('s')) {
    // For profilers (perf record, strace -c): only the process_pool's 100,000-task case.
    crew::process_pool pool{pool_options(2)};
    std::vector<double> per_task;
    for (int i = 0; i < (cfg.quick ? 3 : 10); ++i) per_task.push_back(submit_all(pool, tasks_a));
    std::cout << "## (s) process_pool, submit all then get all, 100,000 no-ops: "
              << fmt_time(summarize(per_task)) << " per task\n\n"
              << std::flush;
  }
  if (cfg.runs('r')) {
    // For profilers: only the process_pool's round trip, 20,000 times.
    crew::process_pool pool{pool_options(2)};
    std::vector<double> trips;
    for (int i = 0; i < 20'000; ++i) {
      const std::uint64_t start = now_ns();
      pool.submit<&noop>().get();
      trips.push_back(seconds_since(start));
    }
    std::cout << "## (r) process_pool round trip, 20,000 times: median "
              << fmt_time(percentile(trips, 0.5)) << "\n\n"
              << std::flush;
  }

  std::optional<crew::process_pool> pp;
  std::optional<crew::process_pool> deep;  // pipeline_depth 64: more tasks sent ahead
  std::optional<crew::thread_pool> tp;
  if (cfg.runs('a') || cfg.runs('b')) {
    pp.emplace(pool_options(2));
    tp.emplace(std::size_t{2});
  }
  if (cfg.runs('a')) {
    crew::process_pool_options options = pool_options(2);
    options.pipeline_depth = 64;
    deep.emplace(options);
  }
  per_task_results a;
  if (cfg.runs('a')) {
    a = section_a(cfg, *pp, *deep, *tp);
    std::cout << "## (a) 100,000 no-op tasks, per task\n\n"
              << "| case | process_pool | thread_pool | process / thread |\n|---|---|---|---|\n";
    auto line = [](const char* name, const summary& p, const summary& t) {
      std::cout << "| " << name << " | " << fmt_time(p) << " | " << fmt_time(t) << " | "
                << fmt_ratio(p.median / t.median) << " |\n";
    };
    line("submit all, then get all (`void noop()`)", a.process_submit, a.thread_submit);
    line("same, process_pool with pipeline_depth = 64 (default 4)", a.process_submit_deep,
         a.thread_submit);
    line("same, caller polls `ready()` before `get()` (no futex sleep on the future)",
         a.process_submit_polling, a.thread_submit);
    line("`crew::map<&identity>`, grain 1 (100,000 tasks)", a.process_map1, a.thread_map1);
    line("`crew::map<&identity>`, automatic grain (8 tasks; per item)", a.process_map,
         a.thread_map);
    std::cout << "\n" << std::flush;
    add_target("(a) per task, submit all/get all: process_pool ≤ 2× thread_pool",
               fmt_time(a.process_submit.median) + " vs " + fmt_time(a.thread_submit.median),
               a.process_submit.median / a.thread_submit.median, 2, true);
    add_target("(a) per task, map grain 1: process_pool ≤ 2× thread_pool",
               fmt_time(a.process_map1.median) + " vs " + fmt_time(a.thread_map1.median),
               a.process_map1.median / a.thread_map1.median, 2, true);
  }
  if (cfg.runs('b')) {
    const round_trip_results r = section_b(cfg, *pp, *tp);
    std::cout << "## (b) one submit → get round trip of a no-op task\n\n"
              << "| executor | median | p10 | p90 | p99 | samples | vs thread_pool get() |\n"
              << "|---|---|---|---|---|---|---|\n";
    const double thread_median = percentile(r.thread, 0.5);
    auto line = [&](const char* name, const std::vector<double>& v) {
      const double median = percentile(v, 0.5);
      std::cout << "| " << name << " | " << fmt_time(median) << " | "
                << fmt_time(percentile(v, 0.1)) << " | " << fmt_time(percentile(v, 0.9)) << " | "
                << fmt_time(percentile(v, 0.99)) << " | " << v.size() << " | "
                << fmt_ratio(median / thread_median) << " |\n";
    };
    line("process_pool", r.process);
    line("thread_pool, get() (runs the unstarted task inline)", r.thread);
    line("thread_pool, wait_for() then get() (a worker runs it)", r.thread_handoff);
    line("crew's raw ring between two processes (64 B echo, same waiting as a worker)", r.raw_ring);
    std::cout << "\n" << std::flush;
    const double process_median = percentile(r.process, 0.5);
    const double ring = percentile(r.raw_ring, 0.5);
    add_target("(b) round trip: process_pool ≤ 4× crew's raw ring between two processes",
               fmt_time(process_median) + " vs " + fmt_time(ring), process_median / ring, 4, true);
    const double handoff = percentile(r.thread_handoff, 0.5);
    add_target("(b) round trip: process_pool ≤ 1.5× thread_pool (hand-off to a worker thread)",
               fmt_time(process_median) + " vs " + fmt_time(handoff), process_median / handoff, 1.5,
               true);
  }
  pp.reset();
  deep.reset();
  tp.reset();

  if (cfg.runs('e')) {
    const crash_results r = section_e(cfg);
    std::cout << "## (e) a worker's SIGSEGV (pool of 1 worker)\n\n"
              << "| event | process_pool | bare baseline | baseline | ratio |\n"
              << "|---|---|---|---|---|\n";
    std::cout << "| SIGSEGV → failed future | " << fmt_time(r.pool_detect)
              << " | SIGSEGV in a forked child → waitpid returns | " << fmt_time(r.bare_detect)
              << " | " << fmt_ratio(r.pool_detect.median / r.bare_detect.median) << " |\n";
    std::cout << "| failed future → replacement answered a no-op | " << fmt_time(r.pool_replace)
              << " | fork + _exit + waitpid | " << fmt_time(r.bare_fork) << " | "
              << fmt_ratio(r.pool_replace.median / r.bare_fork.median) << " |\n";
    std::cout << "| SIGSEGV → replacement answered (sum) | " << fmt_time(r.pool_total)
              << " | both baselines | " << fmt_time(r.bare_detect.median + r.bare_fork.median)
              << " | "
              << fmt_ratio(r.pool_total.median / (r.bare_detect.median + r.bare_fork.median))
              << " |\n\n"
              << std::flush;
    add_target("(e) SIGSEGV → failed future ≤ 3× bare fork+waitpid of a crashing child",
               fmt_time(r.pool_detect.median) + " vs " + fmt_time(r.bare_detect.median),
               r.pool_detect.median / r.bare_detect.median, 3, true);
    add_target("(e) failed future → replacement ready ≤ 3× bare fork+waitpid",
               fmt_time(r.pool_replace.median) + " vs " + fmt_time(r.bare_fork.median),
               r.pool_replace.median / r.bare_fork.median, 3, true);
  }

  if (cfg.runs('d')) {
    std::vector<std::size_t> sizes{std::size_t{64} << 20};
    if (!cfg.quick) sizes.push_back(std::size_t{1} << 30);
    crew::process_pool pool{pool_options(2)};
    pool.submit<&noop>().get();
    std::cout << "## (d) large argument and result (`std::vector<std::byte>`)\n\n"
              << "| size | memcpy into a touched buffer | copy into a new std::vector | build "
                 "the vector in-process | argument: submit → task entered | result: built "
                 "→ get() returned | argument round trip (incl. checksum) | result round trip "
                 "(incl. build) |\n|---|---|---|---|---|---|---|---|\n";
    std::vector<transfer_results> all;
    for (std::size_t bytes : sizes) {
      all.push_back(section_d_size(cfg, pool, bytes));
      const transfer_results& r = all.back();
      const auto b = static_cast<double>(bytes);
      auto both = [&](const summary& s) {
        return fmt_time(s) + " (" + fmt_rate(b / s.median) + ")";
      };
      std::cout << "| " << (bytes >> 20) << " MiB | " << both(r.memcpy_warm) << " | "
                << both(r.copy_fresh) << " | " << fmt_time(r.build) << " | " << both(r.arg_arrival)
                << " | " << both(r.result_back) << " | " << fmt_time(r.arg_total) << " | "
                << fmt_time(r.result_total) << " |\n"
                << std::flush;
    }
    std::cout << "\n";
    for (const transfer_results& r : all) {
      const std::string size = std::to_string(r.bytes >> 20) + " MiB";
      const auto b = static_cast<double>(r.bytes);
      const double warm = b / r.memcpy_warm.median;
      const double fresh = b / r.copy_fresh.median;
      std::cout << "- " << size << ": argument at "
                << fixed(100 * (b / r.arg_arrival.median) / warm, 0)
                << "% of memcpy into a touched buffer ("
                << fixed(100 * (b / r.arg_arrival.median) / fresh, 0)
                << "% of a copy into a new vector); result at "
                << fixed(100 * (b / r.result_back.median) / warm, 0) << "% ("
                << fixed(100 * (b / r.result_back.median) / fresh, 0) << "%)\n";
      if (r.bytes >= (std::size_t{1} << 30)) {
        add_target("(d) 1 GiB argument ≥ 50% of memcpy (touched buffer)",
                   fmt_rate(b / r.arg_arrival.median) + " vs " + fmt_rate(warm),
                   (b / r.arg_arrival.median) / warm, 0.5, false);
        add_target("(d) 1 GiB result ≥ 50% of memcpy (touched buffer)",
                   fmt_rate(b / r.result_back.median) + " vs " + fmt_rate(warm),
                   (b / r.result_back.median) / warm, 0.5, false);
      }
    }
    std::cout << "\n" << std::flush;
  }

  if (cfg.runs('p')) {
    const std::optional<nlohmann::json> peers = run_peers(cfg);
    std::cout << "## (p) CPython " << (peers ? peers->value("python", "?") : "not run")
              << ", 2 workers, fork start method\n\n";
    if (peers) {
      const summary ppe = from_json(peers->at("ppe_per_task_s"));
      const summary mp = from_json(peers->at("mp_per_task_s"));
      const summary ppe_start = from_json(peers->at("ppe_startup_s"));
      const summary mp_start = from_json(peers->at("mp_startup_s"));
      std::cout << "| case | CPython | crew::process_pool (same run) | CPython / crew |\n"
                << "|---|---|---|---|\n";
      auto line = [](const std::string& name, const summary& py, const summary& crew) {
        std::cout << "| " << name << " | " << fmt_time(py) << " | " << fmt_time(crew) << " | "
                  << (crew.valid() ? fmt_ratio(py.median / crew.median) : "n/a") << " |\n";
      };
      line("ProcessPoolExecutor: submit " + std::to_string(peers->value("tasks_ppe", 0)) +
               " no-ops, wait (per task) vs submit all/get all",
           ppe, a.process_submit);
      line("multiprocessing.Pool: apply_async " + std::to_string(peers->value("tasks_mp", 0)) +
               " no-ops, get (per task) vs submit all/get all",
           mp, a.process_submit);
      std::cout << "\n";
      if (a.process_submit.valid()) {
        add_target("(a) per task: ProcessPoolExecutor / process_pool ≥ 100×",
                   fmt_time(ppe.median) + " vs " + fmt_time(a.process_submit.median),
                   ppe.median / a.process_submit.median, 100, false);
        add_target("(a) per task: multiprocessing.Pool / process_pool (no target)",
                   fmt_time(mp.median) + " vs " + fmt_time(a.process_submit.median),
                   mp.median / a.process_submit.median, 0, false);
      }
      std::cout << "| start-up to first result | CPython |\n|---|---|\n"
                << "| ProcessPoolExecutor(2, fork) | " << fmt_time(ppe_start) << " |\n"
                << "| multiprocessing.Pool(2), fork | " << fmt_time(mp_start) << " |\n\n";
      peers_startup_ppe = ppe_start.median;
    }
  }

  // Targets that combine sections.
  if (startup_fork_median > 0 && peers_startup_ppe > 0) {
    add_target("(c) fork start-up: ProcessPoolExecutor(fork) / process_pool ≥ 5×",
               fmt_time(peers_startup_ppe) + " vs " + fmt_time(startup_fork_median),
               peers_startup_ppe / startup_fork_median, 5, false);
  }

  std::cout << "## Targets\n\n| target | measured | ratio | verdict |\n|---|---|---|---|\n";
  for (const target_row& t : targets) {
    std::cout << "| " << t.what << " | " << t.measured << " | " << fmt_ratio(t.ratio) << " | "
              << (t.goal == 0 ? "(reference)" : verdict(t)) << " |\n";
  }
  std::cout << "\n- load average at end: " << load_average() << "\n" << std::flush;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  crew::init(argc, argv);  // spawn and forkserver workers start here and never return
  config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_process_pool: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--quick") {
      cfg.quick = true;
    } else if (arg == "--only") {
      cfg.only = value();
    } else if (arg == "--python") {
      cfg.python = value();
    } else if (arg == "--peers") {
      cfg.peers = value();
    } else {
      std::fprintf(stderr,
                   "usage: bench_process_pool [--quick] [--only abcdefp] [--python PATH] "
                   "[--peers peers.py]\n");
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }
  // A crash test must not write core files: the pool's and the baseline's SIGSEGV alike.
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  crash_stamp = new (page) std::atomic<std::uint64_t>{0};
  try {
    return run(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_process_pool: %s\n", e.what());
    return 1;
  }
}
