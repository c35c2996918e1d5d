#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "hubimg/image.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

// A 1x1x2x1 image [0, 4] widened to 4 columns; expected values worked out by hand from
// TensorFlow's mapping of output to input coordinates.
std::vector<float> widen(AttrMap attrs) {
  Tensor image = Tensor::from_vector<float>({1, 1, 2, 1}, {0.f, 4.f});
  Tensor size = Tensor::from_vector<int32_t>({2}, {1, 4});
  std::vector<Tensor> in{image, size};
  auto out = run_op("ResizeBilinear", in, attrs);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  if (!out.ok()) return {};
  EXPECT_EQ((*out)[0].shape(), (Dims{1, 1, 4, 1}));
  auto v = (*out)[0].values<float>();
  return {v.begin(), v.end()};
}

TEST(ResizeBilinearOp, HalfPixelCenters) {
  // in = (x + 0.5) * 0.5 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped lerps
  EXPECT_EQ(widen({{"half_pixel_centers", true}}), (std::vector<float>{0, 1, 3, 4}));
}

TEST(ResizeBilinearOp, LegacyAndAlignCorners) {
  // legacy: in = x * 0.5 = 0, 0.5, 1, 1.5 (upper index clamped to 1)
  EXPECT_EQ(widen({}), (std::vector<float>{0, 2, 4, 4}));
  // align_corners: in = x * (2 - 1) / (4 - 1)
  auto v = widen({{"align_corners", true}});
  ASSERT_EQ(v.size(), 4u);
  EXPECT_FLOAT_EQ(v[1], 4.f / 3.f);
  EXPECT_FLOAT_EQ(v[2], 8.f / 3.f);
  EXPECT_FLOAT_EQ(v[3], 4.f);
}

