#include "graph/autodiff.h"

#include <algorithm>
#include <string>

#include "ops/gradient.h"
#include "ops/op_registry.h"

namespace hubimg::graph {
namespace {

ops::GradValue to_grad(ValueRef v) {
  return {v.node, v.index};
}
ValueRef to_ref(ops::GradValue v) {
  return {v.node, v.index};
}

bool is_comparison(std::string_view op) {
  return op == "Greater" || op == "GreaterEqual" || op == "Less" || op == "LessEqual" ||
         op == "Equal" || op == "NotEqual" || op == "IsNan" || op == "IsInf" || op == "IsFinite" ||
         op == "LogicalAnd" || op == "LogicalOr" || op == "LogicalNot";
}

// Appends nodes for one rule call; implements the interface rules see.
class Appender : public ops::GradientBuilder {
 public:
  Appender(Graph& g, int node, std::vector<ValueRef> grads, std::vector<bool> needs)
      : g_(g), node_(node), grads_(std::move(grads)), needs_(std::move(needs)) {}

  std::string_view node_name() const override { return fwd().name; }
  std::string_view op() const override { return fwd().op; }
  const AttrMap& attrs() const override { return fwd().attrs; }
  size_t num_inputs() const override { return fwd().inputs.size(); }
  size_t num_outputs() const override { return static_cast<size_t>(fwd().num_outputs); }
  ops::GradValue input(size_t i) const override {
    return i < fwd().inputs.size() ? to_grad(fwd().inputs[i]) : ops::GradValue{};
  }
  ops::GradValue output(size_t i) const override {
    return i < num_outputs() ? ops::GradValue{node_, static_cast<int>(i)} : ops::GradValue{};
  }
  ops::GradValue grad(size_t i) const override {
    return i < grads_.size() ? to_grad(grads_[i]) : ops::GradValue{};
  }
  bool needs_grad(size_t i) const override { return i < needs_.size() && needs_[i]; }
  DType dtype(ops::GradValue v) const override { return value_dtype(g_, to_ref(v)); }

  Expected<std::vector<ops::GradValue>> add(std::string_view op, std::vector<ops::GradValue> inputs,
                                            AttrMap attrs) override {
    Node n;
    n.op = std::string(op);
    n.name = "gradients/" + fwd().name + "/" + n.op + "_" + std::to_string(++counter_);
    n.function = fwd().function;
    if (ops::OpRegistry::global().find(op) == nullptr)
      return error("needs op " + std::string(op) + ", which is not registered");
    for (const auto& in : inputs) {
      if (!in.valid() || in.node >= static_cast<int>(g_.nodes.size())) {
        return error("adds " + std::string(op) + " with an invalid input");
      }
      n.inputs.push_back(to_ref(in));
    }
    n.attrs = std::move(attrs);
    HUBIMG_ASSIGN_OR_RETURN(const int id, append_node(g_, std::move(n)));
    std::vector<ops::GradValue> outs;
    for (int k = 0; k < g_.nodes.back().num_outputs; ++k) outs.push_back({id, k});
    ++added_;
    return outs;
  }

  Expected<ops::GradValue> constant(Tensor value) override {
    AttrMap attrs;
    attrs.set("dtype", value.dtype());
    attrs.set("value", std::move(value));
    return add1("Const", {}, std::move(attrs));
  }

  int added() const { return added_; }

