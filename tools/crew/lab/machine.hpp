// lab/machine.hpp — a description of the machine the figures were measured on.
// Reads /proc and uname; thread-safe; never blocks for long.
#pragma once

#include <cstdint>
#include <string>

namespace crew::lab {

struct machine_info {
  std::string cpu_model;     // /proc/cpuinfo "model name"
  unsigned cores = 1;        // CPUs this process may run on (sched_getaffinity)
  unsigned online_cpus = 1;  // sysconf(_SC_NPROCESSORS_ONLN)
  std::string kernel;        // uname: sysname release
  std::string hostname;
  std::uint64_t memory_bytes = 0;  // MemTotal
  std::string compiler;            // the compiler that built this tool
  std::string crew_version;        // crew::version()
  double load_average = 0;         // 1-minute load average when described: high means noisy figures
};

machine_info describe_machine();

/// CPUs this process may run on, at least 1.
unsigned usable_cores() noexcept;

}  // namespace crew::lab