TEST(ResizeNearestNeighborOp, HalfPixelCenters) {
  Tensor image = Tensor::from_vector<float>({1, 1, 2, 1}, {1.f, 2.f});
  Tensor size = Tensor::from_vector<int32_t>({2}, {1, 4});
  std::vector<Tensor> in{image, size};
  auto out = run_op("ResizeNearestNeighbor", in, {{"half_pixel_centers", true}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  auto v = (*out)[0].values<float>();
  // (x + 0.5) * 0.5 = 0.25, 0.75, 1.25, 1.75 -> floor: 0, 0, 1, 1
  EXPECT_EQ(std::vector<float>(v.begin(), v.end()), (std::vector<float>{1, 1, 2, 2}));
}

TEST(ResizeBilinearOp, BadSizeNamesTheNode) {
  Tensor image(DType::kFloat32, {1, 2, 2, 1});
  Tensor size = Tensor::from_vector<int32_t>({2}, {0, 3});
  std::vector<Tensor> in{image, size};
  auto out = run_op("ResizeBilinear", in, {}, "model/resize");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("node 'model/resize' (ResizeBilinear)"), std::string::npos)
      << out.status().message();
  Tensor rank3(DType::kFloat32, {2, 2, 1});
  std::vector<Tensor> in3{rank3, Tensor::from_vector<int32_t>({2}, {2, 2})};
  EXPECT_FALSE(run_op("ResizeBilinear", in3, {}).ok());
}

// --- ResizeBicubic -------------------------------------------------------------------------

// Keys' cubic convolution kernel (R. G. Keys, 1981) with parameter a.
double keys_kernel(double x, double a) {
  x = std::abs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

// One axis of tf.raw_ops.ResizeBicubic as documented: output o samples the input at
// (o + 0.5) * scale - 0.5 (half_pixel_centers: a = -0.5, taps outside the image dropped and the
// weights renormalized) or o * scale (legacy: a = -0.75, taps clamped to the edge); scale is
// in / out, or (in - 1) / (out - 1) with align_corners. `steps`: the fractional position is
// rounded to multiples of 1/steps first (TensorFlow's kernel table; 0 for the exact kernel).
struct AxisWeights {
  std::vector<std::vector<std::pair<int64_t, double>>> taps;  // per output: (source, weight)
};
AxisWeights bicubic_axis(int64_t in, int64_t out, bool align_corners, bool half_pixel, int steps) {
  const double scale = align_corners && out > 1 ? static_cast<double>(in - 1) / (out - 1)
                                                : static_cast<double>(in) / out;
  const double a = half_pixel ? -0.5 : -0.75;
  AxisWeights w;
  for (int64_t o = 0; o < out; ++o) {
    const double pos = half_pixel ? (o + 0.5) * scale - 0.5 : o * scale;
    const double base = std::floor(pos);
    double frac = pos - base;
    if (steps > 0) frac = std::nearbyint(frac * steps) / steps;
    std::vector<std::pair<int64_t, double>> taps;
    double sum = 0;
    for (int k = -1; k <= 2; ++k) {
      const auto source = static_cast<int64_t>(base) + k;
      const double weight = keys_kernel(k - frac, a);
      if (half_pixel && (source < 0 || source >= in)) continue;
      taps.emplace_back(std::clamp<int64_t>(source, 0, in - 1), weight);
      sum += weight;
    }
    if (half_pixel) {
      for (auto& t : taps) t.second /= sum;
    }
    w.taps.push_back(taps);
  }
  return w;
}

std::vector<double> naive_bicubic(const Tensor& image, int64_t out_h, int64_t out_w,
                                  bool align_corners, bool half_pixel, int steps) {
  const int64_t n = image.dim(0), h = image.dim(1), w = image.dim(2), c = image.dim(3);
  const AxisWeights ys = bicubic_axis(h, out_h, align_corners, half_pixel, steps);
  const AxisWeights xs = bicubic_axis(w, out_w, align_corners, half_pixel, steps);
  std::vector<double> out;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < out_h; ++y)
      for (int64_t x = 0; x < out_w; ++x)
        for (int64_t ch = 0; ch < c; ++ch) {
          double v = 0;
          for (const auto& [sy, wy] : ys.taps[static_cast<size_t>(y)])
            for (const auto& [sx, wx] : xs.taps[static_cast<size_t>(x)])
              v += wy * wx * image.data<float>()[((b * h + sy) * w + sx) * c + ch];
          out.push_back(v);
        }
  return out;
}

Tensor bicubic(const Tensor& image, int32_t out_h, int32_t out_w, const AttrMap& attrs) {
  std::vector<Tensor> in{image, Tensor::from_vector<int32_t>({2}, {out_h, out_w})};
  auto out = run_op("ResizeBicubic", in, attrs);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? (*out)[0] : Tensor();
}

Tensor random_image(Dims shape, uint32_t seed) {
  Tensor t(DType::kFloat32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  float* v = t.mutable_data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) v[i] = dist(rng);
  return t;
}

TEST(ResizeBicubicOp, MatchesKeysCubicConvolution) {
  struct Case {
    Dims in;
    int32_t out_h, out_w;
    bool align_corners, half_pixel;
    // Whether every sampling position falls on a multiple of 1/1024 (then TensorFlow's table
    // is the exact kernel).
    bool on_table;
  };
  const Case cases[] = {
      {{1, 3, 4, 2}, 6, 8, false, true, true},    // 2x up: fractions 1/4, 3/4
      {{1, 3, 4, 2}, 6, 8, false, false, true},   // legacy 2x up: 0, 1/2
      {{2, 8, 6, 1}, 4, 3, false, true, true},    // 2x down: 1/2
      {{2, 8, 6, 1}, 4, 3, false, false, true},   // legacy 2x down: 0
      {{1, 3, 4, 3}, 5, 7, true, false, true},    // align_corners: steps of 1/2
      {{2, 5, 7, 3}, 3, 4, false, true, false},   // 5/3 and 7/4
      {{1, 4, 3, 1}, 7, 5, false, false, false},  // legacy 4/7, 3/5
      {{1, 4, 3, 1}, 7, 5, true, false, false},   // align_corners 1/2, 1/2 (7 rows: 3/6)
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.in[1]) + "x" + std::to_string(c.in[2]) + " -> " +
                 std::to_string(c.out_h) + "x" + std::to_string(c.out_w) +
                 (c.align_corners ? " align_corners" : "") +
                 (c.half_pixel ? " half_pixel_centers" : ""));
    const Tensor image = random_image(c.in, seed++);
    const Tensor got =
        bicubic(image, c.out_h, c.out_w,
                {{"align_corners", c.align_corners}, {"half_pixel_centers", c.half_pixel}});
    ASSERT_EQ(got.dtype(), DType::kFloat32);
    ASSERT_EQ(got.shape(), (Dims{c.in[0], c.out_h, c.out_w, c.in[3]}));
    const auto tabled = naive_bicubic(image, c.out_h, c.out_w, c.align_corners, c.half_pixel, 1024);
    const auto exact = naive_bicubic(image, c.out_h, c.out_w, c.align_corners, c.half_pixel, 0);
    for (size_t i = 0; i < exact.size(); ++i) {
      const float v = got.data<float>()[i];
      ASSERT_NEAR(v, tabled[i], 2e-5) << "element " << i;
      // The table moves a sampling position by at most 1/2048 of a pixel.
      ASSERT_NEAR(v, exact[i], c.on_table ? 2e-5 : 6e-3) << "element " << i;
    }
  }
}

