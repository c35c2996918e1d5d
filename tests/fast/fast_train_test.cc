// The op entries' fast kernels (src/ops/fast/fast_train.cc) against their reference kernels,
// over strides, paddings, dilations, batches, odd sizes and channel counts.
#include "ops/fast/fast_train.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "ops/fast_paths.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

using Ints = std::vector<int64_t>;

Tensor random_tensor(const Dims& shape, uint32_t seed, float low = -1.0f, float high = 1.0f) {
  Tensor t(DType::kFloat32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(low, high);
  float* values = t.mutable_data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) values[i] = dist(rng);
  return t;
}

std::vector<Tensor> run_fast(std::string_view op, const std::vector<Tensor>& inputs,
                             const AttrMap& attrs) {
  const OpSpec* spec = OpRegistry::global().find(op);
  EXPECT_TRUE(spec && spec->fast_kernel) << op;
  auto sizes = output_arg_sizes(*spec, attrs);
  EXPECT_TRUE(sizes.ok());
  size_t total = 0;
  for (size_t s : *sizes) total += s;
  KernelContext ctx("fast", op, attrs, inputs, total);
  Status status = spec->fast_kernel(ctx);
  EXPECT_TRUE(status.ok()) << op << ": " << status.to_string();
  return ctx.outputs();
}

std::vector<Tensor> run_reference(std::string_view op, const std::vector<Tensor>& inputs,
                                  const AttrMap& attrs) {
  ScopedFastPaths off(false);
  auto result = run_op(op, inputs, attrs, "reference");
  EXPECT_TRUE(result.ok()) << op << ": " << result.status().to_string();
  return result.ok() ? *result : std::vector<Tensor>{};
}

void expect_near(const Tensor& expected, const Tensor& actual, float tolerance,
                 const std::string& what) {
  ASSERT_TRUE(actual.valid()) << what;
  ASSERT_EQ(expected.dtype(), actual.dtype()) << what;
  ASSERT_EQ(expected.shape(), actual.shape()) << what;
  const float* e = expected.data<float>();
  const float* a = actual.data<float>();
  for (int64_t i = 0; i < expected.num_elements(); ++i) {
    const float limit = tolerance * std::max(1.0f, std::abs(e[i]));
    ASSERT_NEAR(e[i], a[i], limit) << what << " element " << i;
  }
}

void expect_same_as_reference(std::string_view op, const std::vector<Tensor>& inputs,
                              const AttrMap& attrs, const std::string& what,
                              float tolerance = 2e-5f, bool expect_fast_path = true) {
  const auto expected = run_reference(op, inputs, attrs);
  const int64_t runs_before = fast::training_fast_path_runs();
  const auto actual = run_fast(op, inputs, attrs);
  if (expect_fast_path) {
    EXPECT_EQ(fast::training_fast_path_runs(), runs_before + 1) << what << ": fell back";
  }
  ASSERT_EQ(expected.size(), actual.size()) << what;
  for (size_t i = 0; i < expected.size(); ++i) {
    expect_near(expected[i], actual[i], tolerance, what + " output " + std::to_string(i));
  }
}

struct ConvCase {
  int64_t batch, height, width, channels, kernel, out_or_multiplier, stride, dilation;
  std::string padding;
};

std::string describe(const ConvCase& c) {
  return "b" + std::to_string(c.batch) + " " + std::to_string(c.height) + "x" +
         std::to_string(c.width) + "x" + std::to_string(c.channels) + " k" +
         std::to_string(c.kernel) + " o/m" + std::to_string(c.out_or_multiplier) + " s" +
         std::to_string(c.stride) + " d" + std::to_string(c.dilation) + " " + c.padding;
}

std::vector<ConvCase> conv_cases() {
  std::vector<ConvCase> cases;
  uint32_t i = 0;
  for (int64_t batch : {1, 3, 8}) {
    for (int64_t channels : {1, 3, 8, 32}) {
      for (int64_t stride : {1, 2}) {
        for (const char* padding : {"SAME", "VALID", "EXPLICIT"}) {
          for (int64_t kernel : {1, 3}) {
            const int64_t dilation = (kernel == 3 && stride == 1 && (i++ % 2 == 0)) ? 2 : 1;
            const int64_t size = 5 + (i % 4) * 2;  // odd sizes 5..11
            cases.push_back({batch, size, size + 1, channels, kernel,
                             channels == 1 ? 4 : (i % 2 ? channels : 2), stride, dilation,
                             padding});
          }
        }
      }
    }
  }
  return cases;
}

AttrMap conv_attrs(const ConvCase& c) {
  AttrMap attrs{{"strides", Ints{1, c.stride, c.stride, 1}},
                {"dilations", Ints{1, c.dilation, c.dilation, 1}},
                {"padding", c.padding}};
  if (c.padding == "EXPLICIT") attrs.set("explicit_paddings", Ints{0, 0, 1, 2, 0, 1, 0, 0});
  return attrs;
}

// Runs only the fast path (no fallback) and returns output 0.
Tensor run_fast_path(std::string_view op, const std::vector<Tensor>& inputs, const AttrMap& attrs,
                     const std::string& what) {
  KernelContext ctx("fast", op, attrs, inputs, 1);
  Status status = fast::run_training_fast_path(op, ctx);
  EXPECT_TRUE(status.ok()) << what << ": " << status.to_string();
  return status.ok() ? ctx.outputs()[0] : Tensor();
}

