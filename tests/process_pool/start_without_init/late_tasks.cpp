#include "late_tasks.hpp"

#include "executors/process/startup.hpp"

namespace crew::test {
namespace {

int late_cube(int x) {
  return x * x * x;
}

// argv is filled by crew's entry; before it runs, startup() holds an empty one.
const bool after_crew_entry = !crew::detail::process::startup().argv.empty();

}  // namespace

crew::future<int> submit_late_cube(crew::process_pool& pool, int x) {
  return pool.submit<&late_cube>(x);
}

bool late_tasks_initialized_after_crew_entry() {
  return after_crew_entry;
}

}  // namespace crew::test
