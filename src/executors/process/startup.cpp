// crew's start-up entry: records argv while the binary loads, and turns a re-executed copy of the
// binary into a worker or a forkserver after the last static initializer (see startup.hpp).
#include "executors/process/startup.hpp"

#include <dlfcn.h>
#include <sys/auxv.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>

#include "executors/process/launch.hpp"

extern char** environ;

using init_function = void (*)(int, char**, char**);

// Bounds of the .init_array of the module this file is linked into, from the linker. Weak: a
// shared library may not define them (then crew is not in the executable and the entry is off).
extern "C" {
extern init_function __init_array_start[] __attribute__((weak, visibility("hidden")));
extern init_function __init_array_end[] __attribute__((weak, visibility("hidden")));
}

namespace crew::detail::process {
namespace {

startup_info& info() noexcept {
  static startup_info s;
  return s;
}

std::vector<std::string> read_cmdline() {
  std::ifstream in{"/proc/self/cmdline", std::ios::binary};
  const std::string all{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  std::vector<std::string> out;
  std::size_t begin = 0;
  while (begin < all.size()) {
    const std::size_t end = all.find('\0', begin);
    out.push_back(all.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return out;
}

void on_load(int argc, char** argv, char** envp);

// crew's entry in the .init_array of the module it is linked into. Unprioritized, so it runs in
// link order among the other unprioritized initializers; whatever comes after it, on_load runs
// itself in a re-executed child.
[[gnu::section(".init_array"), gnu::used]] init_function startup_entry = &on_load;

/// Whether startup_entry is an element of the executable's own .init_array.
bool entry_in_executable() noexcept {
  if (__init_array_start == nullptr || __init_array_end == nullptr) return false;
  init_function* const entry = &startup_entry;
  // Compared as integers: the entry is an element of the array only if it lies in its bounds.
  const auto at = reinterpret_cast<std::uintptr_t>(entry);
  if (at < reinterpret_cast<std::uintptr_t>(__init_array_start) ||
      at >= reinterpret_cast<std::uintptr_t>(__init_array_end)) {
    return false;
  }
  // The array found is this module's; it must be the executable's. A fully static executable
  // has no dynamic symbol information (dladdr fails), and holds nothing but the executable.
  Dl_info self{};
  Dl_info program{};
  const bool known_self = dladdr(reinterpret_cast<void*>(entry), &self) != 0;
  const bool known_program = dladdr(reinterpret_cast<void*>(getauxval(AT_PHDR)), &program) != 0;
  if (!known_self && !known_program) return true;
  return known_self && known_program && self.dli_fbase == program.dli_fbase;
}

void on_load(int argc, char** argv, char** envp) {
  startup_info& s = info();
#ifdef __GLIBC__
  // glibc passes main's arguments to every .init_array function.
  if (argv != nullptr) s.argv.assign(argv, argv + argc);
#else
  argc = 0;
  argv = nullptr;
  envp = environ;
#endif
  if (s.argv.empty()) s.argv = read_cmdline();
  s.entry_in_executable = entry_in_executable();
  if (!s.entry_in_executable || !child_requested(entry_point::load)) return;

  // A re-executed child: run the initializers that follow ours, as the C library would have,
  // then become what the parent asked for. Indexed from the linker's symbol (not from the
  // entry's address) so that no access reaches past an object of this file.
  const std::ptrdiff_t self = &startup_entry - __init_array_start;
  const std::ptrdiff_t count = __init_array_end - __init_array_start;
  for (std::ptrdiff_t i = self + 1; i < count; ++i) {
    init_function next = __init_array_start[i];
    if (next != nullptr) next(argc, argv, envp);
  }
  enter_child(entry_point::load);
}

}  // namespace

const startup_info& startup() noexcept {
  return info();
}

}  // namespace crew::detail::process
