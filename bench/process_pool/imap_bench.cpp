// bench_imap — crew::imap against crew::map on a process_pool, in one run: the speed of streaming
// next to the blocking call with the same grain, and how much memory streaming needs.
//
//   bench_imap [--items N] [--grains 1000,10000,auto] [--workers W] [--repeats R]
//              [--max-in-flight M] [--rss-only]
//
// For each grain: the median time of crew::map<&identity> over a std::vector<int> of N items, of
// crew::imap and crew::imap_unordered over std::views::iota(0, N) (read lazily; every result
// consumed), and the ratio imap / map (the target: at most 1.5). Then imap's peak RSS growth:
// /proc/self/clear_refs resets the peak (VmHWM) before the stream starts, and the figure is the
// peak during the stream minus the RSS before it (the target: under 64 MiB, at any N). The map's
// input vector is built once, outside the timings, and freed before the memory figure; with
// --rss-only neither map nor its vector is run, so N = 10^8 needs no 800 MiB of map input and
// result. "auto" is grain 0 for both: map's automatic grain (N / (4 x workers)) and imap's
// (the same, capped by a byte budget for the items in flight; both are printed). Each repeat runs
// map and the
// streams interleaved, so a burst of load from elsewhere hits all of them; the first repeat is a
// discarded warm-up. Ratios are what to read: the machine is shared.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "crew/algorithm.hpp"
#include "crew/process_pool.hpp"
#include "crew/stream.hpp"

