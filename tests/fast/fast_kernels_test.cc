// The fast kernels against the reference kernels: every expected value is computed by
// ops::run_op on the reference Conv2D / DepthwiseConv2dNative / MatMul, with bias, residual
// and activation applied by the reference BiasAdd, AddV2, Relu, Relu6 and Mul(x, Sigmoid(x)).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "ops/fast/fast_conv.h"
#include "ops/op_registry.h"

namespace hubimg::ops::fast {
namespace {

using Ints = std::vector<int64_t>;

Tensor random_tensor(const Dims& shape, uint32_t seed) {
  Tensor t(DType::kFloat32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  float* values = t.mutable_data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) values[i] = dist(rng);
  return t;
}

Tensor run_reference(std::string_view op, std::vector<Tensor> inputs, const AttrMap& attrs = {}) {
  auto result = run_op(op, inputs, attrs, "reference");
  EXPECT_TRUE(result.ok()) << op << ": " << result.status().to_string();
  return result.ok() ? (*result)[0] : Tensor();
}

// bias, residual and activation as separate reference ops, in the fused order.
Tensor reference_epilogue(Tensor x, const Tensor& bias, const Tensor* residual,
                          Activation activation) {
  if (bias.valid()) x = run_reference("BiasAdd", {x, bias});
  if (residual) x = run_reference("AddV2", {x, *residual});
  switch (activation) {
    case Activation::kNone: return x;
    case Activation::kRelu: return run_reference("Relu", {x});
    case Activation::kRelu6: return run_reference("Relu6", {x});
    case Activation::kSwish: return run_reference("Mul", {x, run_reference("Sigmoid", {x})});
  }
  return x;
}

// |actual - expected| <= 1e-4 * (largest |expected|, at least 1) everywhere.
::testing::AssertionResult close_to_reference(const Tensor& actual, const Tensor& expected) {
  if (actual.shape() != expected.shape()) {
    return ::testing::AssertionFailure()
           << "shape " << actual.description() << " vs reference " << expected.description();
  }
  double scale = 1.0;
  for (float v : expected.values<float>()) scale = std::max(scale, double(std::fabs(v)));
  const double tolerance = 1e-4 * scale;
  for (int64_t i = 0; i < expected.num_elements(); ++i) {
    const double a = actual.data<float>()[i], e = expected.data<float>()[i];
    if (!(std::fabs(a - e) <= tolerance)) {
      return ::testing::AssertionFailure() << "element " << i << ": " << a << " vs reference " << e
                                           << " (tolerance " << tolerance << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

const char* padding_name(PaddingKind p) {
  return p == PaddingKind::kSame ? "SAME" : p == PaddingKind::kValid ? "VALID" : "EXPLICIT";
}
const char* activation_name(Activation a) {
  switch (a) {
    case Activation::kNone: return "none";
    case Activation::kRelu: return "relu";
    case Activation::kRelu6: return "relu6";
    case Activation::kSwish: return "swish";
  }
  return "?";
}

AttrMap conv_attrs(const ConvParams& p) {
  AttrMap attrs{{"strides", Ints{1, p.strides[0], p.strides[1], 1}},
                {"dilations", Ints{1, p.dilations[0], p.dilations[1], 1}},
                {"padding", std::string(padding_name(p.padding))}};
  if (p.padding == PaddingKind::kExplicit) {
    const auto& e = p.explicit_padding;
    attrs.set("explicit_paddings", Ints{0, 0, e[0], e[1], e[2], e[3], 0, 0});
  }
  return attrs;
}

struct ConvCase {
  Dims input;  // NHWC
  ConvParams params;
  std::string description() const {
    const auto& p = params;
    return "input " + dims_to_string(input) + " filter " + p.filter.description() + " strides " +
           std::to_string(p.strides[0]) + "," + std::to_string(p.strides[1]) + " dilations " +
           std::to_string(p.dilations[0]) + "," + std::to_string(p.dilations[1]) + " " +
           padding_name(p.padding) + " bias " + (p.bias.valid() ? "yes" : "no") + " residual " +
           (p.fuse_residual ? "yes" : "no") + " activation " + activation_name(p.activation);
  }
};

enum class ConvKind { kConv, kDepthwise };

void check_conv_case(const ConvCase& c, ConvKind kind, uint32_t seed) {
  SCOPED_TRACE(c.description());
  const Tensor input = random_tensor(c.input, seed);
  Tensor conv = run_reference(kind == ConvKind::kConv ? "Conv2D" : "DepthwiseConv2dNative",
                              {input, c.params.filter}, conv_attrs(c.params));
  ASSERT_TRUE(conv.valid());
  Tensor residual;
  if (c.params.fuse_residual) residual = random_tensor(conv.shape(), seed + 1);
  const Tensor* residual_ptr = c.params.fuse_residual ? &residual : nullptr;
  const Tensor expected =
      reference_epilogue(conv, c.params.bias, residual_ptr, c.params.activation);

  Tensor output;
  if (kind == ConvKind::kConv) {
    auto kernel = FastConv2D::create(c.params);
    ASSERT_TRUE(kernel.ok()) << kernel.status().to_string();
    ASSERT_TRUE(kernel->run(input, residual_ptr, output).ok());
  } else {
    auto kernel = FastDepthwiseConv2D::create(c.params);
    ASSERT_TRUE(kernel.ok()) << kernel.status().to_string();
    ASSERT_TRUE(kernel->run(input, residual_ptr, output).ok());
  }
  EXPECT_TRUE(close_to_reference(output, expected));
}

// Kernel sizes 1/3/5/7 x strides 1/2 x dilations 1/2 x SAME/VALID/EXPLICIT x batch 1/3 on odd
// and even spatial sizes; bias, residual and each activation rotate through the cases.
std::vector<ConvCase> conv_cases(ConvKind kind) {
  std::vector<ConvCase> cases;
  const Activation activations[] = {Activation::kNone, Activation::kRelu, Activation::kRelu6,
                                    Activation::kSwish};
  uint32_t seed = 100;
  int index = 0;
  for (int64_t k : {1, 3, 5, 7}) {
    for (int64_t stride : {1, 2}) {
      for (int64_t dilation : {1, 2}) {
        for (PaddingKind padding :
             {PaddingKind::kSame, PaddingKind::kValid, PaddingKind::kExplicit}) {
          ++index;
          const int64_t batch = index % 2 == 0 ? 3 : 1;
          const int64_t effective = (k - 1) * dilation + 1;
          const int64_t height = effective + 2 + index % 5, width = effective + 5 + index % 3;
          const int64_t channels = kind == ConvKind::kConv ? 3 + index % 6 : 5 + index % 12;
          const int64_t out_or_multiplier =
              kind == ConvKind::kConv ? 4 + index % 13 : 1 + index % 3;
          ConvParams p;
          p.name = "case" + std::to_string(index);
          // Non-square filters every third case.
          const int64_t kw = (index % 3 == 0 && k > 1) ? k - 1 + (k == 7 ? -1 : 0) : k;
          p.filter = random_tensor({k, kw, channels, out_or_multiplier}, ++seed);
          const int64_t out_channels =
              kind == ConvKind::kConv ? out_or_multiplier : channels * out_or_multiplier;
          if (index % 4 != 3) p.bias = random_tensor({out_channels}, ++seed);
          p.strides = {stride, index % 5 == 0 ? 1 : stride};
          p.dilations = {dilation, index % 7 == 0 ? 1 : dilation};
          p.padding = padding;
          if (padding == PaddingKind::kExplicit) {
            p.explicit_padding = {index % 3, (index + 1) % 4, (index + 2) % 3, index % 2};
          }
          p.activation = activations[index % 4];
          p.fuse_residual = index % 3 == 1;
          cases.push_back({{batch, height, width, channels}, p});
        }
      }
    }
  }
  return cases;
}

TEST(FastConv2D, MatchesReferenceAcrossGeometries) {
  ASSERT_TRUE(fast_kernels_available());
  uint32_t seed = 1;
  for (const auto& c : conv_cases(ConvKind::kConv)) check_conv_case(c, ConvKind::kConv, ++seed);
}

TEST(FastDepthwiseConv2D, MatchesReferenceAcrossGeometries) {
  uint32_t seed = 500;
  for (const auto& c : conv_cases(ConvKind::kDepthwise)) {
    check_conv_case(c, ConvKind::kDepthwise, ++seed);
  }
}

TEST(FastConv2D, MatchesReferenceOnNetworkLikeShapes) {
  // Shapes like the bench networks' layers, scaled down: stem stride-2 3x3 on 3 channels,
  // ResNet's 7x7 stride 2 stem, 1x1 expansions/projections with wide channels.
  struct Shape {
    Dims input;
    int64_t k, out, stride;
    PaddingKind padding;
    Activation activation;
    bool residual;
  };
  const Shape shapes[] = {
      {{1, 33, 31, 3}, 3, 32, 2, PaddingKind::kSame, Activation::kRelu6, false},
      {{3, 23, 23, 3}, 7, 64, 2, PaddingKind::kValid, Activation::kRelu, false},
      {{2, 14, 14, 96}, 1, 24, 1, PaddingKind::kValid, Activation::kNone, true},
      {{1, 9, 9, 160}, 1, 960, 1, PaddingKind::kSame, Activation::kSwish, false},
      {{3, 15, 15, 64}, 3, 64, 1, PaddingKind::kSame, Activation::kRelu, true},
      {{1, 17, 17, 128}, 3, 128, 2, PaddingKind::kSame, Activation::kRelu, false},
  };
  uint32_t seed = 900;
  for (const auto& s : shapes) {
    ConvParams p;
    p.name = "network_like";
    p.filter = random_tensor({s.k, s.k, s.input[3], s.out}, ++seed);
    p.bias = random_tensor({s.out}, ++seed);
    p.strides = {s.stride, s.stride};
    p.padding = s.padding;
    p.activation = s.activation;
    p.fuse_residual = s.residual;
    check_conv_case({s.input, p}, ConvKind::kConv, ++seed);
  }
}

TEST(FastConv2D, PointwiseOnSinglePixelMatchesReferenceOnBothRoutes) {
  // Squeeze-and-excitation: 1x1 convolutions of a pooled [batch, 1, 1, C] tensor. Up to batch 8
  // they run as hubimg's own matrix-vector loop, above as oneDNN's matmul; input widths that
  // are and are not multiples of the loop's four-row step; every activation, with and without
  // bias and residual.
  const Activation activations[] = {Activation::kNone, Activation::kRelu, Activation::kRelu6,
                                    Activation::kSwish};
  uint32_t seed = 10;
  int index = 0;
  for (int64_t batch : {1, 3, 8, 9, 20}) {
    for (int64_t in : {40, 43}) {
      ++index;
      ConvParams p;
      p.name = "se/reduce";
      p.filter = random_tensor({1, 1, in, 10 + index}, ++seed);
      if (index % 3 != 0) p.bias = random_tensor({10 + index}, ++seed);
      p.padding = index % 2 == 0 ? PaddingKind::kSame : PaddingKind::kValid;
      p.activation = activations[index % 4];
      p.fuse_residual = index % 2 == 1;
      check_conv_case({{batch, 1, 1, in}, p}, ConvKind::kConv, ++seed);

      auto kernel = FastConv2D::create(p);
      ASSERT_TRUE(kernel.ok()) << kernel.status().to_string();
      Tensor output, residual = random_tensor({batch, 1, 1, 10 + index}, ++seed);
      ASSERT_TRUE(kernel
                      ->run(random_tensor({batch, 1, 1, in}, ++seed),
                            p.fuse_residual ? &residual : nullptr, output)
                      .ok());
      const std::string route = batch <= 8 ? "matvec" : "as matmul";
      EXPECT_NE(kernel->implementation().find(route), std::string::npos)
          << "batch " << batch << ": " << kernel->implementation();
    }
  }
  // The same kernel on a larger image goes back to the convolution primitive.
  ConvParams p;
  p.name = "se/reduce";
  p.filter = random_tensor({1, 1, 40, 10}, 11);
  p.bias = random_tensor({10}, 12);
  p.padding = PaddingKind::kSame;
  p.activation = Activation::kSwish;
  check_conv_case({{2, 3, 2, 40}, p}, ConvKind::kConv, 14);
}

TEST(FastConv2D, InputGateFoldedIntoTheFilterMatchesMultiplyingFirst) {
  // conv(x * gate) with a per-image, per-channel gate [N, 1, 1, C] (squeeze-and-excitation),
  // computed by scaling the packed filter per image: 1x1 projections and a strided 3x3, batch
  // 1-3, with bias, residual and activations.
  struct Shape {
    Dims input;
    int64_t k, out, stride;
    Activation activation;
    bool residual;
  };
  const Shape shapes[] = {
      {{1, 28, 28, 144}, 1, 40, 1, Activation::kNone, false},
      {{2, 14, 14, 96}, 1, 24, 1, Activation::kNone, true},
      {{3, 9, 11, 40}, 1, 17, 1, Activation::kSwish, false},
      {{2, 33, 31, 24}, 3, 32, 2, Activation::kRelu6, false},
      {{1, 12, 12, 33}, 3, 8, 1, Activation::kRelu, true},
  };
  uint32_t seed = 1500;
  for (const auto& s : shapes) {
    ConvParams p;
    p.name = "project";
    p.filter = random_tensor({s.k, s.k, s.input[3], s.out}, ++seed);
    p.bias = random_tensor({s.out}, ++seed);
    p.strides = {s.stride, s.stride};
    p.padding = PaddingKind::kSame;
    p.activation = s.activation;
    p.fuse_residual = s.residual;
    auto kernel = FastConv2D::create(p);
    ASSERT_TRUE(kernel.ok()) << kernel.status().to_string();
    const Tensor input = random_tensor(s.input, ++seed);
    const Tensor input_before = input.clone();
    const Tensor gate = random_tensor({s.input[0], 1, 1, s.input[3]}, ++seed);
    SCOPED_TRACE("input " + dims_to_string(s.input) + " k " + std::to_string(s.k));
    ASSERT_TRUE(kernel->folds_input_gate(input.shape(), gate.shape()));
    const Tensor gated = run_reference("Mul", {input, gate});
    Tensor conv = run_reference("Conv2D", {gated, p.filter}, conv_attrs(p));
    Tensor residual;
    if (s.residual) residual = random_tensor(conv.shape(), ++seed);
    const Tensor expected =
        reference_epilogue(conv, p.bias, s.residual ? &residual : nullptr, p.activation);
    Tensor output;
    const Status status =
        kernel->run_with_input_gate(input, gate, s.residual ? &residual : nullptr, output);
    ASSERT_TRUE(status.ok()) << status.to_string();
    EXPECT_TRUE(close_to_reference(output, expected));
    // The input is read, not scaled in place.
    EXPECT_TRUE(std::ranges::equal(input.values<float>(), input_before.values<float>()));
  }
}

TEST(FastConv2D, InputGateIsNotFoldedWhereItDoesNotPay) {
  ConvParams p;
  p.name = "head";
  p.filter = random_tensor({1, 1, 64, 256}, 1600);  // larger than half of a 7x7x64 image
  p.padding = PaddingKind::kSame;
  auto kernel = FastConv2D::create(p);
  ASSERT_TRUE(kernel.ok());
  EXPECT_FALSE(kernel->folds_input_gate({1, 7, 7, 64}, {1, 1, 1, 64}));
  EXPECT_TRUE(kernel->folds_input_gate({1, 28, 28, 64}, {1, 1, 1, 64}));
  // Only a gate of one value per image and channel.
  EXPECT_FALSE(kernel->folds_input_gate({2, 28, 28, 64}, {1, 1, 1, 64}));
  EXPECT_FALSE(kernel->folds_input_gate({1, 28, 28, 64}, {1, 28, 28, 64}));
  EXPECT_FALSE(kernel->folds_input_gate({1, 28, 28, 64}, {1, 1, 1, 1}));
  Tensor output;
  const Status s = kernel->run_with_input_gate(random_tensor({1, 7, 7, 64}, 1),
                                               random_tensor({1, 1, 1, 64}, 2), nullptr, output);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("head"), std::string::npos) << s.message();
  // Winograd-eligible 3x3 convolutions transform their filter: not foldable.
  p.filter = random_tensor({3, 3, 64, 64}, 1601);
  auto winograd = FastConv2D::create(p);
  ASSERT_TRUE(winograd.ok());
  EXPECT_FALSE(winograd->folds_input_gate({1, 56, 56, 64}, {1, 1, 1, 64}));
}

TEST(FastDepthwiseConv2D, SpatialMeanOutputMatchesTheMeanOfTheOutput) {
  // Squeeze-and-excitation's squeeze (and a classifier's pooling) computed in the activation's
  // pass: every activation, one and two images, depthwise and ordinary convolutions.
  const Activation activations[] = {Activation::kSwish, Activation::kNone, Activation::kRelu6,
                                    Activation::kRelu};
  uint32_t seed = 1700;
  int index = 0;
  for (int64_t batch : {1, 2}) {
    for (Activation activation : activations) {
      ++index;
      for (ConvKind kind : {ConvKind::kDepthwise, ConvKind::kConv}) {
        ConvParams p;
        p.name = "squeeze";
        const Dims input_shape = {batch, 15 + index, 13, 24};
        p.filter = random_tensor({3, 3, 24, kind == ConvKind::kConv ? 40 : 1}, ++seed);
        p.bias = random_tensor({kind == ConvKind::kConv ? 40 : 24}, ++seed);
        p.strides = {index % 2 + 1, index % 2 + 1};
        p.padding = PaddingKind::kSame;
        p.activation = activation;
        SCOPED_TRACE(std::string(kind == ConvKind::kConv ? "conv" : "depthwise") + " batch " +
                     std::to_string(batch) + " " + activation_name(activation));
        const Tensor input = random_tensor(input_shape, ++seed);
        Tensor output, mean;
        if (kind == ConvKind::kConv) {
          auto k = FastConv2D::create(p);
          ASSERT_TRUE(k.ok()) << k.status().to_string();
          ASSERT_TRUE(k->run(input, nullptr, output, &mean).ok());
        } else {
          auto k = FastDepthwiseConv2D::create(p);
          ASSERT_TRUE(k.ok()) << k.status().to_string();
          ASSERT_TRUE(k->run(input, nullptr, output, &mean).ok());
        }
        const Tensor expected_output = reference_epilogue(
            run_reference(kind == ConvKind::kConv ? "Conv2D" : "DepthwiseConv2dNative",
                          {input, p.filter}, conv_attrs(p)),
            p.bias, nullptr, activation);
        EXPECT_TRUE(close_to_reference(output, expected_output));
        ASSERT_TRUE(mean.valid());
        const Tensor expected_mean =
            run_reference("Mean", {expected_output, Tensor::from_vector<int32_t>({2}, {1, 2})});
        ASSERT_EQ(mean.shape(), expected_mean.shape());
        EXPECT_TRUE(close_to_reference(mean, expected_mean));
      }
    }
  }
}

TEST(FastConv2D, GroupedFilterMatchesReference) {
  ConvParams p;
  p.name = "grouped";
  p.input_channels = 6;
  p.filter = random_tensor({3, 3, 3, 4}, 7);  // 2 groups of 3 input channels, 2 outputs each
  p.bias = random_tensor({4}, 8);
  p.padding = PaddingKind::kSame;
  p.activation = Activation::kRelu;
  check_conv_case({{2, 7, 9, 6}, p}, ConvKind::kConv, 9);
}

TEST(FastDepthwiseConv2D, MobileNetLikeShapesMatchReference) {
  uint32_t seed = 1200;
  for (int64_t stride : {1, 2}) {
    for (int64_t k : {3, 5}) {
      ConvParams p;
      p.name = "dw";
      p.filter = random_tensor({k, k, 144, 1}, ++seed);
      p.bias = random_tensor({144}, ++seed);
      p.strides = {stride, stride};
      p.padding = PaddingKind::kSame;
      p.activation = k == 3 ? Activation::kRelu6 : Activation::kSwish;
      check_conv_case({{stride == 1 ? 3 : 1, 14, 15, 144}, p}, ConvKind::kDepthwise, ++seed);
    }
  }
}

TEST(FastConv2D, OneKernelServesChangingInputShapes) {
  ConvParams p;
  p.name = "reshaping";
  p.filter = random_tensor({3, 3, 8, 16}, 21);
  p.bias = random_tensor({16}, 22);
  p.strides = {2, 2};
  p.padding = PaddingKind::kSame;
  p.activation = Activation::kRelu6;
  auto kernel = FastConv2D::create(p);
  ASSERT_TRUE(kernel.ok()) << kernel.status().to_string();
  uint32_t seed = 30;
  for (const Dims& shape : {Dims{1, 9, 9, 8}, Dims{3, 9, 9, 8}, Dims{2, 16, 11, 8},
                            Dims{1, 9, 9, 8}, Dims{1, 1, 1, 8}}) {
    SCOPED_TRACE(dims_to_string(shape));
    const Tensor input = random_tensor(shape, ++seed);
    const Tensor expected = reference_epilogue(
        run_reference("Conv2D", {input, p.filter}, conv_attrs(p)), p.bias, nullptr, p.activation);
    Tensor output;
    ASSERT_TRUE(kernel->run(input, nullptr, output).ok());
    EXPECT_TRUE(close_to_reference(output, expected));
  }
}

TEST(FastConv2D, WritesIntoAPreparedOutputAndInPlaceResidual) {
  ConvParams p;
  p.name = "in_place";
  p.filter = random_tensor({1, 1, 8, 8}, 41);
  p.bias = random_tensor({8}, 42);
  p.activation = Activation::kRelu;
  p.fuse_residual = true;
  auto kernel = FastConv2D::create(p);
  ASSERT_TRUE(kernel.ok()) << kernel.status().to_string();
  const Tensor input = random_tensor({2, 5, 5, 8}, 43);
  const Tensor residual = random_tensor({2, 5, 5, 8}, 44);
  const Tensor expected = reference_epilogue(
      run_reference("Conv2D", {input, p.filter}, conv_attrs(p)), p.bias, &residual, p.activation);

  Tensor prepared(DType::kFloat32, {2, 5, 5, 8});
  const void* buffer = prepared.raw_data();
  ASSERT_TRUE(kernel->run(input, &residual, prepared).ok());
  EXPECT_EQ(prepared.raw_data(), buffer);
  EXPECT_TRUE(close_to_reference(prepared, expected));

  Tensor accumulator = residual.clone();  // output aliases the residual
  ASSERT_TRUE(kernel->run(input, &accumulator, accumulator).ok());
  EXPECT_TRUE(close_to_reference(accumulator, expected));

  Tensor aliasing_input = input;  // never written in place: replaced by a new tensor
  ASSERT_TRUE(kernel->run(input, &residual, aliasing_input).ok());
  EXPECT_FALSE(aliasing_input.shares_buffer_with(input));
  EXPECT_TRUE(close_to_reference(aliasing_input, expected));
}

TEST(FastConv2D, ConcurrentRunsMatchReference) {
  ConvParams p;
  p.name = "concurrent";
  p.filter = random_tensor({3, 3, 16, 32}, 51);
  p.padding = PaddingKind::kSame;
  auto kernel = FastConv2D::create(p);
  ASSERT_TRUE(kernel.ok()) << kernel.status().to_string();
  std::vector<Tensor> inputs, expected, outputs(4);
  for (int i = 0; i < 4; ++i) {
    inputs.push_back(random_tensor({1 + i % 2, 12 + i, 10, 16}, 60 + i));
    expected.push_back(run_reference("Conv2D", {inputs.back(), p.filter}, conv_attrs(p)));
  }
  std::vector<std::thread> threads;
  std::vector<bool> ok(4, false);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int repeat = 0; repeat < 3; ++repeat) {
        ok[i] = kernel->run(inputs[i], nullptr, outputs[i]).ok();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(ok[i]);
    EXPECT_TRUE(close_to_reference(outputs[i], expected[i])) << i;
  }
}

TEST(FastConv2D, WinogradOnResNetLikeShapesMatchesReference) {
  // 3x3 stride-1 convolutions with >= 64 channels take oneDNN's Winograd kernel (reordered to
  // and from its blocked layout); padding, bias and activations as the direct kernel.
  struct Shape {
    Dims input;
    int64_t out;
    PaddingKind padding;
    Activation activation;
    bool winograd;  // oneDNN 2.6 has no Winograd kernel without padding
  };
  const Shape shapes[] = {
      {{1, 14, 14, 64}, 64, PaddingKind::kSame, Activation::kRelu, true},
      {{3, 9, 11, 128}, 64, PaddingKind::kSame, Activation::kNone, true},
      {{2, 8, 8, 64}, 128, PaddingKind::kValid, Activation::kRelu6, false},
      {{1, 7, 7, 512}, 512, PaddingKind::kSame, Activation::kRelu, true},
  };
  uint32_t seed = 1700;
  for (const auto& s : shapes) {
    ConvParams p;
    p.name = "winograd";
    p.filter = random_tensor({3, 3, s.input[3], s.out}, ++seed);
    p.bias = random_tensor({s.out}, ++seed);
    p.padding = s.padding;
    p.activation = s.activation;
    check_conv_case({s.input, p}, ConvKind::kConv, ++seed);
    p.expected_input = s.input;
    auto kernel = FastConv2D::create(p);
    ASSERT_TRUE(kernel.ok()) << kernel.status().to_string();
    EXPECT_EQ(kernel->implementation().find("wino") != std::string::npos, s.winograd)
        << dims_to_string(s.input) << " -> " << s.out << ": " << kernel->implementation();
  }
}

TEST(FastConv2D, ConcurrentRunsOfOnePrimitiveMatchReference) {
  // Chunks of a split batch run the same primitive on several threads at once; each run needs
  // its own scratchpad (a shared one gave wrong results).
  for (int64_t k : {1, 3}) {
    ConvParams p;
    p.name = "concurrent_same_shape";
    p.filter = random_tensor({k, k, 64, 64}, 70 + static_cast<uint32_t>(k));
    p.padding = PaddingKind::kSame;
    p.activation = Activation::kRelu;
    auto kernel = FastConv2D::create(p);
    ASSERT_TRUE(kernel.ok()) << kernel.status().to_string();
    constexpr int kThreads = 4;
    std::vector<Tensor> inputs, expected;
    for (int i = 0; i < kThreads; ++i) {
      inputs.push_back(random_tensor({2, 28, 28, 64}, 80 + static_cast<uint32_t>(i)));
      expected.push_back(
          reference_epilogue(run_reference("Conv2D", {inputs.back(), p.filter}, conv_attrs(p)),
                             Tensor(), nullptr, p.activation));
    }
    std::vector<std::thread> threads;
    std::vector<int> mismatches(kThreads, 0);
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        for (int repeat = 0; repeat < 20; ++repeat) {
          Tensor out;
          if (!kernel->run(inputs[i], nullptr, out).ok() || !close_to_reference(out, expected[i])) {
            ++mismatches[i];
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < kThreads; ++i) EXPECT_EQ(mismatches[i], 0) << "k " << k << " thread " << i;
  }
}

TEST(FastConv2D, ErrorsNameTheLayerAndShapes) {
  ConvParams p;
  p.name = "block_3/conv";
  p.filter = random_tensor({3, 3, 4, 8}, 71);
  auto kernel = FastConv2D::create(p);
  ASSERT_TRUE(kernel.ok());
  Tensor output;
  Status wrong_channels = kernel->run(random_tensor({1, 8, 8, 5}, 72), nullptr, output);
  EXPECT_EQ(wrong_channels.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_channels.message().find("block_3/conv"), std::string::npos);
  EXPECT_NE(wrong_channels.message().find("[1, 8, 8, 5]"), std::string::npos)
      << wrong_channels.message();

  // VALID 3x3 on 2 rows gives 0 rows (an empty output, as in TensorFlow); on 1 row, an error.
  ASSERT_TRUE(kernel->run(random_tensor({1, 2, 8, 4}, 73), nullptr, output).ok());
  EXPECT_EQ(output.shape(), (Dims{1, 0, 6, 8}));
  Status too_small = kernel->run(random_tensor({1, 1, 8, 4}, 73), nullptr, output);
  EXPECT_EQ(too_small.code(), StatusCode::kInvalidArgument) << too_small.to_string();
  EXPECT_NE(too_small.message().find("smaller than the filter window"), std::string::npos);

  Tensor residual = random_tensor({1, 6, 6, 8}, 74);
  Status unexpected_residual = kernel->run(random_tensor({1, 8, 8, 4}, 75), &residual, output);
  EXPECT_EQ(unexpected_residual.code(), StatusCode::kInvalidArgument);

  p.fuse_residual = true;
  auto with_residual = FastConv2D::create(p);
  ASSERT_TRUE(with_residual.ok());
  Status missing = with_residual->run(random_tensor({1, 8, 8, 4}, 76), nullptr, output);
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument);
  Tensor wrong_residual = random_tensor({1, 8, 8, 8}, 77);
  Status mismatched = with_residual->run(random_tensor({1, 8, 8, 4}, 78), &wrong_residual, output);
  EXPECT_EQ(mismatched.code(), StatusCode::kInvalidArgument);

  ConvParams int_filter = p;
  int_filter.filter = Tensor(DType::kInt32, {3, 3, 4, 8});
  EXPECT_EQ(FastConv2D::create(int_filter).status().code(), StatusCode::kUnimplemented);

  ConvParams bad_bias = p;
  bad_bias.bias = random_tensor({7}, 79);
  auto bias_error = FastConv2D::create(bad_bias);
  EXPECT_EQ(bias_error.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bias_error.status().message().find("block_3/conv"), std::string::npos);

  ConvParams bad_groups = p;
  bad_groups.input_channels = 6;  // not a multiple of the filter's 4
  EXPECT_EQ(FastConv2D::create(bad_groups).status().code(), StatusCode::kInvalidArgument);

  ConvParams negative = p;
  negative.padding = PaddingKind::kExplicit;
  negative.explicit_padding = {0, -1, 0, 0};
  EXPECT_EQ(FastConv2D::create(negative).status().code(), StatusCode::kInvalidArgument);

  ConvParams zero_stride = p;
  zero_stride.strides = {0, 1};
  EXPECT_EQ(FastConv2D::create(zero_stride).status().code(), StatusCode::kInvalidArgument);
}

TEST(FastConv2D, ReportsGeometryAndImplementation) {
  ConvParams p;
  p.name = "geometry";
  p.filter = random_tensor({3, 3, 4, 8}, 81);
  p.strides = {2, 2};
  p.padding = PaddingKind::kSame;
  auto kernel = FastConv2D::create(p);
  ASSERT_TRUE(kernel.ok());
  auto g = kernel->geometry({1, 8, 7, 4});
  ASSERT_TRUE(g.ok());
  // SAME, stride 2: rows 8 -> 4, needed (4-1)*2+3-8 = 1 -> top 0, bottom 1; cols 7 -> 4,
  // needed (4-1)*2+3-7 = 2 -> left 1, right 1.
  EXPECT_EQ(g->out_height, 4);
  EXPECT_EQ(g->out_width, 4);
  EXPECT_EQ(g->pad_top, 0);
  EXPECT_EQ(g->pad_bottom, 1);
  EXPECT_EQ(g->pad_left, 1);
  EXPECT_EQ(g->pad_right, 1);
  EXPECT_EQ(kernel->implementation().rfind("onednn:", 0), 0u) << kernel->implementation();
}

TEST(FastDepthwiseConv2D, RejectsMismatchedChannels) {
  ConvParams p;
  p.name = "dw/bad";
  p.filter = random_tensor({3, 3, 8, 2}, 91);
  p.input_channels = 4;
  auto created = FastDepthwiseConv2D::create(p);
  EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument);
  p.input_channels = 0;
  auto kernel = FastDepthwiseConv2D::create(p);
  ASSERT_TRUE(kernel.ok());
  Tensor output;
  Status s = kernel->run(random_tensor({1, 6, 6, 4}, 92), nullptr, output);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("dw/bad"), std::string::npos);
}

TEST(FastConv2D, RunsOneDnnWithThePoolsThreadCount) {
  // libdnnl is the OpenMP build: its thread count is OpenMP's, which run() sets to the pool's.
  using GetMaxThreads = int (*)();
  const auto get_max_threads =
      reinterpret_cast<GetMaxThreads>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  ASSERT_NE(get_max_threads, nullptr) << "no OpenMP runtime loaded with libdnnl";
  ConvParams p;
  p.name = "threads";
  p.filter = random_tensor({1, 1, 4, 4}, 95);
  auto kernel = FastConv2D::create(p);
  ASSERT_TRUE(kernel.ok());
  Tensor output;
  for (int threads : {1, 2}) {
    ThreadPool::set_global_num_threads(threads);
    ASSERT_TRUE(kernel->run(random_tensor({1, 4, 4, 4}, 96), nullptr, output).ok());
    EXPECT_EQ(get_max_threads(), threads);
  }
  ThreadPool::set_global_num_threads(0);
}

// ---------------------------------------------------------------------------------------------
// MatMul

TEST(FastMatMul, MatchesReference) {
  const Activation activations[] = {Activation::kNone, Activation::kRelu, Activation::kRelu6,
                                    Activation::kSwish};
  uint32_t seed = 300;
  int index = 0;
  for (int64_t batch : {1, 3, 7}) {
    for (auto [in, out] : {std::pair<int64_t, int64_t>{1, 1}, {17, 5}, {64, 1000}, {1280, 33}}) {
      for (bool transposed : {false, true}) {
        ++index;
        MatMulParams p;
        p.name = "dense" + std::to_string(index);
        p.transpose_weights = transposed;
        p.weights = random_tensor(transposed ? Dims{out, in} : Dims{in, out}, ++seed);
        if (index % 3 != 0) p.bias = random_tensor({out}, ++seed);
        p.activation = activations[index % 4];
        p.fuse_residual = index % 5 == 1;
        SCOPED_TRACE(p.name + " batch " + std::to_string(batch) + " weights " +
                     p.weights.description() + (transposed ? " transposed" : "") + " activation " +
                     activation_name(p.activation));
        const Tensor input = random_tensor({batch, in}, ++seed);
        AttrMap attrs{{"transpose_b", transposed}};
        Tensor residual;
        if (p.fuse_residual) residual = random_tensor({batch, out}, ++seed);
        const Tensor expected =
            reference_epilogue(run_reference("MatMul", {input, p.weights}, attrs), p.bias,
                               p.fuse_residual ? &residual : nullptr, p.activation);
        auto kernel = FastMatMul::create(p);
        ASSERT_TRUE(kernel.ok()) << kernel.status().to_string();
        Tensor output;
        ASSERT_TRUE(kernel->run(input, p.fuse_residual ? &residual : nullptr, output).ok());
        EXPECT_TRUE(close_to_reference(output, expected));
      }
    }
  }
}

TEST(FastMatMul, RejectsMismatchedInput) {
  MatMulParams p;
  p.name = "logits";
  p.weights = random_tensor({16, 10}, 401);
  auto kernel = FastMatMul::create(p);
  ASSERT_TRUE(kernel.ok());
  Tensor output;
  Status s = kernel->run(random_tensor({2, 15}, 402), nullptr, output);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("logits"), std::string::npos);
  EXPECT_NE(s.message().find("float32[2, 15]"), std::string::npos) << s.message();
  p.weights = random_tensor({16}, 403);
  EXPECT_EQ(FastMatMul::create(p).status().code(), StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace hubimg::ops::fast
