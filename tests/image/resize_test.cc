#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "hubimg/image.h"
#include "image/encode_util.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

// A [1, H, W, 1] float image from rows.
Tensor image(const std::vector<std::vector<float>>& rows) {
  const int64_t h = static_cast<int64_t>(rows.size()), w = static_cast<int64_t>(rows[0].size());
  std::vector<float> v;
  for (const auto& r : rows) v.insert(v.end(), r.begin(), r.end());
  return Tensor::from_vector<float>({1, h, w, 1}, v);
}

void expect_image(const Expected<Tensor>& t, const std::vector<std::vector<float>>& rows,
                  float tol = 0.0f) {
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  const int64_t h = static_cast<int64_t>(rows.size()), w = static_cast<int64_t>(rows[0].size());
  ASSERT_EQ(t->shape(), (Dims{1, h, w, 1}));
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      float got = t->data<float>()[y * w + x];
      if (tol == 0.0f) {
        EXPECT_EQ(got, rows[y][x]) << "at " << y << "," << x;
      } else {
        EXPECT_NEAR(got, rows[y][x], tol) << "at " << y << "," << x;
      }
    }
  }
}

const ResizeOpAttrs kHalfPixel{.align_corners = false, .half_pixel_centers = true};
const ResizeOpAttrs kAlignCorners{.align_corners = true, .half_pixel_centers = false};
const ResizeOpAttrs kLegacy{};

// --- bilinear, by hand -----------------------------------------------------------------------

TEST(ResizeBilinear, Upscale2x2To4x4HalfPixel) {
  // Sample positions (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25; the outer ones clamp.
  expect_image(resize_bilinear(image({{0, 4}, {8, 12}}), 4, 4),
               {{0, 1, 3, 4}, {2, 3, 5, 6}, {6, 7, 9, 10}, {8, 9, 11, 12}});
}

TEST(ResizeBilinear, Downscale4x4To2x2HalfPixel) {
  // Positions 0.5 and 2.5: the mean of each 2x2 block.
  expect_image(
      resize_bilinear(image({{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}, {12, 13, 14, 15}}), 2, 2),
      {{2.5f, 4.5f}, {10.5f, 12.5f}});
}

TEST(ResizeBilinear, Mixed3x3To2x5HalfPixel) {
  // Rows: positions 0.25, 1.75 -> 2.5, 17.5 on 10*r. Columns: -0.2, 0.4, 1.0, 1.6, 2.2
  // -> 0, 0.4, 1, 1.6, 2 on c. A linear image is reproduced exactly (up to rounding).
  expect_image(resize_bilinear(image({{0, 1, 2}, {10, 11, 12}, {20, 21, 22}}), 2, 5),
               {{2.5f, 2.9f, 3.5f, 4.1f, 4.5f}, {17.5f, 17.9f, 18.5f, 19.1f, 19.5f}}, 1e-5f);
}

TEST(ResizeBilinear, AlignCorners) {
  // scale (2-1)/(3-1) = 0.5, positions 0, 0.5, 1.
  expect_image(resize_bilinear_op(image({{0, 4}, {8, 12}}), 3, 3, kAlignCorners),
               {{0, 2, 4}, {4, 6, 8}, {8, 10, 12}});
  // A 1-pixel output under align_corners uses in/out: position 0.
  expect_image(resize_bilinear_op(image({{0, 4}, {8, 12}}), 1, 1, kAlignCorners), {{0}});
}

TEST(ResizeBilinear, LegacyNoHalfPixel) {
  // Positions i * 0.5 = 0, 0.5, 1, 1.5; the last clamps its upper index.
  expect_image(resize_bilinear_op(image({{0, 4}, {8, 12}}), 4, 4, kLegacy),
               {{0, 2, 4, 4}, {4, 6, 8, 8}, {8, 10, 12, 12}, {8, 10, 12, 12}});
  // Downscale 4 -> 2 samples positions 0 and 2 (no averaging).
  expect_image(
      resize_bilinear_op(image({{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}, {12, 13, 14, 15}}), 2,
                         2, kLegacy),
      {{0, 2}, {8, 10}});
}

