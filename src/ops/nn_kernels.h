// Registration functions for the neural-network op groups; register_nn_ops (nn_ops.cc) calls
// each of them.
#pragma once

#include <array>
#include <string_view>

#include "ops/op_registry.h"

namespace hubimg::ops::nn {

struct MatMulDims {
  int64_t m = 0;  // rows of the result
  int64_t k = 0;  // contracted size
  int64_t n = 0;  // columns of the result
  bool transpose_a = false;
  bool transpose_b = false;
};

// One float32 product out[m, n] = op(a) x op(b), row-major, op transposing a stored [k, m] or
// [n, k]; false when it declines (the reference loop then runs).
using MatrixProduct = bool (*)(const float* a, const float* b, const MatMulDims& d, float* out);

// The ops whose kernels are a stack of matrix products.
inline constexpr std::array<const char*, 4> kBatchedMatMulOps = {"BatchMatMul", "BatchMatMulV2",
                                                                 "BatchMatMulV3", "Einsum"};
// The kernel of one of kBatchedMatMulOps with its float32 matrix products done by `product`
// (nullptr: the reference loop). The fast kernels (src/ops/fast/fast_train.cc) pass oneDNN's
// GEMM; everything else (checks, errors, the einsum plan, other dtypes) is the reference code.
Expected<Kernel> batched_matmul_kernel(std::string_view op, MatrixProduct product);

void register_activation_ops(OpRegistry& r);  // Relu ... Softmax, LogSoftmax
void register_conv_ops(OpRegistry& r);        // Conv2D, DepthwiseConv2dNative
void register_pool_ops(OpRegistry& r);        // AvgPool, MaxPool, MaxPoolV2
void register_patch_ops(OpRegistry& r);       // ExtractImagePatches and its adjoint
void register_top_k_ops(OpRegistry& r);       // TopKV2, TopK
void register_lrn_ops(OpRegistry& r);         // LRN, LRNGrad
void register_norm_ops(OpRegistry& r);        // FusedBatchNorm*, BiasAdd, BiasAddV1
void register_matmul_ops(OpRegistry& r);      // MatMul, BatchMatMul*, Einsum

}  // namespace hubimg::ops::nn
