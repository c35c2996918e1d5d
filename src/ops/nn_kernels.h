// Registration functions for the neural-network op groups; register_nn_ops (nn_ops.cc) calls
// each of them.
#pragma once

#include "ops/op_registry.h"

namespace hubimg::ops::nn {

void register_activation_ops(OpRegistry& r);  // Relu ... Softmax, LogSoftmax
void register_conv_ops(OpRegistry& r);        // Conv2D, DepthwiseConv2dNative
void register_pool_ops(OpRegistry& r);        // AvgPool, MaxPool, MaxPoolV2
void register_norm_ops(OpRegistry& r);        // FusedBatchNorm*, BiasAdd, BiasAddV1
void register_matmul_ops(OpRegistry& r);      // MatMul, BatchMatMul*, Einsum

}  // namespace hubimg::ops::nn
