// Runs a Graph on concrete inputs with the reference kernels, node by node in topological
// order, releasing each intermediate tensor after its last use.
#pragma once

#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "hubimg/status.h"
#include "ops/variable.h"

namespace hubimg::exec {

struct RunStats {
  // Time each kernel (ms_by_op, calls_by_op); the other fields are always filled.
  bool time_ops = true;
  int64_t nodes_run = 0;
  // The largest single value any node produced, in bytes.
  size_t largest_value_bytes = 0;
  // Kernel time and calls per op type (filled when the caller passes stats).
  std::map<std::string, double> ms_by_op;
  std::map<std::string, int64_t> calls_by_op;
  std::map<std::string, double> ms_by_node;  // by node name
  // When set, called before each kernel runs, with the node and its input values (to look at
  // intermediate values, e.g. which branch each ReLU unit takes).
  std::function<void(const graph::Node&, std::span<const Tensor>)> before_node;
};

// Fills inputs that depend on the graph's own results (a cotangent computed from the forward
// outputs). The nodes that depend on an empty input run after all the others; `late` is called
// between the two, with the graph outputs computed so far (empty where not yet computed).
using LateInputs =
    std::function<Status(const std::vector<Tensor>& outputs_so_far, std::vector<Tensor>& inputs)>;

// `late`: when set, inputs may be empty tensors until it fills them.
Expected<std::vector<Tensor>> run_graph(const graph::Graph& graph, std::span<const Tensor> inputs,
                                        std::span<ops::Variable* const> variables,
                                        RunStats* stats = nullptr,
                                        const LateInputs* late = nullptr);

}  // namespace hubimg::exec
