#include "lab/machine.hpp"

#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

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

}  // namespace

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
  return m;
}

}  // namespace crew::lab
