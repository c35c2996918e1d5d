// Runs a Graph on concrete inputs with the reference kernels, node by node in topological
// order, releasing each intermediate tensor after its last use.
#pragma once

#include <span>
#include <vector>

#include "graph/graph.h"
#include "hubimg/status.h"
#include "ops/variable.h"

namespace hubimg::exec {

struct RunStats {
  int64_t nodes_run = 0;
};

Expected<std::vector<Tensor>> run_graph(const graph::Graph& graph, std::span<const Tensor> inputs,
                                        std::span<ops::Variable* const> variables,
                                        RunStats* stats = nullptr);

}  // namespace hubimg::exec