TEST(ResizeBilinear, HalfPixelAndAlignCornersTogetherIsAnError) {
  ResizeOpAttrs both{.align_corners = true, .half_pixel_centers = true};
  EXPECT_FALSE(resize_bilinear_op(image({{1}}), 2, 2, both).ok());
  EXPECT_FALSE(resize_nearest_neighbor_op(image({{1}}), 2, 2, both).ok());
}

TEST(ResizeBilinear, IdentityIsExactCopy) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> d(-100, 100);
  std::vector<float> v(2 * 5 * 7 * 3);
  for (auto& x : v) x = d(rng);
  for (bool aa : {false, true}) {
    auto r = resize_bilinear(Tensor::from_vector<float>({2, 5, 7, 3}, v), 5, 7, {.antialias = aa});
    ASSERT_TRUE(r.ok());
    for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(r->data<float>()[i], v[i]) << i << " " << aa;
  }
  // ResizeBilinear copies rather than interpolates (inf - inf would give NaN).
  v[5] = INFINITY;
  auto r = resize_bilinear(Tensor::from_vector<float>({2, 5, 7, 3}, v), 5, 7);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data<float>()[5], INFINITY);
  EXPECT_EQ(r->data<float>()[8], v[8]);
}

TEST(ResizeBilinear, Rank3AndBatchesAndChannels) {
  // Channel c of batch b is the base image times (b * 10 + c + 1); resizing is linear, so the
  // outputs scale the same way.
  const int64_t n = 2, c = 5;
  std::vector<float> base = {0, 4, 8, 12, 3, 7};  // 2x3
  std::vector<float> v;
  for (int64_t b = 0; b < n; ++b) {
    for (float p : base) {
      for (int64_t ch = 0; ch < c; ++ch) v.push_back(p * (b * 10 + ch + 1));
    }
  }
  auto big = resize_bilinear(Tensor::from_vector<float>({n, 2, 3, c}, v), 3, 4);
  auto one = resize_bilinear(Tensor::from_vector<float>({2, 3, 1}, base), 3, 4);
  ASSERT_TRUE(big.ok() && one.ok());
  EXPECT_EQ(one->shape(), (Dims{3, 4, 1}));
  EXPECT_EQ(big->shape(), (Dims{n, 3, 4, c}));
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < 12; ++i) {
      for (int64_t ch = 0; ch < c; ++ch) {
        EXPECT_NEAR(big->data<float>()[(b * 12 + i) * c + ch],
                    one->data<float>()[i] * (b * 10 + ch + 1), 1e-3);
      }
    }
  }
}

TEST(ResizeBilinear, IntegerInputsGiveFloat) {
  Tensor u8 = Tensor::from_vector<uint8_t>({1, 2, 2, 1}, {0, 4, 8, 12});
  auto r = resize_bilinear_op(u8, 4, 4, kHalfPixel);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dtype(), DType::kFloat32);
  EXPECT_EQ(r->data<float>()[5], 3.0f);
}

TEST(ResizeBilinear, BadArguments) {
  EXPECT_FALSE(resize_bilinear(image({{1}}), 0, 2).ok());
  EXPECT_FALSE(resize_bilinear(Tensor(DType::kFloat32, {2, 2}), 2, 2).ok());
  EXPECT_FALSE(resize_bilinear(Tensor(DType::kFloat32, {1, 0, 2, 1}), 2, 2).ok());
  EXPECT_FALSE(resize_bilinear(Tensor(DType::kFloat32, {1, 2, 2, 0}), 2, 2).ok());
  EXPECT_FALSE(resize_bilinear(Tensor::from_strings({1, 1, 1}, {"a"}), 2, 2).ok());
}

// --- nearest ---------------------------------------------------------------------------------

TEST(ResizeNearest, HalfPixel) {
  // floor((i + 0.5) * 0.5) = 0, 0, 1, 1.
  expect_image(resize_nearest(image({{1, 2}, {3, 4}}), 4, 4),
               {{1, 1, 2, 2}, {1, 1, 2, 2}, {3, 3, 4, 4}, {3, 3, 4, 4}});
  // floor((i + 0.5) * 2) = 1, 3.
  expect_image(
      resize_nearest(image({{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}, {12, 13, 14, 15}}), 2, 2),
      {{5, 7}, {13, 15}});
  // 3 -> 2: floor(0.75) = 0, floor(2.25) = 2.
  expect_image(resize_nearest(image({{1, 2, 3}}), 1, 2), {{1, 3}});
}

