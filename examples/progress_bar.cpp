// A progress bar on a long crew::map: rate and ETA on stderr, redrawn in place on a terminal,
// a plain line every few seconds (and one at the end) when stderr is a file or a pipe. The bar
// is an ordinary progress callback (crew/progress.hpp): any callable taking a progress_info works.
#include <chrono>
#include <crew/crew.hpp>
#include <iostream>
#include <numeric>
#include <thread>
#include <vector>

long slow_square(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds{1});  // stands for real work
  return long{x} * x;
}

int main() {
  crew::process_pool pool{{.workers = 2}};
  std::vector<int> inputs(2000);
  std::iota(inputs.begin(), inputs.end(), 0);

  const std::vector<long> squares =
      crew::map<&slow_square>(pool, inputs, {.progress = crew::progress_bar{{.label = "squares"}}});

  std::cout << "sum of squares: " << std::accumulate(squares.begin(), squares.end(), 0L) << '\n';
}
