// Experiment 4 — memory: what idle threads and idle worker processes cost, and a large dataset
// shared copy-on-write against one copied into every worker.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "experiments/common.hpp"
#include "experiments/kernels.hpp"
#include "experiments/registry.hpp"
#include "lab/child.hpp"

namespace crew::lab {
namespace {

struct footprint {
  double rss = 0, pss = 0;  // bytes
};

// /proc/<pid>/smaps_rollup: Rss and Pss of the whole process (Linux ≥ 4.14).
footprint read_footprint(pid_t pid) {
  std::ifstream in("/proc/" + (pid == 0 ? std::string("self") : std::to_string(pid)) +
                   "/smaps_rollup");
  footprint f;
  std::string line;
  while (std::getline(in, line)) {
    // Lines look like "Rss:    12345 kB"; the first line names the range instead.
    std::istringstream fields(line);
    std::string key;
    double kib = 0;
    if (!(fields >> key >> kib)) continue;
    if (key == "Rss:") f.rss = kib * 1024;
    if (key == "Pss:") f.pss = kib * 1024;
  }
  return f;
}

// N idle threads in this process: the growth of its own RSS/PSS per thread.
footprint idle_threads(unsigned n) {
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  unsigned ready = 0;
  const footprint before = read_footprint(0);
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < n; ++i)
    ts.emplace_back([&] {
      std::unique_lock lock(mu);
      ++ready;
      cv.notify_all();
      cv.wait(lock, [&] { return stop; });
    });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return ready == n; });
  }
  const footprint after = read_footprint(0);
  {
    std::lock_guard lock(mu);
    stop = true;
  }
  cv.notify_all();
  for (auto& t : ts) t.join();
  return {(after.rss - before.rss) / n, (after.pss - before.pss) / n};
}

// N forked workers that run `work` then sit idle; returns their summed footprint (and the
// parent's growth) once all are idle.
footprint workers_footprint(unsigned n, const std::function<void()>& work) {
  int ready[2], release[2];
  if (::pipe(ready) != 0 || ::pipe(release) != 0) return {NAN, NAN};
  std::vector<pid_t> pids;
  for (unsigned i = 0; i < n; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(ready[0]);
      ::close(release[1]);
      work();
      char c = 1;
      write_all(ready[1], &c, 1);
      read_all(release[0], &c, 1);  // returns false at EOF: the parent let go
      ::_exit(0);
    }
    if (pid > 0) pids.push_back(pid);
  }
  ::close(ready[1]);
  ::close(release[0]);
  char c;
  for (std::size_t i = 0; i < pids.size(); ++i) read_all(ready[0], &c, 1);
  footprint sum;
  for (pid_t p : pids) {
    const auto f = read_footprint(p);
    sum.rss += f.rss;
    sum.pss += f.pss;
  }
  ::close(release[1]);
  ::close(ready[0]);
  for (pid_t p : pids) wait_for(p);
  return sum;
}

series from_child(std::string name, const config& cfg, int samples,
                  const std::function<double()>& one) {
  series s;
  s.name = std::move(name);
  s.unit = "B";
  auto out = run_in_child(
      [&](int) {
        std::vector<double> v;
        for (int i = 0; i < samples; ++i) v.push_back(one());
        return pack_doubles(v);
      },
      120);
  if (out.ok()) {
    file_samples(s, unpack_doubles(out.output), 0);
  } else {
    s.state = series_state::failed;
    s.note = "the measuring child did not finish";
  }
  (void)cfg;
  return s;
}

