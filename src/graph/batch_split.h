// Whether a graph treats the rows of its inputs (dimension 0, the batch) independently: output
// row i depends on input row i alone. Such a graph can run a large batch as several smaller ones
// — in parallel on different cores, each small enough for its activations to stay in cache —
// and give the same result. Inference graphs of image models are like this (batch norm uses its
// moving statistics); a training graph or one that reshapes across the batch is not.
//
// The analysis is conservative: an op it does not know, an attribute it cannot read, or an axis
// it cannot resolve makes the answer "no".
#pragma once

#include <span>
#include <string>

#include "graph/graph.h"

namespace hubimg::graph {

struct RowIndependence {
  bool independent = false;
  std::string reason;  // why not (naming the node), for logs and tests
};

// `input_ranks`: the rank of each graph input (the analysis needs ranks to resolve negative
// axes and broadcasting).
RowIndependence rows_are_independent(const Graph& graph, std::span<const int> input_ranks);

}  // namespace hubimg::graph
