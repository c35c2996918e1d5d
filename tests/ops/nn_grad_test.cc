// The nn backward kernels (src/ops/nn_grad_ops.cc) against central finite differences of the
// forward reference kernels in float64, and the nn gradient rules (src/ops/grad_nn.cc) through
// the autodiff pass (grad_check.h).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "ops/grad_check.h"
#include "ops/op_registry.h"
#include "ops/op_test_util.h"

namespace hubimg::ops::testing {
namespace {

using Ints = std::vector<int64_t>;

Tensor as_f32(const Tensor& t) {
  Tensor out(DType::kFloat32, t.shape());
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    out.mutable_data<float>()[i] = static_cast<float>(t.data<double>()[i]);
  }
  return out;
}

Tensor shape_of(const Tensor& t) {
  std::vector<int32_t> dims;
  for (int64_t d : t.shape()) dims.push_back(static_cast<int32_t>(d));
  return i32({static_cast<int64_t>(dims.size())}, dims);
}

// d/d inputs[which] of sum(cotangent * op(inputs)[output]) by central differences (float64).
Tensor numeric_grad(const std::string& op, const AttrMap& attrs, std::vector<Tensor> inputs,
                    size_t which, const Tensor& cotangent, size_t output = 0, double step = 1e-6) {
  Tensor x = inputs[which].clone();
  Tensor grad(DType::kFloat64, x.shape());
  auto objective = [&]() {
    auto outs = run_op(op, inputs, attrs, "fd");
    EXPECT_TRUE(outs.ok()) << outs.status().to_string();
    if (!outs.ok()) return 0.0;
    const Tensor& y = (*outs)[output];
    double total = 0;
    for (int64_t i = 0; i < y.num_elements(); ++i) {
      total += y.data<double>()[i] * cotangent.data<double>()[i];
    }
    return total;
  };
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const double v = x.data<double>()[i];
    Tensor plus = x.clone();
    plus.mutable_data<double>()[i] = v + step;
    inputs[which] = plus;
    const double up = objective();
    Tensor minus = x.clone();
    minus.mutable_data<double>()[i] = v - step;
    inputs[which] = minus;
    const double down = objective();
    grad.mutable_data<double>()[i] = (up - down) / (2 * step);
  }
  return grad;
}

void expect_close(const Tensor& got, const Tensor& want, double tolerance,
                  const std::string& label) {
  ASSERT_EQ(got.shape(), want.shape()) << label << ": " << got.description();
  double worst = 0;
  int64_t at = -1;
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double g = got.dtype() == DType::kFloat32 ? got.data<float>()[i] : got.data<double>()[i];
    const double w = want.data<double>()[i];
    const double err = std::abs(g - w) / std::max({1.0, std::abs(w)});
    if (err > worst) worst = err, at = i;
  }
  EXPECT_LE(worst, tolerance) << label << ": worst element " << at;
}

// Runs the backward op in float64 (and float32, looser) and compares with `want`.
void expect_backward(const std::string& op, const AttrMap& attrs, const std::vector<Tensor>& inputs,
                     const Tensor& want, const std::string& label, size_t output = 0) {
  auto got = run(op, inputs, attrs);
  ASSERT_GT(got.size(), output) << label;
  expect_close(got[output], want, 1e-6, label + " float64");
  std::vector<Tensor> inputs32;
  for (const auto& t : inputs) inputs32.push_back(t.dtype() == DType::kFloat64 ? as_f32(t) : t);
  auto got32 = run(op, inputs32, attrs);
  ASSERT_GT(got32.size(), output) << label;
  EXPECT_EQ(got32[output].dtype(), DType::kFloat32);
  expect_close(got32[output], want, 1e-3, label + " float32");
}

struct ConvCase {
  Ints input;   // NHWC
  Ints filter;  // HWIO (depthwise: H, W, C, multiplier)
  Ints strides;
  Ints dilations;
  std::string padding;
  Ints explicit_paddings;
};