TEST(ResizeBicubicOp, SameSizeIsIdentityAndConstantsStay) {
  const Tensor image = random_image({2, 5, 4, 3}, 7);
  const Tensor same = bicubic(image, 5, 4, {{"half_pixel_centers", true}});
  ASSERT_EQ(same.shape(), image.shape());
  EXPECT_TRUE(std::equal(image.values<float>().begin(), image.values<float>().end(),
                         same.values<float>().begin()));
  Tensor flat(DType::kFloat32, {1, 3, 5, 1});
  std::fill(flat.mutable_data<float>(), flat.mutable_data<float>() + flat.num_elements(), 0.625f);
  for (bool half_pixel : {false, true}) {
    const Tensor out = bicubic(flat, 7, 2, {{"half_pixel_centers", half_pixel}});
    for (float v : out.values<float>()) EXPECT_NEAR(v, 0.625f, 1e-6);
  }
}

TEST(ResizeBicubicOp, IntegerImagesAndErrors) {
  const Tensor bytes = Tensor::from_vector<uint8_t>({1, 2, 2, 1}, {0, 255, 255, 0});
  const Tensor as_float = Tensor::from_vector<float>({1, 2, 2, 1}, {0, 255, 255, 0});
  const Tensor a = bicubic(bytes, 3, 3, {{"half_pixel_centers", true}});
  const Tensor b = bicubic(as_float, 3, 3, {{"half_pixel_centers", true}});
  ASSERT_EQ(a.dtype(), DType::kFloat32);
  EXPECT_TRUE(
      std::equal(a.values<float>().begin(), a.values<float>().end(), b.values<float>().begin()));
  std::vector<Tensor> in{as_float, Tensor::from_vector<int32_t>({2}, {3, 3})};
  auto both = run_op("ResizeBicubic", in, {{"align_corners", true}, {"half_pixel_centers", true}},
                     "model/resize");
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("node 'model/resize' (ResizeBicubic)"), std::string::npos)
      << both.status().message();
  std::vector<Tensor> grad_in{Tensor(DType::kFloat32, {1, 3, 3, 2}), as_float};
  auto mismatch = run_op("ResizeBicubicGrad", grad_in, {});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("differ in batch or channels"), std::string::npos)
      << mismatch.status().message();
}

// --- ResizeArea ------------------------------------------------------------------------------

Tensor area(const Tensor& image, int32_t out_h, int32_t out_w, bool align_corners = false) {
  std::vector<Tensor> in{image, Tensor::from_vector<int32_t>({2}, {out_h, out_w})};
  auto out = run_op("ResizeArea", in, {{"align_corners", align_corners}});
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? (*out)[0] : Tensor();
}

// Output cell i spans [i * s, (i + 1) * s) of the input axis (s = in / out, or (in - 1) / (out
// - 1) with align_corners); each source cell k weighs the length of its overlap [k, k + 1) with
// that span, cells past the edge standing for the edge cell; the sum is divided by s.
std::vector<std::pair<int64_t, double>> area_weights(int64_t i, int64_t in, double s) {
  std::vector<std::pair<int64_t, double>> w;
  const double lo = i * s, hi = (i + 1) * s;
  for (auto k = static_cast<int64_t>(std::floor(lo)); k < std::ceil(hi); ++k) {
    const double overlap = std::min<double>(k + 1, hi) - std::max<double>(k, lo);
    w.emplace_back(std::clamp<int64_t>(k, 0, in - 1), overlap / s);
  }
  return w;
}

