#include "graph/batch_split.h"

#include <algorithm>
#include <set>

namespace hubimg::graph {
namespace {

// What is known about one value: whether dimension 0 is the batch (rows), or the value is a
// constant shared by all rows; and its rank when known (-1: unknown).
struct ValueInfo {
  enum class Kind { kConstant, kRows, kMixed } kind = Kind::kMixed;
  int rank = -1;
  const Tensor* constant = nullptr;  // for Const nodes
};

using Kind = ValueInfo::Kind;

struct Analysis {
  const Graph& g;
  std::vector<ValueInfo> info;  // output 0 of each node (other outputs: only FusedBatchNorm y)
  // Output 1 of fused convolutions with a spatial mean (kMixed for every other node).
  std::vector<ValueInfo> second_info;
  std::string reason;

  bool fail(const Node& n, const std::string& why) {
    reason = "node '" + n.name + "' (" + n.op + "): " + why;
    return false;
  }

  const ValueInfo& in(const Node& n, size_t i) const { return value(n.inputs[i]); }
  const ValueInfo& value(ValueRef v) const {
    static const ValueInfo unknown;
    if (v.index == 0) return info[static_cast<size_t>(v.node)];
    if (v.index == 1) return second_info[static_cast<size_t>(v.node)];
    return unknown;
  }
  // Whether the analysis knows what output v is (output 0, or a known second output).
  bool known(ValueRef v) const { return v.index == 0 || value(v).kind != Kind::kMixed; }

  // All inputs from `first` on must be constants.
  bool rest_constant(const Node& n, size_t first) {
    for (size_t i = first; i < n.inputs.size(); ++i) {
      if (in(n, i).kind != Kind::kConstant)
        return fail(n, "input " + std::to_string(i) + " is not a constant");
      if (!known(n.inputs[i])) return fail(n, "reads a second output of its input");
    }
    return true;
  }

  // Input 0 is rows with rank `rank` (-1: any known rank >= 1).
  bool rows_input(const Node& n, int rank) {
    if (n.inputs.empty()) return fail(n, "has no inputs");
    const ValueInfo& v = in(n, 0);
    if (v.kind != Kind::kRows) return fail(n, "input 0 is not batch rows");
    if (!known(n.inputs[0])) return fail(n, "reads a second output of its input");
    if (rank >= 0 && v.rank != rank)
      return fail(n, "input 0 must have rank " + std::to_string(rank));
    if (v.rank < 1) return fail(n, "input 0 has unknown rank");
    return true;
  }

  // Constant integer list (axes, paddings, ...) of input `i`.
  std::optional<std::vector<int64_t>> int_values(const Node& n, size_t i) const {
    const ValueInfo& v = in(n, i);
    if (v.kind != Kind::kConstant || v.constant == nullptr) return std::nullopt;
    const Tensor& t = *v.constant;
    std::vector<int64_t> out;
    if (t.dtype() == DType::kInt32) {
      for (int32_t x : t.values<int32_t>()) out.push_back(x);
    } else if (t.dtype() == DType::kInt64) {
      for (int64_t x : t.values<int64_t>()) out.push_back(x);
    } else {
      return std::nullopt;
    }
    return out;
  }

