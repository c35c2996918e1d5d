// The op entries' fast kernels (src/ops/fast/fast_train.cc) against their reference kernels,
// over strides, paddings, dilations, batches, odd sizes and channel counts.
#include "ops/fast/fast_train.h"

#include <gtest/gtest.h>

#include <cmath>
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
  KernelContext ctx("fast", "Conv2DBackpropInput", conv_attrs(c), args, 1);
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
    }
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
  for (const Dims& shape : {Dims{1, 1, 2, 3}, Dims{3, 5, 7, 8}, Dims{8, 4, 4, 32}, Dims{2, 9, 3, 1},
                            Dims{32, 7, 7, 16}}) {
    const int64_t c = shape[3];
    const Tensor x = random_tensor(shape, seed++, 2.0f, 5.0f);
    AttrMap attrs{{"epsilon", 1e-3f}, {"is_training", true}};
    // Batch statistics from the reference forward pass, as the training graph feeds them.
    const auto forward = run_reference("FusedBatchNormV3",
                                       {x, random_tensor({c}, seed++), random_tensor({c}, seed++),
                                        Tensor(DType::kFloat32, {0}), Tensor(DType::kFloat32, {0})},
                                       attrs);
    ASSERT_EQ(forward.size(), 6u);
    const Tensor dy = random_tensor(shape, seed++);
    const Tensor scale = random_tensor({c}, seed++, 0.5f, 1.5f);
    expect_same_as_reference("FusedBatchNormGradV3",
                             {dy, x, scale, forward[3], forward[4], forward[5]}, attrs,
                             "FusedBatchNormGradV3 " + dims_to_string(shape), 2e-4f);
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
