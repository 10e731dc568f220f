// A markdown report for the Google Benchmark programs (bench_ipc, codec_bench): the machine, the
// load average at the start and at the end, the command, then one table of the medians and
// ranges over the repetitions with each case's ratio to its reference case, measured in the same
// run. Google Benchmark's own console output follows in a text block, unedited.
//
// Unless the command line says otherwise, a run has 5 repetitions in random interleaving: the
// repetitions of all cases are shuffled together, so load from elsewhere hits every case alike.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "machine.hpp"

namespace crew_bench {

struct row {
  std::string name;       // the benchmark's function name, e.g. "BM_memcpy"
  std::string label;      // what the row measures, in words
  std::string reference;  // the function name of its reference case; empty: it is one
  double bytes = 0;       // per iteration, for a GB/s column (0: none)
  double items = 0;       // per iteration, for a M/s column (0: none)
};

inline std::string format_time(double seconds) {
  char text[32];
  if (seconds >= 1) {
    std::snprintf(text, sizeof text, "%.3g s", seconds);
  } else if (seconds >= 1e-3) {
    std::snprintf(text, sizeof text, "%.3g ms", seconds * 1e3);
  } else if (seconds >= 1e-6) {
    std::snprintf(text, sizeof text, "%.3g µs", seconds * 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.3g ns", seconds * 1e9);
  }
  return text;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// Keeps every repetition's seconds per iteration, by function name, and forwards the runs to a
/// console reporter writing into `console`.
class collector final : public benchmark::ConsoleReporter {
 public:
  explicit collector(std::ostream& console) : benchmark::ConsoleReporter(OO_None) {
    SetOutputStream(&console);
    SetErrorStream(&console);
  }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.error_occurred || run.iterations == 0) {
        continue;
      }
      seconds[run.run_name.function_name].push_back(run.real_accumulated_time /
                                                    static_cast<double>(run.iterations));
    }
    benchmark::ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, std::vector<double>> seconds;
};

/// Runs the program's benchmarks and prints the report; returns main's exit code.
inline int markdown_main(int argc, char** argv, std::string_view title, std::string_view about,
                         const std::vector<row>& rows) {
  const std::string load_at_start = load_average();
  std::string command;
  bool repetitions = false;
  bool interleaving = false;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i > 0) command += ' ';
    command +=
        i == 0 ? std::string_view{argv[0]}.substr(std::string_view{argv[0]}.rfind('/') + 1) : arg;
    if (arg.starts_with("--benchmark_report_aggregates_only") ||
        arg.starts_with("--benchmark_display_aggregates_only")) {
      std::fprintf(stderr,
                   "%s: the report needs every repetition; drop %.*s (the table gives the "
                   "medians)\n",
                   argv[0], static_cast<int>(arg.size()), arg.data());
      return 2;
    }
    repetitions = repetitions || arg.starts_with("--benchmark_repetitions");
    interleaving = interleaving || arg.starts_with("--benchmark_enable_random_interleaving");
  }
  std::vector<std::string> extra;
  if (!repetitions) extra.emplace_back("--benchmark_repetitions=5");
  if (!interleaving) extra.emplace_back("--benchmark_enable_random_interleaving=true");
  std::vector<char*> args(argv, argv + argc);
  for (std::string& e : extra) args.push_back(e.data());
  int count = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 2;

  std::printf("# %.*s\n\n%.*s\n\n", static_cast<int>(title.size()), title.data(),
              static_cast<int>(about.size()), about.data());
  std::printf("- command: `%s`", command.c_str());
  for (const std::string& e : extra) std::printf(" (default `%s`)", e.c_str());
  std::printf("\n- machine: %s\n- load average at start: %s\n", machine().c_str(),
              load_at_start.c_str());
  std::fflush(stdout);

  std::ostringstream console;
  collector reporter{console};
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  const std::string load_at_end = load_average();

  std::map<std::string, double> medians;
  for (const auto& [name, values] : reporter.seconds) medians[name] = median(values);
  std::printf(
      "\n| case | median | range (min–max) | rate at the median | reference | median / "
      "reference's median |\n|---|---|---|---|---|---|\n");
  for (const row& r : rows) {
    const auto found = reporter.seconds.find(r.name);
    if (found == reporter.seconds.end()) {
      std::printf("| %s | not run | | | | |\n", r.label.c_str());
      continue;
    }
    const auto& values = found->second;
    const double m = medians[r.name];
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    char rate[48] = "";
    if (r.bytes > 0) std::snprintf(rate, sizeof rate, "%.2f GB/s", r.bytes / m / 1e9);
    if (r.items > 0) std::snprintf(rate, sizeof rate, "%.2f M/s", r.items / m / 1e6);
    std::string reference = "(reference)";
    std::string ratio = "1";
    if (!r.reference.empty()) {
      const auto ref = medians.find(r.reference);
      reference = r.reference;
      for (const row& other : rows) {
        if (other.name == r.reference) reference = other.label;
      }
      ratio = "not run";
      if (ref != medians.end()) {
        char text[32];
        std::snprintf(text, sizeof text, "%.2f×", m / ref->second);
        ratio = text;
      }
    }
    std::printf("| %s | %s | %s – %s | %s | %s | %s |\n", r.label.c_str(), format_time(m).c_str(),
                format_time(*lo).c_str(), format_time(*hi).c_str(), rate, reference.c_str(),
                ratio.c_str());
  }
  std::printf("\n- repetitions per case: %zu\n- load average at end: %s\n",
              reporter.seconds.empty() ? std::size_t{0} : reporter.seconds.begin()->second.size(),
              load_at_end.c_str());
  std::printf(
      "\nGoogle Benchmark's output (seconds per iteration, wall clock):\n\n```text\n%s```\n",
      console.str().c_str());
  return 0;
}

}  // namespace crew_bench
