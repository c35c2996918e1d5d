// Reference vs fast (op entries' fast_kernel, src/ops/fast/fast_train.cc) timings of the ops a
// MobileNetV2 (224x224) batch-32 training step runs unfused, on that network's layer shapes.
// Usage: train_kernels [repetitions of the fast kernel, default 10] [substring of the case labels
// to run]. Threads: HUBIMG_NUM_THREADS.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "ops/op_registry.h"

namespace {
using hubimg::AttrMap;

using hubimg::Dims;
using hubimg::DType;
using hubimg::Tensor;

using hubimg::ops::KernelContext;
using hubimg::ops::OpRegistry;
using Ints = std::vector<int64_t>;

Tensor random_tensor(const Dims& shape, uint32_t seed, float low = -1.0f, float high = 1.0f) {
  Tensor t(DType::kFloat32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(low, high);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.mutable_data<float>()[i] = dist(rng);
  return t;
}

struct Case {
  std::string label, op;
  std::vector<Tensor> inputs;
  AttrMap attrs;
};

// Milliseconds per run of the entry's reference (fast == false) or fast kernel.
double time_ms(const Case& c, bool fast, int repetitions) {
  const auto* spec = OpRegistry::global().find(c.op);
  const auto& kernel = fast ? spec->fast_kernel : spec->kernel;
  auto run = [&] {
    const size_t outputs = c.op == "FusedBatchNormV3" ? 6 : c.op == "FusedBatchNormGradV3" ? 5 : 1;
    KernelContext ctx("bench", c.op, c.attrs, c.inputs, outputs);
    auto status = kernel(ctx);
    if (!status.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.label.c_str(), status.to_string().c_str());
      std::exit(1);
    }
  };
  run();  // warm-up: primitive creation
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < repetitions; ++i) run();
  const std::chrono::duration<double, std::milli> elapsed =
      std::chrono::steady_clock::now() - start;
  return elapsed.count() / repetitions;
}

AttrMap conv_attrs(int64_t stride) {
  return AttrMap{{"strides", Ints{1, stride, stride, 1}}, {"padding", std::string("SAME")}};
}

}  // namespace

