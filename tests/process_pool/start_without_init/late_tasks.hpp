// A task registered by a static initializer that runs after crew's start-up entry: this file is
// linked after crew (tests/process_pool/CMakeLists.txt), so a spawn worker that entered straight
// from crew's entry, skipping the rest of the binary's initializers, would not know the task.
#pragma once

#include "crew/process_pool.hpp"

namespace crew::test {

/// Submits late_cube(x), a task registered only in late_tasks.cpp.
crew::future<int> submit_late_cube(crew::process_pool& pool, int x);

/// Whether crew's start-up entry had run when late_tasks.cpp's static initializers ran (the
/// premise of the test: if not, the link order did not put this file after crew).
bool late_tasks_initialized_after_crew_entry();

}  // namespace crew::test
