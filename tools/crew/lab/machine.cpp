#include "lab/machine.hpp"

#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "crew/version.hpp"

#ifndef CREW_COMPILER
#define CREW_COMPILER "unknown"
#endif

namespace crew::lab {

unsigned usable_cores() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1u;
}

namespace {

std::string proc_field(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto v = line.substr(colon + 1);
    const auto b = v.find_first_not_of(" \t");
    return b == std::string::npos ? std::string{} : v.substr(b);
  }
  return {};
}

std::string first_line(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

bool read_number(const std::filesystem::path& path, long long& v) {
  std::istringstream in(first_line(path));
  return static_cast<bool>(in >> v);
}

// Each CPU number in a list like "0-3,8,10-11".
template <class F>
void for_each_cpu(const std::string& list, F&& f) {
  std::istringstream in(list);
  std::string part;
  while (std::getline(in, part, ',')) {
    unsigned a = 0, b = 0;
    const auto dash = part.find('-');
    try {
      a = static_cast<unsigned>(std::stoul(part.substr(0, dash)));
      b = dash == std::string::npos ? a : static_cast<unsigned>(std::stoul(part.substr(dash + 1)));
    } catch (const std::exception&) {
      continue;
    }
    for (unsigned c = a; c <= b && c - a < 65536; ++c) f(c);
  }
}

// The quota file of one cgroup directory, as CPUs; 0 when unlimited or unreadable.
double quota_in(const std::filesystem::path& dir, bool v2) {
  if (v2) {
    std::istringstream in(first_line(dir / "cpu.max"));
    std::string quota;
    double period = 0;
    if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
    try {
      return std::stod(quota) / period;
    } catch (const std::exception&) {
      return 0;
    }
  }
  long long quota = 0, period = 0;
  if (!read_number(dir / "cpu.cfs_quota_us", quota) ||
      !read_number(dir / "cpu.cfs_period_us", period) || quota <= 0 || period <= 0)
    return 0;
  return static_cast<double>(quota) / static_cast<double>(period);
}

}  // namespace

unsigned count_cpu_list(const std::string& list) {
  unsigned n = 0;
  for_each_cpu(list, [&](unsigned) { ++n; });
  return n;
}

cpu_topology read_topology(const std::string& sys_root) {
  namespace fs = std::filesystem;
  cpu_topology t;
  const fs::path cpus = fs::path(sys_root) / "devices/system/cpu";
  std::set<long long> packages;
  std::map<std::pair<long long, long long>, unsigned> cores;  // (package, core) → threads
  for_each_cpu(first_line(cpus / "online"), [&](unsigned c) {
    const fs::path topo = cpus / ("cpu" + std::to_string(c)) / "topology";
    long long package = 0, core = 0;
    if (!read_number(topo / "physical_package_id", package) || !read_number(topo / "core_id", core))
      return;
    ++t.logical_cpus;
    packages.insert(package);
    ++cores[{package, core}];
  });
  t.sockets = static_cast<unsigned>(packages.size());
  t.physical_cores = static_cast<unsigned>(cores.size());
  for (const auto& [core, threads] : cores) t.smt_siblings = std::max(t.smt_siblings, threads);
  t.numa_nodes = count_cpu_list(first_line(fs::path(sys_root) / "devices/system/node/online"));
  return t;
}

cpu_quota read_cpu_quota(const std::string& cgroup_file, const std::string& cgroup_root) {
  namespace fs = std::filesystem;
  cpu_quota best;
  std::ifstream in(cgroup_file);
  std::string line;
  // "0::/path" is cgroup v2; "N:cpu,cpuacct:/path" (or "N:cpu:/path") is v1's cpu controller.
  while (std::getline(in, line)) {
    const auto a = line.find(':');
    const auto b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    fs::path rel = line.substr(b + 1);
    bool v2 = false;
    fs::path mount;
    if (line.compare(0, a, "0") == 0 && controllers.empty()) {
      v2 = true;
      mount = fs::exists(fs::path(cgroup_root) / "cgroup.controllers")
                  ? fs::path(cgroup_root)
                  : fs::path(cgroup_root) / "unified";
    } else {
      std::istringstream names(controllers);
      std::string name;
      bool has_cpu = false;
      while (std::getline(names, name, ',')) has_cpu = has_cpu || name == "cpu";
      if (!has_cpu) continue;
      mount = fs::path(cgroup_root) / controllers;
      if (!fs::exists(mount)) mount = fs::path(cgroup_root) / "cpu";
    }
    // The tightest limit from this cgroup up to the root: a parent's quota binds its children.
    fs::path dir = (mount / rel.relative_path()).lexically_normal();
    if (dir.filename().empty()) dir = dir.parent_path();
    for (;; dir = dir.parent_path()) {
      const double q = quota_in(dir, v2);
      if (q > 0 && (best.cpus == 0 || q < best.cpus)) {
        best.cpus = q;
        best.source = (dir / (v2 ? "cpu.max" : "cpu.cfs_quota_us")).string();
      }
      if (dir == mount || !dir.has_relative_path() || dir.parent_path() == dir) break;
    }
  }
  return best;
}

std::string describe_layout(const machine_info& m) {
  auto count = [](unsigned n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
  };
  std::string s;
  if (m.sockets > 0) s += count(m.sockets, "socket", "sockets") + ", ";
  if (m.physical_cores > 0) s += count(m.physical_cores, "physical core", "physical cores") + ", ";
  if (m.smt_siblings > 1)
    s += std::to_string(m.smt_siblings) + " SMT threads per core, ";
  else if (m.smt_siblings == 1)
    s += "no SMT, ";
  if (m.numa_nodes > 0) s += count(m.numa_nodes, "NUMA node", "NUMA nodes") + ", ";
  if (m.cgroup_cpu_quota > 0) {
    std::ostringstream q;
    q.precision(3);
    q << "cgroup CPU quota " << m.cgroup_cpu_quota << " CPUs";
    s += q.str();
  } else {
    s += "no cgroup CPU quota";
  }
  return s;
}

machine_info describe_machine() {
  machine_info m;
  m.cpu_model = proc_field("/proc/cpuinfo", "model name");
  if (m.cpu_model.empty()) m.cpu_model = "unknown";
  m.cores = usable_cores();
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  m.online_cpus = online > 0 ? static_cast<unsigned>(online) : m.cores;
  utsname u{};
  if (::uname(&u) == 0) {
    m.kernel = std::string(u.sysname) + " " + u.release;
    m.hostname = u.nodename;
  }
  std::istringstream mem(proc_field("/proc/meminfo", "MemTotal"));
  std::uint64_t kib = 0;
  mem >> kib;
  m.memory_bytes = kib * 1024;
  m.compiler = CREW_COMPILER;
  m.crew_version = crew::version();
  std::ifstream("/proc/loadavg") >> m.load_average;
  const cpu_topology t = read_topology();
  m.sockets = t.sockets;
  m.physical_cores = t.physical_cores;
  m.smt_siblings = t.smt_siblings;
  m.numa_nodes = t.numa_nodes;
  const cpu_quota q = read_cpu_quota();
  m.cgroup_cpu_quota = q.cpus;
  m.cgroup_cpu_source = q.source;
  return m;
}

}  // namespace crew::lab
