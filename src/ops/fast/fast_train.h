// Fast kernels of the op entries a training step runs unfused (Conv2D, DepthwiseConv2dNative,
// MatMul, FusedBatchNormV3 training); registered by register_fast_training_kernels
// (op_registry.h). See fast_train.cc.
#pragma once

#include <cstdint>
#include <string_view>

#include "hubimg/status.h"
#include "ops/op_registry.h"

namespace hubimg::ops::fast {

// How many times a training fast kernel ran on oneDNN (rather than falling back to the
// reference kernel) since the process started; for tests.
int64_t training_fast_path_runs();

// Runs only the fast path of `op`'s training fast kernel on `ctx` (no reference fallback):
// kUnimplemented when the fast path does not take the case or `op` has none. For tests of the
// backward ops before (or without) their reference kernels in the op table.
Status run_training_fast_path(std::string_view op, KernelContext& ctx);

}  // namespace hubimg::ops::fast
