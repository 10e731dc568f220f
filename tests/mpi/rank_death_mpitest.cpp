// A serving rank dies inside a task. Run by CTest three ways (tests/mpi/CMakeLists.txt):
//   segfault   the task segfaults: the rank says which rank and task died, and the job ends
//   sigkill    the task is SIGKILLed (nothing can be said): mpirun names the rank and ends the job
//   recovery   under `mpirun --enable-recovery` with 4 ranks: a task given a retry kills its
//              rank and runs again on another; a task given none fails with error_kind::crashed;
//              the pool goes on with the rank that is left
// Prints "UNEXPECTED" / "recovery: FAILED" when crew does not behave as documented.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "crew/mpi_pool.hpp"

namespace {

int crash_rank(int how) {
  // A real fault would be undefined behaviour (and sanitizers stop it before it faults).
  raise(how == 1 ? SIGKILL : SIGSEGV);
  return how;
}

// Kills its rank the first time it runs (it leaves the marker file behind), returns 42 after.
int crash_first_time(const std::string& marker) {
  const int fd = open(marker.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
  if (fd >= 0) raise(SIGKILL);
  return 42;
}

int whose_pid(int) {
  return static_cast<int>(getpid());
}

int square(int x) {
  return x * x;
}

int run(const std::string& mode) {
  crew::mpi_pool pool{{.threads_per_rank = 1}};

  if (mode == "segfault" || mode == "sigkill") {
    auto r = pool.submit<&crash_rank>(mode == "sigkill" ? 1 : 0).result();
    // Rank 0 may see the death itself (a rank on its host) just before the runtime ends the job.
    std::printf("rank 0: %s\n", r ? "the task returned a value" : r.error().what());
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::seconds{60});
    std::printf("UNEXPECTED: the job was not ended after a rank died\n");
    return 0;
  }

  // recovery
  const int victim_pid = pool.submit<&whose_pid>(0).get();
  (void)victim_pid;
  bool ok = true;
  const std::string marker = "/tmp/crew-retry-marker-" + std::to_string(getpid());
  unlink(marker.c_str());
  auto retried =
      pool.with({.name = "retried", .retries = 1}).submit<&crash_first_time>(marker).result();
  unlink(marker.c_str());
  if (!retried || retried.value() != 42 || pool.stats().retried != 1) {
    std::printf("recovery: FAILED: the retried task: %s, retried %zu\n",
                retried ? "a wrong value" : retried.error().what(), pool.stats().retried);
    ok = false;
  } else {
    std::printf("the retried task ran again on another rank and returned 42\n");
  }
  auto doomed = pool.submit<&crash_rank>(1).result();
  if (doomed) {
    std::printf("recovery: FAILED: the crashing task returned a value\n");
    ok = false;
  } else if (doomed.error().kind() != crew::error_kind::crashed) {
    std::printf("recovery: FAILED: kind %s: %s\n",
                std::string{crew::to_string(doomed.error().kind())}.c_str(), doomed.error().what());
    ok = false;
  } else {
    std::printf("the crashed task's error: %s\n", doomed.error().what());
  }
  // The pool goes on with the rank that is left.
  std::vector<crew::future<int>> more;
  for (int i = 0; i < 100; ++i) more.push_back(pool.submit<&square>(i));
  long sum = 0;
  for (auto& f : more) {
    auto r = f.result();
    if (!r) {
      std::printf("recovery: FAILED: a later task failed: %s\n", r.error().what());
      ok = false;
      break;
    }
    sum += r.value();
  }
  const auto stats = pool.stats();
  if (ok && (sum != 328'350 || stats.lost_ranks != 2 || pool.concurrency() != 1)) {
    std::printf("recovery: FAILED: sum %ld, lost ranks %zu, concurrency %zu\n", sum,
                stats.lost_ranks, pool.concurrency());
    ok = false;
  }
  if (!ok) std::printf("recovery: FAILED\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "segfault";
  int code = 0;
  {
    crew::mpi_session session{argc, argv};
    code = run(mode);
  }
  // Printed only once the session has ended: MPI_Finalize must not wait for the dead rank.
  if (code == 0) std::printf("recovery: OK, the session ended\n");
  return code;
}
