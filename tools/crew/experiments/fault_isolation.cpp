// Experiment 8 — fault isolation: one task segfaults, under threads and under processes.
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <new>
#include <thread>

#include "experiments/common.hpp"
#include "experiments/pools.hpp"
#include "experiments/registry.hpp"
#include "lab/child.hpp"

namespace crew::lab {
namespace {

struct alignas(64) counter {
  std::atomic<unsigned> next{0};
};

// A real invalid write (not raise()): the kernel delivers SIGSEGV exactly as for a bug.
void segfault() {
  void* page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  *static_cast<volatile int*>(page) = 1;
}

void no_core_dumps() {
  rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
}

// A pool of `w` workers running `tasks` tasks of ~2 ms; task `bad` segfaults. Each finished
// task reports one byte on `fd` the moment it is done, so the bench sees what got out before
// the crash. Runs inside a sacrificial child of the bench.
void pool_body(bool processes, unsigned w, unsigned tasks, unsigned bad, int fd) {
  no_core_dumps();
  auto* q = new (map_shared(sizeof(counter))) counter{};
  timed_team(processes, w, [&](unsigned, const std::function<void()>& go) {
    go();
    for (unsigned i; (i = q->next.fetch_add(1, std::memory_order_relaxed)) < tasks;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (i == bad) segfault();
      const char c = 1;
      write_all(fd, &c, 1);
    }
  });
}

result run(const config& cfg, progress& prog) {
  result r;
  const unsigned w = std::max(2u, cfg.cores);
  const unsigned tasks = 40, bad = 10;
  const int runs = std::min(cfg.repeat, 3);
  struct model {
    const char* name;
    bool processes;
    series completed, survived;
  };
  model models[] = {{"threads", false, {}, {}}, {"processes", true, {}, {}}};
  for (auto& m : models) {
    prog.step(std::string(m.name) + ": a task segfaults");
    m.completed.name = std::string(m.name) + ": tasks completed of " + std::to_string(tasks);
    m.completed.unit = "count";
    m.survived.name = std::string(m.name) + ": pool process survived (1 = yes)";
    m.survived.unit = "count";
    for (int i = 0; i < runs; ++i) {
      auto out = run_in_child(
          [&](int fd) {
            pool_body(m.processes, w, tasks, bad, fd);
            return std::string{};
          },
          60);
      m.completed.samples.push_back(static_cast<double>(out.output.size()));
      m.survived.samples.push_back(out.ok() ? 1 : 0);
      if (out.signal != 0 && out.signal != SIGSEGV)
        m.completed.note = "the child died of signal " + std::to_string(out.signal);
    }
    r.data.push_back(m.completed);
    r.data.push_back(m.survived);
  }
  r.data.push_back(pools::thread_pool_fault(cfg, w, tasks));
  r.data.push_back(pools::process_pool_fault(cfg, w, tasks));

  r.method = std::to_string(tasks) + " tasks of 2 ms on " + std::to_string(w) + " workers; task " +
             std::to_string(bad) +
             " writes to a PROT_NONE page. The whole pool runs in a sacrificial child of the "
             "bench; each finished task reports through a pipe at once. Threads share one "
             "process; processes are forked workers, and the pool keeps drawing tasks with the "
             "workers still alive.";
  r.chart = {chart_kind::bars, "", "tasks completed / pool survived", "", false, false, false};
  const double thr = models[0].completed.stats().median, proc = models[1].completed.stats().median;
  const bool thr_died = models[0].survived.stats().max == 0;
  const bool proc_lived = models[1].survived.stats().min == 1;
  r.derived.columns = {"model", "completed", "lost", "pool survived"};
  r.derived.rows.push_back({"threads", format_value(thr, "count"),
                            format_value(tasks - thr, "count"), thr_died ? "no" : "yes"});
  r.derived.rows.push_back({"processes", format_value(proc, "count"),
                            format_value(tasks - proc, "count"), proc_lived ? "yes" : "no"});
  r.measured = "threads: " + format_value(tasks - thr, "count") + " of " + std::to_string(tasks) +
               " tasks lost, pool " + (thr_died ? "died" : "lived") +
               "; processes: " + format_value(tasks - proc, "count") + " lost, pool " +
               (proc_lived ? "lived" : "died");
  const bool a = thr_died && tasks - thr > 1, b = proc_lived && tasks - proc <= 1;
  r.verdict = a && b   ? verdict_kind::confirmed
              : a || b ? verdict_kind::mixed
                       : verdict_kind::refuted;
  r.verdict_text = std::string(a ? "the segfault took every thread and pending task with it"
                                 : "the thread pool survived, unexpectedly") +
                   "; " +
                   (b ? "under processes only the faulting task was lost"
                      : "processes lost more than the faulting task");
  return r;
}

}  // namespace

experiment fault_isolation_experiment() {
  return {"fault", "Fault isolation",
          "A task that segfaults takes a whole thread pool down with every pending task; in a "
          "process pool only that task is lost.",
          run};
}

}  // namespace crew::lab