  bool visit(size_t index) {
    const Node& n = g.nodes[index];
    ValueInfo& out = info[index];
    if (n.op == kArgOp) return true;  // set by the caller
    if (!n.branches.empty()) return fail(n, "control flow");
    if (n.op == "Const") {
      out.kind = Kind::kConstant;
      if (const auto* value = std::get_if<Tensor>(n.attrs.find("value"))) {
        out.constant = value;
        out.rank = value->rank();
      }
      return true;
    }
    bool any_rows = false;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      // Outputs other than the first are unknown unless a rule below set them: never taken
      // for constants.
      if (!known(n.inputs[i])) return fail(n, "reads a second output of its input");
      any_rows |= in(n, i).kind == Kind::kRows;
    }
    if (!any_rows) {
      // Only constants in: a constant out (the folder leaves few such nodes), unless stateful.
      if (!n.variables.empty() || n.spec == nullptr || n.spec->stateful) {
        return fail(n, "stateful");
      }
      out.kind = Kind::kConstant;
      out.rank = -1;
      return true;
    }
    switch (n.spec == nullptr ? ops::RowRule::kUnknown : n.spec->row_rule) {
      case ops::RowRule::kUnknown: break;
      case ops::RowRule::kElementwise:
        if (!rows_input(n, -1) || !rest_constant(n, 1)) return false;
        out = {Kind::kRows, in(n, 0).rank, nullptr};
        return true;
      case ops::RowRule::kLastAxis:
        if (!rows_input(n, -1)) return false;
        if (in(n, 0).rank < 2) return fail(n, "computes along the batch");
        out = {Kind::kRows, in(n, 0).rank, nullptr};
        return true;
      case ops::RowRule::kBroadcastBinary: return visit_binary(n, out);
      case ops::RowRule::kSpatial:
        if (!rows_input(n, 4) || !rest_constant(n, 1)) return false;
        out = {Kind::kRows, 4, nullptr};
        return true;
      case ops::RowRule::kBatchNorm: return visit_batch_norm(n, out);
      case ops::RowRule::kFusedLayer: return visit_fused_layer(index, out);
      case ops::RowRule::kMatMul: return visit_mat_mul(n, out);
      case ops::RowRule::kReduction: return visit_reduction(n, out);
      case ops::RowRule::kPad: return visit_pad(n, out);
      case ops::RowRule::kReshape: return visit_reshape(n, out);
      case ops::RowRule::kExpandDims: return visit_expand_dims(n, out);
      case ops::RowRule::kSqueeze: return visit_squeeze(n, out);
      case ops::RowRule::kConcat: return visit_concat(n, out);
      case ops::RowRule::kRoll: return visit_roll(n, out);
    }
    return fail(n, "not known to keep rows independent");
  }

  bool visit_batch_norm(const Node& n, ValueInfo& out) {
    auto training = n.attrs.get_bool("is_training", true);
    if (!training.ok() || *training) return fail(n, "batch statistics");
    if (!rows_input(n, 4) || !rest_constant(n, 1)) return false;
    out = {Kind::kRows, 4, nullptr};
    return true;
  }

  bool visit_fused_layer(size_t index, ValueInfo& out) {
    const Node& n = g.nodes[index];
    const std::string& op = n.op;
    // Inputs: rows, filter, [bias], [residual: rows of the output's shape], [input factor:
    // rows of the input's rank] (src/ops/fused_ops.cc); everything else constant.
    const int rank = op == "_HubimgFusedMatMul" ? 2 : 4;
    if (!rows_input(n, rank)) return false;
    auto residual = n.attrs.get_bool("has_residual", false);
    auto input_mul = n.attrs.get_bool("has_input_mul", false);
    if (!residual.ok() || !input_mul.ok()) return fail(n, "unreadable has_residual/has_input_mul");
    const size_t factor = *input_mul ? n.inputs.size() - 1 : n.inputs.size();
    const size_t last = factor - (*residual ? 1 : 0);  // the residual's index when there is one
    for (size_t i = 1; i < n.inputs.size(); ++i) {
      const ValueInfo& v = in(n, i);
      if (i == last && *residual) {
        if (v.kind != Kind::kRows || v.rank != rank || !known(n.inputs[i])) {
          return fail(n, "residual is not batch rows of rank " + std::to_string(rank));
        }
      } else if (i == factor) {
        if (v.kind != Kind::kRows || v.rank != rank || !known(n.inputs[i])) {
          return fail(n, "input factor is not batch rows of rank " + std::to_string(rank));
        }
      } else if (v.kind != Kind::kConstant) {
        return fail(n, "weights are not constant");
      }
    }
    if (op == "_HubimgFusedMatMul") {
      auto ta = n.attrs.get_bool("transpose_a", false);
      if (!ta.ok() || *ta) return fail(n, "transposed rows");
    }
    out = {Kind::kRows, rank, nullptr};
    auto mean = n.attrs.get_bool("spatial_mean", false);
    auto keep = n.attrs.get_bool("spatial_mean_keep_dims", false);
    if (!mean.ok() || !keep.ok()) return fail(n, "unreadable spatial_mean");
    if (*mean) second_info[index] = {Kind::kRows, *keep ? rank : rank - 2, nullptr};
    return true;
  }