double dot(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double sum = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    sum += static_cast<double>(a.data<float>()[i]) * b.data<float>()[i];
  }
  return sum;
}

Tensor shape_tensor(const Dims& dims, DType dtype) {
  Tensor t(dtype, {static_cast<int64_t>(dims.size())});
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dtype == DType::kInt32) {
      t.mutable_data<int32_t>()[i] = static_cast<int32_t>(dims[i]);
    } else {
      t.mutable_data<int64_t>()[i] = dims[i];
    }
  }
  return t;
}

// The backprop kernels are the adjoints of the (reference) forward convolution: for every dy,
// <conv(x, w), dy> == <x, backprop_input(dy)> == <w, backprop_filter(x, dy)>. Checked with the
// reference forward and a random dy, and against the reference backprop kernels when the op
// table has them.
void check_backprop(const std::string& forward, const ConvCase& c, uint32_t seed) {
  const std::string what = forward + " backprop " + describe(c);
  const Dims input_shape = {c.batch, c.height, c.width, c.channels};
  const Dims filter_shape = {c.kernel, c.kernel, c.channels, c.out_or_multiplier};
  const Tensor x = random_tensor(input_shape, seed);
  const Tensor w = random_tensor(filter_shape, seed + 1);
  const AttrMap attrs = conv_attrs(c);
  const auto y = run_reference(forward, {x, w}, attrs);
  ASSERT_EQ(y.size(), 1u) << what;
  const Tensor dy = random_tensor(y[0].shape(), seed + 2);
  const DType size_type = seed % 2 ? DType::kInt32 : DType::kInt64;
  const std::string input_op = forward + "BackpropInput";
  const std::string filter_op = forward + "BackpropFilter";
  const std::vector<Tensor> input_args = {shape_tensor(input_shape, size_type), w, dy};
  const std::vector<Tensor> filter_args = {x, shape_tensor(filter_shape, size_type), dy};
  const Tensor dx = run_fast_path(input_op, input_args, attrs, what);
  const Tensor dw = run_fast_path(filter_op, filter_args, attrs, what);
  ASSERT_TRUE(dx.valid() && dw.valid()) << what;
  ASSERT_EQ(dx.shape(), input_shape) << what;
  ASSERT_EQ(dw.shape(), filter_shape) << what;
  const double expected = dot(y[0], dy);
  const double scale = std::max(1.0, std::abs(expected)) * 1e-4;
  EXPECT_NEAR(dot(x, dx), expected, scale) << what << " (input)";
  EXPECT_NEAR(dot(w, dw), expected, scale) << what << " (filter)";
  // Elementwise against the reference backprop kernels where the op table has them.
  for (const auto& [op, args, result] :
       {std::tuple{input_op, input_args, dx}, std::tuple{filter_op, filter_args, dw}}) {
    const OpSpec* spec = OpRegistry::global().find(op);
    if (spec == nullptr) continue;  // no reference kernel in this op table yet
    expect_near(run_reference(op, args, attrs)[0], result, 1e-4f, what + " vs reference " + op);
  }
}

TEST(FastTrainKernels, Conv2DBackpropIsAdjointOfForward) {
  uint32_t seed = 2000;
  for (const ConvCase& c : conv_cases()) {
    check_backprop("Conv2D", c, seed);
    seed += 3;
  }
}

TEST(FastTrainKernels, DepthwiseBackpropIsAdjointOfForward) {
  uint32_t seed = 4000;
  for (ConvCase c : conv_cases()) {
    c.out_or_multiplier = c.out_or_multiplier % 3 + 1;
    check_backprop("DepthwiseConv2dNative", c, seed);
    seed += 3;
  }
}

TEST(FastTrainKernels, BackpropDeclinesMismatchedShapes) {
  // out_backprop of the wrong spatial size: the fast path refuses (the reference reports it).
  const ConvCase c{2, 7, 7, 3, 3, 4, 2, 1, "SAME"};
  const std::vector<Tensor> args = {shape_tensor({2, 7, 7, 3}, DType::kInt32),
                                    random_tensor({3, 3, 3, 4}, 1), random_tensor({2, 3, 4, 4}, 2)};
  // KernelContext keeps a reference to the attributes: they must outlive it (a temporary here
  // was a stack-use-after-scope under ASan).
  const AttrMap attrs = conv_attrs(c);
  KernelContext ctx("fast", "Conv2DBackpropInput", attrs, args, 1);
  EXPECT_EQ(fast::run_training_fast_path("Conv2DBackpropInput", ctx).code(),
            StatusCode::kUnimplemented);
}

TEST(FastTrainKernels, Conv2DMatchesReference) {
  uint32_t seed = 1;
  for (const ConvCase& c : conv_cases()) {
    const Tensor input = random_tensor({c.batch, c.height, c.width, c.channels}, seed++);
    const Tensor filter =
        random_tensor({c.kernel, c.kernel, c.channels, c.out_or_multiplier}, seed++);
    expect_same_as_reference("Conv2D", {input, filter}, conv_attrs(c), "Conv2D " + describe(c));
  }
}

