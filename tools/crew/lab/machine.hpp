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
  // What matters on a big machine (all 0 when the system does not say):
  unsigned sockets = 0;         // distinct physical_package_id of the online CPUs
  unsigned physical_cores = 0;  // distinct (package, core) pairs
  unsigned smt_siblings = 0;    // hardware threads per physical core, the most any has (1: no SMT)
  unsigned numa_nodes = 0;      // /sys/devices/system/node/online
  double cgroup_cpu_quota = 0;  // CPUs' worth of time the cgroup allows (cpu.max); 0: no limit
  std::string cgroup_cpu_source;  // the file the quota came from, empty when none
};

machine_info describe_machine();

/// "1 socket, 2 physical cores, no SMT, 1 NUMA node, no cgroup CPU quota": the layout in words,
/// for the bench's first line and the HTML report.
std::string describe_layout(const machine_info& m);

struct cpu_topology {
  unsigned sockets = 0;
  unsigned physical_cores = 0;
  unsigned logical_cpus = 0;  // online CPUs with a topology directory
  unsigned smt_siblings = 0;
  unsigned numa_nodes = 0;
};

/// Reads the topology of the online CPUs under `sys_root` (normally "/sys"; tests give a tree
/// of their own): devices/system/cpu/online, cpuN/topology/{physical_package_id,core_id},
/// devices/system/node/online. Missing files give zeros, never an error.
cpu_topology read_topology(const std::string& sys_root = "/sys");

struct cpu_quota {
  double cpus = 0;     // quota / period; 0 when unlimited or unknown
  std::string source;  // the file it came from
};

/// The tightest CPU quota on this process's cgroup and its ancestors: cgroup v2's cpu.max
/// ("200000 100000" = 2 CPUs, "max 100000" = none) or v1's cpu.cfs_quota_us / cpu.cfs_period_us.
/// `cgroup_file` is /proc/self/cgroup, `cgroup_root` the cgroup mount (tests give their own).
cpu_quota read_cpu_quota(const std::string& cgroup_file = "/proc/self/cgroup",
                         const std::string& cgroup_root = "/sys/fs/cgroup");

/// "0-3,8-11" → 8. Malformed text counts what parses.
unsigned count_cpu_list(const std::string& list);

/// CPUs this process may run on, at least 1.
unsigned usable_cores() noexcept;

}  // namespace crew::lab