 private:
  const Node& fwd() const { return g_.nodes[static_cast<size_t>(node_)]; }
  Graph& g_;
  int node_;
  std::vector<ValueRef> grads_;
  std::vector<bool> needs_;
  int counter_ = 0;
  int added_ = 0;
};

// Sums the contributions to one value (AddN when there are several).
Expected<ValueRef> sum_of(Graph& g, const std::vector<ValueRef>& parts, const std::string& name,
                          int& added) {
  if (parts.empty()) return ValueRef{};
  if (parts.size() == 1) return parts[0];
  Node n;
  n.op = "AddN";
  n.name = "gradients/" + name + "/AddN";
  n.inputs = parts;
  n.attrs.set("N", static_cast<int64_t>(parts.size()));
  HUBIMG_ASSIGN_OR_RETURN(const int id, append_node(g, std::move(n)));
  ++added;
  return ValueRef{id, 0};
}

}  // namespace

DType value_dtype(const Graph& g, ValueRef v) {
  if (v.node < 0 || static_cast<size_t>(v.node) >= g.nodes.size()) return DType::kInvalid;
  const Node& n = g.nodes[static_cast<size_t>(v.node)];
  if (static_cast<size_t>(v.index) < n.output_dtypes.size() &&
      n.output_dtypes[static_cast<size_t>(v.index)] != DType::kInvalid) {
    return n.output_dtypes[static_cast<size_t>(v.index)];
  }
  auto type_attr = [&](const char* name, std::optional<DType> fallback = {}) {
    auto t = n.attrs.get_type(name, fallback);
    return t.ok() ? *t : DType::kInvalid;
  };
  const std::string& op = n.op;
  if (op == "Const") {
    if (const auto* t = std::get_if<Tensor>(n.attrs.find("value"))) return t->dtype();
    return type_attr("dtype");
  }
  if (op == "Shape" || op == "Size" || op == "Rank" || op == "ShapeN") {
    return type_attr("out_type", DType::kInt32);
  }
  if (op == "Cast") return type_attr("DstT");
  if (is_comparison(op)) return DType::kBool;
  if (op == "ArgMax" || op == "ArgMin") return type_attr("output_type", DType::kInt64);
  if (op.starts_with("FusedBatchNorm") && v.index > 0) return type_attr("U", DType::kFloat32);
  if (op == "BroadcastGradientArgs") return type_attr("T", DType::kInt32);
  if (n.attrs.has("T")) return type_attr("T");
  if (n.attrs.has("dtype")) return type_attr("dtype");
  return DType::kInvalid;
}

Expected<GradientResult> append_gradients(Graph& g, const GradientRequest& request) {
  if (request.ys.size() != request.cotangents.size()) {
    return invalid_argument(g.description + ": " + std::to_string(request.ys.size()) +
                            " outputs but " + std::to_string(request.cotangents.size()) +
                            " cotangents");
  }
  const size_t n = g.nodes.size();
  auto check_ref = [&](ValueRef v) {
    return v.node >= 0 && static_cast<size_t>(v.node) < n && v.index >= 0 &&
           v.index < g.nodes[static_cast<size_t>(v.node)].num_outputs;
  };
  for (ValueRef v : request.ys) {
    if (!check_ref(v)) return invalid_argument(g.description + ": gradient of a missing value");
  }
  for (ValueRef v : request.values) {
    if (!check_ref(v)) return invalid_argument(g.description + ": gradient w.r.t. a missing value");
  }

  // Sources: reads of the requested variables and the requested values' nodes.
  std::vector<char> source(n, 0);
  std::vector<std::vector<size_t>> reads_of(request.variables.size());
  for (size_t i = 0; i < n; ++i) {
    const Node& node = g.nodes[i];
    if (node.op != "ReadVariableOp" || node.variables.size() != 1) continue;
    for (size_t k = 0; k < request.variables.size(); ++k) {
      if (node.variables[0] == request.variables[k]) {
        reads_of[k].push_back(i);
        source[i] = 1;
      }
    }
  }
  for (ValueRef v : request.values) source[static_cast<size_t>(v.node)] = 1;

  // Nodes a source reaches (forward), and nodes that reach an output (backward).
  std::vector<char> from_source(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (source[i]) {
      from_source[i] = 1;
      continue;
    }
    for (const auto& in : g.nodes[i].inputs) {
      if (from_source[static_cast<size_t>(in.node)]) {
        from_source[i] = 1;
        break;
      }
    }
  }
  std::vector<char> to_output(n, 0);
  for (ValueRef y : request.ys) to_output[static_cast<size_t>(y.node)] = 1;
  for (size_t i = n; i-- > 0;) {
    if (!to_output[i]) continue;
    for (const auto& in : g.nodes[i].inputs) to_output[static_cast<size_t>(in.node)] = 1;
  }

  // Contributions to each (node, output) cotangent.
  std::vector<std::vector<std::vector<ValueRef>>> parts(n);
  auto contribute = [&](ValueRef at, ValueRef grad) {
    auto& p = parts[static_cast<size_t>(at.node)];
    if (p.empty()) p.resize(static_cast<size_t>(g.nodes[static_cast<size_t>(at.node)].num_outputs));
    p[static_cast<size_t>(at.index)].push_back(grad);
  };
  for (size_t k = 0; k < request.ys.size(); ++k) {
    if (from_source[static_cast<size_t>(request.ys[k].node)]) {
      contribute(request.ys[k], request.cotangents[k]);
    }
  }

  GradientResult result;
  std::vector<std::vector<ValueRef>> summed(n);  // the total cotangent per output
  int added = 0;
  for (size_t i = n; i-- > 0;) {
    if (!from_source[i] || !to_output[i] || parts[i].empty()) continue;
    const Node node = g.nodes[i];  // a copy: appending nodes may move the vector
    summed[i].resize(static_cast<size_t>(node.num_outputs));
    bool any = false;
    for (size_t k = 0; k < parts[i].size(); ++k) {
      HUBIMG_ASSIGN_OR_RETURN(summed[i][k], sum_of(g, parts[i][k], node.name, added));
      any |= summed[i][k].node >= 0;
    }
    if (!any || source[i]) {
      // A source's own inputs (a variable read's handle) carry nothing further; a requested
      // value that other sources feed is still differentiated through below.
      if (node.op == "ReadVariableOp" || node.op == kArgOp) continue;
    }
    if (node.op == kArgOp || node.inputs.empty()) continue;
    std::vector<bool> needs(node.inputs.size(), false);
    bool any_need = false;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const size_t in = static_cast<size_t>(node.inputs[k].node);
      needs[k] = from_source[in] && to_output[in] &&
                 value_dtype(g, node.inputs[k]) != DType::kInt32 &&
                 value_dtype(g, node.inputs[k]) != DType::kInt64 &&
                 value_dtype(g, node.inputs[k]) != DType::kBool;
      any_need |= needs[k];
    }
    if (!any_need) continue;
    if (node.spec == nullptr || !node.branches.empty()) {
      return unimplemented(g.description + ": node '" + node.name + "' (" + node.op +
                           ") cannot be differentiated (run-time branches have no gradient yet)");
    }
    if (node.spec->not_differentiable) continue;
    if (!node.spec->gradient) {
      return unimplemented(g.description + ": op " + node.op + " (node '" + node.name +
                           "') has no gradient rule");
    }
    Appender appender(g, static_cast<int>(i), summed[i], needs);
    auto grads = node.spec->gradient(appender);
    added += appender.added();
    if (!grads.ok()) return grads.status().with_context(g.description);
    for (size_t k = 0; k < grads->size() && k < node.inputs.size(); ++k) {
      const ops::GradValue gv = (*grads)[k];
      if (!gv.valid() || !needs[k]) continue;
      contribute(node.inputs[k], to_ref(gv));
    }
  }

