// lab/bench_command.hpp — `crew bench`: validates options, runs the chosen experiments with a
// progress display on stderr, prints the tables on stdout and writes the JSON and HTML reports.
// Blocks for the whole run (seconds to minutes). Not thread-safe: it forks.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace crew::lab {

struct bench_options {
  bool quick = false;
  std::vector<std::string> only;  // experiment ids; empty: all
  std::vector<unsigned> workers;  // empty: 1 … 2×cores
  int repeat = 0;                 // 0: 5 with --quick, 11 otherwise
  std::string json_path;
  std::string html_path;
};

/// Runs the bench. Returns the process exit code: 0 on success, 2 for bad options (one line on
/// `err` says which), 1 if a report could not be written.
int run_bench(const bench_options& opts, std::ostream& out, std::ostream& err);

}  // namespace crew::lab
