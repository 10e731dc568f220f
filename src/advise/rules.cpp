// The advice rules: docs/advise.md lists them in order, with the thresholds named below.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "crew/advise.hpp"
#include "crew/detail/format.hpp"

namespace crew {

const char* to_string(execution_model m) noexcept {
  switch (m) {
    case execution_model::threads:
      return "threads";
    case execution_model::processes:
      return "processes";
    case execution_model::hybrid:
      return "hybrid";
    case execution_model::mpi:
      return "mpi";
  }
  return "?";
}

namespace {

// Thresholds, named so docs/advise.md and the tests can refer to them.
constexpr double cpu_bound_fraction = 0.7;  // ≥ this CPU/wall: CPU-bound
constexpr double io_bound_fraction = 0.3;   // < this: I/O-bound
constexpr double large_data_share = 0.10;   // copying to a process costs ≥ 10% of the task
constexpr double large_data_bytes = 64.0 * 1024 * 1024;
constexpr double free_isolation_share =
    0.02;  // process overhead < 2% of the task: isolation is free
constexpr double target_overhead_share = 0.01;  // chunk so overhead stays ≤ 1%
constexpr double memory_share = 0.75;           // workers may use this much of the machine's memory
constexpr unsigned max_workers = 256;

std::string fmt(double v, const char* unit) {
  return detail::format_quantity(v, unit);
}

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", v * 100);
  return b;
}

}  // namespace