std::vector<ConvCase> conv_cases(bool depthwise) {
  std::vector<ConvCase> cases;
  const int64_t in_depth = 2;
  for (int64_t batch : {1, 3}) {
    for (Ints spatial : {Ints{5, 7}, Ints{4, 4}, Ints{6, 3}}) {
      for (Ints window : {Ints{1, 1}, Ints{3, 3}, Ints{2, 3}}) {
        for (int64_t stride : {1, 2}) {
          for (int64_t dilation : {1, 2}) {
            if (dilation > 1 && stride > 1) continue;  // TensorFlow rejects both on CPU
            for (const char* padding : {"SAME", "VALID", "EXPLICIT"}) {
              ConvCase c;
              c.input = {batch, spatial[0], spatial[1], in_depth};
              c.filter = {window[0], window[1], in_depth, depthwise ? 2 : 3};
              c.strides = {1, stride, stride, 1};
              c.dilations = {1, dilation, dilation, 1};
              c.padding = padding;
              if (c.padding == "EXPLICIT") c.explicit_paddings = {0, 0, 1, 0, 2, 1, 0, 0};
              const int64_t eff_rows = (window[0] - 1) * dilation + 1;
              const int64_t eff_cols = (window[1] - 1) * dilation + 1;
              if (c.padding == "VALID" && (eff_rows > spatial[0] || eff_cols > spatial[1])) {
                continue;
              }
              cases.push_back(c);
            }
          }
        }
      }
    }
  }
  if (!depthwise) {
    // Grouped: 4 input channels, patch depth 2, 4 outputs (2 groups).
    cases.push_back({{3, 5, 5, 4}, {3, 3, 2, 4}, {1, 2, 2, 1}, {1, 1, 1, 1}, "SAME", {}});
    cases.push_back({{1, 6, 5, 4}, {2, 2, 2, 4}, {1, 1, 1, 1}, {1, 2, 2, 1}, "VALID", {}});
  }
  return cases;
}

AttrMap conv_attrs(const ConvCase& c) {
  AttrMap a{{"strides", c.strides},
            {"dilations", c.dilations},
            {"padding", c.padding},
            {"data_format", std::string("NHWC")}};
  if (!c.explicit_paddings.empty()) a.set("explicit_paddings", c.explicit_paddings);
  return a;
}

std::string conv_label(const std::string& op, const ConvCase& c) {
  auto s = [](const Ints& v) {
    std::string r = "[";
    for (size_t i = 0; i < v.size(); ++i) r += (i ? "," : "") + std::to_string(v[i]);
    return r + "]";
  };
  return op + " input " + s(c.input) + " filter " + s(c.filter) + " strides " + s(c.strides) +
         " dilations " + s(c.dilations) + " " + c.padding;
}

void check_conv_backprops(bool depthwise) {
  const std::string forward = depthwise ? "DepthwiseConv2dNative" : "Conv2D";
  const std::string input_op = forward + "BackpropInput";
  const std::string filter_op = forward + "BackpropFilter";
  uint32_t seed = 100;
  const auto cases = conv_cases(depthwise);
  ASSERT_GT(cases.size(), 40u);
  for (const ConvCase& c : cases) {
    const AttrMap attrs = conv_attrs(c);
    Tensor x = uniform(c.input, -1, 1, seed++);
    Tensor w = uniform(c.filter, -1, 1, seed++);
    Tensor y = run1(forward, {x, w}, attrs);
    ASSERT_EQ(y.dtype(), DType::kFloat64) << conv_label(forward, c);
    Tensor dy = uniform(y.shape(), -1, 1, seed++);
    expect_backward(input_op, attrs, {shape_of(x), w, dy},
                    numeric_grad(forward, attrs, {x, w}, 0, dy), conv_label(input_op, c));
    expect_backward(filter_op, attrs, {x, shape_of(w), dy},
                    numeric_grad(forward, attrs, {x, w}, 1, dy), conv_label(filter_op, c));
  }
}

TEST(NnGradKernels, Conv2DBackpropsMatchFiniteDifferences) {
  check_conv_backprops(false);
}

TEST(NnGradKernels, DepthwiseBackpropsMatchFiniteDifferences) {
  check_conv_backprops(true);
}

TEST(NnGradKernels, ConvBackpropErrorsNameNodeAndOp) {
  const AttrMap attrs{{"strides", Ints{1, 1, 1, 1}}, {"padding", std::string("VALID")}};
  // out_backprop of the wrong spatial size.
  expect_error("Conv2DBackpropInput",
               {i32({4}, {1, 4, 4, 2}), uniform({3, 3, 2, 3}, -1, 1), uniform({1, 3, 3, 3}, -1, 1)},
               attrs, "out_backprop must have shape");
  expect_error("Conv2DBackpropFilter",
               {uniform({1, 4, 4, 2}, -1, 1), i32({3}, {3, 3, 2}), uniform({1, 2, 2, 3}, -1, 1)},
               attrs, "filter_sizes");
}