TEST(ResizeNearest, LegacyAndAlignCorners) {
  // Legacy 3 -> 2: floor(i * 1.5) = 0, 1. align_corners: round(i * 2) = 0, 2.
  expect_image(resize_nearest_neighbor_op(image({{1, 2, 3}}), 1, 2, kLegacy), {{1, 2}});
  expect_image(resize_nearest_neighbor_op(image({{1, 2, 3}}), 1, 2, kAlignCorners), {{1, 3}});
  // align_corners 2 -> 3: round(0), round(0.5) = 1 (roundf rounds half away from zero), round(1).
  expect_image(resize_nearest_neighbor_op(image({{1, 2}}), 1, 3, kAlignCorners), {{1, 2, 2}});
}

TEST(ResizeNearest, KeepsDtype) {
  Tensor t = Tensor::from_vector<int32_t>({2, 2, 2}, {1, -1, 2, -2, 3, -3, 4, -4});
  auto r = resize_nearest(t, 1, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dtype(), DType::kInt32);
  EXPECT_EQ(r->shape(), (Dims{1, 1, 2}));
  // floor(0.5 * 2) = 1: the bottom-right pixel.
  EXPECT_EQ(r->data<int32_t>()[0], 4);
  EXPECT_EQ(r->data<int32_t>()[1], -4);
}

// --- antialias -------------------------------------------------------------------------------

TEST(ResizeAntialias, HandComputed4To2) {
  // Scale 0.5 widens the triangle to radius 2. Output 0 samples at 1.0: pixel centers 0.5,
  // 1.5, 2.5, 3.5 get weights 0.75, 0.75, 0.25, 0 (sum 1.75).
  expect_image(resize_bilinear(image({{0, 1, 2, 3}}), 1, 2, {.antialias = true}),
               {{1.25f / 1.75f, 4.0f / 1.75f}}, 1e-6f);
}

// Straightforward separable filter from the formula: output x samples at (x + 0.5) / scale;
// input pixel i (center i + 0.5) weighs tri((i + 0.5 - center) / k), k = max(1/scale, 1),
// weights normalised over the image.
std::vector<std::vector<double>> reference_weights(int64_t in, int64_t out) {
  const double scale = static_cast<double>(out) / in;
  const double k = std::max(1.0 / scale, 1.0);
  std::vector<std::vector<double>> w(out, std::vector<double>(in, 0.0));
  for (int64_t x = 0; x < out; ++x) {
    const double center = (x + 0.5) / scale;
    double sum = 0;
    for (int64_t i = 0; i < in; ++i) {
      double d = std::abs(i + 0.5 - center) / k;
      w[x][i] = d < 1 ? 1 - d : 0;
      sum += w[x][i];
    }
    for (auto& v : w[x]) v /= sum;
  }
  return w;
}

void check_against_reference(int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w) {
  SCOPED_TRACE(std::to_string(in_h) + "x" + std::to_string(in_w) + " -> " + std::to_string(out_h) +
               "x" + std::to_string(out_w));
  const int64_t c = 2;
  std::vector<float> v(in_h * in_w * c);
  for (int64_t y = 0; y < in_h; ++y) {
    for (int64_t x = 0; x < in_w; ++x) {
      v[(y * in_w + x) * c] = ((x / 2 + y / 3) % 2) ? 1.0f : 0.0f;  // blocky checkerboard
      v[(y * in_w + x) * c + 1] = static_cast<float>(x * x + 3 * y);
    }
  }
  auto r = resize_bilinear(Tensor::from_vector<float>({in_h, in_w, c}, v), out_h, out_w,
                           {.antialias = true});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->shape(), (Dims{out_h, out_w, c}));
  auto wy = reference_weights(in_h, out_h), wx = reference_weights(in_w, out_w);
  for (int64_t y = 0; y < out_h; ++y) {
    for (int64_t x = 0; x < out_w; ++x) {
      for (int64_t ch = 0; ch < c; ++ch) {
        double expect = 0;
        for (int64_t i = 0; i < in_h; ++i) {
          for (int64_t j = 0; j < in_w; ++j)
            expect += wy[y][i] * wx[x][j] * v[(i * in_w + j) * c + ch];
        }
        EXPECT_NEAR(r->data<float>()[(y * out_w + x) * c + ch], expect,
                    1e-5 * std::max(1.0, std::abs(expect)))
            << y << "," << x << "," << ch;
      }
    }
  }
}

