#include "lab/experiment.hpp"

#include <algorithm>

#include "crew/detail/format.hpp"

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

std::string format_value(double v, std::string_view unit) {
  return crew::detail::format_quantity(v, unit);  // one formatting for the tool and the library
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

unsigned scaling_tasks(const std::vector<unsigned>& workers) {
  unsigned most = 1;
  for (unsigned w : workers) most = std::max(most, w);
  unsigned tasks = 48;
  while (tasks < 4 * most) tasks *= 2;
  return tasks;
}

std::string oversubscribed_note(unsigned workers, unsigned cores) {
  return "oversubscribed: " + std::to_string(workers) + " workers on " + std::to_string(cores) +
         " cores";
}

}  // namespace crew::lab
