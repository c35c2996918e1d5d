// Tests for ImageProjectiveTransformV2/V3 and AdjustContrastv2. Expected values are worked
// out by hand or from the documented mapping (output (x, y) reads input
// ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "hubimg/tensor.h"
#include "ops/op_registry.h"

namespace hubimg::ops::image_ops_test {
namespace {

constexpr const char* kNode = "augment/random_rotation/transform";

Tensor f32(Dims shape, std::vector<float> values) {
  return Tensor::from_vector<float>(std::move(shape), values);
}
Tensor i32(Dims shape, std::vector<int32_t> values) {
  return Tensor::from_vector<int32_t>(std::move(shape), values);
}

Tensor run1(std::string_view op, std::vector<Tensor> inputs, const AttrMap& attrs) {
  auto result = run_op(op, inputs, attrs, kNode);
  EXPECT_TRUE(result.ok()) << result.status().to_string();
  return result.ok() ? (*result)[0] : Tensor();
}

void expect_values(const Tensor& actual, const Dims& shape, const std::vector<double>& expected,
                   double tolerance = 1e-5) {
  ASSERT_TRUE(actual.valid());
  ASSERT_EQ(actual.shape(), shape);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(element_as_double(actual, static_cast<int64_t>(i)), expected[i], tolerance)
        << "element " << i;
  }
}

void expect_same(const Tensor& actual, const Tensor& expected) {
  std::vector<double> values;
  for (int64_t i = 0; i < expected.num_elements(); ++i) {
    values.push_back(element_as_double(expected, i));
  }
  expect_values(actual, expected.shape(), values);
}

void expect_error(std::string_view op, std::vector<Tensor> inputs, const AttrMap& attrs,
                  std::string_view fragment) {
  auto result = run_op(op, inputs, attrs, kNode);
  ASSERT_FALSE(result.ok()) << op << " unexpectedly succeeded";
  const std::string& message = result.status().message();
  EXPECT_NE(message.find("node '" + std::string(kNode) + "' (" + std::string(op) + ")"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find(fragment), std::string::npos) << message;
}

// One transform row [a0, a1, a2, b0, b1, b2, c0, c1].
Tensor transform(std::vector<float> row) {
  return f32({1, 8}, std::move(row));
}
Tensor translate_x(float dx) {
  return transform({1, 0, dx, 0, 1, 0, 0, 0});
}

struct Transform {
  Tensor images, transforms;
  int32_t out_h, out_w;
  float fill = 0;
  std::string interpolation = "BILINEAR";
  std::string fill_mode;  // empty: attribute absent (default CONSTANT)

  Tensor run() const {
    AttrMap attrs{{"interpolation", interpolation}, {"dtype", images.dtype()}};
    if (!fill_mode.empty()) attrs.set("fill_mode", fill_mode);
    return run1("ImageProjectiveTransformV3",
                {images, transforms, i32({2}, {out_h, out_w}), Tensor::scalar<float>(fill)}, attrs);
  }
};

// A 1x4 image [1, 2, 3, 4] (abcd) shifted so output x reads input x + dx.
std::vector<double> shifted_row(float dx, const std::string& mode, float fill = 0,
                                const std::string& interpolation = "BILINEAR") {
  Transform t{f32({1, 1, 4, 1}, {1, 2, 3, 4}), translate_x(dx), 1, 4, fill, interpolation, mode};
  const Tensor out = t.run();
  std::vector<double> row;
  for (int64_t i = 0; i < out.num_elements(); ++i) row.push_back(out.data<float>()[i]);
  return row;
}

TEST(ImageProjectiveTransformV3, IdentityReturnsInput) {
  std::vector<float> pixels(2 * 3 * 4 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = std::sin(0.3f * float(i));
  const Tensor images = f32({2, 3, 4, 3}, pixels);
  for (const char* interpolation : {"BILINEAR", "NEAREST"}) {
    Transform t{images, transform({1, 0, 0, 0, 1, 0, 0, 0}), 3, 4, 0, interpolation, ""};
    expect_same(t.run(), images);
  }
}

TEST(ImageProjectiveTransformV3, FillModesOnIntegerShifts) {
  // Reading x + 2 for x = 0..3 asks for input 2, 3, 4, 5.
  EXPECT_EQ(shifted_row(2, ""), (std::vector<double>{3, 4, 0, 0}));  // CONSTANT by default
  EXPECT_EQ(shifted_row(2, "CONSTANT", 9), (std::vector<double>{3, 4, 9, 9}));
  EXPECT_EQ(shifted_row(2, "NEAREST"), (std::vector<double>{3, 4, 4, 4}));  // clamp to d
  EXPECT_EQ(shifted_row(2, "REFLECT"), (std::vector<double>{3, 4, 4, 3}));  // abcd|dcba
  EXPECT_EQ(shifted_row(2, "WRAP"), (std::vector<double>{3, 4, 1, 2}));     // abcd|abcd
  // Reading x - 2 asks for input -2, -1, 0, 1.
  EXPECT_EQ(shifted_row(-2, "CONSTANT", 7), (std::vector<double>{7, 7, 1, 2}));
  EXPECT_EQ(shifted_row(-2, "NEAREST"), (std::vector<double>{1, 1, 1, 2}));
  EXPECT_EQ(shifted_row(-2, "REFLECT"), (std::vector<double>{2, 1, 1, 2}));  // dcba|abcd
  EXPECT_EQ(shifted_row(-2, "WRAP"), (std::vector<double>{3, 4, 1, 2}));     // abcd|abcd
}

TEST(ImageProjectiveTransformV3, HalfPixelShift) {
  // Reading x + 0.5: bilinear averages neighbours; 3.5 lies beyond the last pixel (3) and
  // takes the fill value in CONSTANT mode.
  EXPECT_EQ(shifted_row(0.5f, "CONSTANT"), (std::vector<double>{1.5, 2.5, 3.5, 0}));
  // Nearest rounds halves away from zero: 0.5 -> 1, 1.5 -> 2, 2.5 -> 3.
  EXPECT_EQ(shifted_row(0.5f, "CONSTANT", 0, "NEAREST"), (std::vector<double>{2, 3, 4, 0}));
}

TEST(ImageProjectiveTransformV3, ProjectiveMappingOnAffineImage) {
  // Pixel value x + 10 y: bilinear interpolation reproduces it exactly anywhere inside.
  const int64_t h = 6, w = 5;
  std::vector<float> pixels;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) pixels.push_back(float(x + 10 * y));
  const std::vector<float> row = {0.9f, 0.1f, 0.3f, -0.2f, 1.1f, 0.5f, 0.01f, 0.02f};
  const float fill = -1;
  Transform t{f32({1, h, w, 1}, pixels), transform(row), 7, 8, fill, "BILINEAR", "CONSTANT"};
  const Tensor out = t.run();
  ASSERT_EQ(out.shape(), (Dims{1, 7, 8, 1}));
  int checked = 0;
  for (int64_t oy = 0; oy < 7; ++oy)
    for (int64_t ox = 0; ox < 8; ++ox) {
      const double k = row[6] * ox + row[7] * oy + 1;
      const double x = (row[0] * ox + row[1] * oy + row[2]) / k;
      const double y = (row[3] * ox + row[4] * oy + row[5]) / k;
      const double margin = std::min({x, w - 1 - x, y, h - 1 - y});
      if (std::abs(margin) < 1e-3) continue;  // on the border: float rounding decides
      const double expected = margin > 0 ? x + 10 * y : fill;
      EXPECT_NEAR(out.data<float>()[oy * 8 + ox], expected, 1e-3) << "at " << ox << "," << oy;
      ++checked;
    }
  EXPECT_GT(checked, 40);
}

TEST(ImageProjectiveTransformV3, PerImageTransforms) {
  std::vector<float> pixels(2 * 3 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = float(i);
  const Tensor images = f32({2, 3, 3, 1}, pixels);
  // Image 0 shifted by +1 column, image 1 by +1 row.
  const Tensor transforms = f32({2, 8}, {1, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0});
  Transform t{images, transforms, 3, 3, 0, "NEAREST", "CONSTANT"};
  expect_values(t.run(), {2, 3, 3, 1},
                {1, 2, 0, 4, 5, 0, 7, 8, 0,          // image 0: columns 1, 2, fill
                 12, 13, 14, 15, 16, 17, 0, 0, 0});  // image 1: rows 1, 2, fill
}

TEST(ImageProjectiveTransformV2, MatchesV3WithZeroFill) {
  const Tensor images = f32({1, 2, 3, 1}, {1, 2, 3, 4, 5, 6});
  const Tensor shift = translate_x(1.25f);
  const AttrMap attrs{{"interpolation", std::string("BILINEAR")}};
  expect_same(run1("ImageProjectiveTransformV2", {images, shift, i32({2}, {2, 3})}, attrs),
              run1("ImageProjectiveTransformV3",
                   {images, shift, i32({2}, {2, 3}), Tensor::scalar<float>(0)}, attrs));
}

TEST(ImageProjectiveTransformV3, Uint8Nearest) {
  const Tensor images =
      Tensor::from_vector<uint8_t>({1, 1, 3, 1}, std::vector<uint8_t>{10, 200, 30});
  Transform t{images, translate_x(1), 1, 3, 5, "NEAREST", ""};
  const Tensor out = t.run();
  EXPECT_EQ(out.dtype(), DType::kUInt8);
  expect_values(out, {1, 1, 3, 1}, {200, 30, 5});
}

TEST(ImageProjectiveTransformV3, Errors) {
  const Tensor images = f32({2, 2, 2, 1}, {1, 2, 3, 4, 5, 6, 7, 8});
  const Tensor shape = i32({2}, {2, 2});
  const Tensor fill = Tensor::scalar<float>(0);
  const AttrMap bilinear{{"interpolation", std::string("BILINEAR")}};
  const char* op = "ImageProjectiveTransformV3";
  expect_error(op, {f32({2, 2, 1}, {1, 2, 3, 4}), translate_x(0), shape, fill}, bilinear,
               "images must be 4-D");
  expect_error(op, {images, f32({3, 8}, std::vector<float>(24, 0)), shape, fill}, bilinear,
               "transforms must be float32 [num_images or 1, 8]");
  expect_error(op, {images, translate_x(0), i32({2}, {0, 2}), fill}, bilinear,
               "output_shape must be positive");
  expect_error(op, {images, translate_x(0), shape, fill},
               {{"interpolation", std::string("BICUBIC")}}, "invalid interpolation 'BICUBIC'");
  expect_error(op, {images, translate_x(0), shape, fill},
               {{"interpolation", std::string("BILINEAR")}, {"fill_mode", std::string("MIRROR")}},
               "invalid fill_mode 'MIRROR'");
  expect_error(op, {images, translate_x(0), shape, fill}, {}, "interpolation");
  expect_error(op, {images, translate_x(0), shape, f32({1}, {0})}, bilinear,
               "fill_value must be a float32 scalar");
}

TEST(AdjustContrastv2, ScalesAroundPerChannelMean) {
  // One 2x1 image, channels (1, 10) and (3, 20): means 2 and 15. Factor 2:
  // channel 0 -> 2 + 2 * (1 - 2) = 0, 2 + 2 * (3 - 2) = 4; channel 1 -> 5, 25.
  const Tensor images = f32({1, 2, 1, 2}, {1, 10, 3, 20});
  expect_values(run1("AdjustContrastv2", {images, Tensor::scalar<float>(2)}, {}), {1, 2, 1, 2},
                {0, 5, 4, 25});
  // Rank 3 (a single image) and a second image with its own mean.
  expect_values(run1("AdjustContrastv2", {f32({2, 1, 1}, {0, 4}), Tensor::scalar<float>(0.5f)}, {}),
                {2, 1, 1}, {1, 3});
  const Tensor two = f32({2, 1, 2, 1}, {0, 2, 10, 30});  // means 1 and 20
  expect_values(run1("AdjustContrastv2", {two, Tensor::scalar<float>(0)}, {}), {2, 1, 2, 1},
                {1, 1, 20, 20});
}

TEST(AdjustContrastv2, Errors) {
  expect_error("AdjustContrastv2", {f32({2, 2}, {1, 2, 3, 4}), Tensor::scalar<float>(1)}, {},
               "at least 3-D");
  expect_error("AdjustContrastv2", {f32({1, 1, 2}, {1, 2}), f32({1}, {1})}, {},
               "contrast_factor must be a float32 scalar");
}

}  // namespace
}  // namespace hubimg::ops::image_ops_test
