// Writes valid exception encodings (one file per case) to seed exception_fuzz's corpus.
// Usage: exception_fuzz_seeds <directory>
#include <cstdio>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "crew/exception.hpp"

namespace {

void write(const std::string& dir, const std::string& name, const std::exception_ptr& error) {
  const std::vector<std::byte> bytes = crew::encode_exception(error);
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::exception_ptr chain() {
  try {
    try {
      throw std::out_of_range{"inner"};
    } catch (...) {
      std::throw_with_nested(std::system_error(std::make_error_code(std::errc::io_error), "io"));
    }
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <directory>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  write(dir, "runtime_error", std::make_exception_ptr(std::runtime_error{"boom"}));
  write(dir, "bad_alloc", std::make_exception_ptr(std::bad_alloc{}));
  write(dir, "int", std::make_exception_ptr(42));
  write(dir, "chain", chain());
  return 0;
}
