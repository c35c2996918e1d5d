#include "ops/op_registry.h"

namespace hubimg::ops {

void register_state_ops(OpRegistry& r) {}

}  // namespace hubimg::ops
