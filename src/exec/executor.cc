#include "exec/executor.h"

#include <algorithm>
#include <chrono>

#include "ops/fast_paths.h"

namespace hubimg::exec {

Expected<std::vector<Tensor>> run_graph(const graph::Graph& graph, std::span<const Tensor> inputs,
                                        std::span<ops::Variable* const> variables, RunStats* stats,
                                        const LateInputs* late) {
  const size_t n = graph.nodes.size();
  if (inputs.size() != graph.arg_nodes.size()) {
    return invalid_argument(graph.description + ": expects " +
                            std::to_string(graph.arg_nodes.size()) + " inputs, got " +
                            std::to_string(inputs.size()));
  }
  // Remaining uses of each node's outputs; graph outputs hold one extra use each.
  std::vector<int> uses(n, 0);
  for (const auto& node : graph.nodes) {
    for (const auto& in : node.inputs) ++uses[static_cast<size_t>(in.node)];
  }
  for (const auto& o : graph.outputs) ++uses[static_cast<size_t>(o.node)];

  std::vector<std::vector<Tensor>> values(n);
  // With late inputs, the nodes that depend on them run after all the others, once `late` has
  // supplied them (the forward outputs are then computed).
  std::vector<Tensor> late_inputs;
  constexpr size_t kCallLate = static_cast<size_t>(-1);
  std::vector<size_t> order;
  order.reserve(n + 1);
  if (late) {
    late_inputs.assign(inputs.begin(), inputs.end());
    std::vector<bool> deferred(n, false);
    for (size_t i = 0; i < n; ++i) {
      const graph::Node& node = graph.nodes[i];
      if (node.op == graph::kArgOp) {
        deferred[i] = !late_inputs[static_cast<size_t>(node.arg_index)].valid();
      }
      for (const auto& in : node.inputs) {
        if (deferred[static_cast<size_t>(in.node)]) deferred[i] = true;
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (!deferred[i]) order.push_back(i);
    }
    order.push_back(kCallLate);
    for (size_t i = 0; i < n; ++i) {
      if (deferred[i]) order.push_back(i);
    }
  } else {
    for (size_t i = 0; i < n; ++i) order.push_back(i);
  }
  std::vector<Tensor> node_inputs;
  std::vector<ops::Variable*> node_variables;
  for (const size_t i : order) {
    if (i == kCallLate) {
      std::vector<Tensor> so_far;
      for (const auto& o : graph.outputs) {
        const auto& v = values[static_cast<size_t>(o.node)];
        so_far.push_back(static_cast<size_t>(o.index) < v.size() ? v[static_cast<size_t>(o.index)]
                                                                 : Tensor());
      }
      HUBIMG_RETURN_IF_ERROR((*late)(so_far, late_inputs));
      continue;
    }
    const graph::Node& node = graph.nodes[i];
    if (node.op == graph::kArgOp) {
      const auto at = static_cast<size_t>(node.arg_index);
      if (late && !late_inputs[at].valid()) {
        return internal_error(graph.description + ": input " + std::to_string(at) +
                              " was not supplied");
      }
      values[i] = {late ? late_inputs[at] : inputs[at]};
      continue;
    }
    if (node.op == "Const" && node.inputs.empty()) {
      // A constant is its attribute; no kernel call (they are a third of an optimized graph's
      // nodes, mostly weights the fused kernels have packed already).
      if (const auto* value = std::get_if<Tensor>(node.attrs.find("value"))) {
        values[i] = {*value};
        continue;
      }
    }
    node_inputs.clear();
    for (const auto& in : node.inputs) {
      Tensor& value = values[static_cast<size_t>(in.node)][static_cast<size_t>(in.index)];
      // At its last use a value moves into the kernel's inputs, so a kernel that finds it the
      // sole owner of its buffer may write its output there.
      if (uses[static_cast<size_t>(in.node)] == 1) {
        node_inputs.push_back(std::move(value));
      } else {
        node_inputs.push_back(value);
      }
    }
    node_variables.clear();
    for (int v : node.variables) {
      if (v < 0 || static_cast<size_t>(v) >= variables.size()) {
        return internal_error(graph.description + ": node '" + node.name +
                              "' refers to a missing variable");
      }
      node_variables.push_back(variables[static_cast<size_t>(v)]);
    }
    if (!node.branches.empty()) {
      const bool is_if = node.op == "If" || node.op == "StatelessIf";
      size_t k = graph::branch_index(node_inputs[0], is_if, node.branches.size());
      auto outs = run_graph(*node.branches[k], std::span<const Tensor>(node_inputs).subspan(1),
                            variables, stats);
      if (!outs.ok()) return outs.status();
      if (outs->size() != static_cast<size_t>(node.num_outputs)) {
        return internal_error(graph.description + ": node '" + node.name + "' branch " +
                              std::to_string(k) + " returned " + std::to_string(outs->size()) +
                              " values, the node has " + std::to_string(node.num_outputs));
      }
      values[i] = std::move(outs).value();
      for (const auto& in : node.inputs) {
        if (--uses[static_cast<size_t>(in.node)] == 0) values[static_cast<size_t>(in.node)].clear();
      }
      continue;
    }
    if (stats && stats->before_node) stats->before_node(node, node_inputs);
    ops::KernelContext ctx(node.name, node.op, node.attrs, node_inputs,
                           static_cast<size_t>(node.num_outputs));
    ctx.set_variables(node_variables);
    const auto start = stats && stats->time_ops ? std::chrono::steady_clock::now()
                                                : std::chrono::steady_clock::time_point{};
    Status s =
        node.prepared
            ? ops::run_kernel([&node](ops::KernelContext& c) { return node.prepared->run(c); }, ctx)
            : ops::run_kernel(node.spec->fast_kernel && ops::fast_paths_enabled()
                                  ? node.spec->fast_kernel
                                  : node.spec->kernel,
                              ctx);
    if (stats && stats->time_ops) {
      stats->ms_by_op[node.op] +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      ++stats->calls_by_op[node.op];
      stats->ms_by_node[node.name + " (" + node.op + ")"] +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
    }
    if (!s.ok()) return s.with_context(graph.description);
    for (int k = 0; k < node.num_outputs; ++k) {
      if (!ctx.outputs()[static_cast<size_t>(k)].valid()) {
        return internal_error(graph.description + ": node '" + node.name + "' (" + node.op +
                              ") did not set output " + std::to_string(k));
      }
    }
    values[i] = std::move(ctx.outputs());
    for (const auto& in : node.inputs) {
      if (--uses[static_cast<size_t>(in.node)] == 0) values[static_cast<size_t>(in.node)].clear();
    }
    if (stats) {
      ++stats->nodes_run;
      for (const Tensor& t : values[i]) {
        stats->largest_value_bytes = std::max(stats->largest_value_bytes, t.byte_size());
      }
    }
  }
  std::vector<Tensor> outputs;
  for (const auto& o : graph.outputs) {
    outputs.push_back(values[static_cast<size_t>(o.node)][static_cast<size_t>(o.index)]);
  }
  return outputs;
}

}  // namespace hubimg::exec
