#include "ops/fast/swish.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/thread_pool.h"

namespace hubimg::ops::fast {
namespace {

double exact_swish(double x) {
  return x / (1.0 + std::exp(-x));
}

TEST(Swish, MatchesTheFormulaInDoubleOverTheFloatRange) {
  std::vector<float> xs;
  for (float x = -100.f; x < 100.f; x += 0.00731f) xs.push_back(x);
  for (float x : {1e-30f, -1e-30f, 1e-7f, -1e-7f, 87.f, -87.f, 88.7f, -88.7f, 1e10f, 1e30f}) {
    xs.push_back(x);
  }
  std::vector<float> ys = xs;
  swish_in_place(ys.data(), static_cast<int64_t>(ys.size()));
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = exact_swish(xs[i]);
    // 4e-7 relative; below x = -88.7 exp(-x) overflows float and the result (|want| < 1e-36)
    // is -0.
    EXPECT_NEAR(ys[i], want, std::max(4e-7 * std::fabs(want), 1e-36)) << "x = " << xs[i];
  }
}

TEST(Swish, LimitsAndNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {inf, -inf, std::nanf(""), -1e30f, -200.f, 0.f, -0.f};
  swish_in_place(v.data(), static_cast<int64_t>(v.size()));
  EXPECT_EQ(v[0], inf);
  EXPECT_TRUE(std::isnan(v[1]));  // -inf * sigmoid(-inf) = -inf * 0
  EXPECT_TRUE(std::isnan(v[2]));
  EXPECT_EQ(v[3], 0.f);
  EXPECT_EQ(v[4], 0.f);
  EXPECT_EQ(v[5], 0.f);
  EXPECT_EQ(v[6], 0.f);
}

TEST(Swish, EveryTailLengthAndNothingPastTheEnd) {
  for (int64_t n = 0; n <= 40; ++n) {
    std::vector<float> v(static_cast<size_t>(n) + 8, 3.0f);
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = 0.25f * static_cast<float>(i) - 4;
    swish_in_place(v.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double x = 0.25 * static_cast<double>(i) - 4;
      EXPECT_NEAR(v[static_cast<size_t>(i)], exact_swish(x),
                  4e-7 * std::fabs(exact_swish(x)) + 1e-37)
          << "n = " << n << ", i = " << i;
    }
    for (size_t i = static_cast<size_t>(n); i < v.size(); ++i) {
      EXPECT_EQ(v[i], 3.0f) << "n = " << n << " wrote element " << i;
    }
  }
}

TEST(Swish, ParallelEqualsSerial) {
  ThreadPool::set_global_num_threads(2);
  for (int64_t n : {int64_t{1000}, int64_t{65536}, int64_t{300001}}) {
    std::vector<float> a(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) a[static_cast<size_t>(i)] = std::sin(0.001f * i) * 12;
    std::vector<float> b = a;
    swish_in_place(a.data(), n);
    swish_in_place_parallel(b.data(), n);
    EXPECT_EQ(a, b) << "n = " << n;
  }
  ThreadPool::set_global_num_threads(0);
}

// swish_and_channel_means against a double-precision computation: tails of 16 channels and of
// 64-pixel blocks, one and several images, serial and on the thread pool.
TEST(Swish, ChannelMeansMatchDoublePrecision) {
  ThreadPool::set_global_num_threads(2);
  struct Case {
    int64_t images, pixels, channels;
  };
  const Case cases[] = {{1, 1, 1},    {1, 63, 15},   {2, 64, 16},    {3, 65, 17},
                        {1, 200, 40}, {2, 3136, 24}, {1, 12544, 32}, {3, 49, 1152}};
  uint32_t seed = 1;
  for (const Case& c : cases) {
    for (bool apply_swish : {false, true}) {
      SCOPED_TRACE(std::to_string(c.images) + " x " + std::to_string(c.pixels) + " x " +
                   std::to_string(c.channels) + (apply_swish ? " swish" : ""));
      const int64_t n = c.images * c.pixels * c.channels;
      std::vector<float> data(static_cast<size_t>(n));
      for (auto& v : data) {
        seed = seed * 1664525u + 1013904223u;
        v = static_cast<float>(seed >> 8) / static_cast<float>(1 << 24) * 8 - 4;
      }
      const std::vector<float> original = data;
      std::vector<float> means(static_cast<size_t>(c.images * c.channels), -1.f);
      swish_and_channel_means(data.data(), c.images, c.pixels, c.channels, apply_swish,
                              means.data());
      for (int64_t img = 0; img < c.images; ++img) {
        for (int64_t ch = 0; ch < c.channels; ++ch) {
          double sum = 0;
          for (int64_t p = 0; p < c.pixels; ++p) {
            const size_t i = static_cast<size_t>((img * c.pixels + p) * c.channels + ch);
            const double x = original[i];
            const double y = apply_swish ? exact_swish(x) : x;
            ASSERT_NEAR(data[i], y, 4e-7 * std::fabs(y) + 1e-30);
            sum += y;
          }
          EXPECT_NEAR(means[static_cast<size_t>(img * c.channels + ch)], sum / c.pixels, 1e-6)
              << "image " << img << " channel " << ch;
        }
      }
    }
  }
  ThreadPool::set_global_num_threads(0);
}

TEST(Swish, ReferenceIsTheFormula) {
  for (float x : {-5.f, -0.5f, 0.f, 0.5f, 5.f}) {
    EXPECT_FLOAT_EQ(swish_reference(x), static_cast<float>(exact_swish(x)));
  }
}

}  // namespace
}  // namespace hubimg::ops::fast
