// bench_start_methods: what each start method costs — fork, spawn, forkserver — in a program
// whose main() does not call crew::init (the default way to use crew).
//
//   bench_start_methods [--reps N] [--workers W] [--parent-mib M...]
//
// For each parent size M (MiB of memory the parent has written, default 0 and 512), prints:
//   cold start   a fresh process makes its first pool and gets a result (the forkserver is
//                exec'd here; measured in a child forked while the bench has one thread)
//   warm start   the next pool in the same process: W workers started, first result
//   replacement  a worker crashes; the next task's result arrives (one restart)
//   round trip   one no-op task on a warm pool (the transport; the same for every method)
// Each figure: median and range (min–max) over N repetitions (after one warm-up), in milliseconds
// except the round trip (µs); then each method's medians as ratios to fork's at the same parent
// size, measured in the same run. The output is markdown: the machine, the load average at the
// start and at the end, the command, the tables. scripts/bench-report.sh start-methods keeps one
// run in docs/benchmarks/start_methods.md, which docs/process_pool.md cites.
#include <signal.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "crew/process_pool.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

void noop() {}
int crash() {
  raise(SIGKILL);
  return 0;
}

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

struct figure {
  double median = 0;
  double min = 0;
  double max = 0;
};

figure summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  const double median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {median, v.front(), v.back()};
}

std::string load_average() {
  std::ifstream in{"/proc/loadavg"};
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

const char* name(crew::start_method m) {
  switch (m) {
    case crew::start_method::fork:
      return "fork";
    case crew::start_method::spawn:
      return "spawn";
    default:
      return "forkserver";
  }
}

crew::process_pool_options options(crew::start_method m, std::size_t workers) {
  crew::process_pool_options o;
  o.workers = workers;
  o.start = m;
  return o;
}

/// First pool of a fresh process: forked from this one (single-threaded here), it times its
/// pool and writes the figure to a pipe.
double cold_start(crew::start_method m, std::size_t workers) {
  int p[2];
  if (pipe(p) != 0) std::abort();
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    const auto start = clock_type::now();
    double ms = 0;
    {
      crew::process_pool pool{options(m, workers)};
      pool.submit<&noop>().get();
      ms = ms_since(start);
    }
    if (write(p[1], &ms, sizeof ms) != sizeof ms) std::_Exit(1);
    std::_Exit(0);
  }
  close(p[1]);
  double ms = -1;
  if (read(p[0], &ms, sizeof ms) != sizeof ms) ms = -1;
  close(p[0]);
  waitpid(pid, nullptr, 0);
  return ms;
}

double warm_start(crew::start_method m, std::size_t workers) {
  const auto start = clock_type::now();
  crew::process_pool pool{options(m, workers)};
  pool.submit<&noop>().get();
  return ms_since(start);
}

double replacement(crew::process_pool& pool) {
  const auto start = clock_type::now();
  (void)pool.submit<&crash>().result();
  pool.submit<&noop>().get();
  return ms_since(start);
}

double round_trip_us(crew::process_pool& pool) {
  constexpr int n = 2000;
  const auto start = clock_type::now();
  for (int i = 0; i < n; ++i) pool.submit<&noop>().get();
  return ms_since(start) * 1000.0 / n;
}

