#include "lab/experiment.hpp"

#include <cmath>
#include <cstdio>

namespace crew::lab {

const char* to_string(series_state s) noexcept {
  switch (s) {
    case series_state::ok:
      return "ok";
    case series_state::not_built:
      return "not built yet";
    case series_state::skipped:
      return "not installed";
    case series_state::failed:
      return "failed";
  }
  return "?";
}

const char* to_string(verdict_kind v) noexcept {
  switch (v) {
    case verdict_kind::confirmed:
      return "confirmed";
    case verdict_kind::refuted:
      return "refuted";
    case verdict_kind::mixed:
      return "mixed";
    case verdict_kind::not_measured:
      return "not measured";
  }
  return "?";
}

const experiment* find_experiment(std::string_view id) {
  for (const auto& e : registry())
    if (e.id == id) return &e;
  return nullptr;
}

series measure(const config& cfg, std::string name, std::string unit,
               const std::function<double()>& sample, std::string group, double x) {
  series s;
  s.name = std::move(name);
  s.unit = std::move(unit);
  s.group = std::move(group);
  s.x = x;
  for (int i = 0; i < cfg.warmup; ++i) s.warmup.push_back(sample());
  for (int i = 0; i < cfg.repeat; ++i) s.samples.push_back(sample());
  return s;
}

series absent(std::string name, series_state state, std::string note, std::string group, double x,
              std::string unit) {
  series s;
  s.name = std::move(name);
  s.state = state;
  s.note = std::move(note);
  s.group = std::move(group);
  s.x = x;
  s.unit = std::move(unit);
  return s;
}

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

std::string format_value(double v, std::string_view unit) {
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
  auto text = scaled(v, s, 4, 1000);
  // scaled() gives "12.3 k" or "12.3 " here; glue the prefix to the unit: "12.3 ktasks/s".
  return text + std::string(unit);
}

const series* find_series(const result& r, std::string_view name, double x) {
  for (const auto& s : r.data)
    if (s.name == name && (x < 0 || s.x == x)) return &s;
  return nullptr;
}

std::vector<unsigned> default_workers(unsigned cores) {
  std::vector<unsigned> w;
  const unsigned top = 2 * (cores == 0 ? 1 : cores);
  for (unsigned n = 1; n <= top; n = n < 8 ? n + 1 : n * 2) w.push_back(n);
  if (w.back() != top) w.push_back(top);
  return w;
}

}  // namespace crew::lab
