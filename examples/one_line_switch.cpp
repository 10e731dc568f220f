// One program, any executor: the line marked below is the only one that changes to run these
// tasks on threads, on processes, on processes × threads, or on MPI ranks. The build makes one
// binary per executor from this file by replacing that line, and a test checks that all of them
// print the same thing.
#include <crew/crew.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

struct block {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(begin, end);
  }
};

bool is_prime(std::uint64_t n) {
  if (n < 2) return false;
  for (std::uint64_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

std::uint64_t count_primes(const block& b) {
  std::uint64_t count = 0;
  for (std::uint64_t n = b.begin; n < b.end; ++n) count += is_prime(n) ? 1 : 0;
  return count;
}

std::uint64_t add(std::uint64_t a, std::uint64_t b) {
  return a + b;
}

}  // namespace

int main(int argc, char** argv) {
  crew::init(argc, argv);
  crew::thread_pool pool{4};  // the executor: the only line that changes

  std::vector<block> blocks;
  for (std::uint64_t start = 0; start < 2'000'000; start += 100'000)
    blocks.push_back({start, start + 100'000});

  const std::vector<std::uint64_t> per_block = crew::map<&count_primes>(pool, blocks);
  const std::uint64_t total = crew::reduce<&add>(pool, per_block, std::uint64_t{0});

  std::string line;
  for (std::uint64_t n : per_block) line += std::to_string(n) + ' ';
  std::printf("primes per block: %s\n", line.c_str());
  std::printf("primes below 2000000: %llu\n", static_cast<unsigned long long>(total));
  return total == 148933 ? 0 : 1;
}