TEST(FastTrainKernels, DepthwiseConv2dMatchesReference) {
  uint32_t seed = 100;
  for (ConvCase c : conv_cases()) {
    c.out_or_multiplier = c.out_or_multiplier % 3 + 1;  // multipliers 1..3
    const Tensor input = random_tensor({c.batch, c.height, c.width, c.channels}, seed++);
    const Tensor filter =
        random_tensor({c.kernel, c.kernel, c.channels, c.out_or_multiplier}, seed++);
    expect_same_as_reference("DepthwiseConv2dNative", {input, filter}, conv_attrs(c),
                             "Depthwise " + describe(c));
  }
}

TEST(FastTrainKernels, ConvFallsBackToReference) {
  // Grouped Conv2D, NCHW and float64 are not fast-path cases; the fast kernel must still
  // compute (or reject) exactly like the reference.
  const Tensor input = random_tensor({2, 6, 6, 8}, 7);
  const Tensor grouped_filter = random_tensor({3, 3, 4, 6}, 8);
  AttrMap attrs{{"strides", Ints{1, 1, 1, 1}}, {"padding", std::string("SAME")}};
  expect_same_as_reference("Conv2D", {input, grouped_filter}, attrs, "grouped", 2e-5f,
                           /*expect_fast_path=*/false);

  AttrMap nchw = attrs;
  nchw.set("data_format", std::string("NCHW"));
  const OpSpec* spec = OpRegistry::global().find("Conv2D");
  std::vector<Tensor> inputs = {input, random_tensor({3, 3, 8, 4}, 9)};
  KernelContext ctx("fast", "Conv2D", nchw, inputs, 1);
  EXPECT_FALSE(spec->fast_kernel(ctx).ok());  // the reference rejects NCHW

  Tensor input64(DType::kFloat64, {1, 4, 4, 2});
  Tensor filter64(DType::kFloat64, {2, 2, 2, 3});
  for (int64_t i = 0; i < input64.num_elements(); ++i) input64.mutable_data<double>()[i] = i;
  for (int64_t i = 0; i < filter64.num_elements(); ++i) filter64.mutable_data<double>()[i] = -i;
  const auto expected = run_reference("Conv2D", {input64, filter64}, attrs);
  const auto actual = run_fast("Conv2D", {input64, filter64}, attrs);
  ASSERT_EQ(actual.size(), 1u);
  ASSERT_EQ(actual[0].dtype(), DType::kFloat64);
  for (int64_t i = 0; i < expected[0].num_elements(); ++i) {
    EXPECT_EQ(expected[0].data<double>()[i], actual[0].data<double>()[i]);
  }
}

TEST(FastTrainKernels, MatMulMatchesReference) {
  uint32_t seed = 500;
  for (int64_t m : {1, 3, 32}) {
    for (int64_t k : {1, 7, 64}) {
      for (int64_t n : {1, 5, 40}) {
        for (bool ta : {false, true}) {
          for (bool tb : {false, true}) {
            const Tensor a = random_tensor(ta ? Dims{k, m} : Dims{m, k}, seed++);
            const Tensor b = random_tensor(tb ? Dims{n, k} : Dims{k, n}, seed++);
            AttrMap attrs{{"transpose_a", ta}, {"transpose_b", tb}};
            expect_same_as_reference("MatMul", {a, b}, attrs,
                                     "MatMul m" + std::to_string(m) + " k" + std::to_string(k) +
                                         " n" + std::to_string(n) + " ta" + std::to_string(ta) +
                                         " tb" + std::to_string(tb));
          }
        }
      }
    }
  }
}

// BatchMatMul* and Einsum: the reference kernel's plan with oneDNN's GEMM for each product.
TEST(FastTrainKernels, BatchedMatMulsAndEinsumMatchReference) {
  uint32_t seed = 700;
  auto check = [&](std::string_view op, const std::vector<Dims>& shapes, const AttrMap& attrs,
                   const std::string& what) {
    std::vector<Tensor> inputs;
    for (const Dims& shape : shapes) inputs.push_back(random_tensor(shape, seed++));
    const int64_t runs_before = fast::training_fast_path_runs();
    expect_same_as_reference(op, inputs, attrs, what, 2e-5f, /*expect_fast_path=*/false);
    EXPECT_GT(fast::training_fast_path_runs(), runs_before) << what << ": no GEMM ran";
  };
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const AttrMap attrs{{"adj_x", ta}, {"adj_y", tb}};
      const std::string t = " adj " + std::to_string(ta) + std::to_string(tb);
      const Dims x = ta ? Dims{2, 3, 33, 17} : Dims{2, 3, 17, 33};
      const Dims y = tb ? Dims{2, 3, 9, 33} : Dims{2, 3, 33, 9};
      check("BatchMatMul", {x, y}, attrs, "BatchMatMul" + t);
      const Dims xb = ta ? Dims{3, 1, 33, 17} : Dims{3, 1, 17, 33};
      const Dims yb = tb ? Dims{2, 9, 33} : Dims{2, 33, 9};
      check("BatchMatMulV2", {xb, yb}, attrs, "BatchMatMulV2 broadcast" + t);
      check("BatchMatMulV3", {xb, yb}, attrs, "BatchMatMulV3 broadcast" + t);
    }
  }
  const std::vector<std::pair<const char*, std::vector<Dims>>> equations = {
      {"abc,cde->abde", {{2, 13, 48}, {48, 4, 16}}},          // query/key/value projection
      {"aecd,abcd->acbe", {{2, 13, 4, 16}, {2, 11, 4, 16}}},  // query . key
      {"acbe,aecd->abcd", {{2, 4, 11, 13}, {2, 13, 4, 16}}},  // scores . value
      {"abcd,cde->abe", {{2, 11, 4, 16}, {4, 16, 48}}},       // output projection
      {"...ij,...jk->...ik", {{2, 1, 17, 33}, {3, 33, 9}}},   // broadcasting ellipsis
      {"abc,ad->bd", {{4, 5, 6}, {4, 7}}},                    // c summed away first
      {"ij,jk->", {{5, 6}, {6, 7}}},
  };
  for (const auto& [equation, shapes] : equations) {
    check("Einsum", shapes,
          {{"equation", std::string(equation)}, {"N", static_cast<int64_t>(shapes.size())}},
          std::string("Einsum ") + equation);
  }
}