  bool visit_mat_mul(const Node& n, ValueInfo& out) {
    if (!rows_input(n, 2) || !rest_constant(n, 1)) return false;
    auto ta = n.attrs.get_bool("transpose_a", false);
    if (!ta.ok() || *ta) return fail(n, "transposed rows");
    out = {Kind::kRows, 2, nullptr};
    return true;
  }

  bool visit_reduction(const Node& n, ValueInfo& out) {
    if (!rows_input(n, -1) || !rest_constant(n, 1)) return false;
    auto axes = int_values(n, 1);
    if (!axes) return fail(n, "axes are not a constant integer list");
    const int rank = in(n, 0).rank;
    std::set<int64_t> resolved;
    for (int64_t a : *axes) {
      const int64_t r = a < 0 ? a + rank : a;
      if (r <= 0 || r >= rank) return fail(n, "reduces over the batch");
      resolved.insert(r);
    }
    auto keep = n.attrs.get_bool("keep_dims", false);
    if (!keep.ok()) return fail(n, "unreadable keep_dims");
    out = {Kind::kRows, *keep ? rank : rank - static_cast<int>(resolved.size()), nullptr};
    return true;
  }

  bool visit_roll(const Node& n, ValueInfo& out) {
    if (!rows_input(n, -1) || !rest_constant(n, 1)) return false;
    auto axes = int_values(n, 2);
    if (!axes) return fail(n, "axes are not a constant integer list");
    const int rank = in(n, 0).rank;
    for (int64_t a : *axes) {
      const int64_t r = a < 0 ? a + rank : a;
      if (r <= 0 || r >= rank) return fail(n, "rolls along the batch");
    }
    out = {Kind::kRows, rank, nullptr};
    return true;
  }

  bool visit_pad(const Node& n, ValueInfo& out) {
    if (!rows_input(n, -1) || !rest_constant(n, 1)) return false;
    auto pads = int_values(n, 1);
    if (!pads || pads->size() < 2 || (*pads)[0] != 0 || (*pads)[1] != 0) {
      return fail(n, "pads the batch dimension");
    }
    out = {Kind::kRows, in(n, 0).rank, nullptr};
    return true;
  }

  bool visit_reshape(const Node& n, ValueInfo& out) {
    // Keras Flatten and Reshape with static row shapes: [-1, d1, ...]. Whether the rows stay
    // rows depends on sizes the analysis does not know; the batch runner checks that every
    // chunk's outputs have the chunk's rows and otherwise runs the batch whole.
    if (!rows_input(n, -1) || !rest_constant(n, 1)) return false;
    auto shape = int_values(n, 1);
    if (!shape || shape->size() < 2 || (*shape)[0] != -1 ||
        std::count(shape->begin(), shape->end(), -1) != 1) {
      return fail(n, "shape is not a constant [-1, ...]");
    }
    out = {Kind::kRows, static_cast<int>(shape->size()), nullptr};
    return true;
  }

  bool visit_expand_dims(const Node& n, ValueInfo& out) {
    if (!rows_input(n, -1) || !rest_constant(n, 1)) return false;
    auto axis = int_values(n, 1);
    const int rank = in(n, 0).rank;
    if (!axis || axis->size() != 1) return fail(n, "axis is not a constant");
    const int64_t a = (*axis)[0] < 0 ? (*axis)[0] + rank + 1 : (*axis)[0];
    if (a <= 0 || a > rank) return fail(n, "inserts before the batch");
    out = {Kind::kRows, rank + 1, nullptr};
    return true;
  }