TEST(ResizeAreaOp, AveragesTheCoveredCells) {
  // TensorFlow's documented example: 4 -> 3 cells, scale 3/4: (in0 + in1 / 3) * 0.75, ...
  auto values = [](const Tensor& t) {
    return std::vector<float>(t.values<float>().begin(), t.values<float>().end());
  };
  const Tensor documented = area(Tensor::from_vector<float>({1, 1, 4, 1}, {1, 2, 3, 4}), 1, 3);
  ASSERT_EQ(documented.shape(), (Dims{1, 1, 3, 1}));
  const std::vector<float> got = values(documented);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(got[i], 1.25 * (i + 1), 1e-6) << i;
  // Upscaling by 2 repeats each cell (every output span lies inside one input cell).
  EXPECT_EQ(values(area(Tensor::from_vector<float>({1, 2, 1, 1}, {5, -1}), 4, 1)),
            (std::vector<float>{5, 5, -1, -1}));
  uint32_t seed = 40;
  for (const auto& [in, out_h, out_w, align] :
       std::vector<std::tuple<Dims, int32_t, int32_t, bool>>{{{2, 7, 9, 3}, 3, 4, false},
                                                             {{1, 5, 6, 2}, 3, 11, false},
                                                             {{1, 8, 5, 1}, 5, 2, true},
                                                             {{1, 3, 4, 2}, 7, 3, false}}) {
    SCOPED_TRACE(dims_to_string(in) + " -> " + std::to_string(out_h) + "x" + std::to_string(out_w) +
                 (align ? " align_corners" : ""));
    const Tensor image = random_image(in, seed++);
    const Tensor got = area(image, out_h, out_w, align);
    ASSERT_EQ(got.shape(), (Dims{in[0], out_h, out_w, in[3]}));
    // (A lambda may not capture the structured binding `align` in every compiler here.)
    const bool aligned = align;
    auto scale = [aligned](int64_t n, int64_t out) {
      return aligned && out > 1 ? static_cast<double>(static_cast<float>(n - 1) / (out - 1))
                                : static_cast<double>(static_cast<float>(n) / out);
    };
    const double sy = scale(in[1], out_h), sx = scale(in[2], out_w);
    for (int64_t b = 0; b < in[0]; ++b)
      for (int64_t y = 0; y < out_h; ++y)
        for (int64_t x = 0; x < out_w; ++x)
          for (int64_t c = 0; c < in[3]; ++c) {
            double want = 0;
            for (const auto& [iy, wy] : area_weights(y, in[1], sy))
              for (const auto& [ix, wx] : area_weights(x, in[2], sx))
                want += wy * wx * image.data<float>()[((b * in[1] + iy) * in[2] + ix) * in[3] + c];
            const float v = got.data<float>()[((b * out_h + y) * out_w + x) * in[3] + c];
            ASSERT_NEAR(v, want, 1e-5 * (1 + std::abs(want))) << b << " " << y << " " << x;
          }
  }
  std::vector<Tensor> bad{Tensor(DType::kFloat32, {1, 2, 2, 1}),
                          Tensor::from_vector<int32_t>({2}, {0, 2})};
  EXPECT_FALSE(run_op("ResizeArea", bad, {}).ok());
}

// --- ScaleAndTranslate -----------------------------------------------------------------------

