// crew/advise.hpp — which executor suits a task: measure it, weigh it against this machine's
// costs, and recommend threads, processes, hybrid or MPI with a worker count, a chunk size and a
// timeout, each with the numbers behind it.
//
//   crew::recommendation r = crew::advise<&parse>(sample_files);
//   for (const auto& why : r.reasons) std::cout << why << '\n';
//
// Three layers, usable on their own:
//  - crew::recommend(profile, costs): the rules (docs/advise.md lists them). A pure function: no
//    I/O, no clock; the same inputs give the same advice. `crew advise` (the CLI) uses it too.
//  - crew::profile_task<&fn>(samples): runs fn on a few sample inputs, each in a forked child
//    (crew::run_isolated), so a crash or a hang is observed, not suffered; measures wall time,
//    CPU time, the memory the task adds, argument and result sizes, and how each run ended.
//  - crew::calibrate_machine_costs(): what this machine charges for threads and processes,
//    measured in well under a second with crew's own pools.
// crew::advise<&fn> is profile_task + (given or calibrated) costs + recommend.
//
// Thread-safety: recommend() and describe() are pure and reentrant. profile_task, advise and
// calibrate_machine_costs fork; they may be called from any thread, with the usual caveat of
// forking while other threads hold locks (see process_pool's start methods).
// Blocking: profile_task and advise block for the samples, never much past
// advise_options::budget (a run still going then is stopped, SIGTERM then SIGKILL); calibration
// blocks for well under a second. Lifetime: results are plain values.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <iterator>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/codec.hpp"
#include "crew/detail/registry.hpp"

namespace crew {

/// One task, as measured: medians over the successful runs unless said otherwise. (From
/// crew::profile_task, wall time leaves out time spent waiting for a CPU other work held.)
struct workload_profile {
  std::string description;           // the command line or the function's name
  unsigned runs = 0;                 // runs measured
  double wall_seconds = 0;           // wall time per task
  double cpu_seconds = 0;            // user + system CPU time per task
  double max_wall_seconds = 0;       // the slowest run
  double peak_rss_bytes = 0;         // the largest resident set of any run
  double arg_bytes = 0;              // input handed to one task
  double result_bytes = 0;           // output one task returns
  unsigned crashes = 0;              // runs ended by a signal (or stopped at the time budget)
  std::string crash_detail;          // "signal 11 (Segmentation fault)"
  unsigned timeouts = 0;             // runs stopped at the time budget
  std::optional<std::size_t> tasks;  // how many such tasks the user will run, if known

