// advise/advise_command.hpp — `crew advise -- ./job args`: profile the command, get this
// machine's costs, print the recommendation with the numbers behind it. Blocks for the runs
// (within --budget) and, without --bench, a calibration whose duration it prints. Not
// thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace crew::lab {

struct advise_options {
  std::vector<std::string> command;
  unsigned runs = 3;
  double budget_seconds = 60;
  std::string bench_json;  // empty: calibrate
  std::optional<std::size_t> tasks;
  std::string json_path;  // "-": standard output (the advice for people then goes to err)
  std::string stdin_path = "/dev/null";  // the command's standard input
};

/// Returns the exit code: 0 advice given; 1 cannot run the command or read/write a file;
/// 2 bad options; 3 the command crashed on every run; 4 it did not finish within the budget.
int run_advise(const advise_options& opts, std::ostream& out, std::ostream& err);

}  // namespace crew::lab