TEST(ResizeAntialias, MatchesStraightforwardFilter) {
  check_against_reference(8, 8, 3, 3);
  check_against_reference(12, 9, 4, 6);
  check_against_reference(7, 5, 7, 2);
  check_against_reference(3, 4, 7, 9);    // upscaling: plain triangle, renormalised at edges
  check_against_reference(5, 10, 2, 13);  // down in one axis, up in the other
}

TEST(ResizeAntialias, UpscaleEqualsBilinearAwayFromEdges) {
  // Not widened when upscaling: interior samples are plain half-pixel bilinear.
  Tensor t = image({{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}, {12, 13, 14, 15}});
  auto aa = resize_bilinear(t, 8, 8, {.antialias = true});
  auto bl = resize_bilinear(t, 8, 8);
  ASSERT_TRUE(aa.ok() && bl.ok());
  for (int64_t y = 1; y < 7; ++y) {
    for (int64_t x = 1; x < 7; ++x) {
      EXPECT_NEAR(aa->data<float>()[y * 8 + x], bl->data<float>()[y * 8 + x], 1e-5);
    }
  }
}

TEST(ScaleAndTranslate, KernelNamesAndTranslation) {
  EXPECT_EQ(*sampling_kernel_from_name("keyscubic"), SamplingKernel::kKeysCubic);
  EXPECT_FALSE(sampling_kernel_from_name("bicubic").ok());
  // Box kernel, scale 1, translate by one pixel: output x samples input x - 1; the first
  // output samples at -0.5, outside the image, and is 0.
  auto r =
      scale_and_translate(image({{1, 2, 3, 4}}), 1, 4, 1, 1, 0, 1, SamplingKernel::kBox, false);
  expect_image(r, {{0, 1, 2, 3}});
  EXPECT_FALSE(
      scale_and_translate(image({{1}}), 1, 1, 0, 1, 0, 0, SamplingKernel::kBox, true).ok());
}

// --- bicubic (tf.image.resize(method='bicubic')) ----------------------------------------------

TEST(ResizeBicubic, HandComputedHalfPixelWithTapsOutsideDropped) {
  // [0, 4] widened to 4 columns samples at -0.25, 0.25, 0.75, 1.25. Keys' a = -0.5 gives
  // k(0.25) = 0.8671875, k(0.75) = 0.2265625, k(1.25) = -0.0703125; taps outside the image are
  // dropped and the rest renormalized. x = 0: pixel 0 at distance 0.25, pixel 1 at 1.25:
  // 4 k(1.25) / (k(0.25) + k(1.25)); x = 1: pixels at 0.25 and 0.75: 4 k(0.75) / (k(0.25) +
  // k(0.75)); x = 2, 3 mirror them.
  const float edge = 4 * -0.0703125f / (0.8671875f - 0.0703125f);
  const float inner = 4 * 0.2265625f / (0.8671875f + 0.2265625f);
  auto r = resize_image(image({{0, 4}}), 1, 4, {.method = ResizeMethod::kBicubic});
  expect_image(r, {{edge, inner, 4 - inner, 4 - edge}}, 1e-5f);
  // The op with half-pixel centers is what resize_image runs.
  Tensor t = image({{0, 1, 2, 3}, {4, 5, 9, 7}, {8, 9, 10, 11}, {12, 1, 14, 15}});
  auto op = resize_bicubic_op(t, 7, 5, kHalfPixel);
  auto api = resize_image(t, 7, 5, {.method = ResizeMethod::kBicubic});
  ASSERT_TRUE(op.ok() && api.ok());
  EXPECT_TRUE(std::equal(op->values<float>().begin(), op->values<float>().end(),
                         api->values<float>().begin(), api->values<float>().end()));
  EXPECT_EQ(*resize_method_from_name("bicubic"), ResizeMethod::kBicubic);
  EXPECT_EQ(*resize_method_from_name("bilinear"), ResizeMethod::kBilinear);
  EXPECT_FALSE(resize_method_from_name("lanczos7").ok());
}

