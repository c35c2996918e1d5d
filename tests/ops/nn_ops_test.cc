// Tests for the neural-network reference kernels. Expected values come from hand computation,
// identities, or naive implementations written in this file from TensorFlow's documented
// formulas (never from the kernels' code).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "hubimg/tensor.h"
#include "ops/op_registry.h"

namespace hubimg::ops::nn_ops_test {
namespace {

using Ints = std::vector<int64_t>;

constexpr const char* kNode = "model/layer/op";

Tensor f32(Dims shape, std::vector<float> values) {
  return Tensor::from_vector<float>(std::move(shape), values);
}

// Deterministic values spread over [-1, 1].
std::vector<float> pattern(int64_t n, int seed = 1) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    v[i] = static_cast<float>(((i * 7919 + seed * 104729) % 2001) / 1000.0 - 1.0);
  }
  return v;
}

Tensor patterned(Dims shape, int seed = 1) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return f32(std::move(shape), pattern(n, seed));
}

std::vector<Tensor> run(std::string_view op, std::vector<Tensor> inputs, const AttrMap& attrs) {
  auto result = run_op(op, inputs, attrs, kNode);
  EXPECT_TRUE(result.ok()) << result.status().to_string();
  return result.ok() ? *std::move(result) : std::vector<Tensor>{};
}

Tensor run1(std::string_view op, std::vector<Tensor> inputs, const AttrMap& attrs) {
  auto outputs = run(op, std::move(inputs), attrs);
  return outputs.empty() ? Tensor() : outputs[0];
}

