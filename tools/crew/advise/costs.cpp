#include "advise/costs.hpp"

#include <algorithm>
#include <cmath>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "advise/profile.hpp"
#include "lab/experiment.hpp"
#include "lab/machine.hpp"
#include "lab/report.hpp"

namespace crew::lab {
namespace {

const nlohmann::json* find_by(const nlohmann::json& arr, const char* key,
                              const std::string& value) {
  if (!arr.is_array()) return nullptr;
  for (const auto& e : arr)
    if (e.is_object() && e.contains(key) && e[key] == value) return &e;
  return nullptr;
}

// The median of series `name` in experiment `id`, or NaN.
double median_of(const nlohmann::json& report, const std::string& id, const std::string& name) {
  const auto* e = find_by(report["experiments"], "id", id);
  if (!e) return NAN;
  const auto* s = find_by((*e)["series"], "name", name);
  if (!s || !(*s).contains("summary") || !(*s)["summary"].is_object()) return NAN;
  const auto& m = (*s)["summary"]["median"];
  return m.is_number() ? m.get<double>() : NAN;
}

void take(double v, double& into, const char* what, machine_costs& c) {
  if (std::isfinite(v) && v > 0) {
    into = v;
  } else {
    c.assumed.push_back(what);
  }
}

// Bandwidth from the largest message the report has for a transport.
double bandwidth_of(const nlohmann::json& report, const std::string& group) {
  const auto* e = find_by(report["experiments"], "id", std::string("communication"));
  if (!e) return NAN;
  double best_x = 0, bw = NAN;
  for (const auto& s : (*e)["series"]) {
    if (s.value("group", "") != group || !s["summary"].is_object() || !s["x"].is_number()) continue;
    const double x = s["x"].get<double>();
    const double med =
        s["summary"]["median"].is_number() ? s["summary"]["median"].get<double>() : NAN;
    if (x > best_x && med > 0) {
      best_x = x;
      bw = 2 * x / med;
    }
  }
  return bw;
}

}  // namespace

machine_costs costs_from_bench(const nlohmann::json& report, const std::string& source) {
  if (!report.is_object() || report.value("schema", "") != bench_schema ||
      !report.contains("experiments"))
    throw advise_error("'" + source + "' is not a crew bench JSON report (schema " + bench_schema +
                       ")");
  machine_costs c;
  c.source = "crew bench JSON " + source;
  c.hybrid_built = true;  // crew::hybrid_pool is part of the library
  const auto& m = report["machine"];
  c.cores = m.value("cores", 1u);
  c.memory_bytes = m.value("memory_bytes", 0.0);
  take(median_of(report, "creation", "thread create + join"), c.thread_start_seconds,
       "thread start", c);
  take(median_of(report, "creation", "fork + wait (small parent)"), c.process_start_seconds,
       "process start", c);
  double th = median_of(report, "switching", "threads, across cores");
  if (!std::isfinite(th)) th = median_of(report, "switching", "threads, one core");
  double ph = median_of(report, "switching", "processes, across cores");
  if (!std::isfinite(ph)) ph = median_of(report, "switching", "processes, one core");
  take(th, c.thread_handoff_seconds, "thread hand-off", c);
  take(ph, c.process_handoff_seconds, "process hand-off", c);
  take(bandwidth_of(report, "processes: pipe"), c.copy_bandwidth, "copy bandwidth", c);
  take(bandwidth_of(report, "threads: shared memory"), c.shared_bandwidth, "shared bandwidth", c);
  take(median_of(report, "memory", "idle thread: PSS each"), c.idle_thread_bytes,
       "idle thread memory", c);
  take(median_of(report, "memory", "idle process: PSS each"), c.idle_process_bytes,
       "idle process memory", c);
  return c;
}

machine_costs calibrate_costs() {
  config cfg;
  cfg.quick = true;
  cfg.repeat = 3;
  cfg.warmup = 1;
  cfg.cores = usable_cores();
  cfg.workers = {1};
  silent_progress quiet;
  // The bench's own experiments, in their quick form, minus the slow parts: creation
  // (thread, fork), switching (hand-offs) and communication (pipe and memcpy bandwidth).
  nlohmann::json report;
  report["schema"] = bench_schema;
  const machine_info m = describe_machine();
  report["machine"] = {{"cores", m.cores}, {"memory_bytes", m.memory_bytes}};
  report["experiments"] = nlohmann::json::array();
  for (const char* id : {"switching", "communication"}) {
    result r = find_experiment(id)->run(cfg, quiet);
    r.id = id;
    report["experiments"].push_back(to_json(m, cfg, {r})["experiments"][0]);
  }
  machine_costs c = costs_from_bench(report, "calibration");
  c.source = "calibration (switching and communication experiments, quick)";
  // Start-up: a direct measurement, cheaper than the creation experiment's 1 GiB case.
  series t = measure(cfg, "thread", "s", [] {
    const auto t0 = clock::now();
    for (int i = 0; i < 100; ++i) std::thread([] {}).join();
    return seconds_since(t0) / 100;
  });
  c.thread_start_seconds = t.stats().median;
  series f = measure(cfg, "fork", "s", [] {
    const auto t0 = clock::now();
    for (int i = 0; i < 20; ++i) {
      const pid_t pid = ::fork();
      if (pid == 0) ::_exit(0);
      if (pid > 0) ::waitpid(pid, nullptr, 0);
    }
    return seconds_since(t0) / 20;
  });
  c.process_start_seconds = f.stats().median;
  for (const char* what : {"thread start", "process start"})
    c.assumed.erase(std::remove(c.assumed.begin(), c.assumed.end(), what), c.assumed.end());
  return c;
}

}  // namespace crew::lab
