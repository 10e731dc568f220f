// lab/stats.hpp — summary statistics over repeated measurements.
// Pure functions over values; thread-safe; never block. Every experiment reports the median and
// a spread (IQR, MAD, p10–p90) rather than a mean, because timing noise on a shared machine is
// one-sided (a preempted run is only ever slower) and the median ignores it.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace crew::lab {

struct summary {
  std::size_t n = 0;
  double min = 0, max = 0, mean = 0;
  double median = 0;
  double p10 = 0, p25 = 0, p75 = 0, p90 = 0;
  double iqr = 0;  // p75 - p25
  double mad = 0;  // median absolute deviation from the median
  // Relative spread, IQR / median; 0 when the median is 0.
  double relative_spread() const noexcept { return median != 0 ? iqr / median : 0; }
};

/// The p-th percentile (p in [0, 100]) of `values` by linear interpolation between closest
/// ranks (the "R-7" definition NumPy and spreadsheets use). Empty input gives 0.
double percentile(std::span<const double> values, double p);

/// The median of `values`; empty input gives 0.
double median(std::span<const double> values);

/// Median absolute deviation: median(|x - median(x)|).
double mad(std::span<const double> values);

/// Every figure above at once. Empty input gives an all-zero summary with n == 0.
summary summarize(std::span<const double> values);

/// `values` without its first `warmup` elements (the runs that fill caches, fault pages in and
/// wake the CPU frequency governor); empty when there are no more than `warmup`.
std::vector<double> discard_warmup(std::span<const double> values, std::size_t warmup);

}  // namespace crew::lab