int main(int argc, char** argv) {
  const int repetitions = argc > 1 ? std::atoi(argv[1]) : 10;
  const char* filter = argc > 2 ? argv[2] : nullptr;
  const int64_t n = 32;
  uint32_t seed = 1;
  std::vector<Case> cases;
  auto conv = [&](int64_t hw, int64_t in, int64_t out, int64_t k, int64_t stride) {
    cases.push_back(
        {"Conv2D " + std::to_string(hw) + "x" + std::to_string(hw) + "x" + std::to_string(in) +
             " k" + std::to_string(k) + " s" + std::to_string(stride) + " ->" + std::to_string(out),
         "Conv2D",
         {random_tensor({n, hw, hw, in}, seed++), random_tensor({k, k, in, out}, seed++)},
         conv_attrs(stride)});
  };
  auto depthwise = [&](int64_t hw, int64_t c, int64_t stride) {
    cases.push_back({"Depthwise " + std::to_string(hw) + "x" + std::to_string(hw) + "x" +
                         std::to_string(c) + " s" + std::to_string(stride),
                     "DepthwiseConv2dNative",
                     {random_tensor({n, hw, hw, c}, seed++), random_tensor({3, 3, c, 1}, seed++)},
                     conv_attrs(stride)});
  };
  auto batch_norm = [&](int64_t hw, int64_t c) {
    cases.push_back(
        {"FusedBatchNormV3 train " + std::to_string(hw) + "x" + std::to_string(hw) + "x" +
             std::to_string(c),
         "FusedBatchNormV3",
         {random_tensor({n, hw, hw, c}, seed++), random_tensor({c}, seed++),
          random_tensor({c}, seed++), random_tensor({c}, seed++),
          random_tensor({c}, seed++, 0.5f, 1.0f)},
         AttrMap{{"epsilon", 1e-3f}, {"is_training", true}, {"exponential_avg_factor", 0.01f}}});
  };
  conv(224, 3, 32, 3, 2);
  conv(112, 16, 96, 1, 1);
  conv(56, 144, 24, 1, 1);
  conv(28, 192, 32, 1, 1);
  conv(14, 384, 64, 1, 1);
  conv(7, 960, 160, 1, 1);
  conv(7, 320, 1280, 1, 1);
  depthwise(112, 32, 1);
  depthwise(112, 96, 2);
  depthwise(56, 144, 1);
  depthwise(28, 192, 1);
  depthwise(14, 384, 1);
  depthwise(7, 960, 1);
  batch_norm(112, 96);
  batch_norm(56, 144);
  batch_norm(14, 384);
  batch_norm(7, 1280);
  cases.push_back({"MatMul 32x1280 * 1280x1000",
                   "MatMul",
                   {random_tensor({n, 1280}, seed++), random_tensor({1280, 1000}, seed++)},
                   AttrMap{}});
  cases.push_back({"MatMul (32x1280)^T * 32x1000 (dW)",
                   "MatMul",
                   {random_tensor({n, 1280}, seed++), random_tensor({n, 1000}, seed++)},
                   AttrMap{{"transpose_a", true}}});
  cases.push_back({"MatMul 32x1000 * (1280x1000)^T (dx)",
                   "MatMul",
                   {random_tensor({n, 1000}, seed++), random_tensor({1280, 1000}, seed++)},
                   AttrMap{{"transpose_b", true}}});
  auto shape = [](const Dims& d) {
    Tensor t(DType::kInt32, {4});
    for (int i = 0; i < 4; ++i) t.mutable_data<int32_t>()[i] = static_cast<int32_t>(d[i]);
    return t;
  };
  auto conv_backward = [&](int64_t hw, int64_t in, int64_t out, int64_t k, int64_t stride,
                           bool depthwise) {
    const int64_t out_hw = (hw + stride - 1) / stride;
    const int64_t out_c = depthwise ? in : out;
    const std::string op = depthwise ? "DepthwiseConv2dNative" : "Conv2D";
    const std::string label = " " + std::to_string(hw) + "x" + std::to_string(hw) + "x" +
                              std::to_string(in) + " k" + std::to_string(k) + " s" +
                              std::to_string(stride) + " ->" + std::to_string(out_c);
    const Dims x = {n, hw, hw, in}, w = {k, k, in, depthwise ? 1 : out};
    const Tensor dy = random_tensor({n, out_hw, out_hw, out_c}, seed++);
    cases.push_back({op + "BackpropInput" + label,
                     op + "BackpropInput",
                     {shape(x), random_tensor(w, seed++), dy},
                     conv_attrs(stride)});
    cases.push_back({op + "BackpropFilter" + label,
                     op + "BackpropFilter",
                     {random_tensor(x, seed++), shape(w), dy},
                     conv_attrs(stride)});
  };
  conv_backward(112, 16, 96, 1, 1, false);
  conv_backward(14, 384, 64, 1, 1, false);
  conv_backward(112, 96, 96, 3, 2, true);
  conv_backward(56, 144, 144, 3, 1, true);
  {
    const Dims x = {n, 56, 56, 144};
    cases.push_back({"FusedBatchNormGradV3 56x56x144",
                     "FusedBatchNormGradV3",
                     {random_tensor(x, seed++), random_tensor(x, seed++),
                      random_tensor({144}, seed++), random_tensor({144}, seed++),
                      random_tensor({144}, seed++, 0.5f, 1.0f), Tensor(DType::kFloat32, {})},
                     AttrMap{{"epsilon", 1e-3f}, {"is_training", true}}});
    cases.push_back({"ReluGrad 56x56x144",
                     "ReluGrad",
                     {random_tensor(x, seed++), random_tensor(x, seed++)},
                     AttrMap{}});
    cases.push_back({"Relu6Grad 56x56x144",
                     "Relu6Grad",
                     {random_tensor(x, seed++), random_tensor(x, seed++)},
                     AttrMap{}});
    cases.push_back(
        {"BiasAddGrad 56x56x144", "BiasAddGrad", {random_tensor(x, seed++)}, AttrMap{}});
    const AttrMap pool{{"ksize", Ints{1, 3, 3, 1}},
                       {"strides", Ints{1, 2, 2, 1}},
                       {"padding", std::string("SAME")}};
    const Dims y = {n, 28, 28, 144};
    cases.push_back({"MaxPoolGrad 56x56x144 k3 s2",
                     "MaxPoolGrad",
                     {random_tensor(x, seed++), random_tensor(y, seed++), random_tensor(y, seed++)},
                     pool});
    cases.push_back(
        {"AvgPoolGrad 56x56x144 k3 s2", "AvgPoolGrad", {shape(x), random_tensor(y, seed++)}, pool});
  }
  std::printf("%-40s %12s %12s %9s\n", "op (batch 32)", "reference ms", "fast ms", "speedup");
  for (const Case& c : cases) {
    if (filter != nullptr && c.label.find(filter) == std::string::npos) continue;
    const double reference = time_ms(c, /*fast=*/false, 1);
    const double fast = time_ms(c, /*fast=*/true, repetitions);
    std::printf("%-40s %12.2f %12.3f %8.1fx\n", c.label.c_str(), reference, fast, reference / fast);
    std::fflush(stdout);
  }
  return 0;
}