TEST(ResizeBicubic, AntialiasUsesKeysCubicAndWidensWhenDownscaling) {
  // Upscaling 2x samples at quarter pixels, where TensorFlow's kernel table is exact: the
  // antialiased (ScaleAndTranslate, keyscubic) and plain results agree.
  Tensor t = image({{0, 1, 2, 3}, {4, 5, 9, 7}, {8, 9, 10, 11}, {12, 1, 14, 15}});
  auto aa = resize_image(t, 8, 8, {.antialias = true, .method = ResizeMethod::kBicubic});
  auto plain = resize_image(t, 8, 8, {.method = ResizeMethod::kBicubic});
  ASSERT_TRUE(aa.ok() && plain.ok());
  for (int64_t i = 0; i < 64; ++i) {
    EXPECT_NEAR(aa->data<float>()[i], plain->data<float>()[i], 1e-4) << i;
  }
  // Downscaling 8 -> 4 columns with antialias: the Keys kernel widened by 2, output x centred
  // on input position (x + 0.5) * 2, pixel i (centre i + 0.5) weighted k((i + 0.5 - c) / 2),
  // renormalized over the pixels inside the image.
  const std::vector<float> row = {3, -1, 4, 1, -5, 9, 2, -6};
  auto wide =
      resize_image(image({row}), 1, 4, {.antialias = true, .method = ResizeMethod::kBicubic});
  ASSERT_TRUE(wide.ok()) << wide.status().to_string();
  auto keys = [](double d) {
    d = std::abs(d);
    const double a = -0.5;
    if (d <= 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
    if (d < 2) return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
    return 0.0;
  };
  for (int x = 0; x < 4; ++x) {
    const double c = (x + 0.5) * 2;
    double sum = 0, weights = 0;
    for (int i = 0; i < 8; ++i) {
      const double w = keys((i + 0.5 - c) / 2);
      sum += w * row[static_cast<size_t>(i)];
      weights += w;
    }
    EXPECT_NEAR(wide->data<float>()[x], sum / weights, 1e-5) << x;
  }
}

// Every tf.image.ResizeMethod runs the op tf.image.resize (v2) runs for it.
TEST(ResizeImage, EveryMethodRunsTensorFlowsOp) {
  Tensor t(DType::kFloat32, {1, 6, 5, 2});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(0, 1);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.mutable_data<float>()[i] = dist(rng);
  auto same = [](const Expected<Tensor>& a, const Expected<Tensor>& b) {
    EXPECT_TRUE(a.ok() && b.ok());
    if (!a.ok() || !b.ok()) return false;
    return a->shape() == b->shape() &&
           std::equal(a->values<float>().begin(), a->values<float>().end(),
                      b->values<float>().begin());
  };
  for (bool antialias : {false, true}) {
    SCOPED_TRACE(antialias ? "antialias" : "plain");
    auto resize = [&](const char* name) {
      return resize_image(t, 4, 7,
                          {.antialias = antialias, .method = *resize_method_from_name(name)});
    };
    auto sampled = [&](SamplingKernel k, bool aa) {
      return scale_and_translate(t, 4, 7, 4.0f / 6, 7.0f / 5, 0, 0, k, aa);
    };
    EXPECT_TRUE(same(resize("bilinear"), antialias ? sampled(SamplingKernel::kTriangle, true)
                                                   : resize_bilinear_op(t, 4, 7, kHalfPixel)));
    EXPECT_TRUE(same(resize("bicubic"), antialias ? sampled(SamplingKernel::kKeysCubic, true)
                                                  : resize_bicubic_op(t, 4, 7, kHalfPixel)));
    EXPECT_TRUE(same(resize("nearest"), resize_nearest_neighbor_op(t, 4, 7, kHalfPixel)));
    EXPECT_TRUE(same(resize("area"), resize_area_op(t, 4, 7, false)));
    EXPECT_TRUE(same(resize("lanczos3"), sampled(SamplingKernel::kLanczos3, antialias)));
    EXPECT_TRUE(same(resize("lanczos5"), sampled(SamplingKernel::kLanczos5, antialias)));
    EXPECT_TRUE(same(resize("gaussian"), sampled(SamplingKernel::kGaussian, antialias)));
    EXPECT_TRUE(same(resize("mitchellcubic"), sampled(SamplingKernel::kMitchellCubic, antialias)));
  }
  EXPECT_FALSE(same(resize_image(t, 4, 7, {.method = ResizeMethod::kLanczos3}),
                    resize_image(t, 4, 7, {.method = ResizeMethod::kLanczos5})));
}

// --- batches from files ----------------------------------------------------------------------

TEST(LoadImageBatch, DecodesResizesAndStacksInOrder) {
  testing::TempDir dir;
  auto write_png = [&](const std::string& name, uint8_t r, uint8_t g, uint8_t b) {
    testing::PngSpec s;
    s.width = 4, s.height = 2;
    for (int y = 0; y < 2; ++y) {
      testing::Bytes row;
      for (int x = 0; x < 4; ++x) testing::append(row, {r, static_cast<uint8_t>(g + 10 * x), b});
      s.rows.push_back(row);
    }
    auto bytes = testing::encode_png(s);
    testing::write_file(dir.path() / name, std::string(bytes.begin(), bytes.end()));
    return dir.path() / name;
  };
  std::vector<std::filesystem::path> files = {write_png("b.png", 200, 0, 10),
                                              write_png("a.png", 0, 100, 250)};
  auto batch = load_image_batch(files, 2, 2, ColorMode::kRgb, {});
  ASSERT_TRUE(batch.ok()) << batch.status().to_string();
  ASSERT_EQ(batch->shape(), (Dims{2, 2, 2, 3}));
  const float k = static_cast<float>(1.0 / 255.0);
  // Width 4 -> 2 averages columns (0,1) and (2,3): green g+5 and g+25.
  const float* p = batch->data<float>();
  EXPECT_FLOAT_EQ(p[0], 200 * k);
  EXPECT_FLOAT_EQ(p[1], 5 * k);
  EXPECT_FLOAT_EQ(p[4], 25 * k);
  EXPECT_FLOAT_EQ(p[12 + 0], 0);
  EXPECT_FLOAT_EQ(p[12 + 1], 105 * k);
  EXPECT_FLOAT_EQ(p[12 + 2], 250 * k);

  auto gray = load_image_batch(files, 2, 4, ColorMode::kGray, {});
  ASSERT_TRUE(gray.ok());
  ASSERT_EQ(gray->shape(), (Dims{2, 2, 4, 1}));
  EXPECT_NEAR(gray->data<float>()[0], (0.299 * 200 + 0.587 * 0 + 0.114 * 10) / 255, 1e-6);
  EXPECT_NEAR(gray->data<float>()[8 + 3], (0.587 * 130 + 0.114 * 250) / 255, 1e-6);

  testing::write_file(dir.path() / "broken.png", "\x89PNG\r\n\x1a\nxx");
  std::vector<std::filesystem::path> bad = {files[0], dir.path() / "broken.png"};
  auto err = load_image_batch(bad, 2, 2, ColorMode::kRgb, {});
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.status().message().find("broken.png"), std::string::npos);
  EXPECT_FALSE(load_image_batch(files, 0, 2, ColorMode::kRgb, {}).ok());

  // With a failure list, unreadable files are left out and listed; the rows are the readable
  // images in order, each as loaded alone. Many files, so both kernel threads decode.
  std::vector<std::filesystem::path> mixed;
  std::vector<size_t> broken_at;
  for (int i = 0; i < 23; ++i) {
    if (i % 5 == 3) {
      broken_at.push_back(mixed.size());
      mixed.push_back(dir.path() / (i % 2 ? "broken.png" : "missing.png"));
    } else {
      mixed.push_back(write_png("m" + std::to_string(i) + ".png", static_cast<uint8_t>(10 * i),
                                static_cast<uint8_t>(i), static_cast<uint8_t>(255 - i)));
    }
  }
  std::vector<ImageLoadFailure> failures;
  auto readable = load_image_batch(mixed, 3, 5, ColorMode::kRgb, {.antialias = true}, &failures);
  ASSERT_TRUE(readable.ok()) << readable.status().to_string();
  ASSERT_EQ(failures.size(), broken_at.size());
  for (size_t f = 0; f < failures.size(); ++f) {
    EXPECT_EQ(failures[f].index, broken_at[f]);
    EXPECT_NE(failures[f].status.message().find(mixed[broken_at[f]].filename().string()),
              std::string::npos)
        << failures[f].status.message();
  }
  ASSERT_EQ(readable->dim(0), static_cast<int64_t>(mixed.size() - broken_at.size()));
  int64_t row = 0;
  for (size_t i = 0; i < mixed.size(); ++i) {
    if (std::find(broken_at.begin(), broken_at.end(), i) != broken_at.end()) continue;
    auto alone =
        load_image_batch(std::span(&mixed[i], 1), 3, 5, ColorMode::kRgb, {.antialias = true});
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ(std::memcmp(alone->raw_data(), readable->data<float>() + row * 45, 45 * 4), 0) << i;
    ++row;
  }
  // Without the list the first unreadable file in order is the error.
  auto first = load_image_batch(mixed, 3, 5, ColorMode::kRgb, {});
  ASSERT_FALSE(first.ok());
  EXPECT_NE(first.status().message().find(mixed[broken_at[0]].filename().string()),
            std::string::npos);
  std::vector<ImageLoadFailure> all_failed;
  auto none =
      load_image_batch(std::span(&mixed[broken_at[0]], 1), 3, 5, ColorMode::kRgb, {}, &all_failed);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->shape(), (Dims{0, 3, 5, 3}));
  EXPECT_EQ(all_failed.size(), 1u);
}

}  // namespace
}  // namespace hubimg

