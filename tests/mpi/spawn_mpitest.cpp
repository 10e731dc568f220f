// Dynamic ranks: a job of one process opens a pool of ranks it starts with MPI_Comm_spawn (the
// same binary; their mpi_session sees a parent and serves). Prints "spawn: OK" when the pool
// ran tasks on two spawned processes and closed cleanly, "spawn: FAILED ..." otherwise.
#include <unistd.h>

#include <cstdio>
#include <set>
#include <vector>

#include "crew/algorithm.hpp"
#include "crew/mpi_pool.hpp"

namespace {

int whose_pid(int) {
  return static_cast<int>(getpid());
}
int square(int x) {
  return x * x;
}

}  // namespace

int main(int argc, char** argv) {
  crew::mpi_session session{argc, argv};
  bool ok = true;
  for (int round = 0; round < 2; ++round) {  // a second pool spawns fresh ranks
    crew::mpi_pool pool{{.threads_per_rank = 2, .spawn = 2}};
    if (pool.concurrency() != 4) {
      std::printf("spawn: FAILED: concurrency %zu\n", pool.concurrency());
      ok = false;
    }
    std::vector<crew::future<int>> pids;
    for (int i = 0; i < 200; ++i) pids.push_back(pool.submit<&whose_pid>(i));
    std::set<int> seen;
    for (auto& f : pids) seen.insert(f.get());
    if (seen.size() != 2 || seen.count(static_cast<int>(getpid())) != 0) {
      std::printf("spawn: FAILED: tasks ran in %zu processes\n", seen.size());
      ok = false;
    }
    const std::vector<int> inputs{1, 2, 3, 4, 5};
    if (crew::map<&square>(pool, inputs) != std::vector<int>{1, 4, 9, 16, 25}) {
      std::printf("spawn: FAILED: map\n");
      ok = false;
    }
  }
  std::printf("spawn: %s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
