#include <crew/crew.hpp>

#include <cstdio>

int main() {
  crew::future<int> f = crew::make_ready_future(41);
  const int value = f.get() + 1;
  std::printf("crew %s from an installed package: %d\n", crew::version(), value);
  return value == 42 ? 0 : 1;
}