namespace hubimg {
namespace {

// load_image_batch resizes decoded 8- and 16-bit samples without converting the whole image to
// float first: the rows must equal decode_image_file + resize_bilinear bit for bit, down, up,
// at the same size and from single rows and columns, for every format.
TEST(LoadImageBatch, ResizingDecodedSamplesEqualsDecodingThenResizing) {
  testing::TempDir dir;
  std::mt19937 rng(11);
  auto random_bytes = [&](size_t n) {
    testing::Bytes b(n);
    for (auto& v : b) v = static_cast<uint8_t>(rng());
    return b;
  };
  auto save = [&](const std::string& name, const testing::Bytes& bytes) {
    testing::write_file(dir.path() / name, std::string(bytes.begin(), bytes.end()));
    return dir.path() / name;
  };
  struct Size {
    int w, h;
  };
  std::vector<std::filesystem::path> files;
  for (Size s : {Size{37, 23}, Size{1, 9}, Size{8, 1}, Size{16, 16}, Size{300, 211}}) {
    const std::string tag = std::to_string(s.w) + "x" + std::to_string(s.h);
    const auto rgb = random_bytes(static_cast<size_t>(s.w * s.h * 3));
    files.push_back(save(tag + ".jpg", testing::encode_jpeg(s.w, s.h, 3, rgb)));
    files.push_back(save(tag + ".webp", testing::encode_webp_lossless_rgb(s.w, s.h, rgb)));
    testing::PngSpec png;
    png.width = static_cast<uint32_t>(s.w);
    png.height = static_cast<uint32_t>(s.h);
    png.bit_depth = 16;
    for (int y = 0; y < s.h; ++y) png.rows.push_back(random_bytes(static_cast<size_t>(s.w * 6)));
    files.push_back(save(tag + "_16bit.png", testing::encode_png(png)));
  }
  for (Size out : {Size{16, 16}, Size{5, 3}, Size{64, 40}, Size{1, 1}}) {
    auto batch = load_image_batch(files, out.h, out.w, ColorMode::kRgb, {});
    ASSERT_TRUE(batch.ok()) << batch.status().to_string();
    const size_t row_floats = static_cast<size_t>(out.h * out.w * 3);
    for (size_t i = 0; i < files.size(); ++i) {
      auto decoded = decode_image_file(files[i]);
      ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
      auto resized = resize_bilinear(*decoded, out.h, out.w);
      ASSERT_TRUE(resized.ok()) << resized.status().to_string();
      EXPECT_EQ(std::memcmp(batch->data<float>() + i * row_floats, resized->data<float>(),
                            row_floats * sizeof(float)),
                0)
          << files[i].filename() << " to " << out.w << "x" << out.h;
    }
  }
}

}  // namespace
}  // namespace hubimg
