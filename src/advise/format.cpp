#include "crew/detail/format.hpp"

#include <cmath>
#include <cstdio>

namespace crew::detail {
namespace {

std::string printf_string(const char* fmt, double v, const char* suffix) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v, suffix);
  return buf;
}

// Three significant digits are what the spread of these measurements supports.
std::string scaled(double v, const char* const* suffixes, int count, double step) {
  int i = 0;
  double a = std::fabs(v);
  while (i + 1 < count && a >= step) {
    a /= step;
    v /= step;
    ++i;
  }
  const char* fmt = a >= 100 ? "%.0f %s" : a >= 10 ? "%.1f %s" : "%.2f %s";
  return printf_string(fmt, v, suffixes[i]);
}

}  // namespace

std::string format_quantity(double v, std::string_view unit) {
  if (!std::isfinite(v)) return "n/a";
  if (unit == "s") {
    const double a = std::fabs(v);
    if (a == 0) return "0 s";
    static const char* const ns[] = {"ns"};
    static const char* const us[] = {"µs"};
    static const char* const ms[] = {"ms"};
    static const char* const sec[] = {"s"};
    if (a < 1e-6) return scaled(v * 1e9, ns, 1, 1000);
    if (a < 1e-3) return scaled(v * 1e6, us, 1, 1000);
    if (a < 1) return scaled(v * 1e3, ms, 1, 1000);
    return scaled(v, sec, 1, 1000);
  }
  if (unit == "B") {
    static const char* const s[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    return scaled(v, s, 5, 1024);
  }
  if (unit == "B/s") {
    static const char* const s[] = {"B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s"};
    return scaled(v, s, 5, 1024);
  }
  if (unit == "x") return printf_string("%.2f%s", v, "×");
  if (unit == "%") return printf_string("%.0f%s", v * 100, "%");
  if (unit == "count") return printf_string("%.0f%s", v, "");
  static const char* const s[] = {"", "k", "M", "G"};
  return scaled(v, s, 4, 1000) + std::string(unit);
}

}  // namespace crew::detail
