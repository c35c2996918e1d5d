// Gradient rules of the nn op family (TensorFlow's definitions: tensorflow/python/ops/*_grad.py).
#include "ops/gradient.h"
#include "ops/op_registry.h"

namespace hubimg::ops {

void register_nn_gradients(OpRegistry& r) {}

}  // namespace hubimg::ops