void expect_values(const Tensor& actual, const Dims& shape, const std::vector<double>& expected,
                   double tolerance = 1e-5) {
  ASSERT_TRUE(actual.valid());
  ASSERT_EQ(actual.shape(), shape);
  ASSERT_EQ(actual.num_elements(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(element_as_double(actual, static_cast<int64_t>(i)), expected[i], tolerance)
        << "element " << i;
  }
}

void expect_same(const Tensor& actual, const Tensor& expected, double tolerance = 1e-5) {
  ASSERT_TRUE(expected.valid());
  std::vector<double> values;
  for (int64_t i = 0; i < expected.num_elements(); ++i) {
    values.push_back(element_as_double(expected, i));
  }
  expect_values(actual, expected.shape(), values, tolerance);
}

// Runs an op that must fail; the message must name the node and op and contain `fragment`.
void expect_error(std::string_view op, std::vector<Tensor> inputs, const AttrMap& attrs,
                  std::string_view fragment, StatusCode code = StatusCode::kInvalidArgument) {
  auto result = run_op(op, inputs, attrs, kNode);
  ASSERT_FALSE(result.ok()) << op << " unexpectedly succeeded";
  const std::string& message = result.status().message();
  EXPECT_EQ(result.status().code(), code) << message;
  EXPECT_NE(message.find("node '" + std::string(kNode) + "' (" + std::string(op) + ")"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find(fragment), std::string::npos) << message;
}

// ---------------------------------------------------------------------------------------------
// Window geometry from TensorFlow's documentation of tf.nn.convolution / tf.nn.conv2d:
//   VALID:    out = ceil((in - (k - 1) * d) / s)
//   SAME:     out = ceil(in / s); pad_total = max((out - 1) * s + (k - 1) * d + 1 - in, 0);
//             pad_before = floor(pad_total / 2), pad_after = the rest
//   EXPLICIT: out = floor((in + before + after - (k - 1) * d - 1) / s) + 1

struct Pads {
  int64_t before = 0, after = 0, out = 0;
};

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

Pads documented_window(const std::string& padding, int64_t in, int64_t k, int64_t s, int64_t d,
                       int64_t explicit_before = 0, int64_t explicit_after = 0) {
  const int64_t span = (k - 1) * d;
  Pads p;
  if (padding == "VALID") {
    p.out = ceil_div(in - span, s);
  } else if (padding == "SAME") {
    p.out = ceil_div(in, s);
    const int64_t total = std::max<int64_t>((p.out - 1) * s + span + 1 - in, 0);
    p.before = total / 2;
    p.after = total - p.before;
  } else {
    p.before = explicit_before;
    p.after = explicit_after;
    p.out = (in + p.before + p.after - span - 1) / s + 1;
  }
  return p;
}

struct ConvCase {
  Dims input;   // N, H, W, C
  Dims filter;  // KH, KW, C / groups (or C for depthwise), out channels (or multiplier)
  int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  std::string padding = "SAME";
  Ints explicit_hw = {0, 0, 0, 0};  // top, bottom, left, right for EXPLICIT

  AttrMap attrs() const {
    AttrMap a{{"strides", Ints{1, stride_h, stride_w, 1}}, {"padding", padding}};
    if (dilation_h != 1 || dilation_w != 1) a.set("dilations", Ints{1, dilation_h, dilation_w, 1});
    if (padding == "EXPLICIT") {
      a.set("explicit_paddings",
            Ints{0, 0, explicit_hw[0], explicit_hw[1], explicit_hw[2], explicit_hw[3], 0, 0});
    }
    return a;
  }
  Pads rows() const {
    return documented_window(padding, input[1], filter[0], stride_h, dilation_h, explicit_hw[0],
                             explicit_hw[1]);
  }
  Pads cols() const {
    return documented_window(padding, input[2], filter[1], stride_w, dilation_w, explicit_hw[2],
                             explicit_hw[3]);
  }
};

// The input with zeros added around it, [N, H + top + bottom, W + left + right, C].
struct PaddedInput {
  std::vector<double> values;
  int64_t height, width, depth;
  double at(int64_t b, int64_t y, int64_t x, int64_t c) const {
    return values[((b * height + y) * width + x) * depth + c];
  }
};

PaddedInput zero_pad(const Tensor& input, const Pads& rows, const Pads& cols) {
  PaddedInput p{{},
                input.dim(1) + rows.before + rows.after,
                input.dim(2) + cols.before + cols.after,
                input.dim(3)};
  p.values.assign(static_cast<size_t>(input.dim(0) * p.height * p.width * p.depth), 0.0);
  for (int64_t b = 0; b < input.dim(0); ++b)
    for (int64_t y = 0; y < input.dim(1); ++y)
      for (int64_t x = 0; x < input.dim(2); ++x)
        for (int64_t c = 0; c < p.depth; ++c)
          p.values[(((b * p.height) + y + rows.before) * p.width + x + cols.before) * p.depth + c] =
              element_as_double(input, ((b * input.dim(1) + y) * input.dim(2) + x) * p.depth + c);
  return p;
}

// tf.nn.conv2d's documented definition, generalised to groups (in_channels / filter depth):
//   output[b, i, j, k] = sum_{di, dj, q} padded[b, s_h*i + d_h*di, s_w*j + d_w*dj, g*Cg + q]
//                                         * filter[di, dj, q, k],  g = k / (out / groups)
Tensor naive_conv2d(const ConvCase& c, const Tensor& input, const Tensor& filter) {
  const Pads rows = c.rows(), cols = c.cols();
  const PaddedInput padded = zero_pad(input, rows, cols);
  const int64_t group_depth = c.filter[2], out_depth = c.filter[3];
  const int64_t groups = c.input[3] / group_depth;
  Tensor out(DType::kFloat32, {c.input[0], rows.out, cols.out, out_depth});
  float* o = out.mutable_data<float>();
  const float* w = filter.data<float>();
  for (int64_t b = 0; b < c.input[0]; ++b)
    for (int64_t i = 0; i < rows.out; ++i)
      for (int64_t j = 0; j < cols.out; ++j)
        for (int64_t k = 0; k < out_depth; ++k) {
          const int64_t g = k / (out_depth / groups);
          double sum = 0;
          for (int64_t di = 0; di < c.filter[0]; ++di)
            for (int64_t dj = 0; dj < c.filter[1]; ++dj)
              for (int64_t q = 0; q < group_depth; ++q)
                sum += padded.at(b, c.stride_h * i + c.dilation_h * di,
                                 c.stride_w * j + c.dilation_w * dj, g * group_depth + q) *
                       w[((di * c.filter[1] + dj) * group_depth + q) * out_depth + k];
          *o++ = static_cast<float>(sum);
        }
  return out;
}

// tf.nn.depthwise_conv2d's documented definition:
//   output[b, i, j, k * M + q] = sum_{di, dj} padded[b, s*i + d*di, s*j + d*dj, k]
//                                             * filter[di, dj, k, q]
Tensor naive_depthwise(const ConvCase& c, const Tensor& input, const Tensor& filter) {
  const Pads rows = c.rows(), cols = c.cols();
  const PaddedInput padded = zero_pad(input, rows, cols);
  const int64_t depth = c.input[3], multiplier = c.filter[3];
  Tensor out(DType::kFloat32, {c.input[0], rows.out, cols.out, depth * multiplier});
  float* o = out.mutable_data<float>();
  const float* w = filter.data<float>();
  for (int64_t b = 0; b < c.input[0]; ++b)
    for (int64_t i = 0; i < rows.out; ++i)
      for (int64_t j = 0; j < cols.out; ++j)
        for (int64_t k = 0; k < depth; ++k)
          for (int64_t q = 0; q < multiplier; ++q) {
            double sum = 0;
            for (int64_t di = 0; di < c.filter[0]; ++di)
              for (int64_t dj = 0; dj < c.filter[1]; ++dj)
                sum += padded.at(b, c.stride_h * i + c.dilation_h * di,
                                 c.stride_w * j + c.dilation_w * dj, k) *
                       w[((di * c.filter[1] + dj) * depth + k) * multiplier + q];
            *o++ = static_cast<float>(sum);
          }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Conv2D

TEST(Conv2D, HandComputedValidAndSame) {
  // input 3x3 = 1..9, filter 2x2 of ones.
  const Tensor input = f32({1, 3, 3, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Tensor ones = f32({2, 2, 1, 1}, {1, 1, 1, 1});
  // VALID, stride 1: window sums 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9.
  expect_values(run1("Conv2D", {input, ones},
                     {{"strides", Ints{1, 1, 1, 1}}, {"padding", std::string("VALID")}}),
                {1, 2, 2, 1}, {12, 16, 24, 28});
  // SAME, stride 2: out 2x2, pad_total = (2-1)*2 + 2 - 3 = 1 -> top/left 0, bottom/right 1.
  // (0,0) = 1+2+4+5, (0,1) = 3+6, (1,0) = 7+8, (1,1) = 9.
  expect_values(run1("Conv2D", {input, ones},
                     {{"strides", Ints{1, 2, 2, 1}}, {"padding", std::string("SAME")}}),
                {1, 2, 2, 1}, {12, 9, 15, 9});
  // EXPLICIT top 1, others 0, stride 1, VALID-like otherwise: rows [0,1,2,3] where row 0 is
  // zeros -> (0,0) = 1+2, (0,1) = 2+3, then the VALID rows.
  expect_values(run1("Conv2D", {input, ones},
                     {{"strides", Ints{1, 1, 1, 1}},
                      {"padding", std::string("EXPLICIT")},
                      {"explicit_paddings", Ints{0, 0, 1, 0, 0, 0, 0, 0}}}),
                {1, 3, 2, 1}, {3, 5, 12, 16, 24, 28});
}

TEST(Conv2D, OneByOneIsMatMul) {
  const Tensor input = patterned({2, 3, 3, 4}, 1);
  const Tensor filter = patterned({1, 1, 4, 5}, 2);
  const Tensor out = run1("Conv2D", {input, filter},
                          {{"strides", Ints{1, 1, 1, 1}}, {"padding", std::string("VALID")}});
  // [18 pixels, 4] x [4, 5]
  std::vector<double> expected;
  for (int64_t p = 0; p < 18; ++p)
    for (int64_t k = 0; k < 5; ++k) {
      double sum = 0;
      for (int64_t c = 0; c < 4; ++c)
        sum += double(input.data<float>()[p * 4 + c]) * filter.data<float>()[c * 5 + k];
      expected.push_back(sum);
    }
  expect_values(out, {2, 3, 3, 5}, expected);
}

TEST(Conv2D, CenteredDeltaKernelReturnsInput) {
  const Tensor input = patterned({2, 5, 4, 3}, 3);
  for (int64_t dilation : {1, 2}) {
    // 3x3 filter with filter[1, 1, c, c] = 1: every output reads exactly the input pixel.
    Tensor delta(DType::kFloat32, {3, 3, 3, 3});
    for (int64_t c = 0; c < 3; ++c) delta.mutable_data<float>()[((1 * 3 + 1) * 3 + c) * 3 + c] = 1;
    AttrMap attrs{{"strides", Ints{1, 1, 1, 1}}, {"padding", std::string("SAME")}};
    attrs.set("dilations", Ints{1, dilation, dilation, 1});
    expect_same(run1("Conv2D", {input, delta}, attrs), input);
  }
}

TEST(Conv2D, MatchesDocumentedFormula) {
  const std::vector<ConvCase> cases = {
      {{1, 5, 5, 2}, {3, 3, 2, 4}, 1, 1, 1, 1, "SAME"},
      {{2, 6, 6, 3}, {3, 3, 3, 2}, 2, 2, 1, 1, "SAME"},    // even size, stride 2
      {{2, 7, 7, 3}, {3, 3, 3, 2}, 2, 2, 1, 1, "SAME"},    // odd size, stride 2
      {{1, 8, 6, 2}, {2, 2, 2, 3}, 2, 2, 1, 1, "SAME"},    // even filter
      {{2, 7, 6, 2}, {3, 2, 2, 3}, 1, 2, 1, 1, "VALID"},   // uneven strides and filter
      {{1, 9, 9, 2}, {3, 3, 2, 2}, 1, 1, 2, 2, "SAME"},    // dilation 2
      {{1, 9, 8, 2}, {3, 3, 2, 2}, 2, 2, 2, 2, "VALID"},   // dilation 2, stride 2
      {{1, 10, 10, 1}, {3, 3, 1, 1}, 2, 1, 1, 3, "SAME"},  // mixed stride / dilation
      {{2, 5, 6, 2}, {3, 3, 2, 2}, 2, 2, 1, 1, "EXPLICIT", {1, 2, 0, 1}},
      {{1, 6, 6, 2}, {3, 3, 2, 3}, 1, 1, 2, 1, "EXPLICIT", {2, 2, 1, 1}},
      {{1, 5, 5, 4}, {3, 3, 2, 6}, 1, 1, 1, 1, "SAME"},   // 2 groups
      {{2, 6, 5, 6}, {2, 3, 2, 3}, 2, 1, 1, 1, "VALID"},  // 3 groups
  };
  int seed = 10;
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(dims_to_string(c.input) + " * " + dims_to_string(c.filter) + " " + c.padding);
    const Tensor input = patterned(c.input, seed++);
    const Tensor filter = patterned(c.filter, seed++);
    expect_same(run1("Conv2D", {input, filter}, c.attrs()), naive_conv2d(c, input, filter), 1e-4);
  }
}

TEST(Conv2D, Float64) {
  const Tensor input = Tensor::from_vector<double>({1, 2, 2, 1}, std::vector<double>{1, 2, 3, 4});
  const Tensor filter = Tensor::from_vector<double>({1, 1, 1, 1}, std::vector<double>{0.5});
  const Tensor out = run1("Conv2D", {input, filter},
                          {{"strides", Ints{1, 1, 1, 1}}, {"padding", std::string("VALID")}});
  EXPECT_EQ(out.dtype(), DType::kFloat64);
  expect_values(out, {1, 2, 2, 1}, {0.5, 1, 1.5, 2});
}

TEST(Conv2D, Errors) {
  const Tensor input = patterned({1, 4, 4, 3});
  const Tensor filter = patterned({3, 3, 3, 2});
  const AttrMap same{{"strides", Ints{1, 1, 1, 1}}, {"padding", std::string("SAME")}};
  expect_error("Conv2D", {patterned({4, 4, 3}), filter}, same, "rank 4");
  expect_error("Conv2D", {input, patterned({3, 3, 2, 2})}, same,
               "multiple of the filter's input depth");
  expect_error("Conv2D", {input, filter},
               {{"strides", Ints{1, 1, 1, 1}}, {"padding", std::string("FULL")}},
               "unsupported padding 'FULL'");
  expect_error("Conv2D", {input, filter},
               {{"strides", Ints{1, 1, 1, 1}},
                {"padding", std::string("SAME")},
                {"data_format", std::string("NCHW")}},
               "NCHW", StatusCode::kUnimplemented);
  expect_error("Conv2D", {input, filter},
               {{"strides", Ints{1, 1, 1}}, {"padding", std::string("SAME")}},
               "strides must have 4 entries");
  expect_error("Conv2D", {input, filter},
               {{"strides", Ints{2, 1, 1, 1}}, {"padding", std::string("SAME")}},
               "batch and depth");
  expect_error("Conv2D", {input, filter}, {{"padding", std::string("SAME")}}, "strides");
  expect_error("Conv2D", {input, filter},
               {{"strides", Ints{1, 1, 1, 1}},
                {"padding", std::string("EXPLICIT")},
                {"explicit_paddings", Ints{0, 0, 1, 1}}},
               "8 explicit_paddings");
  expect_error("Conv2D", {input, filter},
               {{"strides", Ints{1, 1, 1, 1}},
                {"padding", std::string("EXPLICIT")},
                {"explicit_paddings", Ints{1, 0, 1, 1, 1, 1, 0, 0}}},
               "batch or depth");
  expect_error("Conv2D", {input, patterned({6, 6, 3, 2})},
               {{"strides", Ints{1, 1, 1, 1}}, {"padding", std::string("VALID")}}, "negative");
  expect_error("Conv2D",
               {input, Tensor::from_vector<double>({1, 1, 3, 1}, std::vector<double>{1, 1, 1})},
               same, "dtype");
}

// ---------------------------------------------------------------------------------------------
// DepthwiseConv2dNative

TEST(DepthwiseConv2dNative, MultiplierOneOnOneChannelIsConv2D) {
  const Tensor input = patterned({2, 6, 5, 1}, 4);
  const Tensor filter = patterned({3, 3, 1, 1}, 5);
  const AttrMap attrs{{"strides", Ints{1, 2, 2, 1}}, {"padding", std::string("SAME")}};
  expect_same(run1("DepthwiseConv2dNative", {input, filter}, attrs),
              run1("Conv2D", {input, filter}, attrs));
}

TEST(DepthwiseConv2dNative, HandComputedMultiplierTwo) {
  // Two channels [1, 10], [2, 20], [3, 30], [4, 40] on a 2x2 image; 1x1 filter with
  // multipliers (1, -1) for channel 0 and (2, 0.5) for channel 1.
  const Tensor input = f32({1, 2, 2, 2}, {1, 10, 2, 20, 3, 30, 4, 40});
  const Tensor filter = f32({1, 1, 2, 2}, {1, -1, 2, 0.5f});
  expect_values(run1("DepthwiseConv2dNative", {input, filter},
                     {{"strides", Ints{1, 1, 1, 1}}, {"padding", std::string("VALID")}}),
                {1, 2, 2, 4}, {1, -1, 20, 5, 2, -2, 40, 10, 3, -3, 60, 15, 4, -4, 80, 20});
}

TEST(DepthwiseConv2dNative, MatchesDocumentedFormula) {
  const std::vector<ConvCase> cases = {
      {{1, 5, 5, 3}, {3, 3, 3, 1}, 1, 1, 1, 1, "SAME"},
      {{2, 6, 6, 2}, {3, 3, 2, 2}, 2, 2, 1, 1, "SAME"},  // multiplier 2, stride 2, even size
      {{2, 7, 7, 2}, {5, 5, 2, 2}, 2, 2, 1, 1, "SAME"},  // odd size
      {{1, 9, 9, 2}, {3, 3, 2, 1}, 1, 1, 2, 2, "SAME"},  // dilation 2
      {{1, 8, 7, 3}, {3, 2, 3, 2}, 1, 1, 1, 1, "VALID"},
      {{1, 6, 6, 2}, {3, 3, 2, 2}, 1, 1, 1, 1, "EXPLICIT", {1, 1, 2, 0}},
  };
  int seed = 30;
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(dims_to_string(c.input) + " * " + dims_to_string(c.filter) + " " + c.padding);
    const Tensor input = patterned(c.input, seed++);
    const Tensor filter = patterned(c.filter, seed++);
    expect_same(run1("DepthwiseConv2dNative", {input, filter}, c.attrs()),
                naive_depthwise(c, input, filter), 1e-4);
  }
}

TEST(DepthwiseConv2dNative, Errors) {
  const AttrMap same{{"strides", Ints{1, 1, 1, 1}}, {"padding", std::string("SAME")}};
  expect_error("DepthwiseConv2dNative", {patterned({1, 4, 4, 3}), patterned({3, 3, 2, 1})}, same,
               "same depth");
  expect_error("DepthwiseConv2dNative", {patterned({1, 4, 4, 3}), patterned({3, 3, 3})}, same,
               "rank 4");
  expect_error("DepthwiseConv2dNative", {patterned({1, 4, 4, 3}), patterned({3, 3, 3, 1})},
               {{"strides", Ints{1, 1, 1, 1}},
                {"padding", std::string("SAME")},
                {"data_format", std::string("NCHW")}},
               "NCHW", StatusCode::kUnimplemented);
}

// ---------------------------------------------------------------------------------------------
// ExtractImagePatches

Tensor i32(Dims shape, std::vector<int32_t> values) {
  return Tensor::from_vector<int32_t>(std::move(shape), values);
}
Tensor i64(Dims shape, std::vector<int64_t> values) {
  return Tensor::from_vector<int64_t>(std::move(shape), values);
}

AttrMap patch_attrs(Ints ksizes, Ints strides, Ints rates, const std::string& padding) {
  return {{"ksizes", std::move(ksizes)},
          {"strides", std::move(strides)},
          {"rates", std::move(rates)},
          {"padding", padding}};
}

TEST(ExtractImagePatches, DocumentationExamples) {
  // tf.image.extract_patches' documented examples: a 10x10 image holding 1..100.
  std::vector<int32_t> v(100);
  std::iota(v.begin(), v.end(), 1);
  const Tensor image = i32({1, 10, 10, 1}, v);
  EXPECT_EQ(run1("ExtractImagePatches", {image},
                 patch_attrs({1, 3, 3, 1}, {1, 5, 5, 1}, {1, 1, 1, 1}, "VALID"))
                .dtype(),
            DType::kInt32);
  expect_values(run1("ExtractImagePatches", {image},
                     patch_attrs({1, 3, 3, 1}, {1, 5, 5, 1}, {1, 1, 1, 1}, "VALID")),
                {1, 2, 2, 9},
                {1,  2,  3,  11, 12, 13, 21, 22, 23, 6,  7,  8,  16, 17, 18, 26, 27, 28,
                 51, 52, 53, 61, 62, 63, 71, 72, 73, 56, 57, 58, 66, 67, 68, 76, 77, 78});
  expect_values(run1("ExtractImagePatches", {image},
                     patch_attrs({1, 3, 3, 1}, {1, 5, 5, 1}, {1, 2, 2, 1}, "VALID")),
                {1, 2, 2, 9},
                {1,  3,  5,  21, 23, 25, 41, 43, 45, 6,  8,  10, 26, 28, 30, 46, 48, 50,
                 51, 53, 55, 71, 73, 75, 91, 93, 95, 56, 58, 60, 76, 78, 80, 96, 98, 100});
}

TEST(ExtractImagePatches, SamePadsWithZerosAfterAndKeepsChannelsInnermost) {
  // 3x3 cells of 2 channels holding 1..18; 2x2 patches, stride 2, SAME: out 2x2, one padded
  // row and column after. A patch lists (row, column, channel), channel fastest.
  std::vector<float> v(18);
  std::iota(v.begin(), v.end(), 1.0f);
  expect_values(run1("ExtractImagePatches", {f32({1, 3, 3, 2}, v)},
                     patch_attrs({1, 2, 2, 1}, {1, 2, 2, 1}, {1, 1, 1, 1}, "SAME")),
                {1, 2, 2, 8}, {1,  2,  3,  4,  7, 8, 9, 10, 5,  6,  0, 0, 11, 12, 0, 0,
                               13, 14, 15, 16, 0, 0, 0, 0,  17, 18, 0, 0, 0,  0,  0, 0});
  // Its adjoint adds each patch value back to its cell: all-ones patches count the patches
  // covering each cell (1 everywhere here: stride 2 patches do not overlap).
  const Tensor ones = f32({1, 2, 2, 8}, std::vector<float>(32, 1.0f));
  expect_values(run1("_HubimgExtractImagePatchesGrad", {ones, i32({4}, {1, 3, 3, 2})},
                     patch_attrs({1, 2, 2, 1}, {1, 2, 2, 1}, {1, 1, 1, 1}, "SAME")),
                {1, 3, 3, 2}, std::vector<double>(18, 1.0));
  // 2x2 patches at stride 1 (VALID) over 3x3: the centre is in 4 patches, edges in 2, corners 1.
  const Tensor ones4 = f32({1, 2, 2, 4}, std::vector<float>(16, 1.0f));
  expect_values(run1("_HubimgExtractImagePatchesGrad", {ones4, i32({4}, {1, 3, 3, 1})},
                     patch_attrs({1, 2, 2, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}, "VALID")),
                {1, 3, 3, 1}, {1, 2, 1, 2, 4, 2, 1, 2, 1});
}

TEST(ExtractImagePatches, RejectsBadAttributesAndShapes) {
  const Tensor image = f32({1, 4, 4, 1}, std::vector<float>(16, 1.0f));
  expect_error("ExtractImagePatches", {image},
               patch_attrs({1, 2, 2}, {1, 1, 1, 1}, {1, 1, 1, 1}, "VALID"), "ksizes");
  expect_error("ExtractImagePatches", {image},
               patch_attrs({1, 2, 2, 1}, {1, 0, 1, 1}, {1, 1, 1, 1}, "VALID"), "strides");
  expect_error("ExtractImagePatches", {image},
               patch_attrs({1, 2, 2, 1}, {1, 1, 1, 1}, {2, 1, 1, 1}, "VALID"), "rates");
  expect_error("ExtractImagePatches", {image},
               patch_attrs({1, 2, 2, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}, "EXPLICIT"), "padding");
  expect_error("ExtractImagePatches", {f32({4, 4, 1}, std::vector<float>(16, 1.0f))},
               patch_attrs({1, 2, 2, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}, "VALID"), "4-D");
  // Model-controlled sizes that would overflow the window arithmetic.
  expect_error(
      "ExtractImagePatches", {image},
      patch_attrs({1, int64_t{1} << 40, 2, 1}, {1, 1, 1, 1}, {1, int64_t{1} << 40, 1, 1}, "SAME"),
      "too large", StatusCode::kOutOfRange);
  expect_error(
      "ExtractImagePatches", {image},
      patch_attrs({1, int64_t{1} << 32, int64_t{1} << 32, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}, "SAME"),
      "too large", StatusCode::kOutOfRange);
  expect_error("_HubimgExtractImagePatchesGrad",
               {f32({1, 2, 2, 3}, std::vector<float>(12, 1.0f)), i32({4}, {1, 4, 4, 1})},
               patch_attrs({1, 2, 2, 1}, {1, 2, 2, 1}, {1, 1, 1, 1}, "VALID"),
               "not shaped like the patches");
}

// ---------------------------------------------------------------------------------------------
// TopKV2, TopK

TEST(TopK, LargestFirstTiesByLowerIndexNaNOnTop) {
  const float nan = std::nanf("");
  // Row 0 has ties (3 at 1 and 4; 1 at 0 and 2); row 1 a NaN and negatives.
  const Tensor x = f32({2, 5}, {1, 3, 1, -2, 3, -1, nan, -5, 0, -1});
  auto out = run("TopKV2", {x, i32({}, {3})}, {});
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(out[1].dtype(), DType::kInt32);
  const float* v = out[0].data<float>();
  EXPECT_EQ(out[0].shape(), (Dims{2, 3}));
  EXPECT_EQ((std::vector<float>(v, v + 3)), (std::vector<float>{3, 3, 1}));
  EXPECT_TRUE(std::isnan(v[3]));
  EXPECT_EQ((std::vector<float>(v + 4, v + 6)), (std::vector<float>{0, -1}));
  const int32_t* i = out[1].data<int32_t>();
  EXPECT_EQ((std::vector<int32_t>(i, i + 6)), (std::vector<int32_t>{1, 4, 0, 1, 3, 0}));

  // int64 indices, integer values, rank 3, k = n and k = 0.
  const Tensor ints = i32({1, 2, 3}, {7, 9, 8, 2, 2, 5});
  auto all = run("TopKV2", {ints, i64({}, {3})}, {{"index_type", DType::kInt64}});
  ASSERT_EQ(all.size(), 2u);
  expect_values(all[0], {1, 2, 3}, {9, 8, 7, 5, 2, 2});
  ASSERT_EQ(all[1].dtype(), DType::kInt64);
  expect_values(all[1], {1, 2, 3}, {1, 2, 0, 2, 0, 1});
  auto none = run("TopKV2", {ints, i32({}, {0})}, {});
  ASSERT_EQ(none.size(), 2u);
  EXPECT_EQ(none[0].shape(), (Dims{1, 2, 0}));
  // TensorFlow 1's TopK takes k as an attribute.
  expect_values(run1("TopK", {f32({2, 3}, {1, 5, 2, 4, 4, 0})}, {{"k", int64_t{1}}}), {2, 1},
                {5, 4});

  expect_error("TopKV2", {x, i32({}, {6})}, {}, "at least k columns");
  expect_error("TopKV2", {x, i32({}, {-1})}, {}, "k >= 0");
  expect_error("TopKV2", {x, i32({1}, {1})}, {}, "0-D");
  expect_error("TopKV2", {f32({}, {1}), i32({}, {1})}, {}, ">= 1-D");
}

// ---------------------------------------------------------------------------------------------
// LRN

TEST(LRN, HandComputedWindowsClippedAtTheEdges) {
  // Depth 3, radius 1, bias 1, alpha 1, beta 0.5: channel 0 sums 1 + 4, channel 1 all three,
  // channel 2 4 + 9.
  const AttrMap attrs = {
      {"depth_radius", int64_t{1}}, {"bias", 1.0f}, {"alpha", 1.0f}, {"beta", 0.5f}};
  expect_values(run1("LRN", {f32({1, 1, 1, 3}, {1, 2, 3})}, attrs), {1, 1, 1, 3},
                {1 / std::sqrt(6.0), 2 / std::sqrt(15.0), 3 / std::sqrt(14.0)});
  // TensorFlow's defaults (radius 5, bias 1, alpha 1, beta 0.5) and other parameters, against
  // the formula over every channel of a [2, 2, 3, 7] input.
  const Tensor x = patterned({2, 2, 3, 7}, 3);
  for (const AttrMap& a :
       {AttrMap{},
        AttrMap{{"depth_radius", int64_t{2}}, {"bias", 2.0f}, {"alpha", 1e-4f}, {"beta", 0.75f}}}) {
    const int64_t radius = a.find("depth_radius") ? 2 : 5;
    const double bias = a.find("bias") ? 2.0 : 1.0, alpha = a.find("alpha") ? 1e-4 : 1.0,
                 beta = a.find("beta") ? 0.75 : 0.5;
    std::vector<double> want;
    const float* v = x.data<float>();
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      const int64_t d = i % 7, row = i - d;
      double sum = 0;
      for (int64_t k = std::max<int64_t>(0, d - radius); k <= std::min<int64_t>(6, d + radius); ++k)
        sum += static_cast<double>(v[row + k]) * v[row + k];
      want.push_back(v[i] / std::pow(bias + alpha * sum, beta));
    }
    expect_values(run1("LRN", {x}, a), x.shape(), want);
  }
  expect_error("LRN", {f32({3}, {1, 2, 3})}, {}, "");
  expect_error("LRN", {x}, {{"depth_radius", int64_t{-1}}}, "depth_radius");
  expect_error("LRNGrad", {x, x, f32({1, 1, 1, 1}, {1})}, {}, "same shape");
}

// ---------------------------------------------------------------------------------------------
// Pooling

AttrMap pool_attrs(int64_t k, int64_t s, const std::string& padding) {
  return {{"ksize", Ints{1, k, k, 1}}, {"strides", Ints{1, s, s, 1}}, {"padding", padding}};
}

TEST(AvgPool, SameAveragesOnlyValidCells) {
  // 3x3 = 1..9, 2x2 window, stride 1, SAME: pad_total 1 goes to bottom/right.
  // Right column averages 2 cells, bottom row 2 cells, the corner only itself.
  const Tensor input = f32({1, 3, 3, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  expect_values(run1("AvgPool", {input}, pool_attrs(2, 1, "SAME")), {1, 3, 3, 1},
                {3, 4, 4.5, 6, 7, 7.5, 7.5, 8.5, 9});
}

TEST(AvgPool, EvenInputStrideTwo) {
  // 4x4 = 0..15, 3x3 window, stride 2, SAME: out 2x2, pad_total = (2-1)*2 + 3 - 4 = 1, after.
  // (0,0): rows 0-2, cols 0-2 -> mean of {0,1,2,4,5,6,8,9,10} = 5
  // (0,1): rows 0-2, cols 2-3 -> {2,3,6,7,10,11} = 6.5
  // (1,0): rows 2-3, cols 0-2 -> {8,9,10,12,13,14} = 11
  // (1,1): rows 2-3, cols 2-3 -> {10,11,14,15} = 12.5
  std::vector<float> v(16);
  std::iota(v.begin(), v.end(), 0.0f);
  expect_values(run1("AvgPool", {f32({1, 4, 4, 1}, v)}, pool_attrs(3, 2, "SAME")), {1, 2, 2, 1},
                {5, 6.5, 11, 12.5});
  // VALID 2x2 stride 2: means of the four quadrants.
  expect_values(run1("AvgPool", {f32({1, 4, 4, 1}, v)}, pool_attrs(2, 2, "VALID")), {1, 2, 2, 1},
                {2.5, 4.5, 10.5, 12.5});
}

TEST(AvgPool, BatchAndChannelsAreIndependent) {
  // Channel 1 is channel 0 times -2; batch 1 is batch 0 plus 100.
  std::vector<float> v;
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 25; ++i) {
      const float x = static_cast<float>(i) + (b == 1 ? 100.0f : 0.0f);
      v.push_back(x);
      v.push_back(-2 * x);
    }
  const Tensor out = run1("AvgPool", {f32({2, 5, 5, 2}, v)}, pool_attrs(3, 2, "SAME"));
  ASSERT_EQ(out.shape(), (Dims{2, 3, 3, 2}));
  for (int64_t p = 0; p < 9; ++p) {
    const float c0 = out.data<float>()[p * 2];
    EXPECT_NEAR(out.data<float>()[p * 2 + 1], -2 * c0, 1e-4);
    EXPECT_NEAR(out.data<float>()[18 + p * 2], c0 + 100, 1e-4);
  }
  // SAME pads 1 cell before and after; output (2,2) covers rows/cols 3..5, of which 3 and 4
  // exist: mean of cells {18, 19, 23, 24} = 21.
  EXPECT_NEAR(out.data<float>()[8 * 2], 21, 1e-5);
}

TEST(MaxPool, SameIgnoresPadding) {
  // All values negative: a padded zero would win if padding took part.
  const Tensor input = f32({1, 3, 3, 1}, {-1, -2, -3, -4, -5, -6, -7, -8, -9});
  expect_values(run1("MaxPool", {input}, pool_attrs(2, 2, "SAME")), {1, 2, 2, 1}, {-1, -3, -7, -9});
  expect_values(run1("MaxPool", {input}, pool_attrs(2, 1, "VALID")), {1, 2, 2, 1},
                {-1, -2, -4, -5});
}

TEST(MaxPool, ExplicitPaddingAndIntegers) {
  const Tensor input =
      Tensor::from_vector<int32_t>({1, 2, 3, 1}, std::vector<int32_t>{5, 1, 7, 2, 9, 3});
  AttrMap attrs = pool_attrs(2, 1, "EXPLICIT");
  attrs.set("explicit_paddings", Ints{0, 0, 0, 0, 1, 0, 0, 0});
  // Columns padded on the left by one: windows cols {-1,0}, {0,1}, {1,2} over both rows.
  expect_values(run1("MaxPool", {input}, attrs), {1, 1, 3, 1}, {5, 9, 9});
}

TEST(MaxPoolV2, MatchesMaxPool) {
  const Tensor input = patterned({2, 7, 6, 3}, 7);
  const Tensor ksize = Tensor::from_vector<int32_t>({4}, std::vector<int32_t>{1, 3, 3, 1});
  const Tensor strides = Tensor::from_vector<int32_t>({4}, std::vector<int32_t>{1, 2, 2, 1});
  expect_same(run1("MaxPoolV2", {input, ksize, strides}, {{"padding", std::string("SAME")}}),
              run1("MaxPool", {input}, pool_attrs(3, 2, "SAME")));
}

TEST(Pool, Errors) {
  const Tensor input = patterned({1, 4, 4, 2});
  expect_error("AvgPool", {patterned({4, 4, 2})}, pool_attrs(2, 2, "SAME"), "rank 4");
  expect_error("AvgPool", {input},
               {{"ksize", Ints{1, 2, 2, 2}},
                {"strides", Ints{1, 1, 1, 1}},
                {"padding", std::string("SAME")}},
               "batch and depth");
  expect_error("AvgPool", {input}, pool_attrs(2, 2, "EXPLICIT"), "unsupported padding");
  AttrMap nchw = pool_attrs(2, 2, "SAME");
  nchw.set("data_format", std::string("NCHW"));
  expect_error("MaxPool", {input}, nchw, "NCHW", StatusCode::kUnimplemented);
  expect_error("MaxPool", {input}, {{"ksize", Ints{1, 2, 2, 1}}, {"padding", std::string("SAME")}},
               "strides");
  expect_error("MaxPoolV2",
               {input, Tensor::from_vector<int32_t>({3}, std::vector<int32_t>{1, 2, 2}),
                Tensor::from_vector<int32_t>({4}, std::vector<int32_t>{1, 1, 1, 1})},
               {{"padding", std::string("SAME")}}, "ksize must be int32 [4]");
}

// ---------------------------------------------------------------------------------------------
// FusedBatchNorm

struct BatchNormInputs {
  Tensor x, scale, offset, mean, variance;
  std::vector<Tensor> list() const { return {x, scale, offset, mean, variance}; }
};

BatchNormInputs batch_norm_inputs(Dims x_shape, int64_t channels) {
  BatchNormInputs in;
  in.x = patterned(x_shape, 41);
  in.scale = f32({channels}, pattern(channels, 42));
  in.offset = f32({channels}, pattern(channels, 43));
  in.mean = f32({channels}, pattern(channels, 44));
  std::vector<float> variance = pattern(channels, 45);
  for (float& v : variance) v = v * v + 0.05f;
  in.variance = f32({channels}, variance);
  return in;
}

TEST(FusedBatchNorm, InferenceDefaultsEpsilonTo1e4) {
  // The attribute is absent, as in SavedModels that strip defaults: epsilon = 1e-4.
  const BatchNormInputs in = batch_norm_inputs({2, 3, 2, 3}, 3);
  const auto outputs = run("FusedBatchNormV3", in.list(), {{"is_training", false}});
  ASSERT_EQ(outputs.size(), 6u);
  std::vector<double> expected;
  for (int64_t i = 0; i < in.x.num_elements(); ++i) {
    const int64_t c = i % 3;
    expected.push_back((double(in.x.data<float>()[i]) - in.mean.data<float>()[c]) /
                           std::sqrt(double(in.variance.data<float>()[c]) + 1e-4) *
                           in.scale.data<float>()[c] +
                       in.offset.data<float>()[c]);
  }
  expect_values(outputs[0], in.x.shape(), expected);
  expect_same(outputs[1], in.mean);
  expect_same(outputs[2], in.variance);
  EXPECT_EQ(outputs[5].shape(), Dims{});
  EXPECT_EQ(outputs[5].dtype(), DType::kFloat32);
}

TEST(FusedBatchNorm, InferenceNchwAndExplicitEpsilon) {
  const BatchNormInputs in = batch_norm_inputs({2, 3, 2, 2}, 3);  // N, C, H, W
  const auto outputs =
      run("FusedBatchNormV2", in.list(),
          {{"is_training", false}, {"epsilon", 0.001f}, {"data_format", std::string("NCHW")}});
  ASSERT_EQ(outputs.size(), 5u);
  std::vector<double> expected;
  for (int64_t i = 0; i < in.x.num_elements(); ++i) {
    const int64_t c = (i / 4) % 3;
    expected.push_back((double(in.x.data<float>()[i]) - in.mean.data<float>()[c]) /
                           std::sqrt(double(in.variance.data<float>()[c]) + 1e-3) *
                           in.scale.data<float>()[c] +
                       in.offset.data<float>()[c]);
  }
  expect_values(outputs[0], in.x.shape(), expected);
}

TEST(FusedBatchNorm, FiveDimensionalMatchesFourDimensional) {
  // NDHWC [1, 2, 3, 2, 3] normalises exactly like NHWC [1, 2, 6, 3]: only channels matter.
  const BatchNormInputs in = batch_norm_inputs({1, 2, 6, 3}, 3);
  BatchNormInputs in5 = in;
  in5.x = *in.x.reshaped({1, 2, 3, 2, 3});
  for (bool training : {false, true}) {
    const auto four = run("FusedBatchNormV3", in.list(), {{"is_training", training}});
    const auto five = run("FusedBatchNormV3", in5.list(),
                          {{"is_training", training}, {"data_format", std::string("NDHWC")}});
    ASSERT_EQ(five.size(), 6u);
    expect_same(*five[0].reshaped({1, 2, 6, 3}), four[0]);
    expect_same(five[2], four[2]);
  }
}

// Batch statistics per channel of an NHWC tensor, computed here from the definitions.
struct Moments {
  std::vector<double> mean, biased_variance;
};
Moments moments(const Tensor& x, int64_t channels) {
  Moments m{std::vector<double>(channels, 0), std::vector<double>(channels, 0)};
  const int64_t n = x.num_elements() / channels;
  for (int64_t i = 0; i < x.num_elements(); ++i) m.mean[i % channels] += x.data<float>()[i];
  for (double& v : m.mean) v /= double(n);
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const double d = x.data<float>()[i] - m.mean[i % channels];
    m.biased_variance[i % channels] += d * d;
  }
  for (double& v : m.biased_variance) v /= double(n);
  return m;
}

TEST(FusedBatchNorm, TrainingUsesBatchStatistics) {
  const int64_t channels = 2;
  BatchNormInputs in = batch_norm_inputs({2, 3, 3, channels}, channels);
  // Training takes empty mean/variance when exponential_avg_factor is 1 (Keras does this).
  in.mean = Tensor(DType::kFloat32, {0});
  in.variance = Tensor(DType::kFloat32, {0});
  // is_training is absent: TensorFlow's default is true.
  const auto outputs = run("FusedBatchNormV3", in.list(), {{"epsilon", 0.001f}});
  ASSERT_EQ(outputs.size(), 6u);
  const Moments m = moments(in.x, channels);
  const double n = 18;
  std::vector<double> y;
  for (int64_t i = 0; i < in.x.num_elements(); ++i) {
    const int64_t c = i % channels;
    y.push_back((in.x.data<float>()[i] - m.mean[c]) / std::sqrt(m.biased_variance[c] + 1e-3) *
                    in.scale.data<float>()[c] +
                in.offset.data<float>()[c]);
  }
  expect_values(outputs[0], in.x.shape(), y);
  expect_values(outputs[1], {channels}, m.mean);
  // batch_variance is Bessel-corrected; reserve_space_2 keeps the biased variance.
  expect_values(outputs[2], {channels},
                {m.biased_variance[0] * n / (n - 1), m.biased_variance[1] * n / (n - 1)});
  expect_values(outputs[3], {channels}, m.mean);
  expect_values(outputs[4], {channels}, m.biased_variance);
}

TEST(FusedBatchNorm, TrainingExponentialAverage) {
  const int64_t channels = 3;
  const BatchNormInputs in = batch_norm_inputs({1, 2, 2, channels}, channels);
  const auto outputs =
      run("FusedBatchNorm", in.list(), {{"is_training", true}, {"exponential_avg_factor", 0.25f}});
  ASSERT_EQ(outputs.size(), 5u);
  const Moments m = moments(in.x, channels);
  std::vector<double> running_mean, running_variance;
  for (int64_t c = 0; c < channels; ++c) {
    running_mean.push_back(0.75 * in.mean.data<float>()[c] + 0.25 * m.mean[c]);
    running_variance.push_back(0.75 * in.variance.data<float>()[c] +
                               0.25 * m.biased_variance[c] * 4.0 / 3.0);
  }
  expect_values(outputs[1], {channels}, running_mean);
  expect_values(outputs[2], {channels}, running_variance);
}

TEST(FusedBatchNorm, Errors) {
  const BatchNormInputs in = batch_norm_inputs({1, 2, 2, 3}, 3);
  expect_error("FusedBatchNormV3",
               {patterned({2, 2, 3}), in.scale, in.offset, in.mean, in.variance},
               {{"is_training", false}}, "4-D or 5-D");
  expect_error("FusedBatchNormV3", {in.x, f32({2}, {1, 1}), in.offset, in.mean, in.variance},
               {{"is_training", false}}, "scale must have one element per channel");
  expect_error("FusedBatchNormV3",
               {in.x, in.scale, in.offset, Tensor(DType::kFloat32, {0}), in.variance},
               {{"is_training", false}}, "mean must have one element per channel");
  expect_error("FusedBatchNormV3", in.list(),
               {{"is_training", false}, {"data_format", std::string("NCDHW")}}, "data_format");
}

// ---------------------------------------------------------------------------------------------
// BiasAdd

TEST(BiasAdd, NhwcAndNchw) {
  const Tensor value = f32({1, 2, 1, 3}, {1, 2, 3, 4, 5, 6});
  expect_values(run1("BiasAdd", {value, f32({3}, {10, 20, 30})}, {}), {1, 2, 1, 3},
                {11, 22, 33, 14, 25, 36});
  // NCHW: value [1, 2, 1, 3] has 2 channels of 3 pixels.
  expect_values(
      run1("BiasAdd", {value, f32({2}, {10, 20})}, {{"data_format", std::string("NCHW")}}),
      {1, 2, 1, 3}, {11, 12, 13, 24, 25, 26});
  expect_values(run1("BiasAddV1", {f32({2, 2}, {1, 2, 3, 4}), f32({2}, {1, -1})}, {}), {2, 2},
                {2, 1, 4, 3});
  expect_error("BiasAdd", {value, f32({2}, {1, 2})}, {}, "must match");
  expect_error("BiasAdd", {f32({3}, {1, 2, 3}), f32({3}, {1, 2, 3})}, {}, "at least 2-D");
}

// ---------------------------------------------------------------------------------------------
// Activations

struct ActivationCase {
  const char* op;
  AttrMap attrs;
  double (*reference)(double);
};

TEST(Activations, MatchFormulas) {
  const std::vector<float> xs = {-30.0f, -5.0f, -1.0f, -0.3f, 0.0f, 0.2f, 1.0f, 4.0f, 7.0f, 40.0f};
  const std::vector<ActivationCase> cases = {
      {"Relu", {}, [](double x) { return std::max(x, 0.0); }},
      {"Relu6", {}, [](double x) { return std::min(std::max(x, 0.0), 6.0); }},
      {"LeakyRelu", {}, [](double x) { return x > 0 ? x : 0.2 * x; }},  // default alpha 0.2
      {"LeakyRelu", {{"alpha", 0.01f}}, [](double x) { return x > 0 ? x : 0.01 * x; }},
      {"Elu", {}, [](double x) { return x < 0 ? std::exp(x) - 1 : x; }},
      {"Selu",
       {},
       [](double x) {
         return x < 0 ? 1.0507009873554805 * 1.6732632423543772 * (std::exp(x) - 1)
                      : 1.0507009873554805 * x;
       }},
      {"Sigmoid", {}, [](double x) { return 1 / (1 + std::exp(-x)); }},
      {"Tanh", {}, [](double x) { return std::tanh(x); }},
      {"Softplus", {}, [](double x) { return std::log(1 + std::exp(x)); }},
      {"Softsign", {}, [](double x) { return x / (1 + std::abs(x)); }},
  };
  for (const ActivationCase& c : cases) {
    SCOPED_TRACE(c.op);
    std::vector<double> expected;
    for (float x : xs) expected.push_back(c.reference(x));
    const Tensor out = run1(c.op, {f32({2, 5}, xs)}, c.attrs);
    for (size_t i = 0; i < xs.size(); ++i) {
      EXPECT_NEAR(out.data<float>()[i], expected[i], 1e-6 * std::max(1.0, std::abs(expected[i])))
          << "x = " << xs[i];
    }
  }
}

TEST(Activations, SoftplusExtremesDoNotOverflow) {
  const Tensor out = run1("Softplus", {f32({4}, {-200.0f, -20.0f, 20.0f, 200.0f})}, {});
  EXPECT_NEAR(out.data<float>()[0], 0.0, 1e-30);
  EXPECT_NEAR(out.data<float>()[1] / std::exp(-20.0), 1.0, 1e-5);
  EXPECT_NEAR(out.data<float>()[2], 20.0, 1e-5);
  EXPECT_EQ(out.data<float>()[3], 200.0f);
}

TEST(Activations, ReluOnIntegersAndFloat64) {
  expect_values(
      run1("Relu6", {Tensor::from_vector<int32_t>({3}, std::vector<int32_t>{-3, 4, 9})}, {}), {3},
      {0, 4, 6});
  const Tensor out =
      run1("Sigmoid", {Tensor::from_vector<double>({1}, std::vector<double>{0.5})}, {});
  EXPECT_EQ(out.dtype(), DType::kFloat64);
  EXPECT_NEAR(out.data<double>()[0], 1 / (1 + std::exp(-0.5)), 1e-15);
  expect_error("Tanh", {Tensor::from_vector<int32_t>({1}, std::vector<int32_t>{1})}, {},
               "unsupported dtype int32", StatusCode::kUnimplemented);
}

TEST(Softmax, RowsSumToOneAndMatchDefinition) {
  // Large logits check the max shift: exp(1000) overflows without it.
  const std::vector<float> logits = {1, 2, 3, 4, 1000, 1001, 1002, 1003, -1, 0, 0, -1};
  const Tensor out = run1("Softmax", {f32({3, 4}, logits)}, {});
  const Tensor log_out = run1("LogSoftmax", {f32({3, 4}, logits)}, {});
  for (int r = 0; r < 3; ++r) {
    double row_sum = 0, exp_sum = 0;
    const double shift = logits[r * 4 + 3] > 100 ? 1000 : 0;
    for (int i = 0; i < 4; ++i) exp_sum += std::exp(logits[r * 4 + i] - shift);
    for (int i = 0; i < 4; ++i) {
      const double expected = std::exp(logits[r * 4 + i] - shift) / exp_sum;
      EXPECT_NEAR(out.data<float>()[r * 4 + i], expected, 1e-6);
      EXPECT_NEAR(log_out.data<float>()[r * 4 + i], std::log(expected), 1e-5);
      row_sum += out.data<float>()[r * 4 + i];
    }
    EXPECT_NEAR(row_sum, 1.0, 1e-6);
  }
  expect_error("Softmax", {Tensor::scalar<float>(1)}, {}, "rank >= 1");
}

// ---------------------------------------------------------------------------------------------
// MatMul / BatchMatMul

TEST(MatMul, HandComputedWithTransposes) {
  // [[1,2,3],[4,5,6]] x [[1,0],[0,1],[1,1]] = [[4,5],[10,11]]
  const Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor b = f32({3, 2}, {1, 0, 0, 1, 1, 1});
  expect_values(run1("MatMul", {a, b}, {}), {2, 2}, {4, 5, 10, 11});
  const Tensor a_t = f32({3, 2}, {1, 4, 2, 5, 3, 6});
  const Tensor b_t = f32({2, 3}, {1, 0, 1, 0, 1, 1});
  expect_values(run1("MatMul", {a_t, b_t}, {{"transpose_a", true}, {"transpose_b", true}}), {2, 2},
                {4, 5, 10, 11});
  expect_values(run1("MatMul", {a, b_t}, {{"transpose_b", true}}), {2, 2}, {4, 5, 10, 11});
  expect_error("MatMul", {a, a}, {}, "incompatible");
  expect_error("MatMul", {f32({3}, {1, 2, 3}), b}, {}, "rank 2");
}

// out[batch] = x[batch] @ y[batch] with NumPy broadcasting of the batch dims, from the
// definition of tf.linalg.matmul.
Tensor naive_batch_matmul(const Tensor& x, const Tensor& y, bool adj_x, bool adj_y) {
  const int xr = x.rank(), yr = y.rank();
  const int64_t m = adj_x ? x.dim(xr - 1) : x.dim(xr - 2);
  const int64_t k = adj_x ? x.dim(xr - 2) : x.dim(xr - 1);
  const int64_t n = adj_y ? y.dim(yr - 2) : y.dim(yr - 1);
  const int rank = std::max(xr, yr);
  Dims xb(rank - 2, 1), yb(rank - 2, 1), ob(rank - 2);
  for (int i = 0; i < xr - 2; ++i) xb[rank - xr + i] = x.dim(i);
  for (int i = 0; i < yr - 2; ++i) yb[rank - yr + i] = y.dim(i);
  for (int i = 0; i < rank - 2; ++i) ob[i] = std::max(xb[i], yb[i]);
  Dims shape = ob;
  shape.push_back(m);
  shape.push_back(n);
  Tensor out(DType::kFloat32, shape);
  int64_t batches = 1;
  for (int64_t d : ob) batches *= d;
  for (int64_t bi = 0; bi < batches; ++bi) {
    // Unravel bi and map to each operand's batch index (size-1 dims read index 0).
    int64_t rem = bi, x_index = 0, y_index = 0, x_stride = 1, y_stride = 1;
    for (int d = rank - 3; d >= 0; --d) {
      const int64_t idx = rem % ob[d];
      rem /= ob[d];
      x_index += (xb[d] == 1 ? 0 : idx) * x_stride;
      y_index += (yb[d] == 1 ? 0 : idx) * y_stride;
      x_stride *= xb[d];
      y_stride *= yb[d];
    }
    const float* xm = x.data<float>() + x_index * m * k;
    const float* ym = y.data<float>() + y_index * k * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0;
        for (int64_t p = 0; p < k; ++p)
          sum += double(adj_x ? xm[p * m + i] : xm[i * k + p]) *
                 (adj_y ? ym[j * k + p] : ym[p * n + j]);
        out.mutable_data<float>()[(bi * m + i) * n + j] = static_cast<float>(sum);
      }
  }
  return out;
}

TEST(BatchMatMulV2, BroadcastsBatchDims) {
  struct Case {
    Dims x, y;
    bool adj_x, adj_y;
  };
  const std::vector<Case> cases = {
      {{2, 3, 4}, {2, 4, 5}, false, false},
      {{2, 1, 3, 4}, {3, 4, 2}, false, false},  // [2,1] x [3] -> [2,3]
      {{3, 4}, {2, 2, 4, 3}, false, false},     // rank 2 against a batch
      {{2, 4, 3}, {2, 5, 4}, true, true},
      {{1, 2, 3}, {4, 2, 3}, true, false},
  };
  int seed = 60;
  for (const Case& c : cases) {
    SCOPED_TRACE(dims_to_string(c.x) + " x " + dims_to_string(c.y));
    const Tensor x = patterned(c.x, seed++), y = patterned(c.y, seed++);
    expect_same(run1("BatchMatMulV2", {x, y}, {{"adj_x", c.adj_x}, {"adj_y", c.adj_y}}),
                naive_batch_matmul(x, y, c.adj_x, c.adj_y));
    expect_same(run1("BatchMatMulV3", {x, y},
                     {{"adj_x", c.adj_x}, {"adj_y", c.adj_y}, {"Tout", DType::kFloat32}}),
                naive_batch_matmul(x, y, c.adj_x, c.adj_y));
  }
}

TEST(BatchMatMul, RequiresEqualBatchDims) {
  const Tensor x = patterned({2, 3, 4}, 70), y = patterned({2, 4, 2}, 71);
  expect_same(run1("BatchMatMul", {x, y}, {}), naive_batch_matmul(x, y, false, false));
  expect_error("BatchMatMul", {patterned({2, 1, 3, 4}), patterned({3, 4, 2})}, {},
               "batch dimensions must match");
  expect_error("BatchMatMulV2", {patterned({2, 3, 4}), patterned({3, 4, 2})}, {},
               "cannot be broadcast");
  expect_error("BatchMatMulV2", {patterned({2, 3, 4}), patterned({2, 3, 2})}, {}, "incompatible");
  expect_error("BatchMatMulV2", {patterned({4}), patterned({4, 2})}, {}, "rank >= 2");
}

// ---------------------------------------------------------------------------------------------
// Einsum, checked against the definition: out[output labels] = sum over all other labels of
// the product of the inputs, with every label assignment enumerated. Size-1 dims broadcast.

Tensor brute_force_einsum(const std::string& inputs_spec, const std::string& output_spec,
                          const std::vector<Tensor>& inputs) {
  std::vector<std::string> subscripts;
  size_t start = 0;
  while (true) {
    const size_t comma = inputs_spec.find(',', start);
    subscripts.push_back(inputs_spec.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::map<char, int64_t> size;
  for (size_t i = 0; i < inputs.size(); ++i)
    for (size_t a = 0; a < subscripts[i].size(); ++a)
      size[subscripts[i][a]] = std::max(size[subscripts[i][a]], inputs[i].dim(static_cast<int>(a)));
  std::string labels;
  for (auto& [label, s] : size) labels += label;
  Dims out_shape;
  for (char c : output_spec) out_shape.push_back(size[c]);
  Tensor out(DType::kFloat32, out_shape);
  std::vector<double> sums(static_cast<size_t>(out.num_elements()), 0.0);
  std::map<char, int64_t> value;
  for (char c : labels) value[c] = 0;
  while (true) {
    double product = 1;
    for (size_t i = 0; i < inputs.size(); ++i) {
      int64_t offset = 0;
      for (size_t a = 0; a < subscripts[i].size(); ++a) {
        const int64_t dim = inputs[i].dim(static_cast<int>(a));
        offset = offset * dim + (dim == 1 ? 0 : value[subscripts[i][a]]);
      }
      product *= inputs[i].data<float>()[offset];
    }
    int64_t out_offset = 0;
    for (char c : output_spec) out_offset = out_offset * size[c] + value[c];
    sums[out_offset] += product;
    int l = static_cast<int>(labels.size()) - 1;
    for (; l >= 0; --l) {
      if (++value[labels[l]] < size[labels[l]]) break;
      value[labels[l]] = 0;
    }
    if (l < 0) break;
  }
  for (size_t i = 0; i < sums.size(); ++i)
    out.mutable_data<float>()[i] = static_cast<float>(sums[i]);
  return out;
}

struct EinsumCase {
  std::string equation;
  std::vector<Dims> shapes;
  // The equation with ellipses spelled out with letters, for the brute force (same as
  // `equation` when there is no ellipsis).
  std::string expanded;
};

TEST(Einsum, MatchesDefinition) {
  const std::vector<EinsumCase> cases = {
      {"abc,cd->abd", {{2, 3, 4}, {4, 5}}, ""},               // EinsumDense
      {"abcd,cde->abe", {{2, 3, 4, 2}, {4, 2, 3}}, ""},       // attention output
      {"aecd,abcd->acbe", {{2, 5, 3, 4}, {2, 6, 3, 4}}, ""},  // query . key
      {"acbe,aecd->abcd", {{2, 3, 6, 5}, {2, 5, 3, 4}}, ""},  // scores . value
      {"abc,cde->abde", {{2, 3, 4}, {4, 3, 2}}, ""},          // QKV projection
      {"ij->ji", {{3, 4}}, ""},
      {"ij->i", {{3, 4}}, ""},
      {"ii->i", {{3, 3}}, ""},  // diagonal
      {"ij,jk->ik", {{2, 3}, {3, 4}}, ""},
      {"bij,bjk->bik", {{2, 2, 3}, {2, 3, 4}}, ""},
      {"ij,ij->ij", {{2, 3}, {2, 3}}, ""},      // element-wise
      {"i,j->ij", {{3}, {4}}, ""},              // outer product
      {"ij,jk->", {{2, 3}, {3, 4}}, ""},        // full contraction
      {"abc,ad->bd", {{2, 3, 4}, {2, 5}}, ""},  // c reduced before
      {"...ij,...jk->...ik", {{2, 3, 4, 5}, {2, 3, 5, 2}}, "abij,abjk->abik"},
      {"...ij,...jk->...ik", {{2, 3, 4, 5}, {3, 5, 2}}, "abij,bjk->abik"},
      {"...ij,...jk->...ik", {{2, 1, 4, 5}, {3, 5, 2}}, "abij,bjk->abik"},  // 1 broadcasts
      {"...ij,jk->...ik", {{2, 3, 4}, {4, 2}}, "aij,jk->aik"},
      {"ij...,jk->ik...", {{2, 3, 4}, {3, 5}}, "ija,jk->ika"},
  };
  int seed = 80;
  for (const EinsumCase& c : cases) {
    SCOPED_TRACE(c.equation);
    std::vector<Tensor> inputs;
    for (const Dims& shape : c.shapes) inputs.push_back(patterned(shape, seed++));
    const std::string spelled = c.expanded.empty() ? c.equation : c.expanded;
    const size_t arrow = spelled.find("->");
    expect_same(run1("Einsum", inputs, {{"equation", c.equation}}),
                brute_force_einsum(spelled.substr(0, arrow), spelled.substr(arrow + 2), inputs),
                1e-5);
  }
}

TEST(Einsum, Errors) {
  const Tensor a = patterned({2, 3}), b = patterned({3, 4});
  expect_error("Einsum", {a, b}, {{"equation", std::string("ij,jk")}}, "exactly one '->'");
  expect_error("Einsum", {a, b}, {{"equation", std::string("ijk,jk->ik")}}, "does not fit");
  expect_error("Einsum", {a, a}, {{"equation", std::string("ij,jk->ik")}}, "label 'j' has sizes");
  expect_error("Einsum", {patterned({3})}, {{"equation", std::string("i->ii")}},
               "repeated output labels", StatusCode::kUnimplemented);
  expect_error("Einsum", {a}, {{"equation", std::string("ij->k")}}, "does not appear");
  expect_error("Einsum", {a}, {{"equation", std::string("ij,jk->ik")}}, "names 2 inputs");
  expect_error("Einsum", {patterned({2, 3, 4})}, {{"equation", std::string("...j->j")}},
               "no '...' in the output");
  expect_error("Einsum", {a}, {{"equation", std::string("i.j->ij")}}, "malformed ellipsis");
}

TEST(NnOps, OutputArgNamesFollowTheOpDefs) {
  const OpRegistry& registry = OpRegistry::global();
  const std::map<std::string, std::vector<std::string>> expected = {
      {"Conv2D", {"output"}},
      {"DepthwiseConv2dNative", {"output"}},
      {"MatMul", {"product"}},
      {"Relu", {"activations"}},
      {"Softmax", {"softmax"}},
      {"LogSoftmax", {"logsoftmax"}},
      {"Sigmoid", {"y"}},
      {"BiasAdd", {"output"}},
      {"MaxPool", {"output"}},
      {"Einsum", {"output"}},
      {"FusedBatchNormV3",
       {"y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2",
        "reserve_space_3"}},
  };
  for (const auto& [op, names] : expected) {
    const OpSpec* spec = registry.find(op);
    ASSERT_NE(spec, nullptr) << op;
    std::vector<std::string> actual;
    for (const OutputArg& arg : spec->outputs) actual.push_back(arg.name);
    EXPECT_EQ(actual, names) << op;
  }
}

}  // namespace
}  // namespace hubimg::ops::nn_ops_test