TEST(FastTrainKernels, FusedBatchNormTrainingMatchesReference) {
  uint32_t seed = 900;
  for (const Dims& shape : {Dims{1, 1, 1, 3}, Dims{3, 5, 7, 8}, Dims{8, 4, 4, 32}, Dims{2, 9, 3, 1},
                            Dims{32, 7, 7, 16}}) {
    for (float factor : {1.0f, 0.01f, 0.5f}) {
      const int64_t c = shape[3];
      // An offset mean so the variance is computed around something other than zero.
      const Tensor x = random_tensor(shape, seed++, 2.0f, 5.0f);
      const Tensor scale = random_tensor({c}, seed++, 0.5f, 1.5f);
      const Tensor offset = random_tensor({c}, seed++);
      const Tensor mean = random_tensor({c}, seed++);
      const Tensor variance = random_tensor({c}, seed++, 0.1f, 2.0f);
      AttrMap attrs{{"epsilon", 1e-3f},
                    {"is_training", true},
                    {"exponential_avg_factor", factor},
                    {"data_format", std::string("NHWC")}};
      expect_same_as_reference(
          "FusedBatchNormV3", {x, scale, offset, mean, variance}, attrs,
          "FusedBatchNormV3 " + dims_to_string(shape) + " factor " + std::to_string(factor), 1e-4f);
      // The same tensor read as NCHW: channels are dim 1.
      const int64_t nchw_c = shape[1];
      attrs.set("data_format", std::string("NCHW"));
      expect_same_as_reference(
          "FusedBatchNormV3",
          {x, random_tensor({nchw_c}, seed++, 0.5f, 1.5f), random_tensor({nchw_c}, seed++),
           random_tensor({nchw_c}, seed++), random_tensor({nchw_c}, seed++, 0.1f, 2.0f)},
          attrs,
          "FusedBatchNormV3 NCHW " + dims_to_string(shape) + " factor " + std::to_string(factor),
          1e-4f);
    }
  }
  // Keras 2's LayerNormalization: fused_batch_norm(x reshaped to [1, rows, features, 1], NCHW,
  // ones and zeros as scale and offset, no running statistics).
  for (const Dims& shape : {Dims{1, 197, 768, 1}, Dims{1, 6, 5, 1}}) {
    const Tensor x = random_tensor(shape, seed++, -3.0f, 4.0f);
    Tensor ones(DType::kFloat32, {shape[1]});
    for (int64_t i = 0; i < shape[1]; ++i) ones.mutable_data<float>()[i] = 1.0f;
    expect_same_as_reference(
        "FusedBatchNormV3",
        {x, ones, Tensor(DType::kFloat32, {shape[1]}), Tensor(DType::kFloat32, {0}),
         Tensor(DType::kFloat32, {0})},
        {{"epsilon", 1e-3f}, {"is_training", true}, {"data_format", std::string("NCHW")}},
        "LayerNormalization " + dims_to_string(shape), 1e-4f);
  }
}

TEST(FastTrainKernels, FusedBatchNormEmptyStatisticsInputs) {
  // With exponential_avg_factor 1 TensorFlow passes empty running statistics.
  const Tensor x = random_tensor({4, 3, 3, 5}, 3);
  const Tensor scale = random_tensor({5}, 4);
  const Tensor offset = random_tensor({5}, 5);
  const Tensor empty(DType::kFloat32, {0});
  AttrMap attrs{{"epsilon", 1e-3f}, {"is_training", true}};
  expect_same_as_reference("FusedBatchNormV3", {x, scale, offset, empty, empty}, attrs, "empty",
                           1e-4f);
}

}  // namespace
}  // namespace hubimg::ops

