#include "lab/stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace crew::lab {
namespace {

std::vector<double> sorted_copy(std::span<const double> values) {
  std::vector<double> v(values.begin(), values.end());
  std::sort(v.begin(), v.end());
  return v;
}

double percentile_sorted(const std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  p = std::clamp(p, 0.0, 100.0);
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const auto hi = static_cast<std::size_t>(std::ceil(rank));
  const double frac = rank - static_cast<double>(lo);
  return v[lo] + (v[hi] - v[lo]) * frac;
}

}  // namespace

double percentile(std::span<const double> values, double p) {
  return percentile_sorted(sorted_copy(values), p);
}

double median(std::span<const double> values) {
  return percentile(values, 50);
}

double mad(std::span<const double> values) {
  if (values.empty()) return 0;
  const double m = median(values);
  std::vector<double> dev;
  dev.reserve(values.size());
  for (double x : values) dev.push_back(std::fabs(x - m));
  return median(dev);
}

summary summarize(std::span<const double> values) {
  summary s;
  if (values.empty()) return s;
  const auto v = sorted_copy(values);
  s.n = v.size();
  s.min = v.front();
  s.max = v.back();
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  s.median = percentile_sorted(v, 50);
  s.p10 = percentile_sorted(v, 10);
  s.p25 = percentile_sorted(v, 25);
  s.p75 = percentile_sorted(v, 75);
  s.p90 = percentile_sorted(v, 90);
  s.iqr = s.p75 - s.p25;
  s.mad = mad(v);
  return s;
}

std::vector<double> discard_warmup(std::span<const double> values, std::size_t warmup) {
  if (values.size() <= warmup) return {};
  return {values.begin() + static_cast<std::ptrdiff_t>(warmup), values.end()};
}

}  // namespace crew::lab