  /// CPU time over wall time: ~1 for one busy core, ~0 for waiting, >1 for a task that is
  /// itself parallel.
  double cpu_fraction() const noexcept { return wall_seconds > 0 ? cpu_seconds / wall_seconds : 0; }
};

/// What this machine charges: from a `crew bench` report (the CLI reads it), a calibration, or
/// the caller. Defaults are order-of-magnitude figures for a current x86-64 Linux machine.
struct machine_costs {
  std::string source;  // "crew bench JSON <path>", "calibration", ...
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
  bool hybrid_built = false;  // crew::hybrid_pool is available to run a hybrid recommendation
  bool mpi_built = false;     // crew::mpi_pool is available to run an MPI recommendation
  std::vector<std::string> assumed;  // which figures are defaults rather than measured
};

enum class execution_model { threads, processes, hybrid, mpi };
/// "threads", "processes", "hybrid" or "mpi".
const char* to_string(execution_model m) noexcept;

struct recommendation {
  execution_model model = execution_model::threads;
  unsigned workers = 1;              // threads, processes or ranks (per node for MPI)
  unsigned threads_per_worker = 1;   // hybrid: threads inside each process
  std::size_t chunk = 1;             // tasks per submission
  double timeout_seconds = 0;        // per chunk
  double overhead_seconds = 0;       // what the model adds to each task here
  double predicted_speedup = 1;      // over running the tasks one after another here
  std::string workload_kind;         // "CPU-bound", "I/O-bound", "mixed"
  std::vector<std::string> reasons;  // why, with the numbers
  std::vector<std::string> caveats;
};

/// The advice rules (docs/advise.md lists them in order). Pure; noexcept apart from allocation.
recommendation recommend(const workload_profile& p, const machine_costs& m);

/// A few lines for a person: the model, workers, chunk, timeout, predicted speed-up, then every
/// reason ("because ...") and caveat ("note: ...").
std::string describe(const recommendation& r);

/// Measures this machine with crew's own pools: thread start (create + join), process start
/// (fork + wait), thread_pool and process_pool round trips, the bandwidth of a large argument to
/// a worker process and of memcpy. Cores are those this process may run on; memory is physical
/// memory. Idle-worker memory is not measured (listed in `assumed`). Takes well under a second.
/// Throws std::system_error if it cannot fork or start threads.
machine_costs calibrate_machine_costs();

struct advise_options {
  /// Wall time for all sample runs. Runs stop early when the next might not fit; a run still
  /// going at the budget is stopped and counted as a timeout (and as a crash: it never returned).
  std::chrono::milliseconds budget{3000};
  /// At most this many samples are run, spread evenly over the given inputs (at least 1).
  std::size_t max_samples = 8;
  /// This machine's costs; empty: calibrate_machine_costs() runs.
  std::optional<machine_costs> costs;
  /// How many such tasks will run, if known: bounds the chunk size (rule 8).
  std::optional<std::size_t> tasks;
};

/// How one sample run ended, and what it cost.
struct task_sample {
  enum class ending { returned, crashed, timed_out, out_of_memory, threw };
  ending end = ending::returned;
  double wall_seconds = 0;  // inside the child, around the call (the whole child if it failed)
  /// Of wall_seconds, the time the calling thread was ready to run but waited for a CPU that
  /// other work held (Linux schedstat; 0 where unavailable). The profile's wall time leaves it
  /// out, so that a CPU-bound task measured on a busy machine still reads as CPU-bound.
  double cpu_wait_seconds = 0;
  double cpu_seconds = 0;   // user + system, the call's threads and the children it waited for
  double peak_bytes = 0;    // resident memory the call added at its peak
  double arg_bytes = 0;     // the input, encoded as a process pool would send it
  double result_bytes = 0;  // the result, encoded as a process pool would return it
  int signal = 0;           // the signal that ended a crashed run
  std::string detail;       // what went wrong, for runs that did not return
};

namespace detail {

/// What one sample run measures inside its child: wall, CPU, peak added memory, result bytes,
/// time spent waiting for a CPU.
using child_metrics = std::array<double, 5>;

/// Runs `call()` (which returns the encoded size of the task's result) and measures it. Runs in
/// the forked child.
child_metrics measure_call(const std::function<double()>& call);

/// The sampling loop: picks up to max_samples of `count` inputs, runs each with
/// `run(i)` (which calls measure_call in a child through run_isolated) under the remaining
/// budget, and summarizes. Throws std::invalid_argument when count is 0.
workload_profile profile_samples(std::string description, std::size_t count,
                                 const std::function<double(std::size_t)>& arg_bytes,
                                 const std::function<child_metrics(std::size_t)>& call_in_child,
                                 const advise_options& options, std::vector<task_sample>* raw);

/// Calls Fn with one sample input: the input itself as the one argument, or the elements of a
/// tuple-like input as the arguments. The input is copied first, so Fn may take it by value,
/// reference or rvalue reference.
template <auto Fn, class In>
decltype(auto) call_with_sample(const In& input) {
  using F = decltype(Fn);
  In copy = input;
  if constexpr (std::is_invocable_v<F, In&&>) {
    return std::invoke(Fn, std::move(copy));
  } else if constexpr (std::is_invocable_v<F, In&>) {
    return std::invoke(Fn, copy);
  } else {
    return std::apply(Fn, std::move(copy));
  }
}

}  // namespace detail

/// Runs Fn on a few of `sample_inputs` (each alone in a forked child, within options.budget)
/// and summarizes what it measured. Each input is one task's argument (or, for a function of
/// several arguments, a tuple of them). `raw`, if given, receives every run.
/// Throws std::invalid_argument if `sample_inputs` is empty.
template <auto Fn, std::ranges::forward_range Range>
workload_profile profile_task(const Range& sample_inputs, const advise_options& options = {},
                              std::vector<task_sample>* raw = nullptr) {
  using in = std::ranges::range_value_t<Range>;
  static_assert(codec::serializable<in>,
                "crew::advise: the sample inputs must be serializable (crew/codec.hpp), as a "
                "process pool would send them");
  using R = std::decay_t<decltype(detail::call_with_sample<Fn>(std::declval<const in&>()))>;
  static_assert(std::is_void_v<R> || codec::serializable<R>,
                "crew::advise: Fn's result must be serializable (crew/codec.hpp), as a process "
                "pool would return it");
  std::vector<const in*> inputs;
  for (const auto& x : sample_inputs) inputs.push_back(&x);
  return detail::profile_samples(
      std::string{detail::function_name<Fn>()}, inputs.size(),
      [&inputs](std::size_t i) { return static_cast<double>(codec::encoded_size(*inputs[i])); },
      [&inputs](std::size_t i) {
        return detail::measure_call([&inputs, i]() -> double {
          if constexpr (std::is_void_v<R>) {
            detail::call_with_sample<Fn>(*inputs[i]);
            return 0;
          } else {
            const R result = detail::call_with_sample<Fn>(*inputs[i]);
            return static_cast<double>(codec::encoded_size(result));
          }
        });
      },
      options, raw);
}

/// Measures Fn on `sample_inputs` (profile_task), takes this machine's costs (options.costs, or
/// a calibration), and applies the rules. Crashes, exceptions and runs stopped at the budget are
/// reported in the reasons and caveats, never thrown.
/// Throws std::invalid_argument if `sample_inputs` is empty.
template <auto Fn, std::ranges::forward_range Range>
recommendation advise(const Range& sample_inputs, const advise_options& options = {}) {
  std::vector<task_sample> raw;
  workload_profile profile = profile_task<Fn>(sample_inputs, options, &raw);
  profile.tasks = options.tasks;
  const machine_costs costs = options.costs ? *options.costs : calibrate_machine_costs();
  recommendation r = recommend(profile, costs);
  const auto given = static_cast<std::size_t>(std::ranges::distance(sample_inputs));
  const std::size_t wanted = std::min(given, std::max<std::size_t>(1, options.max_samples));
  if (profile.runs < wanted && profile.timeouts == 0)
    r.caveats.push_back("only " + std::to_string(profile.runs) + " of " + std::to_string(wanted) +
                        " samples fit in the time budget");
  for (const task_sample& s : raw)
    if (s.end == task_sample::ending::threw)
      r.caveats.push_back("a sample threw (" + s.detail +
                          "): an exception is an error on that task's future in every model");
  r.caveats.push_back("measured " + std::to_string(profile.runs) + " run(s) of " +
                      profile.description + "; machine costs from " + costs.source);
  return r;
}

}  // namespace crew
