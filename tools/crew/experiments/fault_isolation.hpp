// experiments/fault_isolation.hpp — the fault experiment's verdict, apart from its measurement
// so that it can be checked on made-up figures. Pure; thread-safe.
#pragma once

#include <string>

#include "experiments/pools.hpp"
#include "lab/experiment.hpp"

namespace crew::lab {

struct fault_judgement {
  verdict_kind verdict = verdict_kind::not_measured;
  std::string text;      // why, for the summary
  std::string measured;  // the figures in one line
};

/// Judges one thread model against one process model, `tasks` tasks of which one segfaulted.
/// The claim holds for threads when the pool's process died in every run and more than the
/// faulting task was lost (median); for processes when the pool's process lived in every run
/// and exactly one task was lost (median). With `crew_pools`, the process pool must also have
/// failed the faulting task's future as `crashed` in every run (fault_figures::crashed_futures).
/// Missing figures (a series without data) give not_measured.
fault_judgement judge_fault(const pools::fault_figures& threads,
                            const pools::fault_figures& processes, unsigned tasks, bool crew_pools);

}  // namespace crew::lab
