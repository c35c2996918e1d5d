#include "ops/op_registry.h"

namespace hubimg::ops {

void register_math_ops(OpRegistry& r) {}

}  // namespace hubimg::ops