result run(const config& cfg, progress& prog) {
  result r;
  const unsigned n = cfg.quick ? 16 : 64;
  const unsigned data_workers = cfg.quick ? 2 : 4;
  const std::size_t dataset = cfg.quick ? (std::size_t{256} << 20) : (std::size_t{1} << 30);
  // Memory figures hardly vary run to run; three samples show that without the cost.
  const int samples = std::min(cfg.repeat, 3);

  prog.step(std::to_string(n) + " idle threads");
  r.data.push_back(
      from_child("idle thread: RSS each", cfg, samples, [&] { return idle_threads(n).rss; }));
  r.data.push_back(
      from_child("idle thread: PSS each", cfg, samples, [&] { return idle_threads(n).pss; }));
  prog.step(std::to_string(n) + " idle worker processes");
  r.data.push_back(from_child("idle process: RSS each", cfg, samples,
                              [&] { return workers_footprint(n, [] {}).rss / n; }));
  r.data.push_back(from_child("idle process: PSS each", cfg, samples,
                              [&] { return workers_footprint(n, [] {}).pss / n; }));

  const std::string ds = format_value(static_cast<double>(dataset), "B");
  prog.step(ds + " dataset, copy-on-write");
  r.data.push_back(
      from_child("dataset shared copy-on-write: PSS of all workers", cfg, samples, [&] {
        unsigned char* data = map_touched(dataset);
        const auto f = workers_footprint(data_workers, [&] {
          volatile auto sum = read_all_bytes(data, dataset);
          (void)sum;
        });
        unmap(data, dataset);
        return f.pss;
      }));
  prog.step(ds + " dataset, copied into each worker");
  r.data.push_back(
      from_child("dataset copied into each worker: PSS of all workers", cfg, samples, [&] {
        unsigned char* data = map_touched(dataset);
        const auto f = workers_footprint(data_workers, [&] {
          auto* copy = static_cast<unsigned char*>(::operator new(dataset));
          std::memcpy(copy, data, dataset);
          volatile auto sum = read_all_bytes(copy, dataset);
          (void)sum;
          // Kept until the worker exits: a worker holds the input it was sent.
        });
        unmap(data, dataset);
        return f.pss;
      }));

  r.method =
      "From /proc/<pid>/smaps_rollup. Idle threads: the growth of one process's RSS and "
      "PSS after starting " +
      std::to_string(n) +
      " threads blocked on a condition "
      "variable, divided by " +
      std::to_string(n) +
      ". Idle processes: the summed RSS and "
      "PSS of " +
      std::to_string(n) + " forked children blocked on a pipe, divided by " + std::to_string(n) +
      " (PSS splits each shared page among its sharers, so it is the "
      "honest per-process cost). Dataset: a parent writes " +
      ds + ", forks " + std::to_string(data_workers) +
      " workers that read all of it in place or first copy it "
      "into their own memory; the figure is the workers' summed PSS.";
  r.chart = {chart_kind::bars, "", "bytes (log scale)", "", false, true, true};

  const double thr = [&] {
    auto* s = find_series(r, "idle thread: PSS each");
    return s && s->has_data() ? s->stats().median : NAN;
  }();
  const double proc = [&] {
    auto* s = find_series(r, "idle process: PSS each");
    return s && s->has_data() ? s->stats().median : NAN;
  }();
  const double cow_ratio =
      median_ratio(find_series(r, "dataset copied into each worker: PSS of all workers"),
                   find_series(r, "dataset shared copy-on-write: PSS of all workers"));
  r.derived.columns = {"comparison", "value"};
  r.derived.rows.push_back({"idle process PSS / idle thread PSS", format_value(proc / thr, "x")});
  r.derived.rows.push_back({"copied / shared dataset, all workers", format_value(cow_ratio, "x")});
  r.measured = "idle thread " + format_value(thr, "B") + ", idle process " +
               format_value(proc, "B") + " (PSS); copying the dataset costs " +
               format_value(cow_ratio, "x") + " sharing it";
  if (std::isnan(thr) || std::isnan(proc) || std::isnan(cow_ratio)) {
    r.verdict = verdict_kind::not_measured;
    r.verdict_text = "a measurement failed";
  } else {
    const bool a = proc > thr, b = cow_ratio >= 1.5;
    r.verdict = a && b   ? verdict_kind::confirmed
                : a || b ? verdict_kind::mixed
                         : verdict_kind::refuted;
    r.verdict_text =
        std::string(a ? "an idle process costs more than an idle thread"
                      : "an idle process cost no more than an idle thread") +
        "; " + (b ? "copy-on-write sharing avoids the per-worker copies" : "sharing saved little");
  }
  return r;
}

}  // namespace

experiment memory_experiment() {
  return {"memory", "Memory",
          "An idle process costs more memory than an idle thread, and a large dataset shared "
          "copy-on-write costs far less than one copied into every worker.",
          run};
}

}  // namespace crew::lab
