// Writes valid encodings of codec_fuzz's types into a folder, to seed its corpus:
//   codec_fuzz_seeds <folder>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "codec_fuzz_types.hpp"

namespace {

template <class T>
void write_seed(const std::string& folder, const std::string& name, crew_fuzz::target which,
                const T& value) {
  const auto bytes = crew::codec::encode(value);
  std::ofstream out(folder + "/" + name, std::ios::binary);
  const char selector = static_cast<char>(which);
  out.write(&selector, 1);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <folder>\n", argv[0]);
    return 2;
  }
  const std::string folder = argv[1];
  for (int seed = 0; seed < 4; ++seed) {
    write_seed(folder, "rich-" + std::to_string(seed), crew_fuzz::target::rich,
               crew_fuzz::sample_rich(seed));
    write_seed(folder, "hashed-" + std::to_string(seed), crew_fuzz::target::hashed,
               crew_fuzz::sample_hashed(seed));
    write_seed(folder, "tree-" + std::to_string(seed), crew_fuzz::target::tree,
               crew_fuzz::sample_tree(seed));
  }
  write_seed(folder, "rich-empty", crew_fuzz::target::rich, crew_fuzz::rich{});
  return 0;
}