namespace hubimg::ops {
namespace {

TEST(FastTrainKernels, FusedBatchNormGradTrainingMatchesReference) {
  uint32_t seed = 7000;
  // NHWC shapes, then NCHW ones (the last: Keras 2's LayerNormalization form).
  const std::vector<std::pair<Dims, const char*>> cases = {
      {{1, 1, 2, 3}, "NHWC"},  {{3, 5, 7, 8}, "NHWC"},    {{8, 4, 4, 32}, "NHWC"},
      {{2, 9, 3, 1}, "NHWC"},  {{32, 7, 7, 16}, "NHWC"},  {{3, 8, 5, 7}, "NCHW"},
      {{2, 16, 3, 3}, "NCHW"}, {{1, 197, 768, 1}, "NCHW"}};
  for (const auto& [shape, format] : cases) {
    const int64_t c = std::string_view(format) == "NHWC" ? shape[3] : shape[1];
    const Tensor x = random_tensor(shape, seed++, 2.0f, 5.0f);
    AttrMap attrs{{"epsilon", 1e-3f}, {"is_training", true}, {"data_format", std::string(format)}};
    // Batch statistics from the reference forward pass, as the training graph feeds them.
    const auto forward = run_reference("FusedBatchNormV3",
                                       {x, random_tensor({c}, seed++), random_tensor({c}, seed++),
                                        Tensor(DType::kFloat32, {0}), Tensor(DType::kFloat32, {0})},
                                       attrs);
    ASSERT_EQ(forward.size(), 6u);
    const Tensor dy = random_tensor(shape, seed++);
    const Tensor scale = random_tensor({c}, seed++, 0.5f, 1.5f);
    expect_same_as_reference(
        "FusedBatchNormGradV3", {dy, x, scale, forward[3], forward[4], forward[5]}, attrs,
        "FusedBatchNormGradV3 " + std::string(format) + " " + dims_to_string(shape), 2e-4f);
  }
}

struct PoolCase {
  int64_t batch, height, width, channels, window, stride;
  std::string padding;
};

std::vector<PoolCase> pool_cases() {
  std::vector<PoolCase> cases;
  int64_t i = 0;
  for (int64_t batch : {1, 3, 8}) {
    for (int64_t channels : {1, 3, 8, 32}) {
      for (int64_t window : {2, 3}) {
        for (int64_t stride : {1, 2}) {
          for (const char* padding : {"SAME", "VALID"}) {
            const int64_t size = 4 + (i++ % 4) * 2 + 1;  // odd sizes 5..11
            cases.push_back({batch, size, size + 2, channels, window, stride, padding});
          }
        }
      }
    }
  }
  return cases;
}

AttrMap pool_attrs(const PoolCase& c) {
  return AttrMap{{"ksize", Ints{1, c.window, c.window, 1}},
                 {"strides", Ints{1, c.stride, c.stride, 1}},
                 {"padding", c.padding}};
}

std::string describe(const PoolCase& c) {
  return "b" + std::to_string(c.batch) + " " + std::to_string(c.height) + "x" +
         std::to_string(c.width) + "x" + std::to_string(c.channels) + " k" +
         std::to_string(c.window) + " s" + std::to_string(c.stride) + " " + c.padding;
}

// Values from a small set, so windows hold ties; `with_nan` adds some NaNs.
Tensor tied_tensor(const Dims& shape, uint32_t seed, bool with_nan) {
  Tensor t(DType::kFloat32, shape);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(0, 3);
  std::uniform_int_distribution<int> rare(0, 40);
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    t.mutable_data<float>()[i] = with_nan && rare(rng) == 0 ? std::nanf("") : dist(rng);
  }
  return t;
}

TEST(FastTrainKernels, MaxPoolGradMatchesReferenceWithTies) {
  uint32_t seed = 8000;
  for (const PoolCase& c : pool_cases()) {
    for (bool with_nan : {false, true}) {
      const AttrMap attrs = pool_attrs(c);
      const Tensor x = tied_tensor({c.batch, c.height, c.width, c.channels}, seed++, with_nan);
      const auto y = run_reference("MaxPool", {x}, attrs);
      ASSERT_EQ(y.size(), 1u);
      const Tensor dy = random_tensor(y[0].shape(), seed++);
      expect_same_as_reference("MaxPoolGrad", {x, y[0], dy}, attrs,
                               "MaxPoolGrad " + describe(c) + (with_nan ? " nan" : ""), 1e-5f);
    }
  }
  // Explicit padding (MaxPoolGrad allows it).
  AttrMap attrs{{"ksize", Ints{1, 3, 3, 1}},
                {"strides", Ints{1, 2, 2, 1}},
                {"padding", std::string("EXPLICIT")},
                {"explicit_paddings", Ints{0, 0, 1, 2, 2, 0, 0, 0}}};
  const Tensor x = tied_tensor({2, 7, 6, 5}, 1, false);
  const auto y = run_reference("MaxPool", {x}, attrs);
  if (y.size() == 1) {  // MaxPool's reference may not take EXPLICIT: then build grad's shape
    expect_same_as_reference("MaxPoolGrad", {x, y[0], random_tensor(y[0].shape(), 2)}, attrs,
                             "MaxPoolGrad explicit", 1e-5f);
  }
}

TEST(FastTrainKernels, AvgPoolGradMatchesReference) {
  uint32_t seed = 9000;
  for (const PoolCase& c : pool_cases()) {
    const AttrMap attrs = pool_attrs(c);
    const Dims input = {c.batch, c.height, c.width, c.channels};
    const auto y = run_reference("AvgPool", {random_tensor(input, seed++)}, attrs);
    ASSERT_EQ(y.size(), 1u);
    const Tensor dy = random_tensor(y[0].shape(), seed++);
    expect_same_as_reference("AvgPoolGrad", {shape_tensor(input, DType::kInt32), dy}, attrs,
                             "AvgPoolGrad " + describe(c), 1e-5f);
  }
}

TEST(FastTrainKernels, BiasAddGradAndReluGradsMatchReference) {
  uint32_t seed = 9500;
  for (const Dims& shape :
       {Dims{1, 1}, Dims{7, 3}, Dims{3, 5, 7, 8}, Dims{32, 14, 14, 64}, Dims{2, 3, 3, 1000}}) {
    expect_same_as_reference("BiasAddGrad", {random_tensor(shape, seed++)}, AttrMap{},
                             "BiasAddGrad " + dims_to_string(shape), 1e-4f);
    Tensor features = random_tensor(shape, seed++, -2.0f, 8.0f);
    // Boundary values: exactly 0 and 6, infinities and NaN.
    const float specials[] = {0.0f, 6.0f, INFINITY, -INFINITY, std::nanf("")};
    for (int64_t i = 0; i < std::min<int64_t>(5, features.num_elements()); ++i) {
      features.mutable_data<float>()[i * 3 % features.num_elements()] = specials[i];
    }
    const Tensor gradients = random_tensor(shape, seed++);
    for (const char* op : {"ReluGrad", "Relu6Grad"}) {
      expect_same_as_reference(op, {gradients, features}, AttrMap{},
                               std::string(op) + " " + dims_to_string(shape), 0.0f);
    }
  }
}

}  // namespace
}  // namespace hubimg::ops