TEST(ScaleAndTranslateOp, RunsTheImageModulesSamplerWithTheNodesAttributes) {
  const Tensor image = random_image({2, 6, 5, 3}, 11);
  auto op = [&](const AttrMap& attrs, std::vector<float> scale, std::vector<float> translation) {
    std::vector<Tensor> in{image, Tensor::from_vector<int32_t>({2}, {4, 7}),
                           Tensor::from_vector<float>({static_cast<int64_t>(scale.size())}, scale),
                           Tensor::from_vector<float>({2}, translation)};
    return run_op("ScaleAndTranslate", in, attrs, "model/resize");
  };
  // TensorFlow's defaults: lanczos3 with antialias.
  auto defaults = op({}, {0.7f, 1.4f}, {0.25f, -0.5f});
  auto library =
      scale_and_translate(image, 4, 7, 0.7f, 1.4f, 0.25f, -0.5f, SamplingKernel::kLanczos3, true);
  ASSERT_TRUE(defaults.ok()) << defaults.status().to_string();
  ASSERT_TRUE(library.ok()) << library.status().to_string();
  ASSERT_EQ((*defaults)[0].shape(), (Dims{2, 4, 7, 3}));
  EXPECT_TRUE(std::equal(library->values<float>().begin(), library->values<float>().end(),
                         (*defaults)[0].values<float>().begin()));
  auto box = op({{"kernel_type", std::string("box")}, {"antialias", false}}, {0.5f, 0.5f}, {0, 0});
  auto box_library =
      scale_and_translate(image, 4, 7, 0.5f, 0.5f, 0, 0, SamplingKernel::kBox, false);
  ASSERT_TRUE(box.ok() && box_library.ok());
  EXPECT_TRUE(std::equal(box_library->values<float>().begin(), box_library->values<float>().end(),
                         (*box)[0].values<float>().begin()));
  EXPECT_FALSE(std::equal(box_library->values<float>().begin(), box_library->values<float>().end(),
                          (*defaults)[0].values<float>().begin()));
  for (const auto& [attrs, scale, fragment] :
       std::vector<std::tuple<AttrMap, std::vector<float>, std::string>>{
           {{{"kernel_type", std::string("bicubic")}}, {1, 1}, "bicubic"},
           {{}, {0, 1}, "scale must be finite and greater than zero"},
           {{}, {1, std::numeric_limits<float>::infinity()}, "scale must be finite"},
           {{}, {std::nanf(""), 1}, "scale must be finite"},
           {{}, {1}, "scale must be float32[2]"}}) {
    auto bad = op(attrs, scale, {0, 0});
    ASSERT_FALSE(bad.ok()) << fragment;
    EXPECT_NE(bad.status().message().find("node 'model/resize' (ScaleAndTranslate)"),
              std::string::npos)
        << bad.status().message();
    EXPECT_NE(bad.status().message().find(fragment), std::string::npos) << bad.status().message();
  }
}

// Scales and translations a model controls: a translation that is not finite is refused, and a
// scale so small that the antialiasing kernel spans more than int64 can count still resizes.
TEST(ScaleAndTranslateOp, HostileScalesAndTranslations) {
  const Tensor image = random_image({1, 4, 4, 1}, 12);
  auto op = [&](std::vector<float> scale, std::vector<float> translation, bool antialias) {
    std::vector<Tensor> in{image, Tensor::from_vector<int32_t>({2}, {3, 3}),
                           Tensor::from_vector<float>({2}, scale),
                           Tensor::from_vector<float>({2}, translation)};
    return run_op("ScaleAndTranslate", in, {{"antialias", antialias}}, "model/resize");
  };
  for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
    auto r = op({1, 1}, {bad, 0}, true);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("translation must be finite"), std::string::npos)
        << r.status().message();
  }
  // 1e-30: the kernel reaches 3e30 pixels; the output samples near 0 take every input cell.
  auto tiny = op({1e-30f, 1e-30f}, {0.5e-30f, 0.5e-30f}, true);
  ASSERT_TRUE(tiny.ok()) << tiny.status().to_string();
  for (float v : (*tiny)[0].values<float>()) EXPECT_TRUE(std::isfinite(v));
  auto r = run_op("ScaleAndTranslateGrad",
                  std::vector<Tensor>{Tensor(DType::kFloat32, {1, 3, 3, 1}), image,
                                      Tensor::from_vector<float>({2}, {1, 1}),
                                      Tensor::from_vector<float>({2}, {std::nanf(""), 0})},
                  {}, "model/resize_grad");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("translation must be finite"), std::string::npos);
}

}  // namespace
}  // namespace hubimg::ops
