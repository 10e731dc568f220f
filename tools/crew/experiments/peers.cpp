// Experiment 9 — peers: CPython's threading against multiprocessing on the same CPU-bound
// kernel (the GIL), ProcessPoolExecutor's per-task cost, and oneTBB.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <sstream>

#include <nlohmann/json.hpp>

#include "experiments/common.hpp"
#include "experiments/kernels.hpp"
#include "experiments/pools.hpp"
#include "experiments/registry.hpp"
#include "lab/child.hpp"

#ifdef CREW_HAVE_TBB
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#endif

namespace crew::lab {
namespace {

// Prints one JSON object: lists of seconds per variant. Uses the fork start method explicitly
// so functions defined in `-c` code reach the workers.
constexpr const char* python_script = R"PY(
import json, sys, time, threading, multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
n, workers, runs, trivial = (int(a) for a in sys.argv[1:5])
def kernel(k):
    x = 1
    for _ in range(k):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return x
def noop(i):
    return i
ctx = mp.get_context("fork")
out = {"sequential": [], "threading": [], "multiprocessing": [], "ppe_per_task": []}
share = n // workers
with ctx.Pool(workers) as pool:
    pool.map(noop, range(workers))
    for _ in range(runs):
        t = time.perf_counter(); kernel(n); out["sequential"].append(time.perf_counter() - t)
        ts = [threading.Thread(target=kernel, args=(share,)) for _ in range(workers)]
        t = time.perf_counter()
        for th in ts: th.start()
        for th in ts: th.join()
        out["threading"].append(time.perf_counter() - t)
        t = time.perf_counter(); pool.map(kernel, [share] * workers); out["multiprocessing"].append(time.perf_counter() - t)
with ProcessPoolExecutor(workers, mp_context=ctx) as ex:
    list(ex.map(noop, range(workers)))
    for _ in range(runs):
        t = time.perf_counter()
        fs = [ex.submit(noop, i) for i in range(trivial)]
        for f in fs: f.result()
        out["ppe_per_task"].append((time.perf_counter() - t) / trivial)
print(json.dumps(out))
)PY";

std::string find_in_path(const char* name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return {};
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    const std::string p = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

void python_peers(const config& cfg, result& r, progress& prog) {
  const char* names[] = {"CPython sequential", "CPython threading", "CPython multiprocessing",
                         "CPython ProcessPoolExecutor, per trivial task"};
  const char* keys[] = {"sequential", "threading", "multiprocessing", "ppe_per_task"};
  const std::string python = find_in_path("python3");
  if (python.empty()) {
    for (const char* n : names)
      r.data.push_back(absent(n, series_state::skipped,
                              "python3 is not installed; install it to compare CPython"));
    return;
  }
  prog.step("CPython threading vs multiprocessing");
  const unsigned w = std::max(2u, cfg.cores);
  const std::string n = std::to_string(cfg.quick ? 1'000'000 : 4'000'000);
  const std::string runs = std::to_string(cfg.warmup + cfg.repeat);
  const std::string trivial = cfg.quick ? "200" : "1000";
  auto out = run_in_child(
      [&](int fd) {
        ::dup2(fd, 1);
        const std::string ws = std::to_string(w);
        const char* argv[] = {python.c_str(), "-c",         python_script,   n.c_str(),
                              ws.c_str(),     runs.c_str(), trivial.c_str(), nullptr};
        ::execv(python.c_str(), const_cast<char* const*>(argv));
        ::_exit(127);
        return std::string{};
      },
      cfg.quick ? 40 : 300);
  nlohmann::json j;
  try {
    if (out.ok()) j = nlohmann::json::parse(out.output);
  } catch (const std::exception&) {
    j = nullptr;
  }
  for (int i = 0; i < 4; ++i) {
    if (!j.is_object() || !j.contains(keys[i])) {
      r.data.push_back(absent(names[i], series_state::failed,
                              out.timed_out ? "python3 did not finish in time"
                                            : "python3 failed or printed no figures"));
      continue;
    }
    series s;
    s.name = names[i];
    s.unit = "s";
    file_samples(s, j[keys[i]].get<std::vector<double>>(), cfg.warmup);
    r.data.push_back(std::move(s));
  }
  r.notes.push_back("CPython kernel: " + n + " rounds of a 32-bit LCG, split over " +
                    std::to_string(w) + " workers");
}

void tbb_peer(const config& cfg, result& r, progress& prog) {
#ifdef CREW_HAVE_TBB
  prog.step("oneTBB parallel_for");
  const unsigned tasks = 48;
  const std::uint64_t iters = calibrate_cpu_kernel(cfg.quick ? 0.002 : 0.01);
  const int n = cfg.warmup + cfg.repeat;
  // oneTBB keeps worker threads alive after use; a child keeps them out of the bench.
  auto out = run_in_child(
      [&](int) {
        std::vector<double> v;
        for (int i = 0; i < n; ++i) {
          const auto t0 = clock::now();
          std::uint64_t acc = 0;
          for (unsigned k = 0; k < tasks; ++k) acc += cpu_kernel(iters, k);
          volatile std::uint64_t sink = acc;
          (void)sink;
          v.push_back(seconds_since(t0));
        }
        tbb::global_control limit(tbb::global_control::max_allowed_parallelism, cfg.cores);
        for (int i = 0; i < n; ++i) {
          std::atomic<std::uint64_t> acc{0};
          const auto t0 = clock::now();
          tbb::parallel_for(0u, tasks, [&](unsigned k) { acc += cpu_kernel(iters, k); });
          v.push_back(seconds_since(t0));
        }
        return pack_doubles(v);
      },
      120);
  series seq, par;
  seq.name = "C++ sequential (the CPU experiment's kernel)";
  par.name = "oneTBB parallel_for, " + std::to_string(cfg.cores) + " threads";
  seq.unit = par.unit = "s";
  const auto v = unpack_doubles(out.output);
  if (!out.ok() || v.size() != static_cast<std::size_t>(2 * n)) {
    seq.state = par.state = series_state::failed;
    seq.note = par.note = "the oneTBB child failed";
  } else {
    file_samples(seq, {v.begin(), v.begin() + n}, cfg.warmup);
    file_samples(par, {v.begin() + n, v.end()}, cfg.warmup);
  }
  r.data.push_back(seq);
  r.data.push_back(par);
#else
  (void)cfg;
  (void)prog;
  r.data.push_back(absent("oneTBB parallel_for", series_state::skipped,
                          "oneTBB was not found when crew was built (Debian: libtbb-dev)"));
#endif
}

result run(const config& cfg, progress& prog) {
  result r;
  python_peers(cfg, r, prog);
  tbb_peer(cfg, r, prog);
  prog.step("crew process_pool per trivial task");
  r.data.push_back(
      pools::process_pool_per_task(cfg, std::max(2u, cfg.cores), cfg.quick ? 200 : 1000));
  r.method =
      "CPython: one python3 process (fork start method) times the same pure-Python "
      "kernel sequentially, split over N threading.Threads, and split over an "
      "N-process multiprocessing.Pool (started before timing), then a "
      "ProcessPoolExecutor's round trip per trivial task. crew: the same trivial-task "
      "figure for a crew::process_pool of as many workers (fork start method; every task "
      "submitted, then every future awaited; total time / tasks). oneTBB: the CPU "
      "experiment's kernel, 48 tasks through tbb::parallel_for, in a child of the bench.";
  r.chart = {chart_kind::bars, "", "time (log scale)", "", false, true, true};
  const double seq = [&] {
    auto* s = find_series(r, "CPython sequential");
    return s && s->has_data() ? s->stats().median : NAN;
  }();
  const double thr = [&] {
    auto* s = find_series(r, "CPython threading");
    return s && s->has_data() ? s->stats().median : NAN;
  }();
  const double mp = [&] {
    auto* s = find_series(r, "CPython multiprocessing");
    return s && s->has_data() ? s->stats().median : NAN;
  }();
  r.derived.columns = {"peer", "speed-up over its sequential run"};
  r.derived.rows.push_back({"CPython threading", format_value(seq / thr, "x")});
  r.derived.rows.push_back({"CPython multiprocessing", format_value(seq / mp, "x")});
  const double tbb_speedup = median_ratio(
      find_series(r, "C++ sequential (the CPU experiment's kernel)"),
      find_series(r, "oneTBB parallel_for, " + std::to_string(cfg.cores) + " threads"));
  if (!std::isnan(tbb_speedup))
    r.derived.rows.push_back({"oneTBB parallel_for", format_value(tbb_speedup, "x")});
  const series* ppe = find_series(r, "CPython ProcessPoolExecutor, per trivial task");
  const series* crew_pp = find_series(r, "crew process_pool, per trivial task");
  if (crew_pp && crew_pp->has_data()) {
    std::string line =
        "crew process_pool: " + format_value(crew_pp->stats().median, "s") + " per trivial task";
    if (ppe && ppe->has_data())
      line += ", ProcessPoolExecutor " + format_value(ppe->stats().median, "s") + " (" +
              format_value(median_ratio(ppe, crew_pp), "x") + " crew's)";
    r.notes.push_back(line);
  }
  if (std::isnan(seq) || std::isnan(thr) || std::isnan(mp)) {
    r.measured = "CPython not measured";
    r.verdict = verdict_kind::not_measured;
    r.verdict_text = "python3 is missing or failed";
    return r;
  }
  r.measured = "CPython threading " + format_value(seq / thr, "x") + ", multiprocessing " +
               format_value(seq / mp, "x") + " speed-up";
  const bool gil = seq / thr < 1.3, mp_ok = seq / mp >= 1.3 || cfg.cores < 2;
  r.verdict = gil && mp_ok   ? verdict_kind::confirmed
              : gil || mp_ok ? verdict_kind::mixed
                             : verdict_kind::refuted;
  r.verdict_text = std::string(gil ? "CPython threads gained nothing on CPU-bound code (the GIL)"
                                   : "CPython threads did speed up (a free-threaded build?)") +
                   "; " + (mp_ok ? "processes did" : "processes did not either");
  return r;
}

}  // namespace

experiment peers_experiment() {
  return {"peers", "Peers",
          "In CPython, threads do not speed up CPU-bound code (the GIL) while processes do; "
          "oneTBB's threads scale like any native thread pool.",
          run};
}

}  // namespace crew::lab
