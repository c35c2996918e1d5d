// The executable IR: one flat, topologically sorted list of op nodes made from a concrete
// function with every call inlined, function-style tensor names resolved, variables bound and
// identities removed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "graph/attrs.h"
#include "hubimg/status.h"
#include "ops/op_registry.h"

namespace hubimg::format {
class SavedModel;
struct ConcreteFunction;
struct Signature;
}  // namespace hubimg::format

namespace hubimg::graph {

struct ValueRef {
  int node = -1;
  int index = 0;
  bool operator==(const ValueRef&) const = default;
};

struct Node {
  std::string name;  // scoped by the call path, e.g. "sequential/conv2d/Conv2D"
  std::string op;
  std::string function;  // the FunctionDef the node came from, for messages
  AttrMap attrs;
  const ops::OpSpec* spec = nullptr;  // nullptr only for kArg nodes
  std::vector<ValueRef> inputs;
  std::vector<int> control_inputs;
  std::vector<int> variables;  // indices into the model's variable table
  int num_outputs = 1;
  // Dtype of each output where known (kInvalid or absent: unknown); see value_dtype().
  std::vector<DType> output_dtypes;
  int arg_index = -1;  // for argument nodes: position among the graph's inputs
  // If/Case decided at run time: one graph per branch, taking the node's inputs after the
  // condition (or branch index).
  std::vector<std::shared_ptr<struct Graph>> branches;
  // Set by the optimizer: runs instead of spec->kernel.
  std::shared_ptr<const ops::PreparedKernel> prepared;
};

struct Graph {
  std::vector<Node> nodes;  // topologically sorted
  std::vector<int> arg_nodes;
  std::vector<ValueRef> outputs;
  std::vector<int> side_effect_nodes;  // stateful nodes to run even if no output needs them
  std::string description;             // "root.__call__ trace __inference_x (training=False)"
};

constexpr char kArgOp[] = "_Arg";

// The branch an If (condition) or Case (index) selector picks.
size_t branch_index(const Tensor& selector, bool is_if, size_t num_branches);

// Builds the graph of a TF2 concrete function, its captures bound to the model's variables.
Expected<std::shared_ptr<Graph>> build_function_graph(const format::SavedModel& model,
                                                      const format::ConcreteFunction& function,
                                                      const std::string& description);

// Builds a TF1 signature's graph from the top-level GraphDef (inputs in sorted key order of
// `signature.inputs`, outputs in sorted key order of `signature.outputs`).
Expected<std::shared_ptr<Graph>> build_tf1_signature_graph(const format::SavedModel& model,
                                                           const format::Signature& signature);

}  // namespace hubimg::graph
