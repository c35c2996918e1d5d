// Reverse-mode automatic differentiation over a flat Graph. The backward nodes are appended to
// the same graph (ggml's way), so one executor run computes the forward values, the variable
// writes and the gradients, freeing each activation after its last backward use.
#pragma once

#include <vector>

#include "graph/graph.h"
#include "hubimg/status.h"

namespace hubimg::graph {

struct GradientRequest {
  // The differentiated outputs and, for each, a value in the graph holding its cotangent
  // (usually an argument node added for it). L = sum_k sum(cotangent_k * y_k).
  std::vector<ValueRef> ys;
  std::vector<ValueRef> cotangents;
  // dL/dv for these model variables (indices into the model's variable table): the sum over
  // every ReadVariableOp of the variable.
  std::vector<int> variables;
  // dL/dx for these values (e.g. the graph's float argument nodes).
  std::vector<ValueRef> values;
};

struct GradientResult {
  // Parallel to the request's lists; node < 0 where no gradient flows (the caller supplies
  // zeros of the right shape).
  std::vector<ValueRef> variable_grads;
  std::vector<ValueRef> value_grads;
  int nodes_added = 0;
};

// Appends the backward pass for `request` to `g` (nodes stay topologically sorted). Fails, naming
// op and node, where a node on a path from a requested variable or value to a `ys` output has
// no gradient rule.
Expected<GradientResult> append_gradients(Graph& g, const GradientRequest& request);

// The dtype of a value where the graph knows it (from the node's attributes), else kInvalid.
DType value_dtype(const Graph& g, ValueRef v);

}  // namespace hubimg::graph
