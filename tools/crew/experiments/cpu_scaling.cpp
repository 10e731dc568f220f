// Experiment 5 — CPU-bound scaling: one compute kernel on 1 … 2×cores workers.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <new>

#include "experiments/common.hpp"
#include "experiments/kernels.hpp"
#include "experiments/pools.hpp"
#include "experiments/registry.hpp"

namespace crew::lab {
namespace {

struct alignas(64) work_queue {
  std::atomic<unsigned> next{0};
  std::atomic<std::uint64_t> sink{0};
};

double run_team(bool processes, unsigned workers, unsigned tasks, std::uint64_t iters) {
  auto* q = new (map_shared(sizeof(work_queue))) work_queue{};
  const double t = timed_team(processes, workers, [&](unsigned, const std::function<void()>& go) {
    go();
    std::uint64_t acc = 0;
    for (unsigned i; (i = q->next.fetch_add(1, std::memory_order_relaxed)) < tasks;)
      acc += cpu_kernel(iters, i);
    q->sink.fetch_add(acc, std::memory_order_relaxed);
  });
  unmap(q, sizeof(work_queue));
  return t;
}

// Where the "scales to the cores" half of the claim is read: the largest worker count measured
// that does not exceed the cores (the cores themselves with the default counts).
unsigned reference_workers(const config& cfg) {
  unsigned ref = 0;
  for (unsigned w : cfg.workers)
    if (w <= cfg.cores) ref = std::max(ref, w);
  return ref;
}

result run(const config& cfg, progress& prog) {
  result r;
  const unsigned tasks = scaling_tasks(cfg.workers);
  const double task_s = cfg.quick ? 0.002 : 0.01;
  prog.step("calibrating the kernel");
  const std::uint64_t iters = calibrate_cpu_kernel(task_s);

  prog.step("sequential");
  series seq = measure(
      cfg, "sequential", "s",
      [&] {
        const auto t0 = clock::now();
        std::uint64_t acc = 0;
        for (unsigned i = 0; i < tasks; ++i) acc += cpu_kernel(iters, i);
        volatile std::uint64_t sink = acc;
        (void)sink;
        return seconds_since(t0);
      },
      "sequential", 1);
  const double t1 = seq.stats().median;
  r.data.push_back(seq);
  for (unsigned w : cfg.workers) {
    const std::size_t first = r.data.size();
    prog.step("threads × " + std::to_string(w));
    r.data.push_back(measure(
        cfg, "threads (std::thread) × " + std::to_string(w), "s",
        [&] { return run_team(false, w, tasks, iters); }, "threads (std::thread)", w));
    prog.step("processes × " + std::to_string(w));
    r.data.push_back(measure(
        cfg, "processes (fork) × " + std::to_string(w), "s",
        [&] { return run_team(true, w, tasks, iters); }, "processes (fork)", w));
    prog.step("crew thread_pool × " + std::to_string(w));
    r.data.push_back(pools::thread_pool_cpu(cfg, w, tasks, iters));
    prog.step("crew process_pool × " + std::to_string(w));
    r.data.push_back(pools::process_pool_cpu(cfg, w, tasks, iters));
    prog.step("crew hybrid_pool × " + std::to_string(w));
    r.data.push_back(pools::hybrid_pool_cpu(cfg, w, tasks, iters));
    if (w > cfg.cores)
      for (std::size_t i = first; i < r.data.size(); ++i)
        r.data[i].note += (r.data[i].note.empty() ? "" : "; ") + oversubscribed_note(w, cfg.cores);
  }

  r.method =
      std::to_string(tasks) + " tasks of an integer-mixing kernel (" + std::to_string(iters) +
      " rounds, about " + format_value(task_s, "s") +
      " each here) drawn from a shared atomic counter by N workers: std::threads, or "
      "processes forked before the clock starts that share the counter in a MAP_SHARED "
      "page. A sample is the wall time from the start signal until every worker is done. "
      "crew's pools run the same tasks on N workers started before the clock: "
      "crew::thread_pool through submit<&kernel> per task and wait_idle() (so the "
      "submitting thread never computes), crew::process_pool through "
      "crew::map<&kernel>(pool, jobs, {.grain = 1}), one task per job, and crew::hybrid_pool "
      "the same way with two threads per process (N/2 processes; one process for N = 1), "
      "each pool in a "
      "child of the bench; a sample is submission to the last result. "
      "Speed-up = sequential median / median; efficiency = speed-up / N.";
  r.chart = {chart_kind::lines, "workers", "wall time for all tasks", "", false, false, true};
  r.derived.columns = {"workers",
                       "threads speed-up",
                       "threads efficiency",
                       "processes speed-up",
                       "processes efficiency",
                       "crew thread_pool speed-up",
                       "crew process_pool speed-up",
                       "crew hybrid_pool speed-up",
                       "oversubscribed"};
  const unsigned ref = reference_workers(cfg);
  double thr_at_cores = NAN, proc_at_cores = NAN, best_beyond = 0;
  double crew_thr_at_cores = NAN, crew_proc_at_cores = NAN, crew_hybrid_at_cores = NAN;
  for (unsigned w : cfg.workers) {
    const auto* ts = find_series(r, "threads (std::thread) × " + std::to_string(w));
    const auto* ps = find_series(r, "processes (fork) × " + std::to_string(w));
    const double st = ts && ts->has_data() ? t1 / ts->stats().median : NAN;
    const double sp = ps && ps->has_data() ? t1 / ps->stats().median : NAN;
    const auto* ct = find_series(r, "crew thread_pool × " + std::to_string(w));
    const auto* cp = find_series(r, "crew process_pool × " + std::to_string(w));
    const double sct = ct && ct->has_data() ? t1 / ct->stats().median : NAN;
    const double scp = cp && cp->has_data() ? t1 / cp->stats().median : NAN;
    const auto* ch = find_series(r, "crew hybrid_pool × " + std::to_string(w));
    const double sch = ch && ch->has_data() ? t1 / ch->stats().median : NAN;
    r.derived.rows.push_back({std::to_string(w), format_value(st, "x"), format_value(st / w, "%"),
                              format_value(sp, "x"), format_value(sp / w, "%"),
                              format_value(sct, "x"), format_value(scp, "x"),
                              format_value(sch, "x"), w > cfg.cores ? "yes" : "no"});
    if (w == ref) {
      thr_at_cores = st;
      proc_at_cores = sp;
      crew_thr_at_cores = sct;
      crew_proc_at_cores = scp;
      crew_hybrid_at_cores = sch;
    }
    if (w > cfg.cores) best_beyond = std::max({best_beyond, st, sp});
  }
  r.measured = "speed-up at " + std::to_string(ref) + " workers: threads " +
               format_value(thr_at_cores, "x") + ", processes " + format_value(proc_at_cores, "x") +
               "; crew thread_pool " + format_value(crew_thr_at_cores, "x") +
               ", crew process_pool " + format_value(crew_proc_at_cores, "x") +
               ", crew hybrid_pool " + format_value(crew_hybrid_at_cores, "x");
  if (std::isnan(thr_at_cores) || std::isnan(proc_at_cores)) {
    r.verdict = verdict_kind::not_measured;
    r.verdict_text = "no measurement at or below " + std::to_string(cfg.cores) +
                     " workers (the cores): give --workers a count up to the cores";
    return r;
  }
  const double want = 0.7 * ref;
  const bool scale = thr_at_cores >= want && proc_at_cores >= want;
  const bool flat = best_beyond <= 1.2 * std::max(thr_at_cores, proc_at_cores);
  r.verdict = scale && flat   ? verdict_kind::confirmed
              : scale || flat ? verdict_kind::mixed
                              : verdict_kind::refuted;
  r.verdict_text = std::string(scale ? "threads and processes both reach ≥70% efficiency at "
                                     : "at least one model fell short of 70% efficiency at ") +
                   std::to_string(ref) + " workers on " + std::to_string(cfg.cores) + " cores" +
                   (scale ? "" : " (a busy machine does this)") + "; " +
                   (best_beyond == 0 ? "no count past the cores was measured"
                    : flat           ? "more workers than cores (oversubscribed) gained nothing"
                                     : "more workers than cores (oversubscribed) still helped");
  return r;
}

}  // namespace

experiment cpu_scaling_experiment() {
  return {"cpu", "CPU-bound scaling",
          "For CPU-bound work threads and processes both scale to the number of cores, and no "
          "further.",
          run};
}

}  // namespace crew::lab
