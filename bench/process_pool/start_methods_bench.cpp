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
// Each figure: median and min over N repetitions (after one warm-up), in milliseconds except
// the round trip (µs). The machine is described in the header of the output.
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
};

figure summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front()};
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
  std::printf("machine: %s, %u hardware threads, Linux %s\n", model.c_str(),
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

  describe_machine();
  std::printf("workers per pool: %zu; %d repetitions, median (min)\n\n", workers, reps);
  std::printf(
      "| parent MiB | method | cold start ms | warm start ms | replacement ms | "
      "round trip µs |\n|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  const crew::start_method methods[] = {crew::start_method::fork, crew::start_method::spawn,
                                        crew::start_method::forkserver};
  std::vector<std::byte*> ballast;
  std::size_t held = 0;
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
      std::printf("| %zu | %s | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.1f (%.1f) |\n", mib,
                  name(m), c.median, c.min, w.median, w.min, x.median, x.min, t.median, t.min);
      std::fflush(stdout);
    }
  }
  for (std::byte* chunk : ballast) std::free(chunk);
  return 0;
}
