// The op entries' fast kernels (src/ops/fast/fast_train.cc) against their reference kernels,
// over strides, paddings, dilations, batches, odd sizes and channel counts.
#include "ops/fast/fast_train.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ops/fast_paths.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

using graph::AttrMap;
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