void describe_machine() {
  utsname u{};
  uname(&u);
  std::string model;
  std::ifstream cpu{"/proc/cpuinfo"};
  for (std::string line; std::getline(cpu, line);) {
    if (line.starts_with("model name")) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::printf("- machine: %s, %u hardware threads, Linux %s\n", model.c_str(),
              std::thread::hardware_concurrency(), u.release);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 15;
  std::size_t workers = 2;
  std::vector<std::size_t> sizes;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_start_methods: %s needs a value\n", arg.c_str());
      return 2;
    }
    const long value = std::atol(argv[++i]);
    if (value < 0 || (value == 0 && arg != "--parent-mib")) {
      std::fprintf(stderr, "bench_start_methods: bad value for %s\n", arg.c_str());
      return 2;
    }
    if (arg == "--reps") {
      reps = static_cast<int>(value);
    } else if (arg == "--workers") {
      workers = static_cast<std::size_t>(value);
    } else if (arg == "--parent-mib") {
      sizes.push_back(static_cast<std::size_t>(value));
    } else {
      std::fprintf(stderr,
                   "usage: bench_start_methods [--reps N] [--workers W] [--parent-mib M]\n");
      return 2;
    }
  }
  if (sizes.empty()) sizes = {0, 512};

  std::string command = "bench_start_methods";
  for (int i = 1; i < argc; ++i) command += std::string{" "} + argv[i];
  std::printf("# bench_start_methods: what each start method costs\n\n");
  std::printf("- command: `%s`\n", command.c_str());
  describe_machine();
  std::printf("- load average at start: %s\n", load_average().c_str());
  std::printf(
      "- workers per pool: %zu; %d repetitions after one warm-up; each cell: median (min–max)\n\n",
      workers, reps);
  std::printf(
      "| parent MiB | method | cold start ms | warm start ms | replacement ms | "
      "round trip µs |\n|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  const crew::start_method methods[] = {crew::start_method::fork, crew::start_method::spawn,
                                        crew::start_method::forkserver};
  std::vector<std::byte*> ballast;
  std::size_t held = 0;
  struct result {
    std::size_t mib;
    const char* method;
    figure cold, warm, replace, trip;
  };
  std::vector<result> results;
  for (const std::size_t mib : sizes) {
    // Grow the parent to `mib` MiB of written memory (what fork has to copy the page tables of).
    while (held < mib) {
      auto* chunk = static_cast<std::byte*>(std::malloc(std::size_t{1} << 20));
      std::memset(chunk, 1, std::size_t{1} << 20);
      ballast.push_back(chunk);
      ++held;
    }
    for (const crew::start_method m : methods) {
      std::vector<double> cold, warm, replace, trip;
      for (int r = 0; r <= reps; ++r) {
        const double c = cold_start(m, workers);
        const double w = warm_start(m, workers);
        if (r == 0) continue;  // warm-up
        cold.push_back(c);
        warm.push_back(w);
      }
      {
        crew::process_pool pool{options(m, workers)};
        pool.submit<&noop>().get();
        for (int r = 0; r <= reps; ++r) {
          const double x = replacement(pool);
          const double t = round_trip_us(pool);
          if (r == 0) continue;
          replace.push_back(x);
          trip.push_back(t);
        }
      }
      const figure c = summarize(cold), w = summarize(warm), x = summarize(replace),
                   t = summarize(trip);
      std::printf(
          "| %zu | %s | %.2f (%.2f–%.2f) | %.2f (%.2f–%.2f) | %.2f (%.2f–%.2f) | %.1f "
          "(%.1f–%.1f) |\n",
          mib, name(m), c.median, c.min, c.max, w.median, w.min, w.max, x.median, x.min, x.max,
          t.median, t.min, t.max);
      std::fflush(stdout);
      results.push_back({mib, name(m), c, w, x, t});
    }
  }
  for (std::byte* chunk : ballast) std::free(chunk);

  std::printf(
      "\nMedians as ratios to fork's at the same parent size (below 1: faster than fork):\n\n"
      "| parent MiB | method | cold start | warm start | replacement | round trip |\n"
      "|---|---|---|---|---|---|\n");
  for (const result& r : results) {
    const result* fork_row = nullptr;
    for (const result& f : results) {
      if (f.mib == r.mib && std::strcmp(f.method, "fork") == 0) fork_row = &f;
    }
    if (fork_row == nullptr || fork_row == &r) continue;
    std::printf("| %zu | %s / fork | %.2f× | %.2f× | %.2f× | %.2f× |\n", r.mib, r.method,
                r.cold.median / fork_row->cold.median, r.warm.median / fork_row->warm.median,
                r.replace.median / fork_row->replace.median, r.trip.median / fork_row->trip.median);
  }
  std::printf("\n- load average at end: %s\n", load_average().c_str());
  return 0;
}
