// advise/profile.hpp — measure a shell command as one task: run it a few times (crew::run_command)
// and collect wall time, user+system CPU, peak RSS, what it reads and writes (the files named on
// its command line, its stdin, its /proc/<pid>/io counters, time blocked on block I/O), its
// output size, and how it ended. Blocks for the runs, never longer than the budget (then
// SIGTERM, and SIGKILL 2 s later, to the command's whole process group). Not thread-safe: it
// forks.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "advise/rules.hpp"
#include "crew/child_process.hpp"

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
  int exit_code = -1;           // when it exited
  int signal = 0;               // when a signal ended it
  bool timed_out = false;       // killed at the budget
  std::string stderr_tail;      // the last few hundred bytes it wrote to stderr
  crew::child_io io;            // /proc/<pid>/io when it ended, with the children it waited for
  double io_wait_seconds = -1;  // blocked on block I/O (delay accounting); -1: not kept here
};

/// What a command is given to read before it runs: the regular files named on its command line
/// (an argument that is a path, or the value of --opt=path), and the file on its stdin.
struct command_inputs {
  std::vector<std::string> files;
  double file_bytes = 0;
  double stdin_bytes = 0;
  double total() const noexcept { return file_bytes + stdin_bytes; }
};
command_inputs named_inputs(const std::vector<std::string>& argv, const std::string& stdin_path);

/// Medians over the successful runs of what the command read and wrote as it ran.
struct io_profile {
  double read_chars = 0;        // rchar: bytes read (files, pipes, the page cache)
  double write_chars = 0;       // wchar: bytes written (stdout included)
  double storage_read = 0;      // read_bytes: fetched from storage
  double storage_write = 0;     // write_bytes: sent to storage
  double io_wait_seconds = -1;  // blocked on block I/O; -1 when the kernel does not keep it
  double waiting_seconds = 0;   // wall − CPU: blocked on I/O, sleeping or waiting, not computing
  bool known = false;           // /proc/<pid>/io was readable
};
io_profile summarize_io(const std::vector<command_run>& runs);

/// Runs `argv` once with stdin from `stdin_path` and stdout counted and discarded; kills it
/// after `timeout_seconds`. Throws advise_error if it cannot be started.
command_run run_command(const std::vector<std::string>& argv, double timeout_seconds,
                        const std::string& stdin_path = "/dev/null");

/// Runs `argv` up to `runs` times within `budget_seconds` and summarizes the runs. The
/// profile's arg_bytes are the command's named inputs (named_inputs), its result_bytes what it
/// wrote to stdout.
workload_profile profile_command(const std::vector<std::string>& argv, unsigned runs,
                                 double budget_seconds, std::vector<command_run>* raw = nullptr,
                                 const std::string& stdin_path = "/dev/null");

/// How many copies of the command to run at once: the recommendation's workers (one per core
/// for CPU-bound work, more for waiting work, capped by memory), times its threads per worker
/// for hybrid advice; at least 1.
unsigned copies_at_once(const recommendation& r);

}  // namespace crew::lab
