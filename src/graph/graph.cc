#include "graph/graph.h"

namespace hubimg::graph {
namespace {

// What the node itself says about its outputs: a Const's value, TensorFlow's `_output_shapes`
// annotation. Entries already set by the caller (argument specs) are kept.
void note_output_types(Node& node) {
  const size_t n = static_cast<size_t>(node.num_outputs);
  if (node.op == "Const") {
    if (const auto* value = std::get_if<Tensor>(node.attrs.find("value"))) {
      node.output_dtypes = {value->dtype()};
      node.output_shapes = {PartialShape::known(value->shape())};
    }
  }
  if (node.output_shapes.empty()) {
    if (const auto* shapes =
            std::get_if<std::vector<PartialShape>>(node.attrs.find("_output_shapes"));
        shapes != nullptr && shapes->size() == n) {
      node.output_shapes = *shapes;
    }
  }
  if (!node.output_dtypes.empty()) node.output_dtypes.resize(n, DType::kInvalid);
  if (!node.output_shapes.empty()) node.output_shapes.resize(n, PartialShape::unknown());
}

}  // namespace

Expected<int> append_node(Graph& g, Node node) {
  auto where = [&] {
    return "node '" + node.name + "'" +
           (node.function.empty() ? std::string() : " in function '" + node.function + "'");
  };
  if (node.op == kArgOp || node.unimplemented) {
    node.spec = nullptr;
    node.num_outputs = 1;
  } else {
    node.spec = ops::OpRegistry::global().find(node.op);
    if (node.spec == nullptr) {
      return unimplemented("op '" + node.op + "' is not implemented (" + where() + ")");
    }
    auto sizes = ops::output_arg_sizes(*node.spec, node.attrs);
    if (!sizes.ok()) return sizes.status().with_context(where());
    node.num_outputs = 0;
    for (size_t s : *sizes) node.num_outputs += static_cast<int>(s);
  }
  note_output_types(node);
  g.nodes.push_back(std::move(node));
  return static_cast<int>(g.nodes.size()) - 1;
}

void prune(Graph& g) {
  std::vector<char> live(g.nodes.size(), 0);
  std::vector<int> stack;
  for (const auto& o : g.outputs) stack.push_back(o.node);
  for (int s : g.side_effect_nodes) stack.push_back(s);
  for (int a : g.arg_nodes) stack.push_back(a);
  while (!stack.empty()) {
    int i = stack.back();
    stack.pop_back();
    if (i < 0 || live[static_cast<size_t>(i)]) continue;
    live[static_cast<size_t>(i)] = 1;
    for (const auto& in : g.nodes[static_cast<size_t>(i)].inputs) stack.push_back(in.node);
    for (int c : g.nodes[static_cast<size_t>(i)].control_inputs) stack.push_back(c);
  }
  std::vector<int> remap(g.nodes.size(), -1);
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!live[i]) continue;
    remap[i] = static_cast<int>(kept.size());
    kept.push_back(std::move(g.nodes[i]));
  }
  for (auto& n : kept) {
    for (auto& in : n.inputs) in.node = remap[static_cast<size_t>(in.node)];
    std::vector<int> controls;
    for (int c : n.control_inputs) {
      if (remap[static_cast<size_t>(c)] >= 0) controls.push_back(remap[static_cast<size_t>(c)]);
    }
    n.control_inputs = std::move(controls);
  }
  for (auto& o : g.outputs) o.node = remap[static_cast<size_t>(o.node)];
  for (auto& a : g.arg_nodes) a = remap[static_cast<size_t>(a)];
  for (auto& s : g.side_effect_nodes) s = remap[static_cast<size_t>(s)];
  g.nodes = std::move(kept);
}

Status check_implemented(const Graph& g) {
  for (const Node& n : g.nodes) {
    if (n.unimplemented) {
      return unimplemented("op '" + n.op + "' is not implemented (node '" + n.name + "'" +
                           (n.function.empty() ? std::string(" of the graph")
                                               : " in function '" + n.function + "'") +
                           ")");
    }
    for (const auto& branch : n.branches) HUBIMG_RETURN_IF_ERROR(check_implemented(*branch));
  }
  return {};
}

}  // namespace hubimg::graph
