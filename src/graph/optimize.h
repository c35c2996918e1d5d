// Inference-time graph rewrites: variables frozen into constants, constant folding, batch norm
// folded into the preceding convolution. The result computes the same function as the input
// graph (up to float rounding) for the variable values it was built with.
#pragma once

#include <memory>
#include <span>

#include "graph/graph.h"
#include "hubimg/status.h"

namespace hubimg::graph {

struct OptimizeOptions {
  bool freeze_variables = true;  // ReadVariableOp -> Const holding the variable's value
  bool fold_constants = true;
  bool fold_batch_norm = true;
  // Conv2D / DepthwiseConv2dNative / MatMul + bias + residual + activation -> one node.
  bool fuse = true;
  // Fused nodes get a prepared fast kernel (weights packed once) where the backend takes them.
  bool fast_kernels = true;
  // Constants larger than this are not produced by folding (they would cost memory).
  size_t max_folded_bytes = size_t{64} << 20;
};

struct OptimizeStats {
  int variables_frozen = 0;
  int nodes_folded = 0;
  int batch_norms_folded = 0;
  int dilated_convs_folded = 0;  // SpaceToBatchND -> conv -> BatchToSpaceND
  int layers_fused = 0;
  int fast_kernels = 0;
  int nodes_before = 0;
  int nodes_after = 0;
};

// Graphs with side effects (variable updates) are returned unchanged.
Expected<std::shared_ptr<Graph>> optimize_for_inference(const Graph& graph,
                                                        std::span<Variable* const> variables,
                                                        const OptimizeOptions& options = {},
                                                        OptimizeStats* stats = nullptr);

}  // namespace hubimg::graph
