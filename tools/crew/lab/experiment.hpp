// lab/experiment.hpp — what one `crew bench` experiment is and what it produces.
//
// An experiment tests one claim about threads and processes: it has an id, the claim, the text
// of how it measures, and a run function that returns a `result`: named series of raw samples
// (warm-up runs kept apart), a chart description, an optional table of derived figures, and a
// verdict. Experiments are plain values collected in `registry()`; the reports (table, JSON,
// HTML) only read results, so a new experiment needs no change to them.
//
// Thread-safety: results are values; the registry is built once and is read-only afterwards.
// An experiment's run function blocks for as long as it measures (seconds) and forks children;
// call it from a process with no other threads running.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lab/stats.hpp"

namespace crew::lab {

/// What one series is: measured, or why it has no figures.
enum class series_state {
  ok,         // samples hold real measurements
  not_built,  // the subject (e.g. crew's process_pool, MPI) is not built yet
  skipped,    // the subject is not installed here (e.g. oneTBB, python3)
  failed,     // the measurement itself failed; `note` says why
};

const char* to_string(series_state s) noexcept;

struct series {
  std::string name;   // "fork + wait (1 GiB touched)"
  std::string group;  // line charts draw one line per group; bars ignore it
  double x = 0;       // the swept parameter (workers, message bytes), 0 when there is none
  std::string unit;   // "s", "B", "B/s", "tasks/s", "x", "count"
  series_state state = series_state::ok;
  std::string note;  // why not ok, or a remark on the figures
  // How the subject hands work over and waits ("two pipes; the reader blocks in read()"), when
  // a comparison depends on it: series compared with each other name the same mechanism, or
  // their mechanisms say exactly where they differ. Empty when it is not part of a comparison.
  std::string mechanism;
  std::vector<double> warmup;   // discarded runs, kept for the JSON
  std::vector<double> samples;  // the runs the statistics use
  summary stats() const { return summarize(samples); }
  bool has_data() const noexcept { return state == series_state::ok && !samples.empty(); }
};

enum class chart_kind { bars, lines };

struct chart_spec {
  chart_kind kind = chart_kind::bars;
  std::string x_label;  // lines: the swept parameter; bars: unused
  std::string y_label;  // the measured value and unit
  std::string x_unit;   // unit of x for tick labels ("B" for message sizes), empty: plain numbers
  bool log_x = false;
  bool log_y = false;
  bool lower_is_better = true;
};

struct table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

enum class verdict_kind { confirmed, refuted, mixed, not_measured };
const char* to_string(verdict_kind v) noexcept;

struct result {
  std::string id;
  std::string title;
  std::string claim;
  std::string method;
  std::vector<series> data;
  chart_spec chart;
  table derived;         // figures computed from the medians (speed-up, per-worker memory…)
  std::string measured;  // one line for the summary: what was measured here
  verdict_kind verdict = verdict_kind::not_measured;
  std::string verdict_text;  // why this verdict
  std::vector<std::string> notes;
  double seconds = 0;  // how long the experiment ran
};

struct config {
  bool quick = false;
  int repeat = 7;                 // measured runs per series
  int warmup = 1;                 // discarded runs before them
  std::vector<unsigned> workers;  // worker counts for the scaling experiments
  unsigned cores = 1;
};

/// Receives what an experiment is doing right now; the bench shows it on stderr.
class progress {
 public:
  virtual ~progress() = default;
  virtual void step(std::string_view what) = 0;
};

/// A progress sink that shows nothing (tests, calibration).
class silent_progress final : public progress {
 public:
  void step(std::string_view) override {}
};

struct experiment {
  std::string id;
  std::string title;
  std::string claim;
  std::function<result(const config&, progress&)> run;
};

/// Every experiment, in the order the bench runs them.
const std::vector<experiment>& registry();

/// The experiment with this id, or nullptr.
const experiment* find_experiment(std::string_view id);

// ---- helpers the experiments share -----------------------------------------------------------

using clock = std::chrono::steady_clock;

inline double seconds_since(clock::time_point start) noexcept {
  return std::chrono::duration<double>(clock::now() - start).count();
}

/// Runs `sample` cfg.warmup + cfg.repeat times and files the values into a series.
series measure(const config& cfg, std::string name, std::string unit,
               const std::function<double()>& sample, std::string group = {}, double x = 0);

/// A series with no figures and the reason.
series absent(std::string name, series_state state, std::string note, std::string group = {},
              double x = 0, std::string unit = "s");

/// "12.3 µs", "1.5 GiB", "830 MiB/s", "2.00×" — a value in the given unit for people.
std::string format_value(double v, std::string_view unit);

/// The series named `name` in `r` (first match), or nullptr.
const series* find_series(const result& r, std::string_view name, double x = -1);

/// The default worker counts for scaling: 1 … 2×cores (powers of two past 8), so every run
/// includes oversubscribed counts (more workers than cores).
std::vector<unsigned> default_workers(unsigned cores);

/// Tasks for the CPU scaling experiment: 48 (divisible by 1, 2, 3, 4, 6, 8, 12, 16: no
/// straggler rounds), doubled until every worker of the largest count gets at least 4.
unsigned scaling_tasks(const std::vector<unsigned>& workers);

/// "oversubscribed: 64 workers on 2 cores" — the note on every series past the cores.
std::string oversubscribed_note(unsigned workers, unsigned cores);

}  // namespace crew::lab
