// Must NOT compile: each CREW_CASE hands a pool whose tasks run in other processes a callable
// that a worker cannot make for itself, and the build must stop on crew's own static_assert —
// saying why and what to write instead — not on some unrelated error. CREW_CASE 0 is the
// control: the same calls with stateless callables compile. (-fsyntax-only: nothing runs.)
#include <functional>
#include <string>

#include "crew/auto_pool.hpp"
#include "crew/hybrid_pool.hpp"
#include "crew/mpi_pool.hpp"
#include "crew/process_pool.hpp"

namespace {

int square(int x) {
  return x * x;
}

struct with_state {
  int offset = 1;
  int operator()(int x) const { return x + offset; }
};

}  // namespace

int main() {
  [[maybe_unused]] int offset = 3;
  [[maybe_unused]] crew::process_pool* processes = nullptr;
  [[maybe_unused]] crew::hybrid_pool* hybrid = nullptr;
  [[maybe_unused]] crew::mpi_pool* mpi = nullptr;
  [[maybe_unused]] crew::auto_pool* automatic = nullptr;
#if CREW_CASE == 0
  (void)processes->submit([](int x) { return x + 1; }, 1);
  (void)hybrid->detach([](const std::string& s) { return s.size(); }, "text");
  (void)mpi->submit([](auto x) { return x; }, 1);
  (void)automatic->detach([](int) {}, 1);
#elif CREW_CASE == 1  // a lambda with captures
  (void)processes->submit([offset](int x) { return x + offset; }, 1);
#elif CREW_CASE == 2  // a std::function
  (void)hybrid->submit(std::function<int(int)>{[](int x) { return x; }}, 1);
#elif CREW_CASE == 3  // a function object with data members, detached
  (void)automatic->detach(with_state{}, 1);
#elif CREW_CASE == 4  // a lambda capturing by reference, on the MPI pool
  (void)mpi->submit([&offset](int x) { return x + offset; }, 1);
#elif CREW_CASE == 5  // a function pointer chosen at run time
  (void)processes->submit(&square, 1);
#elif CREW_CASE == 6  // a function by name: decays to a pointer
  (void)mpi->detach(square, 1);
#endif
  return 0;
}
