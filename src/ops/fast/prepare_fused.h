// Fast kernels for the optimizer's fused nodes (src/ops/fused_ops.cc).
#pragma once

#include <memory>
#include <string>

#include "core/attrs.h"
#include "hubimg/status.h"
#include "ops/op_registry.h"

namespace hubimg::ops::fast {

// A prepared kernel for a `_HubimgFused*` node with constant `filter` (and `bias`, invalid when
// the node has none), or kUnimplemented when the fast backend does not take it; the node then
// keeps its reference kernel.
Expected<std::shared_ptr<const PreparedKernel>> prepare_fused(const std::string& node_name,
                                                              const std::string& op,
                                                              const AttrMap& attrs,
                                                              const Tensor& filter,
                                                              const Tensor& bias);

}  // namespace hubimg::ops::fast
