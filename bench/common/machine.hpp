// What every crew benchmark program prints about its run, and how it summarises repeated
// samples: the machine in one line, the load average, and a median with its range. Header-only,
// with no dependency beyond the standard library and POSIX, so that programs which do not use
// Google Benchmark (bench_exceptions, mpi_pool_bench) share it with those that do
// (markdown_report.hpp).
#pragma once

#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace crew_bench {

inline std::string read_first_line(const char* path) {
  std::ifstream in{path};
  std::string line;
  std::getline(in, line);
  return line;
}

inline std::string load_average() {
  std::istringstream in{read_first_line("/proc/loadavg")};
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

inline std::string machine() {
  std::string model = "unknown CPU";
  std::ifstream cpu{"/proc/cpuinfo"};
  for (std::string line; std::getline(cpu, line);) {
    if (line.starts_with("model name")) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::string memory;
  std::ifstream mem{"/proc/meminfo"};
  for (std::string line; std::getline(mem, line);) {
    if (line.starts_with("MemTotal:")) {
      std::istringstream fields{line.substr(9)};
      double kib = 0;
      fields >> kib;
      char text[32];
      std::snprintf(text, sizeof text, "%.1f GiB", kib / (1024.0 * 1024.0));
      memory = text;
      break;
    }
  }
  utsname u{};
  uname(&u);
  std::string out = std::to_string(std::thread::hardware_concurrency()) + " hardware threads (" +
                    model + "), " + memory + ", Linux " + u.release;
#if defined(__clang__)
  out += ", clang " __clang_version__;
#elif defined(__GNUC__)
  out += ", g++ " __VERSION__;
#endif
#if defined(__OPTIMIZE__)
  out += ", optimised";
#else
  out += ", NOT optimised";
#endif
  return out;
}

/// A figure measured several times: its median and its range.
struct figure {
  double median = 0, min = 0, max = 0;
};

/// The median (mean of the middle two for an even count) and range of `v`; zeros when empty.
inline figure summarize(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return {n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front(), v.back()};
}

}  // namespace crew_bench
