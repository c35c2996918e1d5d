// Fast kernels of the op entries a training step runs unfused (Conv2D, DepthwiseConv2dNative,
// MatMul, FusedBatchNormV3 training); registered by register_fast_training_kernels
// (op_registry.h). See fast_train.cc.
#pragma once

#include <cstdint>

namespace hubimg::ops::fast {

// How many times a training fast kernel ran on oneDNN (rather than falling back to the
// reference kernel) since the process started; for tests.
int64_t training_fast_path_runs();

}  // namespace hubimg::ops::fast
