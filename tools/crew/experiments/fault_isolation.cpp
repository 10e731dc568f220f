// Experiment 8 — fault isolation: one task segfaults, under threads and under processes, raw
// (std::thread / fork) and with crew's own thread_pool and process_pool.
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
#include "experiments/fault_isolation.hpp"
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

pools::fault_figures raw_pool(const char* name, bool processes, unsigned w, unsigned tasks,
                              unsigned bad, int runs) {
  pools::fault_figures f;
  f.completed.name = std::string(name) + ": tasks completed of " + std::to_string(tasks);
  f.completed.unit = "count";
  f.survived.name = std::string(name) + ": pool process survived (1 = yes)";
  f.survived.unit = "count";
  for (int i = 0; i < runs; ++i) {
    auto out = run_in_child(
        [&](int fd) {
          pool_body(processes, w, tasks, bad, fd);
          return std::string{};
        },
        60);
    f.completed.samples.push_back(static_cast<double>(out.output.size()));
    f.survived.samples.push_back(out.ok() ? 1 : 0);
    if (out.signal != 0 && out.signal != SIGSEGV)
      f.completed.note = "the child died of signal " + std::to_string(out.signal);
    ++f.runs;
  }
  return f;
}

result run(const config& cfg, progress& prog) {
  result r;
  const unsigned w = std::max(2u, cfg.cores);
  const unsigned tasks = 40, bad = 10;
  const int runs = std::max(1, std::min(cfg.repeat, 3));
  prog.step("threads: a task segfaults");
  const auto thr = raw_pool("threads", false, w, tasks, bad, runs);
  prog.step("processes: a task segfaults");
  const auto proc = raw_pool("processes", true, w, tasks, bad, runs);
  prog.step("crew thread_pool: a task segfaults");
  const auto crew_thr = pools::thread_pool_fault(cfg, w, tasks, bad);
  prog.step("crew process_pool: a task segfaults");
  const auto crew_proc = pools::process_pool_fault(cfg, w, tasks, bad);
  for (const auto* f : {&thr, &proc, &crew_thr, &crew_proc}) {
    r.data.push_back(f->completed);
    r.data.push_back(f->survived);
  }

  r.method = std::to_string(tasks) + " tasks of 2 ms on " + std::to_string(w) + " workers; task " +
             std::to_string(bad) +
             " writes to a PROT_NONE page. Every pool runs in a sacrificial child of the bench, " +
             std::to_string(runs) +
             " runs each. Raw models: threads, or forked processes, drawing tasks from a shared "
             "counter; each finished task reports through a pipe at once. crew's pools: a "
             "crew::thread_pool whose tasks report through the pipe as they finish (the "
             "segfault ends the whole child, so what was reported is what got out), and a "
             "crew::process_pool (fork start method, no retries) whose owner counts the futures "
             "that hold a value and checks that the faulting one failed as `crashed`; the pool "
             "replaces the dead worker and carries on.";
  r.chart = {chart_kind::bars, "", "tasks completed / pool survived", "", false, false, false};
  r.derived.columns = {"model", "completed", "lost", "pool survived"};
  for (const auto* f : {&thr, &proc, &crew_thr, &crew_proc}) {
    const std::string model = f->completed.name.substr(0, f->completed.name.find(':'));
    const double done = f->completed.has_data() ? f->completed.stats().median : NAN;
    const bool lived = f->survived.has_data() && f->survived.stats().min == 1;
    const bool died = f->survived.has_data() && f->survived.stats().max == 0;
    r.derived.rows.push_back({model, format_value(done, "count"),
                              format_value(tasks - done, "count"),
                              lived  ? "yes"
                              : died ? "no"
                                     : "some runs"});
  }
  if (crew_proc.runs > 0)
    r.notes.push_back("crew process_pool: " + std::to_string(crew_proc.crashed_futures) + " of " +
                      std::to_string(crew_proc.runs) +
                      " faulting futures failed as `crashed`; the pool started " +
                      std::to_string(crew_proc.restarts) + " replacement workers");

  // crew's own pools decide when both were measured; the raw models otherwise.
  const auto crew_j = judge_fault(crew_thr, crew_proc, tasks, true);
  const auto raw_j = judge_fault(thr, proc, tasks, false);
  const bool use_crew = crew_j.verdict != verdict_kind::not_measured;
  const auto& j = use_crew ? crew_j : raw_j;
  r.verdict = j.verdict;
  r.verdict_text = j.text;
  r.measured = j.measured;
  if (use_crew) {
    r.notes.push_back("raw threads / forked processes: " + raw_j.measured);
  } else {
    r.notes.push_back("crew's pools were not measured; the verdict is the raw models'");
  }
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

namespace crew::lab {

fault_judgement judge_fault(const pools::fault_figures& threads,
                            const pools::fault_figures& processes, unsigned tasks,
                            bool crew_pools) {
  fault_judgement j;
  const std::string thr_name = crew_pools ? "crew thread_pool" : "threads";
  const std::string proc_name = crew_pools ? "crew process_pool" : "processes";
  if (!threads.completed.has_data() || !threads.survived.has_data() ||
      !processes.completed.has_data() || !processes.survived.has_data()) {
    j.text = "a model was not measured";
    j.measured = "n/a";
    return j;
  }
  const double thr_lost = tasks - threads.completed.stats().median;
  const double proc_lost = tasks - processes.completed.stats().median;
  const bool thr_died = threads.survived.stats().max == 0;
  const bool proc_lived = processes.survived.stats().min == 1;
  const bool crashed_reported = !crew_pools || processes.crashed_futures == processes.runs;
  j.measured = thr_name + ": " + format_value(thr_lost, "count") + " of " + std::to_string(tasks) +
               " tasks lost, pool " + (thr_died ? "died" : "lived") + "; " + proc_name + ": " +
               format_value(proc_lost, "count") + " lost, pool " + (proc_lived ? "lived" : "died");
  const bool a = thr_died && thr_lost > 1;
  const bool b = proc_lived && proc_lost == 1 && crashed_reported;
  j.verdict = a && b   ? verdict_kind::confirmed
              : a || b ? verdict_kind::mixed
                       : verdict_kind::refuted;
  std::string second;
  if (b) {
    second = "under " + proc_name + " only the faulting task was lost" +
             (crew_pools ? ", its future failed as `crashed`" : "");
  } else if (proc_lived && proc_lost == 1) {
    second = "under " + proc_name + " one task was lost, but its future did not say `crashed`";
  } else if (proc_lived && proc_lost < 1) {
    second = "under " + proc_name + " no task was lost: the fault did not happen";
  } else {
    second = proc_name + " lost more than the faulting task";
  }
  j.text = (a ? "the segfault took the " + thr_name + " and every pending task with it"
              : "the " + thr_name + " survived, unexpectedly") +
           "; " + second;
  return j;
}

}  // namespace crew::lab