namespace hubimg::ops {
namespace {

// Rectangular kernels, different strides and dilations per axis, and explicit paddings that
// differ per side: forward against the reference, backprops against the adjoint identity and
// the reference backprop kernels.
TEST(FastTrainKernels, AsymmetricWindowsMatchReference) {
  struct Case {
    Dims input, filter;
    Ints strides, dilations;
    std::string padding;
    Ints explicit_paddings;
  };
  const std::vector<Case> cases = {
      {{2, 9, 7, 3}, {3, 1, 3, 5}, {1, 2, 1, 1}, {1, 1, 1, 1}, "SAME", {}},
      {{3, 8, 11, 4}, {1, 3, 4, 2}, {1, 1, 2, 1}, {1, 1, 1, 1}, "VALID", {}},
      {{1, 10, 9, 2}, {3, 2, 2, 3}, {1, 1, 1, 1}, {1, 2, 1, 1}, "SAME", {}},
      {{2, 7, 12, 5}, {2, 3, 5, 4}, {1, 1, 1, 1}, {1, 1, 3, 1}, "VALID", {}},
      {{3, 6, 5, 3},
       {3, 3, 3, 2},
       {1, 2, 3, 1},
       {1, 1, 1, 1},
       "EXPLICIT",
       {0, 0, 2, 0, 1, 3, 0, 0}},
      {{1, 13, 6, 8}, {5, 3, 8, 1}, {1, 3, 2, 1}, {1, 1, 1, 1}, "SAME", {}},
  };
  uint32_t seed = 11000;
  for (const Case& c : cases) {
    AttrMap attrs{{"strides", c.strides}, {"dilations", c.dilations}, {"padding", c.padding}};
    if (!c.explicit_paddings.empty()) attrs.set("explicit_paddings", c.explicit_paddings);
    for (const std::string op : {"Conv2D", "DepthwiseConv2dNative"}) {
      const std::string what = op + " " + dims_to_string(c.input) + " filter " +
                               dims_to_string(c.filter) + " " + c.padding;
      const Tensor x = random_tensor(c.input, seed++);
      const Tensor w = random_tensor(c.filter, seed++);
      expect_same_as_reference(op, {x, w}, attrs, what);
      const auto y = run_reference(op, {x, w}, attrs);
      ASSERT_EQ(y.size(), 1u) << what;
      const Tensor dy = random_tensor(y[0].shape(), seed++);
      const std::vector<Tensor> input_args = {shape_tensor(c.input, DType::kInt32), w, dy};
      const std::vector<Tensor> filter_args = {x, shape_tensor(c.filter, DType::kInt64), dy};
      expect_same_as_reference(op + "BackpropInput", input_args, attrs, what + " dx", 1e-4f);
      expect_same_as_reference(op + "BackpropFilter", filter_args, attrs, what + " dw", 1e-4f);
      const double expected = dot(y[0], dy);
      const double scale = std::max(1.0, std::abs(expected)) * 1e-4;
      const Tensor dx = run_fast(op + "BackpropInput", input_args, attrs)[0];
      const Tensor dw = run_fast(op + "BackpropFilter", filter_args, attrs)[0];
      EXPECT_NEAR(dot(x, dx), expected, scale) << what << " adjoint (input)";
      EXPECT_NEAR(dot(w, dw), expected, scale) << what << " adjoint (filter)";
    }
  }
}

// NCHW and float64 are not fast-path cases for the backward ops (float64 not for batch norm): the
// entry's fast kernel falls back to the reference and agrees with it (result or error).
TEST(FastTrainKernels, BackwardOpsFallBackOnNchwAndFloat64) {
  auto agree = [](std::string_view op, const std::vector<Tensor>& inputs, const AttrMap& attrs,
                  const std::string& what) {
    const OpSpec* spec = OpRegistry::global().find(op);
    ASSERT_TRUE(spec && spec->fast_kernel) << op;
    auto sizes = output_arg_sizes(*spec, attrs);
    ASSERT_TRUE(sizes.ok());
    size_t total = 0;
    for (size_t s : *sizes) total += s;
    Status reference_status, fast_status;
    std::vector<Tensor> reference_out, fast_out;
    {
      ScopedFastPaths off(false);
      KernelContext ctx("ref", op, attrs, inputs, total);
      reference_status = spec->kernel(ctx);
      reference_out = ctx.outputs();
    }
    const int64_t runs_before = fast::training_fast_path_runs();
    KernelContext ctx("fast", op, attrs, inputs, total);
    fast_status = spec->fast_kernel(ctx);
    fast_out = ctx.outputs();
    EXPECT_EQ(fast::training_fast_path_runs(), runs_before) << what << ": took the fast path";
    ASSERT_EQ(reference_status.ok(), fast_status.ok()) << what << ": " << fast_status.to_string();
    if (!reference_status.ok()) {
      EXPECT_EQ(reference_status.code(), fast_status.code()) << what;
      return;
    }
    ASSERT_EQ(reference_out.size(), fast_out.size()) << what;
    for (size_t i = 0; i < reference_out.size(); ++i) {
      if (!reference_out[i].valid()) continue;
      ASSERT_EQ(reference_out[i].shape(), fast_out[i].shape()) << what;
      ASSERT_EQ(reference_out[i].byte_size(), fast_out[i].byte_size()) << what;
      EXPECT_EQ(0, std::memcmp(reference_out[i].raw_data(), fast_out[i].raw_data(),
                               reference_out[i].byte_size()))
          << what << " output " << i;
    }
  };
  AttrMap nchw{{"strides", Ints{1, 1, 1, 1}},
               {"padding", std::string("SAME")},
               {"data_format", std::string("NCHW")}};
  const Tensor x = random_tensor({2, 4, 6, 6}, 1);  // NCHW: 4 channels
  const Tensor w = random_tensor({3, 3, 4, 2}, 2);
  const Tensor dy = random_tensor({2, 2, 6, 6}, 3);
  agree("Conv2DBackpropInput", {shape_tensor({2, 4, 6, 6}, DType::kInt32), w, dy}, nchw,
        "Conv2DBackpropInput NCHW");
  agree("Conv2DBackpropFilter", {x, shape_tensor({3, 3, 4, 2}, DType::kInt32), dy}, nchw,
        "Conv2DBackpropFilter NCHW");
  AttrMap bias_nchw{{"data_format", std::string("NCHW")}};
  agree("BiasAddGrad", {x}, bias_nchw, "BiasAddGrad NCHW");

  Tensor g64(DType::kFloat64, {3, 4});
  Tensor f64(DType::kFloat64, {3, 4});
  for (int64_t i = 0; i < 12; ++i) {
    g64.mutable_data<double>()[i] = 0.5 * i - 2;
    f64.mutable_data<double>()[i] = i % 8 - 1.0;
  }
  agree("ReluGrad", {g64, f64}, AttrMap{}, "ReluGrad float64");
  agree("Relu6Grad", {g64, f64}, AttrMap{}, "Relu6Grad float64");
  agree("BiasAddGrad", {g64}, AttrMap{}, "BiasAddGrad float64");
}

// Bitwise copy, to check a kernel left its inputs alone.
Tensor deep_copy(const Tensor& t) {
  Tensor copy(t.dtype(), t.shape());
  if (t.byte_size() > 0) std::memcpy(copy.raw_mutable_data(), t.raw_data(), t.byte_size());
  return copy;
}

void expect_bitwise_equal(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  ASSERT_EQ(a.byte_size(), b.byte_size()) << what;
  EXPECT_EQ(0, std::memcmp(a.raw_data(), b.raw_data(), a.byte_size())) << what;
}

// A kernel may write into an input's buffer only when that input is the sole owner of it (the
// executor's last consumer). Here the test keeps a second reference to every input, so every
// fast kernel must leave all of them untouched; ReluGrad / Relu6Grad then get sole-owned
// gradients (which they may overwrite) and must still compute the reference result, also when
// both inputs are the same buffer.
TEST(FastTrainKernels, FastKernelsDoNotWriteIntoSharedInputs) {
  const Dims x_shape = {3, 9, 7, 6};
  const Tensor x = random_tensor(x_shape, 1, -1.0f, 7.0f);
  const Tensor w = random_tensor({3, 3, 6, 4}, 2);
  const Tensor dw_filter = random_tensor({3, 3, 6, 2}, 3);
  const AttrMap conv{{"strides", Ints{1, 2, 2, 1}}, {"padding", std::string("SAME")}};
  const Tensor dy_conv = random_tensor({3, 5, 4, 4}, 4);
  const Tensor dy_depthwise = random_tensor({3, 5, 4, 12}, 5);
  const Tensor g = random_tensor(x_shape, 6);
  const AttrMap bn{{"epsilon", 1e-3f}, {"is_training", true}};
  const auto forward = run_reference("FusedBatchNormV3",
                                     {x, random_tensor({6}, 7), random_tensor({6}, 8),
                                      Tensor(DType::kFloat32, {0}), Tensor(DType::kFloat32, {0})},
                                     bn);
  ASSERT_EQ(forward.size(), 6u);
  const AttrMap pool{
      {"ksize", Ints{1, 3, 3, 1}}, {"strides", Ints{1, 2, 2, 1}}, {"padding", std::string("SAME")}};
  const auto pooled = run_reference("MaxPool", {x}, pool);
  ASSERT_EQ(pooled.size(), 1u);
  const Tensor dpool = random_tensor(pooled[0].shape(), 9);
  struct Call {
    std::string op;
    std::vector<Tensor> inputs;
    AttrMap attrs;
  };
  const std::vector<Call> calls = {
      {"Conv2D", {x, w}, conv},
      {"DepthwiseConv2dNative", {x, dw_filter}, conv},
      {"Conv2DBackpropInput", {shape_tensor(x_shape, DType::kInt32), w, dy_conv}, conv},
      {"Conv2DBackpropFilter", {x, shape_tensor({3, 3, 6, 4}, DType::kInt32), dy_conv}, conv},
      {"DepthwiseConv2dNativeBackpropInput",
       {shape_tensor(x_shape, DType::kInt32), dw_filter, dy_depthwise},
       conv},
      {"DepthwiseConv2dNativeBackpropFilter",
       {x, shape_tensor({3, 3, 6, 2}, DType::kInt32), dy_depthwise},
       conv},
      {"MatMul", {random_tensor({5, 7}, 10), random_tensor({7, 3}, 11)}, AttrMap{}},
      {"FusedBatchNormV3",
       {x, random_tensor({6}, 12), random_tensor({6}, 13), random_tensor({6}, 14),
        random_tensor({6}, 15, 0.5f, 1.0f)},
       AttrMap{{"epsilon", 1e-3f}, {"is_training", true}, {"exponential_avg_factor", 0.1f}}},
      {"FusedBatchNormGradV3",
       {g, x, random_tensor({6}, 16), forward[3], forward[4], forward[5]},
       bn},
      {"MaxPoolGrad", {x, pooled[0], dpool}, pool},
      {"AvgPoolGrad", {shape_tensor(x_shape, DType::kInt32), dpool}, pool},
      {"BiasAddGrad", {g}, AttrMap{}},
      {"ReluGrad", {g, x}, AttrMap{}},
      {"Relu6Grad", {g, x}, AttrMap{}},
  };
  for (const Call& call : calls) {
    std::vector<Tensor> before;
    for (const Tensor& t : call.inputs) before.push_back(deep_copy(t));
    const int64_t runs_before = fast::training_fast_path_runs();
    run_fast(call.op, call.inputs, call.attrs);  // call.inputs keeps a reference to each input
    EXPECT_EQ(fast::training_fast_path_runs(), runs_before + 1) << call.op << ": fell back";
    for (size_t i = 0; i < before.size(); ++i) {
      expect_bitwise_equal(before[i], call.inputs[i],
                           call.op + " input " + std::to_string(i) + " was written");
    }
  }

  for (const char* op : {"ReluGrad", "Relu6Grad"}) {
    const auto expected = run_reference(op, {g, x}, AttrMap{});
    ASSERT_EQ(expected.size(), 1u);
    // Sole-owned gradients: the kernel may reuse their buffer for the result.
    std::vector<Tensor> sole = {deep_copy(g), x};
    const void* g_buffer = sole[0].raw_data();
    const auto actual = run_fast(op, sole, AttrMap{});
    ASSERT_EQ(actual.size(), 1u);
    expect_bitwise_equal(expected[0], actual[0], std::string(op) + " in place");
    EXPECT_EQ(actual[0].raw_data(), g_buffer) << op << ": sole-owned gradients not reused";
    // One buffer as both inputs (features == gradients): never written, since it has two holders.
    const Tensor both = deep_copy(x);
    std::vector<Tensor> same = {both, both};
    const auto expected_same = run_reference(op, {x, x}, AttrMap{});
    const auto actual_same = run_fast(op, same, AttrMap{});
    expect_bitwise_equal(expected_same[0], actual_same[0], std::string(op) + " same buffer");
    expect_bitwise_equal(x, both, std::string(op) + " same buffer written");
  }
}

// ReluGrad / Relu6Grad over sizes around the loop's block (16384) and the vector width, with
// the block split over threads: the branch-free loop must cover every element exactly once.
TEST(FastTrainKernels, ReluGradsCoverEveryElementAtBlockEdges) {
  uint32_t seed = 12000;
  for (int64_t size : {1, 7, 15, 16, 17, 16383, 16384, 16385, 3 * 16384 + 5, 200003}) {
    const Tensor g = random_tensor({size}, seed++);
    const Tensor x = random_tensor({size}, seed++, -3.0f, 9.0f);
    for (const char* op : {"ReluGrad", "Relu6Grad"}) {
      expect_same_as_reference(op, {g, x}, AttrMap{}, std::string(op) + " " + std::to_string(size),
                               0.0f);
    }
  }
}

}  // namespace
}  // namespace hubimg::ops
