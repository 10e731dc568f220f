// The cost of one task on crew::mpi_pool against raw MPI, on the same job (bench/mpi/run.sh runs
// it next to the mpi4py.futures peer and prints the ratios). Run with 3 ranks:
//   raw_roundtrip_us        MPI_Send + MPI_Recv of 8 bytes, rank 0 <-> rank 1, per round trip
//   crew_roundtrip_us       submit<&noop>(i).get() on a pool of one rank (rank 1), per task
//   crew_throughput_per_s   N no-op tasks submitted at once, then collected, on every rank
// Each figure is measured `repeats` times (after a warm-up); the machine is shared, so each is
// reported as the median and the range. Output: one "name median min max" line per figure, on
// rank 0.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../common/machine.hpp"
#include "crew/mpi_pool.hpp"

namespace {

using crew_bench::figure;
using crew_bench::summarize;

using clock_type = std::chrono::steady_clock;

int noop(int x) {
  return x;
}

void print(const char* name, figure f, const char* format) {
  std::printf("%s ", name);
  std::printf(format, f.median);
  std::printf(" ");
  std::printf(format, f.min);
  std::printf(" ");
  std::printf(format, f.max);
  std::printf("\n");
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

double raw_roundtrip_us(int rank, int iterations) {
  std::uint64_t word = 0;
  MPI_Barrier(MPI_COMM_WORLD);
  const auto start = clock_type::now();
  for (int i = 0; i < iterations; ++i) {
    if (rank == 0) {
      MPI_Send(&word, 8, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
      MPI_Recv(&word, 8, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
      MPI_Recv(&word, 8, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(&word, 8, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
    }
  }
  const double us = seconds_since(start) * 1e6 / iterations;
  MPI_Barrier(MPI_COMM_WORLD);
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  int roundtrips = 20'000;
  int tasks = 200'000;
  int repeats = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--roundtrips") == 0) roundtrips = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--tasks") == 0) tasks = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--repeats") == 0) repeats = std::atoi(argv[i + 1]);
  }
  // MPI first, for the raw figure on every rank; the session then takes the same MPI over.
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2) {
    if (rank == 0) std::fprintf(stderr, "run with mpirun -n 2 or more\n");
    MPI_Finalize();
    return 2;
  }
  if (repeats < 1) repeats = 1;
  (void)raw_roundtrip_us(rank, roundtrips / 10 + 1);  // warm-up
  std::vector<double> raw;
  for (int r = 0; r < repeats; ++r) raw.push_back(raw_roundtrip_us(rank, roundtrips));

  {
    crew::mpi_session session{argc, argv};  // ranks 1.. serve from here on
    std::vector<double> roundtrip;
    {
      crew::mpi_pool pool{{.threads_per_rank = 1, .ranks = 1}};
      for (int i = 0; i < 1000; ++i) (void)pool.submit<&noop>(i).get();  // warm-up
      for (int r = 0; r < repeats; ++r) {
        const auto start = clock_type::now();
        for (int i = 0; i < roundtrips; ++i) {
          if (pool.submit<&noop>(i).get() != i) std::abort();
        }
        roundtrip.push_back(seconds_since(start) * 1e6 / roundtrips);
      }
    }
    std::vector<double> throughput;
    {
      crew::mpi_pool pool{{.threads_per_rank = 1}};
      std::vector<crew::future<int>> futures;
      futures.reserve(static_cast<std::size_t>(tasks));
      for (int r = 0; r < repeats; ++r) {
        futures.clear();
        const auto start = clock_type::now();
        for (int i = 0; i < tasks; ++i) futures.push_back(pool.submit<&noop>(i));
        long long sum = 0;
        for (auto& f : futures) sum += f.get();
        const double rate = tasks / seconds_since(start);
        if (sum != static_cast<long long>(tasks) * (tasks - 1) / 2) std::abort();
        throughput.push_back(rate);
      }
      std::printf("serving_ranks %zu\n", pool.ranks().size());
    }
    print("raw_roundtrip_us", summarize(raw), "%.3f");
    print("crew_roundtrip_us", summarize(roundtrip), "%.3f");
    print("crew_throughput_per_s", summarize(throughput), "%.0f");
    std::fflush(stdout);
  }
  MPI_Finalize();
  return 0;
}