struct PoolCase {
  Ints input;
  Ints ksize;
  Ints strides;
  std::string padding;
};

std::vector<PoolCase> pool_cases() {
  std::vector<PoolCase> cases;
  for (int64_t batch : {1, 3}) {
    for (Ints spatial : {Ints{5, 7}, Ints{4, 4}, Ints{3, 5}}) {
      for (Ints window : {Ints{2, 2}, Ints{3, 3}, Ints{1, 2}}) {
        for (int64_t stride : {1, 2}) {
          for (const char* padding : {"SAME", "VALID"}) {
            cases.push_back({{batch, spatial[0], spatial[1], 2},
                             {1, window[0], window[1], 1},
                             {1, stride, stride, 1},
                             padding});
          }
        }
      }
    }
  }
  return cases;
}

TEST(NnGradKernels, PoolGradsMatchFiniteDifferences) {
  uint32_t seed = 500;
  for (const PoolCase& c : pool_cases()) {
    const AttrMap attrs{{"ksize", c.ksize}, {"strides", c.strides}, {"padding", c.padding}};
    const std::string label = "pool " + std::to_string(c.input[0]) + "x" +
                              std::to_string(c.input[1]) + "x" + std::to_string(c.input[2]) + " k" +
                              std::to_string(c.ksize[1]) + std::to_string(c.ksize[2]) + " s" +
                              std::to_string(c.strides[1]) + " " + c.padding;
    // Distinct values: no ties, so the maximum is differentiable.
    Tensor x = distinct(c.input, -2, 2, seed++);
    Tensor y = run1("MaxPool", {x}, attrs);
    Tensor dy = uniform(y.shape(), -1, 1, seed++);
    Tensor want = numeric_grad("MaxPool", attrs, {x}, 0, dy);
    expect_backward("MaxPoolGrad", attrs, {x, y, dy}, want, "MaxPoolGrad " + label);
    expect_backward(
        "MaxPoolGradV2", {{"padding", c.padding}},
        {x, y, dy,
         i32({4}, {1, static_cast<int32_t>(c.ksize[1]), static_cast<int32_t>(c.ksize[2]), 1}),
         i32({4}, {1, static_cast<int32_t>(c.strides[1]), static_cast<int32_t>(c.strides[2]), 1})},
        want, "MaxPoolGradV2 " + label);
    Tensor avg = run1("AvgPool", {x}, attrs);
    Tensor avg_dy = uniform(avg.shape(), -1, 1, seed++);
    expect_backward("AvgPoolGrad", attrs, {shape_of(x), avg_dy},
                    numeric_grad("AvgPool", attrs, {x}, 0, avg_dy), "AvgPoolGrad " + label);
  }
}

TEST(NnGradKernels, MaxPoolGradGoesToTheFirstMaximum) {
  // One 2x2 window, all four inputs equal: TensorFlow routes the gradient to the first.
  const AttrMap attrs{{"ksize", Ints{1, 2, 2, 1}},
                      {"strides", Ints{1, 2, 2, 1}},
                      {"padding", std::string("VALID")}};
  Tensor x = f64({1, 2, 2, 1}, {1, 1, 1, 1});
  expect_values<double>(
      run1("MaxPoolGrad", {x, f64({1, 1, 1, 1}, {1}), f64({1, 1, 1, 1}, {5})}, attrs), {1, 2, 2, 1},
      {5, 0, 0, 0});
  Tensor x2 = f64({1, 2, 2, 1}, {0, 3, 1, 3});
  expect_values<double>(
      run1("MaxPoolGrad", {x2, f64({1, 1, 1, 1}, {3}), f64({1, 1, 1, 1}, {2})}, attrs),
      {1, 2, 2, 1}, {0, 2, 0, 0});
}