  // Sources: a variable's gradient sums its reads; a requested value's is its own total.
  auto total_of = [&](ValueRef v) -> Expected<ValueRef> {
    auto& p = parts[static_cast<size_t>(v.node)];
    if (p.empty()) return ValueRef{};
    auto& s = summed[static_cast<size_t>(v.node)];
    if (!s.empty()) return s[static_cast<size_t>(v.index)];
    return sum_of(g, p[static_cast<size_t>(v.index)], g.nodes[static_cast<size_t>(v.node)].name,
                  added);
  };
  for (size_t k = 0; k < request.variables.size(); ++k) {
    std::vector<ValueRef> per_read;
    for (size_t r : reads_of[k]) {
      HUBIMG_ASSIGN_OR_RETURN(ValueRef t, total_of({static_cast<int>(r), 0}));
      if (t.node >= 0) per_read.push_back(t);
    }
    HUBIMG_ASSIGN_OR_RETURN(ValueRef total,
                            sum_of(g, per_read, "variable_" + std::to_string(k), added));
    result.variable_grads.push_back(total);
  }
  for (ValueRef v : request.values) {
    HUBIMG_ASSIGN_OR_RETURN(ValueRef t, total_of(v));
    result.value_grads.push_back(t);
  }
  result.nodes_added = added;
  return result;
}

}  // namespace hubimg::graph
