// lab/bench_command.hpp — `crew bench`: validates options, runs the chosen experiments with a
// progress display on stderr, prints the tables on stdout and writes the JSON and HTML reports.
// Blocks for the whole run (seconds to minutes). Not thread-safe: it forks.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace crew::lab {

struct bench_options {
  bool quick = false;
  std::vector<std::string> only;  // experiment ids; empty: all
  std::vector<unsigned> workers;  // empty: 1 … 2×cores
  std::optional<int> repeat;      // not given: 5 with --quick, 11 otherwise; else 1…1000
  std::string json_path;          // "-": standard output (the tables then go to `err`)
  std::string html_path;          // "-": standard output (the tables then go to `err`)
};

/// Runs the bench. Returns the process exit code: 0 on success, 2 for bad options (one line on
/// `err` says which), 1 if a report could not be written.
int run_bench(const bench_options& opts, std::ostream& out, std::ostream& err);

}  // namespace crew::lab