TEST(NnGradKernels, AvgPoolGradSameDividesByInputCellsInTheWindow) {
  // 3x3 input, 2x2 window, stride 2, SAME: windows cover 4, 2, 2 and 1 input cells.
  const AttrMap attrs{
      {"ksize", Ints{1, 2, 2, 1}}, {"strides", Ints{1, 2, 2, 1}}, {"padding", std::string("SAME")}};
  expect_values<double>(
      run1("AvgPoolGrad", {i32({4}, {1, 3, 3, 1}), f64({1, 2, 2, 1}, {4, 2, 6, 3})}, attrs),
      {1, 3, 3, 1}, {1, 1, 1, 1, 1, 1, 3, 3, 3});
}

TEST(NnGradKernels, FusedBatchNormGradMatchesFiniteDifferences) {
  uint32_t seed = 900;
  for (Ints shape : {Ints{1, 3, 4, 2}, Ints{3, 2, 5, 3}, Ints{2, 1, 1, 4}}) {
    for (bool training : {true, false}) {
      for (const char* version : {"", "V2", "V3"}) {
        const std::string forward = std::string("FusedBatchNorm") + version;
        const std::string backward = std::string("FusedBatchNormGrad") + version;
        const int64_t c = shape[3];
        const AttrMap attrs{
            {"epsilon", 0.01f}, {"is_training", training}, {"data_format", std::string("NHWC")}};
        Tensor x = uniform(shape, -2, 2, seed++);
        Tensor scale = uniform({c}, 0.5, 1.5, seed++);
        Tensor offset = uniform({c}, -1, 1, seed++);
        Tensor mean = training ? Tensor(DType::kFloat64, {0}) : uniform({c}, -0.5, 0.5, seed++);
        Tensor variance = training ? Tensor(DType::kFloat64, {0}) : uniform({c}, 0.5, 2, seed++);
        std::vector<Tensor> in = {x, scale, offset, mean, variance};
        auto outs = run(forward, in, attrs);
        ASSERT_GE(outs.size(), 5u);
        Tensor dy = uniform(shape, -1, 1, seed++);
        std::vector<Tensor> grad_in = {dy, x, scale, training ? outs[3] : mean,
                                       training ? outs[4] : variance};
        if (std::string(version) == "V3") grad_in.push_back(outs[5]);
        const std::string label = backward + (training ? " training" : " inference") + " [" +
                                  std::to_string(shape[0]) + "," + std::to_string(shape[1]) + "," +
                                  std::to_string(shape[2]) + "," + std::to_string(c) + "]";
        for (size_t input = 0; input < 3; ++input) {
          expect_backward(backward, attrs, grad_in, numeric_grad(forward, attrs, in, input, dy),
                          label + " output " + std::to_string(input), input);
        }
      }
    }
  }
}

TEST(NnGradKernels, BiasAddGradSumsAllButChannels) {
  Tensor dy = uniform({3, 2, 4, 5}, -1, 1, 7);
  Tensor bias = uniform({5}, -1, 1, 8);
  expect_backward("BiasAddGrad", {}, {dy},
                  numeric_grad("BiasAdd", {}, {uniform({3, 2, 4, 5}, -1, 1, 9), bias}, 1, dy),
                  "BiasAddGrad NHWC");
  Tensor dy_nchw = uniform({2, 3, 2, 2}, -1, 1, 10);
  const AttrMap nchw{{"data_format", std::string("NCHW")}};
  expect_backward(
      "BiasAddGrad", nchw, {dy_nchw},
      numeric_grad("BiasAdd", nchw, {uniform({2, 3, 2, 2}, -1, 1, 11), uniform({3}, -1, 1, 12)}, 1,
                   dy_nchw),
      "BiasAddGrad NCHW");
}

