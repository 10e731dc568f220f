// The statistics every bench figure rests on: median, percentiles, MAD, IQR, warm-up discard.
#include <gtest/gtest.h>

#include <vector>

#include "lab/stats.hpp"

namespace crew::lab {
namespace {

TEST(Stats, MedianOfOddAndEvenCounts) {
  EXPECT_DOUBLE_EQ(median(std::vector<double>{3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(median(std::vector<double>{4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(median(std::vector<double>{7}), 7);
  EXPECT_DOUBLE_EQ(median(std::vector<double>{}), 0);
}

TEST(Stats, PercentilesInterpolateBetweenRanks) {
  const std::vector<double> v{10, 20, 30, 40, 50};  // given unsorted below as well
  EXPECT_DOUBLE_EQ(percentile(v, 0), 10);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 50);
  EXPECT_DOUBLE_EQ(percentile(v, 25), 20);
  EXPECT_DOUBLE_EQ(percentile(v, 10), 14);  // rank 0.4 → 10 + 0.4 × 10
  EXPECT_DOUBLE_EQ(percentile(std::vector<double>{50, 10, 40, 20, 30}, 90), 46);
  EXPECT_DOUBLE_EQ(percentile(v, 150), 50);  // clamped
}

TEST(Stats, MadIgnoresOneOutlier) {
  const std::vector<double> v{1, 2, 3, 4, 1000};
  EXPECT_DOUBLE_EQ(median(v), 3);
  EXPECT_DOUBLE_EQ(mad(v), 1);  // |x-3| = 2,1,0,1,997 → median 1
}

TEST(Stats, SummaryHasEveryFigure) {
  const std::vector<double> v{5, 1, 4, 2, 3};
  const summary s = summarize(v);
  EXPECT_EQ(s.n, 5u);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 5);
  EXPECT_DOUBLE_EQ(s.mean, 3);
  EXPECT_DOUBLE_EQ(s.median, 3);
  EXPECT_DOUBLE_EQ(s.p25, 2);
  EXPECT_DOUBLE_EQ(s.p75, 4);
  EXPECT_DOUBLE_EQ(s.iqr, 2);
  EXPECT_DOUBLE_EQ(s.relative_spread(), 2.0 / 3.0);
  EXPECT_EQ(summarize(std::vector<double>{}).n, 0u);
}

TEST(Stats, WarmupIsDiscardedFromTheFront) {
  const std::vector<double> v{100, 90, 1, 2, 3};
  const auto kept = discard_warmup(v, 2);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_DOUBLE_EQ(kept.front(), 1);
  EXPECT_TRUE(discard_warmup(v, 5).empty());
  EXPECT_TRUE(discard_warmup(v, 9).empty());
}

}  // namespace
}  // namespace crew::lab
