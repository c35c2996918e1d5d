// The executable IR: one flat, topologically sorted list of op nodes made from a concrete
// function with every call inlined, function-style tensor names resolved, variables bound and
// identities removed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/attrs.h"
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
  // nullptr for kArg nodes and for placeholders of ops without an entry (`unimplemented`).
  const ops::OpSpec* spec = nullptr;
  // An op hubimg does not implement, kept while building so that it fails only when a
  // requested output or a variable write needs it (see check_implemented). Its output names
  // are unknown: every reference to one of its outputs resolves to its output 0.
  bool unimplemented = false;
  std::vector<ValueRef> inputs;
  std::vector<int> control_inputs;
  std::vector<int> variables;  // indices into the model's variable table
  int num_outputs = 1;
  // Dtype of each output where known (kInvalid or absent: unknown); see value_dtype().
  std::vector<DType> output_dtypes;
  // Shape of each output where known (from the `_output_shapes` attribute or a Const's value;
  // absent or unknown rank: unknown).
  std::vector<PartialShape> output_shapes;
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

// Appends `node` to `g` and returns its index: looks up the op's entry (none for kArgOp nodes)
// and sizes the outputs from the entry's output args and the node's attributes. Fails, naming
// op and node, when the op has no entry (unless the node is marked `unimplemented`) or an
// attribute sizing an output list is missing.
Expected<int> append_node(Graph& g, Node node);

// Drops the nodes that no output, side-effect node or control dependency of those needs
// (argument nodes stay) and renumbers the rest, keeping the order.
void prune(Graph& g);

// Fails, naming op, node and function, when a placeholder of an unimplemented op is left in
// `g` or in one of its branch graphs (call after prune()).
Status check_implemented(const Graph& g);

// The branch an If (condition) or Case (index) selector picks.
size_t branch_index(const Tensor& selector, bool is_if, size_t num_branches);

// Whether a graph of this op can be built and run: the op has an entry in the op table, or the
// builder resolves it itself (calls, variables, placeholders, NoOp, TF1's tf.cond). A function
// of the model's library named like an op is not considered here.
bool op_is_runnable(std::string_view op);

// Builds the graph of a TF2 concrete function, its captures bound to the model's variables.
Expected<std::shared_ptr<Graph>> build_function_graph(const format::SavedModel& model,
                                                      const format::ConcreteFunction& function,
                                                      const std::string& description);

// Builds a TF1 signature's graph from the top-level GraphDef (inputs in sorted key order of
// `signature.inputs`, outputs in sorted key order of `signature.outputs`).
Expected<std::shared_ptr<Graph>> build_tf1_signature_graph(const format::SavedModel& model,
                                                           const format::Signature& signature);

}  // namespace hubimg::graph