TEST(NnGradKernels, ActivationGradsMatchFiniteDifferences) {
  // (forward, backward, argument order, attrs); the order says what the backward op takes.
  enum class Args { kGradFeatures, kGradOutputs, kOutputsGrad };
  struct Activation {
    const char* forward;
    const char* backward;
    Args args;
    AttrMap attrs;
  };
  const std::vector<Activation> activations = {
      {"Relu", "ReluGrad", Args::kGradFeatures, {}},
      {"Relu6", "Relu6Grad", Args::kGradFeatures, {}},
      {"LeakyRelu", "LeakyReluGrad", Args::kGradFeatures, {{"alpha", 0.3f}}},
      {"Elu", "EluGrad", Args::kGradOutputs, {}},
      {"Selu", "SeluGrad", Args::kGradOutputs, {}},
      {"Softplus", "SoftplusGrad", Args::kGradFeatures, {}},
      {"Softsign", "SoftsignGrad", Args::kGradFeatures, {}},
      {"Sigmoid", "SigmoidGrad", Args::kOutputsGrad, {}},
      {"Tanh", "TanhGrad", Args::kOutputsGrad, {}},
  };
  uint32_t seed = 1000;
  for (const auto& a : activations) {
    // Values in [-8, 8] away from the kinks at 0 and 6.
    Tensor x = distinct({3, 4, 5}, -8, 8, seed++, 0.1);
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      double& v = x.mutable_data<double>()[i];
      if (std::abs(v - 6) < 0.05) v += 0.2;
    }
    Tensor y = run1(a.forward, {x}, a.attrs);
    Tensor dy = uniform(x.shape(), -1, 1, seed++);
    std::vector<Tensor> in;
    switch (a.args) {
      case Args::kGradFeatures: in = {dy, x}; break;
      case Args::kGradOutputs: in = {dy, y}; break;
      case Args::kOutputsGrad: in = {y, dy}; break;
    }
    expect_backward(a.backward, a.attrs, in, numeric_grad(a.forward, a.attrs, {x}, 0, dy),
                    a.backward);
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient rules through the autodiff pass.

HUBIMG_GRAD_CASES(NnActivations) {
  std::vector<GradCase> cases;
  uint32_t seed = 2000;
  for (const Dims& shape : std::vector<Dims>{{5}, {2, 3}, {3, 2, 2, 2}}) {
    // Away from the kinks (0 and 6): finite differences cannot straddle them.
    cases.push_back({"Relu", {}, {distinct(shape, -3, 3, seed++, 0.2)}});
    cases.push_back({"Relu6", {}, {distinct(shape, -3, 8, seed++, 0.2)}});
    cases.push_back({"LeakyRelu", {{"alpha", 0.25f}}, {distinct(shape, -3, 3, seed++, 0.2)}});
    cases.push_back({"Elu", {}, {distinct(shape, -3, 3, seed++, 0.2)}});
    cases.push_back({"Selu", {}, {distinct(shape, -3, 3, seed++, 0.2)}});
    cases.push_back({"Softplus", {}, {uniform(shape, -4, 4, seed++)}});
    cases.push_back({"Softsign", {}, {distinct(shape, -3, 3, seed++, 0.2)}});
    cases.push_back({"Sigmoid", {}, {uniform(shape, -4, 4, seed++)}});
    cases.push_back({"Tanh", {}, {uniform(shape, -2, 2, seed++)}});
    cases.push_back({"Softmax", {}, {uniform(shape, -2, 2, seed++)}});
    cases.push_back({"LogSoftmax", {}, {uniform(shape, -2, 2, seed++)}});
  }
  // Relu6 above 6 (zero gradient) and LeakyRelu with alpha > 1.
  for (auto& c : cases) {
    if (c.op == "Relu6") {
      for (int64_t i = 0; i < c.inputs[0].num_elements(); ++i) {
        double& v = c.inputs[0].mutable_data<double>()[i];
        if (std::abs(v - 6) < 0.2) v += 0.5;
      }
    }
  }
  cases.push_back({"LeakyRelu", {{"alpha", 1.5f}}, {distinct({4, 3}, -3, 3, seed++, 0.2)}});
  return cases;
}

HUBIMG_GRAD_CASES(NnConv) {
  std::vector<GradCase> cases;
  uint32_t seed = 3000;
  for (bool depthwise : {false, true}) {
    const char* op = depthwise ? "DepthwiseConv2dNative" : "Conv2D";
    for (const ConvCase& c : conv_cases(depthwise)) {
      // A sample of the kernel-test shapes keeps the autodiff check quick.
      if (seed++ % 5 != 0) continue;
      GradCase g{
          op, conv_attrs(c), {uniform(c.input, -1, 1, seed), uniform(c.filter, -1, 1, seed + 1)}};
      g.label = conv_label(op, c);
      cases.push_back(g);
    }
  }
  return cases;
}

// The backprop ops as forward ops (Conv2DTranspose is Conv2DBackpropInput): sizes are fixed
// int32 inputs, the other two are differentiated.
HUBIMG_GRAD_CASES(NnConvBackprops) {
  std::vector<GradCase> cases;
  uint32_t seed = 3500;
  for (bool depthwise : {false, true}) {
    const std::string forward = depthwise ? "DepthwiseConv2dNative" : "Conv2D";
    for (const ConvCase& c : conv_cases(depthwise)) {
      if (seed++ % 9 != 0) continue;
      const Tensor x = uniform(c.input, -1, 1, seed);
      const Tensor filter = uniform(c.filter, -1, 1, seed + 1);
      const Dims out_shape = run(forward, {x, filter}, conv_attrs(c))[0].shape();
      const Tensor dy = uniform(out_shape, -1, 1, seed + 2);
      GradCase input{forward + "BackpropInput", conv_attrs(c), {shape_of(x), filter, dy}};
      input.differentiate = {1, 2};
      input.label = conv_label(input.op, c);
      cases.push_back(input);
      GradCase filt{forward + "BackpropFilter", conv_attrs(c), {x, shape_of(filter), dy}};
      filt.differentiate = {0, 2};
      filt.label = conv_label(filt.op, c);
      cases.push_back(filt);
    }
  }
  return cases;
}

HUBIMG_GRAD_CASES(NnPool) {
  std::vector<GradCase> cases;
  uint32_t seed = 4000;
  for (const PoolCase& c : pool_cases()) {
    if (seed++ % 3 != 0) continue;
    const AttrMap attrs{{"ksize", c.ksize}, {"strides", c.strides}, {"padding", c.padding}};
    cases.push_back({"MaxPool", attrs, {distinct(c.input, -2, 2, seed)}});
    cases.push_back({"AvgPool", attrs, {uniform(c.input, -2, 2, seed)}});
    GradCase v2{
        "MaxPoolV2",
        {{"padding", c.padding}},
        {distinct(c.input, -2, 2, seed + 1),
         ints32({4}, {1, static_cast<int32_t>(c.ksize[1]), static_cast<int32_t>(c.ksize[2]), 1}),
         ints32({4},
                {1, static_cast<int32_t>(c.strides[1]), static_cast<int32_t>(c.strides[2]), 1})}};
    v2.differentiate = {0};
    cases.push_back(v2);
  }
  // EXPLICIT padding (MaxPool only).
  cases.push_back({"MaxPool",
                   {{"ksize", Ints{1, 3, 2, 1}},
                    {"strides", Ints{1, 2, 1, 1}},
                    {"padding", std::string("EXPLICIT")},
                    {"explicit_paddings", Ints{0, 0, 1, 1, 0, 1, 0, 0}}},
                   {distinct({3, 5, 4, 2}, -2, 2, seed)}});
  return cases;
}

HUBIMG_GRAD_CASES(NnPatches) {
  std::vector<GradCase> cases;
  struct PatchCase {
    Dims images;
    Ints ksizes, strides, rates;
    const char* padding;
  };
  const std::vector<PatchCase> patch_cases = {
      {{2, 4, 4, 3}, {1, 2, 2, 1}, {1, 2, 2, 1}, {1, 1, 1, 1}, "VALID"},  // ViT patchify
      {{1, 5, 6, 2}, {1, 3, 3, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}, "SAME"},   // overlapping
      {{1, 7, 5, 1}, {1, 2, 3, 1}, {1, 2, 1, 1}, {1, 2, 1, 1}, "SAME"},   // rates, odd padding
      {{2, 6, 6, 2}, {1, 2, 2, 1}, {1, 3, 2, 1}, {1, 2, 3, 1}, "VALID"},
  };
  uint32_t seed = 4500;
  for (const PatchCase& c : patch_cases) {
    const AttrMap attrs{{"ksizes", c.ksizes},
                        {"strides", c.strides},
                        {"rates", c.rates},
                        {"padding", std::string(c.padding)}};
    cases.push_back({"ExtractImagePatches", attrs, {uniform(c.images, -1, 1, seed++)}});
    // The adjoint: its cotangent input shaped like the patches.
    auto patches = run_op("ExtractImagePatches", std::vector<Tensor>{uniform(c.images, -1, 1, 1)},
                          attrs, "shape");
    if (!patches.ok()) {
      ADD_FAILURE() << patches.status().to_string();
      continue;
    }
    std::vector<int64_t> shape(c.images.begin(), c.images.end());
    GradCase adjoint{"_HubimgExtractImagePatchesGrad",
                     attrs,
                     {uniform((*patches)[0].shape(), -1, 1, seed++), ints64({4}, shape)}};
    adjoint.differentiate = {0};
    cases.push_back(adjoint);
  }
  return cases;
}

HUBIMG_GRAD_CASES(NnTopK) {
  std::vector<GradCase> cases;
  GradCase rows{"TopKV2", {}, {distinct({3, 6}, -2, 2, 4600), scalar_i32(2)}};
  rows.differentiate = {0};
  cases.push_back(rows);
  GradCase deep{"TopKV2",
                {{"index_type", DType::kInt64}},
                {distinct({2, 2, 5}, -2, 2, 4601), ints64({}, {5})}};
  deep.differentiate = {0};
  cases.push_back(deep);
  cases.push_back({"TopK", {{"k", int64_t{3}}}, {distinct({4, 4}, -2, 2, 4602)}});
  return cases;
}

HUBIMG_GRAD_CASES(NnLrn) {
  std::vector<GradCase> cases;
  cases.push_back({"LRN", {}, {uniform({2, 2, 2, 4}, -1, 1, 4700)}});
  cases.push_back({"LRN",
                   {{"depth_radius", int64_t{2}}, {"bias", 2.0f}, {"alpha", 0.3f}, {"beta", 0.75f}},
                   {uniform({1, 3, 2, 9}, -2, 2, 4701)}});
  cases.push_back({"LRN", {{"depth_radius", int64_t{0}}}, {uniform({1, 2, 2, 3}, -1, 1, 4702)}});
  return cases;
}

HUBIMG_GRAD_CASES(NnBatchNormAndBias) {
  std::vector<GradCase> cases;
  uint32_t seed = 5000;
  for (Dims shape : {Dims{1, 3, 4, 2}, Dims{3, 2, 3, 3}}) {
    const int64_t c = shape[3];
    for (const char* op : {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}) {
      for (bool training : {true, false}) {
        GradCase g{op,
                   {{"epsilon", 0.01f}, {"is_training", training}},
                   {uniform(shape, -2, 2, seed++), uniform({c}, 0.5, 1.5, seed++),
                    uniform({c}, -1, 1, seed++),
                    training ? Tensor(DType::kFloat64, {0}) : uniform({c}, -0.5, 0.5, seed++),
                    training ? Tensor(DType::kFloat64, {0}) : uniform({c}, 0.5, 2, seed++)}};
        g.float_type_attrs = {"T", "U"};
        g.differentiate = {0, 1, 2};
        g.cotangent_outputs = {0};  // the statistics outputs carry no gradient in TensorFlow
        g.label = training ? "training" : "inference";
        cases.push_back(g);
      }
    }
    cases.push_back({"BiasAdd", {}, {uniform(shape, -2, 2, seed++), uniform({c}, -1, 1, seed++)}});
    cases.push_back(
        {"BiasAddV1", {}, {uniform(shape, -2, 2, seed++), uniform({c}, -1, 1, seed++)}});
  }
  cases.push_back({"BiasAdd",
                   {{"data_format", std::string("NCHW")}},
                   {uniform({2, 3, 2, 2}, -2, 2, seed++), uniform({3}, -1, 1, seed++)}});
  cases.push_back({"BiasAdd", {}, {uniform({4, 3}, -2, 2, seed++), uniform({3}, -1, 1, seed++)}});
  return cases;
}

HUBIMG_GRAD_CASES(NnMatMul) {
  std::vector<GradCase> cases;
  uint32_t seed = 6000;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const Dims a = ta ? Dims{4, 3} : Dims{3, 4};
      const Dims b = tb ? Dims{5, 4} : Dims{4, 5};
      cases.push_back({"MatMul",
                       {{"transpose_a", ta}, {"transpose_b", tb}},
                       {uniform(a, -1, 1, seed++), uniform(b, -1, 1, seed++)}});
      const Dims ba = ta ? Dims{2, 4, 3} : Dims{2, 3, 4};
      const Dims bb = tb ? Dims{2, 5, 4} : Dims{2, 4, 5};
      for (const char* op : {"BatchMatMul", "BatchMatMulV2"}) {
        cases.push_back({op,
                         {{"adj_x", ta}, {"adj_y", tb}},
                         {uniform(ba, -1, 1, seed++), uniform(bb, -1, 1, seed++)}});
      }
      // Broadcast batch dims: [3,1,m,k] x [2,k,n] and [m,k] x [2,k,n].
      const Dims bx = ta ? Dims{3, 1, 4, 3} : Dims{3, 1, 3, 4};
      GradCase v2{"BatchMatMulV2",
                  {{"adj_x", ta}, {"adj_y", tb}},
                  {uniform(bx, -1, 1, seed++), uniform(bb, -1, 1, seed++)}};
      v2.label = "broadcast [3,1] x [2]";
      cases.push_back(v2);
      GradCase v3{"BatchMatMulV3",
                  {{"adj_x", ta}, {"adj_y", tb}},
                  {uniform(a, -1, 1, seed++), uniform(bb, -1, 1, seed++)}};
      v3.float_type_attrs = {"Ta", "Tb", "Tout"};
      v3.label = "broadcast [] x [2]";
      cases.push_back(v3);
    }
  }
  return cases;
}