recommendation recommend(const workload_profile& p, const machine_costs& m) {
  recommendation r;
  const unsigned cores = std::max(1u, m.cores);
  const double t = std::max(p.wall_seconds, 1e-9);
  const double f = p.cpu_fraction();
  const double data = p.arg_bytes + p.result_bytes;
  const double thread_overhead =
      m.thread_handoff_seconds + data / std::max(m.shared_bandwidth, 1.0);
  const double process_overhead =
      m.process_handoff_seconds + data / std::max(m.copy_bandwidth, 1.0);
  const double memory = m.memory_bytes > 0 ? m.memory_bytes : 1e18;

  r.workload_kind = f >= cpu_bound_fraction ? "CPU-bound"
                    : f < io_bound_fraction ? "I/O-bound"
                                            : "mixed";
  r.reasons.push_back("CPU time is " + pct(f) + " of wall time (" + fmt(p.cpu_seconds, "s") +
                      " of " + fmt(p.wall_seconds, "s") + "): " + r.workload_kind);

  // Workers: enough to keep every core busy given how much of its time a task computes.
  const double demand = std::max(f, 0.01);
  unsigned workers =
      static_cast<unsigned>(std::clamp(std::round(cores / demand), 1.0, double(max_workers)));
  if (f > 1.5)
    r.reasons.push_back("each task already keeps " + fmt(f, "x") +
                        " cores busy, so fewer workers than cores");
  if (f < io_bound_fraction)
    r.reasons.push_back("a task computes only " + pct(f) + " of its time: " +
                        std::to_string(workers) + " workers keep " + std::to_string(cores) +
                        " cores busy (capped at " + std::to_string(max_workers) + ")");

  const bool needs_isolation = p.crashes > 0;
  const bool large_data =
      data >= large_data_bytes || process_overhead - thread_overhead >= large_data_share * t;
  const bool fits_here = p.peak_rss_bytes <= memory_share * memory;

  if (!fits_here) {
    r.model = execution_model::mpi;
    r.workers = 1;
    r.reasons.push_back("one task peaks at " + fmt(p.peak_rss_bytes, "B") + ", more than " +
                        pct(memory_share) + " of this machine's " + fmt(memory, "B") +
                        ": spread the tasks over machines");
    if (!m.mpi_built) r.caveats.push_back("crew's mpi_pool is not built yet");
  } else if (needs_isolation) {
    r.reasons.push_back(
        std::to_string(p.crashes) + " of " + std::to_string(p.runs) + " runs crashed" +
        (p.crash_detail.empty() ? "" : " (" + p.crash_detail + ")") +
        ": in a thread pool one crash takes every worker and pending task down; a process "
        "pool loses only that task");
    if (f < io_bound_fraction && workers > 2 * cores) {
      r.model = execution_model::hybrid;
      r.threads_per_worker = (workers + cores - 1) / cores;
      workers = cores;
      r.reasons.push_back(
          "the tasks mostly wait, so " + std::to_string(cores) + " processes × " +
          std::to_string(r.threads_per_worker) +
          " threads each: a crash costs one process's tasks, not the whole pool, and "
          "waiting workers stay cheap threads");
      if (!m.hybrid_built)
        r.caveats.push_back("crew's hybrid_pool is not built yet: until then use processes");
    } else {
      r.model = execution_model::processes;
    }
  } else if (large_data) {
    r.model = execution_model::threads;
    r.reasons.push_back("each task moves " + fmt(data, "B") + "; copying that to a process costs " +
                        fmt(process_overhead, "s") + " (" + pct(process_overhead / t) +
                        " of the task) against " + fmt(thread_overhead, "s") +
                        " for threads sharing memory");
  } else if (f < io_bound_fraction) {
    r.model = execution_model::threads;
    r.reasons.push_back("waiting workers are cheap as threads: " + fmt(m.idle_thread_bytes, "B") +
                        " each against " + fmt(m.idle_process_bytes, "B") + " per idle process");
  } else if (process_overhead <= free_isolation_share * t) {
    r.model = execution_model::processes;
    r.reasons.push_back("a task takes " + fmt(t, "s") + " and a process hand-off costs " +
                        fmt(process_overhead, "s") + " (" + pct(process_overhead / t) +
                        "): isolation, separate heaps and no shared-state races "
                        "come almost free");
  } else {
    r.model = execution_model::threads;
    r.reasons.push_back("a task takes " + fmt(t, "s") + " but a process hand-off costs " +
                        fmt(process_overhead, "s") + " (" + pct(process_overhead / t) +
                        "); threads hand off in " + fmt(thread_overhead, "s"));
  }

  // Memory caps the worker count (processes and threads both hold a task's working set).
  if (r.model != execution_model::mpi) {
    const double per_worker = std::max(p.peak_rss_bytes, 1.0) * r.threads_per_worker;
    const auto cap =
        static_cast<unsigned>(std::max(1.0, std::floor(memory_share * memory / per_worker)));
    if (cap < workers) {
      r.reasons.push_back("memory caps workers at " + std::to_string(cap) + " (" +
                          fmt(p.peak_rss_bytes, "B") + " per task, " + fmt(memory, "B") + " here)");
      workers = cap;
    }
    r.workers = workers;
  }

  const double overhead = r.model == execution_model::threads ? thread_overhead : process_overhead;
  r.overhead_seconds = overhead;
  // Chunk: enough tasks per submission that the hand-off stays ≤ 1% of the work it carries,
  // but never so many that workers starve for lack of chunks.
  double chunk = std::ceil(overhead / (target_overhead_share * t));
  if (p.tasks && *p.tasks > 0) {
    const double per_worker =
        std::max(1.0, std::floor(double(*p.tasks) / (4.0 * r.workers * r.threads_per_worker)));
    chunk = std::min(chunk, per_worker);
  }
  r.chunk = static_cast<std::size_t>(std::max(1.0, chunk));
  if (r.chunk > 1)
    r.reasons.push_back("chunks of " + std::to_string(r.chunk) + " tasks keep the " +
                        fmt(overhead, "s") + " hand-off at ≤ 1% of a task's " + fmt(t, "s"));

  const double slowest = std::max(p.max_wall_seconds, t);
  r.timeout_seconds = std::max(1.0, std::ceil(3 * slowest * r.chunk));
  r.reasons.push_back("timeout " + fmt(r.timeout_seconds, "s") + ": 3× the slowest run (" +
                      fmt(slowest, "s") + ")" + (r.chunk > 1 ? " per chunk" : ""));
  if (p.timeouts > 0)
    r.caveats.push_back(std::to_string(p.timeouts) +
                        " run(s) hit the time budget: the timeout is a floor");

  // Speed-up: workers run in parallel up to the cores their CPU demand fills; the hand-off adds
  // overhead/chunk per task.
  const double parallel =
      r.model == execution_model::mpi
          ? 1.0
          : std::min<double>(double(r.workers) * r.threads_per_worker, cores / demand);
  r.predicted_speedup = parallel * t / (t + overhead / double(r.chunk));
  if (r.model == execution_model::mpi)
    r.caveats.push_back("speed-up grows with the number of machines");
  return r;
}

std::string describe(const recommendation& r) {
  std::string out = to_string(r.model);
  if (r.model == execution_model::hybrid)
    out += " — " + std::to_string(r.workers) + " processes × " +
           std::to_string(r.threads_per_worker) + " threads";
  else
    out += " — " + std::to_string(r.workers) +
           (r.model == execution_model::mpi ? " per node" : " workers");
  out += ", chunk " + std::to_string(r.chunk) + ", timeout " +
         detail::format_quantity(r.timeout_seconds, "s") + ", predicted speed-up " +
         detail::format_quantity(r.predicted_speedup, "x") + " (" + r.workload_kind + ")\n";
  for (const auto& s : r.reasons) out += "  because " + s + "\n";
  for (const auto& s : r.caveats) out += "  note: " + s + "\n";
  return out;
}

}  // namespace crew