namespace {

int identity(int x) {
  return x;
}

using seconds = std::chrono::duration<double>;

/// A field of /proc/self/status in KiB (VmRSS, VmHWM).
std::int64_t status_kib(const std::string& field) {
  std::ifstream in{"/proc/self/status"};
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  throw std::runtime_error("no " + field + " in /proc/self/status");
}

/// Resets VmHWM to the current RSS (Linux 4.0+).
void reset_peak_rss() {
  std::ofstream out{"/proc/self/clear_refs"};
  out << "5";
  if (!out.flush()) throw std::runtime_error("cannot write /proc/self/clear_refs");
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

template <class F>
double timed(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return seconds(std::chrono::steady_clock::now() - start).count();
}

/// Sums a stream's values (so nothing is optimized away) and fails loudly on a failed item.
template <class Stream>
std::int64_t drain(Stream&& stream) {
  std::int64_t sum = 0;
  for (auto& r : stream) {
    if (!r) throw std::runtime_error(std::string{"an item failed: "} + r.error().what());
    sum += *r;
  }
  return sum;
}

struct options {
  int items = 1'000'000;
  std::vector<std::string> grains{"1000", "10000", "auto"};
  std::size_t workers = 2;
  int repeats = 5;
  bool rss_only = false;
  std::size_t max_in_flight = 0;  // 0: imap's default (16 x workers)
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--items") {
      o.items = std::stoi(value());
    } else if (arg == "--grains") {
      o.grains.clear();
      std::istringstream list{value()};
      for (std::string g; std::getline(list, g, ',');) o.grains.push_back(g);
    } else if (arg == "--workers") {
      o.workers = static_cast<std::size_t>(std::stoul(value()));
    } else if (arg == "--repeats") {
      o.repeats = std::stoi(value());
    } else if (arg == "--max-in-flight") {
      o.max_in_flight = static_cast<std::size_t>(std::stoul(value()));
    } else if (arg == "--rss-only") {
      o.rss_only = true;
    } else {
      throw std::invalid_argument("unknown option " + arg);
    }
  }
  if (o.items < 1 || o.workers < 1 || o.repeats < 1 || o.grains.empty()) {
    throw std::invalid_argument("--items, --workers, --repeats must be at least 1");
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  const options o = parse(argc, argv);
  crew::process_pool pool{{.workers = o.workers}};
  const auto n = static_cast<std::size_t>(o.items);
  const std::int64_t expected =
      static_cast<std::int64_t>(n) * (static_cast<std::int64_t>(n) - 1) / 2;

  std::cout << "# bench_imap: imap vs map on a process_pool (" << o.workers << " workers), " << n
            << " items of `int identity(int)`\n\n";
  if (o.rss_only) {
    std::cout << "One imap per grain (--rss-only); load average at the start: ";
  } else {
    std::cout << "Median of " << o.repeats
              << " repeats after a warm-up; load average at the start: ";
  }
  {
    std::ifstream load{"/proc/loadavg"};
    std::string a, b, c;
    load >> a >> b >> c;
    std::cout << a << ' ' << b << ' ' << c << ".\n\n";
  }
  if (o.rss_only) {
    std::cout << "| grain | imap peak RSS growth | target < 64 MiB | imap time |\n"
                 "| ---: | ---: | --- | ---: |\n";
  } else {
    std::cout << "| grain | map | imap | imap / map | imap_unordered | unordered / map | imap peak "
                 "RSS growth | verdict (≤ 1.5×, < 64 MiB) |\n"
                 "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
  }
  bool all_met = true;
  for (const std::string& g : o.grains) {
    const bool automatic = g == "auto";
    const std::size_t grain = automatic ? 0 : static_cast<std::size_t>(std::stoull(g));
    if (!automatic && grain == 0) throw std::invalid_argument("a grain must be at least 1");
    crew::stream_options stream{.grain = grain};
    if (o.max_in_flight > 0) stream.max_in_flight = o.max_in_flight;
    std::string grain_label = g;
    if (automatic) {
      const std::size_t map_grain = crew::detail::plan_chunks(n, pool.concurrency(), 0).grain;
      const std::size_t imap_grain =
          crew::imap<&identity>(pool, std::views::iota(0, o.items), stream).grain();
      grain_label =
          "auto: map " + std::to_string(map_grain) + ", imap " + std::to_string(imap_grain);
    }
    std::vector<double> map_s, imap_s, unordered_s;
    {
      std::vector<int> inputs;
      if (!o.rss_only) {
        inputs.resize(n);
        for (std::size_t i = 0; i < n; ++i) inputs[i] = static_cast<int>(i);
      }
      for (int repeat = 0; repeat <= (o.rss_only ? 0 : o.repeats); ++repeat) {
        if (o.rss_only) break;
        std::int64_t sum_map = 0, sum_imap = 0, sum_unordered = 0;
        const double m = timed([&] {
          for (int v : crew::map<&identity>(pool, inputs, {.grain = grain})) sum_map += v;
        });
        const double s = timed([&] {
          sum_imap = drain(crew::imap<&identity>(pool, std::views::iota(0, o.items), stream));
        });
        const double u = timed([&] {
          sum_unordered =
              drain(crew::imap_unordered<&identity>(pool, std::views::iota(0, o.items), stream));
        });
        if (sum_map != expected || sum_imap != expected || sum_unordered != expected) {
          throw std::runtime_error("wrong sums");
        }
        if (repeat == 0) continue;  // warm-up
        map_s.push_back(m);
        imap_s.push_back(s);
        unordered_s.push_back(u);
      }
    }
    // Memory: one more imap, alone, with the peak reset just before it.
    const std::int64_t rss_before = status_kib("VmRSS");
    reset_peak_rss();
    std::int64_t sum = 0;
    const double rss_run = timed(
        [&] { sum = drain(crew::imap<&identity>(pool, std::views::iota(0, o.items), stream)); });
    const std::int64_t growth_kib = std::max<std::int64_t>(0, status_kib("VmHWM") - rss_before);
    if (sum != expected) throw std::runtime_error("wrong sum");
    const double growth_mib = static_cast<double>(growth_kib) / 1024.0;
    char line[512];
    if (o.rss_only) {
      const bool met = growth_mib < 64;
      all_met = all_met && met;
      std::snprintf(line, sizeof line, "| %s | %.1f MiB | %s | %.2f s |\n", grain_label.c_str(),
                    growth_mib, met ? "met" : "missed", rss_run);
    } else {
      const double m = median(map_s), s = median(imap_s), u = median(unordered_s);
      const bool met = s / m <= 1.5 && growth_mib < 64;
      all_met = all_met && met;
      std::snprintf(line, sizeof line,
                    "| %s | %.3f s | %.3f s | %.2f× | %.3f s | %.2f× | %.1f MiB | %s |\n",
                    grain_label.c_str(), m, s, s / m, u, u / m, growth_mib, met ? "met" : "missed");
    }
    std::cout << line << std::flush;
  }
  std::cout << "\n" << (all_met ? "Every target met." : "Some target missed.") << '\n';
  return 0;
} catch (const std::exception& e) {
  std::cerr << "bench_imap: " << e.what() << '\n';
  return 2;
}