// Einsum: the equations of Keras's EinsumDense and MultiHeadAttention, transposes and sums,
// labels summed away in one operand (broadcast back in the gradient), and ellipses that
// broadcast (the gradient summed back over them).
HUBIMG_GRAD_CASES(NnEinsum) {
  struct Equation {
    const char* equation;
    std::vector<Dims> shapes;
  };
  const std::vector<Equation> equations = {
      {"abc,cd->abd", {{2, 3, 4}, {4, 5}}},               // EinsumDense
      {"abcd,cde->abe", {{2, 3, 4, 2}, {4, 2, 3}}},       // attention output projection
      {"aecd,abcd->acbe", {{2, 5, 3, 4}, {2, 6, 3, 4}}},  // query . key
      {"acbe,aecd->abcd", {{2, 3, 6, 5}, {2, 5, 3, 4}}},  // scores . value
      {"abc,cde->abde", {{2, 3, 4}, {4, 3, 2}}},          // query/key/value projection
      {"ij->ji", {{3, 4}}},
      {"ij->i", {{3, 4}}},
      {"ij->", {{3, 4}}},
      {"bij->jb", {{2, 3, 4}}},
      {"...ij->...j", {{2, 3, 4}}},
      {"ij,jk->ik", {{2, 3}, {3, 4}}},
      {"bij,bjk->bik", {{2, 2, 3}, {2, 3, 4}}},
      {"ij,ij->ij", {{2, 3}, {2, 3}}},
      {"i,j->ij", {{3}, {4}}},
      {"ij,jk->", {{2, 3}, {3, 4}}},
      {"abc,ad->bd", {{2, 3, 4}, {2, 5}}},  // c summed away in x only
      {"...ij,j->...", {{2, 3, 4}, {4}}},   // i summed away, after the ellipsis
      {"...ij,...jk->...ik", {{2, 3, 4, 5}, {2, 3, 5, 2}}},
      {"...ij,...jk->...ik", {{2, 3, 4, 5}, {3, 5, 2}}},
      {"...ij,...jk->...ik", {{2, 1, 4, 5}, {3, 5, 2}}},  // both operands broadcast
      {"...ij,jk->...ik", {{2, 3, 4}, {4, 2}}},
      {"ij...,jk->ik...", {{2, 3, 4}, {3, 5}}},
  };
  std::vector<GradCase> cases;
  uint32_t seed = 9100;
  for (const Equation& e : equations) {
    GradCase c{
        "Einsum",
        {{"equation", std::string(e.equation)}, {"N", static_cast<int64_t>(e.shapes.size())}},
        {}};
    for (const Dims& shape : e.shapes) c.inputs.push_back(uniform(shape, -1, 1, seed++));
    c.label = e.equation;
    cases.push_back(c);
  }
  return cases;
}

TEST(EinsumGradient, ADiagonalIsAClearErrorNamingTheNode) {
  // The gradient of "ii->i" writes a diagonal: an einsum with a repeated output label, which
  // the kernel does not support.
  GradCase c{"Einsum",
             {{"equation", std::string("ii->i")}, {"N", int64_t{1}}},
             {uniform({3, 3}, -1, 1, 1)}};
  GradCheckReport r = check_gradient(c);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("(Einsum): repeated output labels are not supported in einsum "
                           "equation 'i->ii'"),
            std::string::npos)
      << r.message;
}

}  // namespace
}  // namespace hubimg::ops::testing
