// bench_sync: the uncontended cost of crew's process-shared synchronisation against the
// standard library's in-process versions (docs/sync.md).
//
//   bench_sync [--reps N] [--ops M]
//
// One thread, no contention: M lock+unlock pairs of std::mutex and crew::process_mutex, M
// release+acquire pairs of std::counting_semaphore and crew::process_semaphore, M fetch_adds of
// std::atomic<int64_t> and crew::shared_counter. The series alternate, N runs each; a figure is
// nanoseconds per pair (or per operation). Output: markdown with the machine, the load at start
// and end, the command, medians and ranges, and ratios from the same run.
// scripts/bench-report.sh sync keeps one run in docs/benchmarks/sync.md.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <semaphore>
#include <string>
#include <vector>

#include "../common/machine.hpp"
#include "crew/sync.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

template <class Body>
double ns_per_op(std::uint64_t ops, Body body) {
  const auto t0 = clock_type::now();
  for (std::uint64_t i = 0; i < ops; ++i) body();
  return std::chrono::duration<double, std::nano>(clock_type::now() - t0).count() /
         static_cast<double>(ops);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 11;
  std::uint64_t ops = 5'000'000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (arg == "--ops" && i + 1 < argc) {
      ops = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: bench_sync [--reps N] [--ops M]\n");
      return 2;
    }
  }
  if (reps < 1 || ops < 1) {
    std::fprintf(stderr, "bench_sync: --reps and --ops must be at least 1\n");
    return 2;
  }
  const std::string load_before = crew_bench::load_average();

  std::mutex std_mutex;
  auto crew_mutex = crew::process_mutex::create();
  std::counting_semaphore<> std_semaphore{0};
  auto crew_semaphore = crew::process_semaphore::create(0);
  std::atomic<std::int64_t> std_counter{0};
  auto crew_counter = crew::shared_counter::create();

  struct series {
    const char* name;
    std::function<double()> run;
    std::vector<double> ns;
  };
  std::vector<series> all = {
      {"std::mutex lock+unlock",
       [&] {
         return ns_per_op(ops, [&] {
           std_mutex.lock();
           std_mutex.unlock();
         });
       },
       {}},
      {"crew::process_mutex lock+unlock",
       [&] {
         return ns_per_op(ops, [&] {
           crew_mutex.lock();
           crew_mutex.unlock();
         });
       },
       {}},
      {"std::counting_semaphore release+acquire",
       [&] {
         return ns_per_op(ops, [&] {
           std_semaphore.release();
           std_semaphore.acquire();
         });
       },
       {}},
      {"crew::process_semaphore release+acquire",
       [&] {
         return ns_per_op(ops, [&] {
           crew_semaphore.release();
           crew_semaphore.acquire();
         });
       },
       {}},
      {"std::atomic<int64_t> fetch_add",
       [&] { return ns_per_op(ops, [&] { std_counter.fetch_add(1); }); },
       {}},
      {"crew::shared_counter fetch_add",
       [&] { return ns_per_op(ops, [&] { crew_counter.fetch_add(1); }); },
       {}},
  };
  for (int r = 0; r < reps; ++r) {
    for (auto& s : all) s.ns.push_back(s.run());
  }

  std::printf("# crew/sync.hpp against std::, uncontended\n\n");
  std::printf("Machine: %s.  \n", crew_bench::machine().c_str());
  std::printf("Load average: %s at the start, %s at the end.  \n", load_before.c_str(),
              crew_bench::load_average().c_str());
  std::printf(
      "Command: `bench_sync --reps %d --ops %llu`: one thread, no contention; %d runs of "
      "each series, alternating.\n\n",
      reps, static_cast<unsigned long long>(ops), reps);
  std::printf("| series | ns (median) | min | max |\n| --- | ---: | ---: | ---: |\n");
  std::map<std::string, double> median;
  for (auto& s : all) {
    const auto f = crew_bench::summarize(s.ns);
    median[s.name] = f.median;
    std::printf("| %s | %.1f | %.1f | %.1f |\n", s.name, f.median, f.min, f.max);
  }
  std::printf("\n| comparison | ratio | target |\n| --- | ---: | --- |\n");
  std::printf("| crew::process_mutex / std::mutex | %.2fx | <= 1.5x |\n",
              median["crew::process_mutex lock+unlock"] / median["std::mutex lock+unlock"]);
  std::printf("| crew::process_semaphore / std::counting_semaphore | %.2fx | |\n",
              median["crew::process_semaphore release+acquire"] /
                  median["std::counting_semaphore release+acquire"]);
  std::printf("| crew::shared_counter / std::atomic | %.2fx | |\n",
              median["crew::shared_counter fetch_add"] / median["std::atomic<int64_t> fetch_add"]);
  return 0;
}
