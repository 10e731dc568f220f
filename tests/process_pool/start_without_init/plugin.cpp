// A plugin loaded with dlopen after a pool started its workers: its task function is registered
// in the parent only (no worker ever loads the plugin), so a worker is asked for a task id it
// does not know. Built as a module without crew: crew's symbols come from the test executable.
#include <string>

#include "crew/process_pool.hpp"

namespace {

int plugin_square(int x) {
  return x * x;
}

}  // namespace

/// Runs plugin_square(x) on `pool`; returns its result, or sets *error to the task error.
extern "C" int crew_test_plugin_run(crew::process_pool& pool, int x, std::string* error,
                                    int* kind) {
  auto result = pool.submit<&plugin_square>(x).result();
  if (result) return result.value();
  *error = result.error().what();
  *kind = static_cast<int>(result.error().kind());
  return -1;
}
