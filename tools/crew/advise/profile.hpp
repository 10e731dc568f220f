// advise/profile.hpp — measure a shell command as one task: run it a few times under wait4()
// and collect wall time, user+system CPU, peak RSS, output size, and how it ended.
// Blocks for the runs, never longer than the budget (then SIGTERM, and SIGKILL 2 s later, to
// the command's whole process group). Not thread-safe: it forks.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "advise/rules.hpp"

namespace crew::lab {

/// The command could not be run at all (not found, not executable…).
class advise_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct command_run {
  double wall_seconds = 0;
  double cpu_seconds = 0;
  double max_rss_bytes = 0;
  double stdout_bytes = 0;
  int exit_code = -1;       // when it exited
  int signal = 0;           // when a signal ended it
  bool timed_out = false;   // killed at the budget
  std::string stderr_tail;  // the last few hundred bytes it wrote to stderr
};

/// Runs `argv` once with stdin from /dev/null and stdout counted and discarded; kills it after
/// `timeout_seconds`. Throws advise_error if it cannot be started.
command_run run_command(const std::vector<std::string>& argv, double timeout_seconds);

/// Runs `argv` up to `runs` times within `budget_seconds` and summarizes the runs.
workload_profile profile_command(const std::vector<std::string>& argv, unsigned runs,
                                 double budget_seconds, std::vector<command_run>* raw = nullptr);

}  // namespace crew::lab
