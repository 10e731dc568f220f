// crew::calibrate_machine_costs: this machine's prices for threads and processes, measured with
// crew's own thread_pool and process_pool: a few hundred short timings.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

#include "crew/advise.hpp"
#include "crew/process_pool.hpp"
#include "crew/thread_pool.hpp"

namespace crew::detail {

/// The calibration's process_pool task: receives a message, answers with its size.
std::size_t calibration_echo(const std::vector<std::byte>& message) {
  return message.size();
}

}  // namespace crew::detail

namespace crew {
namespace {

using clock = std::chrono::steady_clock;

double since(clock::time_point t0) noexcept {
  return std::chrono::duration<double>(clock::now() - t0).count();
}

// The median over `blocks` timings of `per_block` repetitions, per repetition: the median
// drops a block that another process on the machine happened to interrupt.
template <class F>
double per_repetition(int blocks, int per_block, F&& body) {
  std::vector<double> t;
  for (int b = 0; b < blocks; ++b) {
    const auto t0 = clock::now();
    for (int i = 0; i < per_block; ++i) body();
    t.push_back(since(t0) / per_block);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

unsigned usable_cores() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

void fork_and_wait() {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "crew::advise: fork");
  if (pid == 0) ::_exit(0);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

machine_costs calibrate_machine_costs() {
  machine_costs c;
  c.source = "calibration (crew::calibrate_machine_costs)";
  c.cores = usable_cores();
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  c.memory_bytes = pages > 0 && page > 0 ? double(pages) * double(page) : 0;
  c.hybrid_built = true;  // crew::hybrid_pool is part of this library
  c.mpi_built = false;    // not on one machine: crew::auto_pool runs MPI advice as processes

  // Process start first, while this process has no threads of its own making.
  c.process_start_seconds = per_repetition(3, 10, fork_and_wait);
  c.thread_start_seconds = per_repetition(3, 50, [] { std::thread([] {}).join(); });

  {
    // A warm process_pool: the round trip of a tiny task, and the extra time of a large
    // argument, which crosses through shared memory the way a real task's would.
    process_pool_options o;
    o.workers = 1;
    process_pool pool(o);
    const std::vector<std::byte> small(16);
    const std::vector<std::byte> large(std::size_t{4} << 20);
    for (int i = 0; i < 20; ++i) (void)pool.submit<&detail::calibration_echo>(small).get();
    c.process_handoff_seconds =
        per_repetition(5, 40, [&] { (void)pool.submit<&detail::calibration_echo>(small).get(); });
    const double with_large =
        per_repetition(5, 2, [&] { (void)pool.submit<&detail::calibration_echo>(large).get(); });
    const double extra = with_large - c.process_handoff_seconds;
    if (extra > 0) c.copy_bandwidth = double(large.size()) / extra;
    pool.shutdown();
  }
  {
    // wait_for, not get(): get() would run a task that has not started on this thread, and
    // measure no hand-off at all (crew/thread_pool.hpp).
    thread_pool pool(1);
    for (int i = 0; i < 20; ++i) (void)pool.submit([] {}).wait_for(std::chrono::seconds(10));
    c.thread_handoff_seconds =
        per_repetition(5, 40, [&] { (void)pool.submit([] {}).wait_for(std::chrono::seconds(10)); });
  }
  {
    std::vector<char> from(std::size_t{16} << 20, 'x');
    std::vector<char> to(from.size(), 0);
    const double t =
        per_repetition(5, 1, [&] { std::memcpy(to.data(), from.data(), from.size()); });
    // Reading the copy keeps the compiler from dropping it.
    if (t > 0 && to[to.size() / 2] == 'x') c.shared_bandwidth = double(from.size()) / t;
  }
  c.assumed = {"idle thread memory", "idle process memory"};
  return c;
}

}  // namespace crew
