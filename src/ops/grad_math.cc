// Gradient rules of the math op family (TensorFlow's definitions: tensorflow/python/ops/*_grad.py).
#include "ops/gradient.h"
#include "ops/op_registry.h"

namespace hubimg::ops {

void register_math_gradients(OpRegistry& r) {}

}  // namespace hubimg::ops
