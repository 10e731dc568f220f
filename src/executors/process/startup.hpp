// executors/process/startup.hpp — what crew learns while the binary loads, and how a re-executed
// copy of the binary becomes a worker or a forkserver without any help from main().
//
// A spawn worker and the forkserver are the binary itself, exec'd from /proc/self/exe with a
// variable in the environment saying what to become. They must become it after every static
// initializer of the binary has run (task functions register themselves there, in whatever
// translation unit names them) and before main(). No hook runs at that point, so crew makes one:
// it places an entry of its own in the executable's .init_array and, in a re-executed child,
// calls the entries that follow it itself, with the arguments the C library gives them, then
// enters the worker (or the server) and never returns. Every static initializer of the binary
// thus runs exactly once, in its usual order, and main() never runs.
//
// That needs crew's entry to sit in the executable's own .init_array: crew linked statically
// into the program (the default build). When crew is a shared library, or linked into one, the
// executable's initializers run after crew's and cannot be run early; there, spawn and
// forkserver need crew::init(argc, argv) in main, and crew says so when a pool is made.
#pragma once

#include <string>
#include <vector>

namespace crew::detail::process {

struct startup_info {
  /// The program's arguments, copied while the binary loaded (before main could change them).
  std::vector<std::string> argv;
  /// crew's start-up entry is in the executable's own .init_array: a re-executed child can
  /// become a worker before main() without crew::init.
  bool entry_in_executable = false;
};

/// Filled while the binary loads; read-only afterwards (safe from any thread after main starts).
const startup_info& startup() noexcept;

}  // namespace crew::detail::process