  bool visit_squeeze(const Node& n, ValueInfo& out) {
    if (!rows_input(n, -1)) return false;
    auto dims = n.attrs.get_ints("squeeze_dims", std::vector<int64_t>{});
    const int rank = in(n, 0).rank;
    // Without explicit dims a batch of one would lose its batch dimension.
    if (!dims.ok() || dims->empty()) return fail(n, "squeezes unspecified dimensions");
    std::set<int64_t> resolved;
    for (int64_t d : *dims) {
      const int64_t r = d < 0 ? d + rank : d;
      if (r <= 0 || r >= rank) return fail(n, "squeezes the batch");
      resolved.insert(r);
    }
    out = {Kind::kRows, rank - static_cast<int>(resolved.size()), nullptr};
    return true;
  }

  bool visit_concat(const Node& n, ValueInfo& out) {
    if (n.inputs.size() < 2) return fail(n, "no axis");
    const size_t axis_input = n.inputs.size() - 1;
    auto axis = int_values(n, axis_input);
    int rank = -1;
    for (size_t i = 0; i < axis_input; ++i) {
      const ValueInfo& v = in(n, i);
      if (v.kind != Kind::kRows || v.rank < 1 || !known(n.inputs[i])) {
        return fail(n, "input " + std::to_string(i) + " is not batch rows");
      }
      if (rank >= 0 && v.rank != rank) return fail(n, "inputs of different ranks");
      rank = v.rank;
    }
    if (!axis || axis->size() != 1) return fail(n, "axis is not a constant");
    const int64_t a = (*axis)[0] < 0 ? (*axis)[0] + rank : (*axis)[0];
    if (a <= 0 || a >= rank) return fail(n, "concatenates along the batch");
    out = {Kind::kRows, rank, nullptr};
    return true;
  }

  bool visit_binary(const Node& n, ValueInfo& out) {
    if (n.inputs.size() != 2) return fail(n, "expected two inputs");
    int rank = -1;
    for (size_t i = 0; i < 2; ++i) {
      if (!known(n.inputs[i])) return fail(n, "reads a second output of its input");
      const ValueInfo& v = in(n, i);
      if (v.kind == Kind::kMixed) return fail(n, "input " + std::to_string(i) + " is unknown");
      if (v.kind == Kind::kRows) {
        if (v.rank < 1) return fail(n, "input of unknown rank");
        if (rank >= 0 && v.rank != rank) return fail(n, "batch inputs of different ranks");
        rank = v.rank;
      }
    }
    for (size_t i = 0; i < 2; ++i) {
      const ValueInfo& v = in(n, i);
      if (v.kind != Kind::kConstant) continue;
      // A constant broadcast against rows must not reach the batch dimension: lower rank, or
      // size 1 there.
      if (v.constant == nullptr) return fail(n, "operand of unknown shape");
      if (v.rank > rank) return fail(n, "constant of higher rank than the rows");
      if (v.rank == rank && v.constant->dim(0) != 1) {
        return fail(n, "constant spans the batch dimension");
      }
    }
    out = {Kind::kRows, rank, nullptr};
    return true;
  }
};

}  // namespace

RowIndependence rows_are_independent(const Graph& graph, std::span<const int> input_ranks) {
  if (!graph.side_effect_nodes.empty()) return {false, "the graph writes variables"};
  if (input_ranks.size() != graph.arg_nodes.size() || graph.arg_nodes.empty()) {
    return {false, "input ranks do not match the graph's inputs"};
  }
  Analysis a{graph,
             std::vector<ValueInfo>(graph.nodes.size()),
             std::vector<ValueInfo>(graph.nodes.size()),
             {}};
  for (size_t i = 0; i < graph.arg_nodes.size(); ++i) {
    if (input_ranks[i] < 1) return {false, "input " + std::to_string(i) + " is a scalar"};
    a.info[static_cast<size_t>(graph.arg_nodes[i])] = {Kind::kRows, input_ranks[i], nullptr};
  }
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (!a.visit(i)) return {false, a.reason};
  }
  if (graph.outputs.empty()) return {false, "no outputs"};
  for (const auto& o : graph.outputs) {
    const ValueInfo& v = a.value(o);
    if (v.kind != Kind::kRows) {
      return {false, "output from node '" + graph.nodes[static_cast<size_t>(o.node)].name +
                         "' is not batch rows"};
    }
  }
  return {true, {}};
}

}  // namespace hubimg::graph
