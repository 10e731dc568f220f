// bench_exceptions: what rebuilding exceptions on the caller's side costs (docs/api.md,
// "Exceptions across processes").
//
//   bench_exceptions [--reps N] [--tasks T]
//
// One round trip = submit<&fn>(i) then get() on a process_pool of one worker, T of them in a row,
// for four tasks: one that returns its argument (the success path), one that throws
// std::invalid_argument (rebuilt: get() throws std::invalid_argument), one that throws a user type
// (rebuilt when registered) and one that throws a type nobody registered (get() throws
// crew::task_error). Each measurement runs in a fresh process forked from this one, either as-is
// ("plain") or after registering 64 extra user exception types with crew::register_exception
// ("64 registered"); plain and registered processes alternate, N of each, so load from elsewhere
// hits both alike. Every caught exception's type is checked; a wrong one ends the run with an
// error. Output: markdown with the machine, the load average at the start and at the end, the
// command, medians and ranges (µs per round trip), and ratios measured in the same run.
// scripts/bench-report.sh exceptions keeps one run in docs/benchmarks/exceptions.md.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../common/machine.hpp"
#include "crew/exception.hpp"
#include "crew/process_pool.hpp"

namespace {

using crew_bench::figure;
using crew_bench::load_average;
using crew_bench::machine;
using crew_bench::summarize;

using clock_type = std::chrono::steady_clock;

template <int N>
struct user_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
constexpr int extra_types = 64;
using last_user_error = user_error<extra_types - 1>;

struct unregistered_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int returns(int x) {
  return x;
}
int throws_invalid_argument(int x) {
  throw std::invalid_argument("bad argument " + std::to_string(x));
}
int throws_user_error(int x) {
  throw last_user_error("user error " + std::to_string(x));
}
int throws_unregistered(int x) {
  throw unregistered_error("unregistered " + std::to_string(x));
}

template <int... I>
void register_all(std::integer_sequence<int, I...>) {
  (crew::register_exception<user_error<I>>(), ...);
}

enum which { success, invalid_argument, user_type, unregistered, cases };
constexpr std::array<const char*, cases> case_names = {
    "success: the task returns an `int`",
    "failure: `std::invalid_argument` (standard, rebuilt)",
    "failure: a user type (rebuilt once registered)",
    "failure: an unregistered type (arrives as `crew::task_error`)",
};

// What get() must throw for each failing case; `registered` says whether user_error<63> is known.
template <auto Fn, class Expected>
double round_trips_us(crew::process_pool& pool, int tasks) {
  const auto start = clock_type::now();
  for (int i = 0; i < tasks; ++i) {
    auto future = pool.submit<Fn>(i);
    if constexpr (std::is_void_v<Expected>) {
      if (future.get() != i) std::_Exit(3);
    } else {
      try {
        (void)future.get();
        std::_Exit(4);  // should have thrown
      } catch (const Expected&) {
      } catch (...) {
        std::_Exit(5);  // rebuilt as the wrong type
      }
    }
  }
  return std::chrono::duration<double, std::micro>(clock_type::now() - start).count() / tasks;
}

/// One measurement in a fresh process: µs per round trip for each case.
std::array<double, cases> measure(bool registered, int tasks) {
  int p[2];
  if (pipe(p) != 0) std::abort();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    close(p[0]);
    if (registered) register_all(std::make_integer_sequence<int, extra_types>{});
    std::array<double, cases> us{};
    {
      crew::process_pool_options options;
      options.workers = 1;
      crew::process_pool pool{options};
      for (int i = 0; i < 200; ++i) (void)pool.submit<&returns>(i).get();  // warm-up
      us[success] = round_trips_us<&returns, void>(pool, tasks);
      us[invalid_argument] =
          round_trips_us<&throws_invalid_argument, std::invalid_argument>(pool, tasks);
      us[user_type] = registered
                          ? round_trips_us<&throws_user_error, last_user_error>(pool, tasks)
                          : round_trips_us<&throws_user_error, crew::task_error>(pool, tasks);
      us[unregistered] = round_trips_us<&throws_unregistered, crew::task_error>(pool, tasks);
    }
    if (write(p[1], us.data(), sizeof us) != static_cast<ssize_t>(sizeof us)) std::_Exit(1);
    std::_Exit(0);
  }
  close(p[1]);
  std::array<double, cases> us{};
  const bool complete = read(p[0], us.data(), sizeof us) == static_cast<ssize_t>(sizeof us);
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!complete || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr,
                 "bench_exceptions: a measuring process failed (exit status %d; 3: wrong value, "
                 "4: no exception, 5: an exception of the wrong type)\n",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    std::exit(1);
  }
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 21;
  int tasks = 2000;
  std::string command = "bench_exceptions";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg != "--reps" && arg != "--tasks") || i + 1 >= argc) {
      std::fprintf(stderr, "usage: bench_exceptions [--reps N] [--tasks T]\n");
      return 2;
    }
    const long value = std::atol(argv[++i]);
    if (value < 1 || value > 1'000'000) {
      std::fprintf(stderr, "bench_exceptions: %s needs a value from 1 to 1000000\n", arg.c_str());
      return 2;
    }
    (arg == "--reps" ? reps : tasks) = static_cast<int>(value);
    command += " " + arg + " " + argv[i];
  }

  std::printf("# bench_exceptions: rebuilding exceptions on the caller's side\n\n");
  std::printf("- command: `%s`\n- machine: %s\n- load average at start: %s\n", command.c_str(),
              machine().c_str(), load_average().c_str());
  std::printf(
      "- process_pool of 1 worker (default start method); %d round trips per case per process; %d "
      "processes of each kind, alternating; each cell: median (min–max) of the per-process means, "
      "µs per round trip\n\n",
      tasks, reps);
  std::fflush(stdout);

  std::array<std::vector<double>, cases> plain, registered, paired;
  for (int r = 0; r < reps; ++r) {
    // Alternate which kind goes first, so a drift in load does not favour one.
    std::array<double, cases> a{}, b{};
    if (r % 2 == 0) {
      a = measure(false, tasks);
      b = measure(true, tasks);
    } else {
      b = measure(true, tasks);
      a = measure(false, tasks);
    }
    for (int c = 0; c < cases; ++c) {
      plain[c].push_back(a[c]);
      registered[c].push_back(b[c]);
      paired[c].push_back(b[c] / a[c]);
    }
  }

  std::printf(
      "| case | plain | 64 registered types | 64 registered / plain: ratio of the medians | "
      "the same, paired by repetition: median (min–max) |\n|---|---|---|---|---|\n");
  for (int c = 0; c < cases; ++c) {
    const figure a = summarize(plain[c]), b = summarize(registered[c]), q = summarize(paired[c]);
    std::printf("| %s | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | %.2f× | %.2f× (%.2f–%.2f) |\n",
                case_names[c], a.median, a.min, a.max, b.median, b.min, b.max, b.median / a.median,
                q.median, q.min, q.max);
  }
  std::printf(
      "\nIn the plain processes the user type is not registered, so it arrives as "
      "`crew::task_error`; with the 64 types registered it is rebuilt as itself.\n\n"
      "Failure paths against the success path of the same processes (ratio of the medians):\n\n"
      "| case | plain | 64 registered types |\n|---|---|---|\n");
  const double ok_a = summarize(plain[success]).median;
  const double ok_b = summarize(registered[success]).median;
  for (int c = invalid_argument; c < cases; ++c) {
    std::printf("| %s | %.2f× | %.2f× |\n", case_names[c], summarize(plain[c]).median / ok_a,
                summarize(registered[c]).median / ok_b);
  }
  std::printf("\n- load average at end: %s\n", load_average().c_str());
  return 0;
}
