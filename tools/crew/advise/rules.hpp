// advise/rules.hpp — the advice rules: a pure function from what a workload does
// (`workload_profile`) and what this machine charges (`machine_costs`) to a recommendation
// (threads, processes, hybrid or MPI; workers; chunk size; timeout; predicted speed-up), each
// part with the numbers behind it. No I/O, no clock: the same inputs give the same advice, so
// the library's `crew::advise<&fn>` and `crew::auto_pool` can reuse it. Thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace crew::lab {

/// One task, as measured: medians over the runs unless said otherwise.
struct workload_profile {
  std::string description;           // the command line or the function's name
  unsigned runs = 0;                 // runs measured
  double wall_seconds = 0;           // wall time per task
  double cpu_seconds = 0;            // user + system CPU time per task
  double max_wall_seconds = 0;       // the slowest run
  double peak_rss_bytes = 0;         // the largest resident set of any run
  double arg_bytes = 0;              // input handed to one task
  double result_bytes = 0;           // output one task returns
  unsigned crashes = 0;              // runs ended by a signal (or killed at the time budget)
  std::string crash_detail;          // "signal 11 (Segmentation fault)"
  unsigned timeouts = 0;             // runs killed at the time budget
  std::optional<std::size_t> tasks;  // how many such tasks the user will run, if known

  /// CPU time over wall time: ~1 for one busy core, ~0 for waiting, >1 for a task that is
  /// itself parallel.
  double cpu_fraction() const noexcept { return wall_seconds > 0 ? cpu_seconds / wall_seconds : 0; }
};

/// What this machine charges, from a `crew bench` JSON or a short calibration.
struct machine_costs {
  std::string source;  // "crew bench JSON <path>" or "calibration"
  unsigned cores = 1;
  double memory_bytes = 0;
  double thread_start_seconds = 20e-6;
  double process_start_seconds = 200e-6;   // fork + wait of a small parent
  double thread_handoff_seconds = 5e-6;    // one round trip between threads
  double process_handoff_seconds = 10e-6;  // one round trip between processes
  double copy_bandwidth = 2e9;             // bytes/s, a message copied to another process
  double shared_bandwidth = 8e9;           // bytes/s, memcpy within a process
  double idle_thread_bytes = 64e3;
  double idle_process_bytes = 1e6;
  bool hybrid_built = false;
  bool mpi_built = false;
  std::vector<std::string> assumed;  // which figures are defaults rather than measured
};

enum class execution_model { threads, processes, hybrid, mpi };
const char* to_string(execution_model m) noexcept;

struct recommendation {
  execution_model model = execution_model::threads;
  unsigned workers = 1;              // threads, processes or ranks (per node for MPI)
  unsigned threads_per_worker = 1;   // hybrid: threads inside each process
  std::size_t chunk = 1;             // tasks per submission
  double timeout_seconds = 0;        // per task
  double overhead_seconds = 0;       // what the model adds to each task here
  double predicted_speedup = 1;      // over running the tasks one after another here
  std::string workload_kind;         // "CPU-bound", "I/O-bound", "mixed"
  std::vector<std::string> reasons;  // why, with the numbers
  std::vector<std::string> caveats;
};

/// The advice rules (docs/advise.md lists them in order).
recommendation recommend(const workload_profile& p, const machine_costs& m);

nlohmann::json to_json(const workload_profile& p);
nlohmann::json to_json(const machine_costs& m);
nlohmann::json to_json(const recommendation& r);

}  // namespace crew::lab
