#include "graph/optimize.h"

#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "ops/fast/prepare_fused.h"
#include "ops/variable.h"

namespace hubimg::graph {
namespace {

// A Const whose "value" is a tensor; a malformed one (no value, another attribute type) is left
// to the Const kernel, which reports it naming the node.
bool is_const(const Graph& g, ValueRef v) {
  const Node& n = g.nodes[static_cast<size_t>(v.node)];
  if (n.op != "Const") return false;
  const AttrValue* value = n.attrs.find("value");
  return value != nullptr && std::holds_alternative<Tensor>(*value);
}

const Tensor& const_value(const Graph& g, ValueRef v) {
  return std::get<Tensor>(*g.nodes[static_cast<size_t>(v.node)].attrs.find("value"));
}

Node make_const(const std::string& name, Tensor value) {
  Node n;
  n.name = name;
  n.op = "Const";
  n.attrs.set("dtype", value.dtype());
  n.attrs.set("value", std::move(value));
  n.spec = ops::OpRegistry::global().find("Const");
  n.num_outputs = 1;
  return n;
}

// Rebuilds a graph node by node; `remap` sends old outputs to new ones.
class Rewriter {
 public:
  explicit Rewriter(const Graph& old) : old_(old), remap_(old.nodes.size()) {
    out_.description = old.description;
  }

  ValueRef map(ValueRef v) const {
    return remap_[static_cast<size_t>(v.node)][static_cast<size_t>(v.index)];
  }
  int add(Node n) {
    out_.nodes.push_back(std::move(n));
    return static_cast<int>(out_.nodes.size()) - 1;
  }
  void set_outputs(size_t old_node, std::vector<ValueRef> outs) {
    remap_[old_node] = std::move(outs);
  }
  // Adds `n`, whose inputs still name old outputs, in place of old node `old_node`: its outputs
  // become the old node's.
  void replace(size_t old_node, Node n) {
    for (auto& in : n.inputs) in = map(in);
    const int id = add(std::move(n));
    std::vector<ValueRef> outs;
    for (int k = 0; k < old_.nodes[old_node].num_outputs; ++k) outs.push_back({id, k});
    set_outputs(old_node, std::move(outs));
  }
  Graph& graph() { return out_; }

  Graph finish() {
    for (int a : old_.arg_nodes) out_.arg_nodes.push_back(map({a, 0}).node);
    for (const auto& o : old_.outputs) out_.outputs.push_back(map(o));
    return std::move(out_);
  }

 private:
  const Graph& old_;
  Graph out_;
  std::vector<std::vector<ValueRef>> remap_;
};

// Uses of each node output: which nodes consume it (graph outputs count as a use too).
std::vector<int> count_uses(const Graph& g) {
  std::vector<int> uses(g.nodes.size(), 0);
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) ++uses[static_cast<size_t>(in.node)];
  }
  for (const auto& o : g.outputs) ++uses[static_cast<size_t>(o.node)];
  return uses;
}

Expected<Graph> freeze_and_fold(const Graph& g, std::span<Variable* const> variables,
                                const OptimizeOptions& options, OptimizeStats& stats) {
  Rewriter rw(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& node = g.nodes[i];
    if (options.freeze_variables && node.op == "ReadVariableOp" && node.variables.size() == 1) {
      const Variable* v = variables[static_cast<size_t>(node.variables[0])];
      if (v->value().valid()) {
        rw.set_outputs(i, {{rw.add(make_const(node.name, v->value())), 0}});
        ++stats.variables_frozen;
        continue;
      }
    }
    Node copy = node;
    for (auto& in : copy.inputs) in = rw.map(in);
    copy.control_inputs.clear();  // no side effects remain: ordering constraints are moot
    bool foldable = options.fold_constants && node.op != kArgOp && node.op != "Const" &&
                    node.spec && !node.spec->stateful && node.variables.empty() &&
                    node.branches.empty() && !copy.inputs.empty();
    for (const auto& in : copy.inputs) foldable = foldable && is_const(rw.graph(), in);
    if (foldable) {
      std::vector<Tensor> inputs;
      for (const auto& in : copy.inputs) inputs.push_back(const_value(rw.graph(), in));
      ops::KernelContext ctx(copy.name, copy.op, copy.attrs, inputs,
                             static_cast<size_t>(copy.num_outputs));
      Status s = ops::run_kernel(copy.spec->kernel, ctx);
      size_t bytes = 0;
      for (const auto& t : ctx.outputs()) bytes += t.byte_size();
      if (s.ok() && bytes <= options.max_folded_bytes) {
        std::vector<ValueRef> outs;
        for (int k = 0; k < copy.num_outputs; ++k) {
          std::string name = copy.name + (k ? ":" + std::to_string(k) : "");
          outs.push_back(
              {rw.add(make_const(name, std::move(ctx.outputs()[static_cast<size_t>(k)]))), 0});
        }
        rw.set_outputs(i, std::move(outs));
        ++stats.nodes_folded;
        continue;
      }
      // A kernel error here is left for run time, where it names the node as usual.
    }
    const int id = rw.add(std::move(copy));
    std::vector<ValueRef> outs;
    for (int k = 0; k < node.num_outputs; ++k) outs.push_back({id, k});
    rw.set_outputs(i, std::move(outs));
  }
  return rw.finish();
}

bool attr_is(const Node& n, const char* name, const std::string& value,
             const std::string& fallback) {
  auto v = n.attrs.get_string(name, fallback);
  return v.ok() && *v == value;
}

// The constant int32/int64 values of `v`, or nothing when it is not a constant integer tensor.
std::optional<std::vector<int64_t>> const_ints(const Graph& g, ValueRef v) {
  if (!is_const(g, v)) return std::nullopt;
  const Tensor& t = const_value(g, v);
  std::vector<int64_t> values;
  if (t.dtype() == DType::kInt32) {
    values.assign(t.data<int32_t>(), t.data<int32_t>() + t.num_elements());
  } else if (t.dtype() == DType::kInt64) {
    values.assign(t.data<int64_t>(), t.data<int64_t>() + t.num_elements());
  } else {
    return std::nullopt;
  }
  return values;
}

// tf.nn.convolution's dilated convolution, SpaceToBatchND(x, block, paddings) ->
// Conv2D / DepthwiseConv2dNative (VALID, stride 1, no dilation) -> BatchToSpaceND(y, block,
// crops), with constant block, paddings and crops over H and W of NHWC and no other user of the
// intermediate values, becomes one convolution with dilations [1, b_h, b_w, 1]. Output row i of
// the three-op form reads padded input row i + crop_start + j * b for filter tap j, i.e. input
// row i - (pad_start - crop_start) + j * b: the padding before is pad_start - crop_start and
// after pad_end - crop_end (written as VALID or SAME where it is exactly that, else EXPLICIT;
// a negative one is left alone). The convolution then runs fused on the fast kernels and the
// batch can be split again. One difference remains: an input size SpaceToBatchND refuses
// (padded size not divisible by the block) gets the dilated convolution's result, not the error.
Expected<Graph> fold_space_to_batch_convs(const Graph& g, OptimizeStats& stats) {
  const std::vector<int> uses = count_uses(g);
  struct Fold {
    int space_to_batch, conv;
    std::vector<int64_t> dilations, explicit_paddings;
    std::string padding;
  };
  std::map<int, Fold> by_batch_to_space;
  std::vector<char> skip(g.nodes.size(), 0);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& b2s = g.nodes[i];
    if (b2s.op != "BatchToSpaceND" || b2s.inputs.size() != 3) continue;
    const int conv_id = b2s.inputs[0].node;
    const Node& conv = g.nodes[static_cast<size_t>(conv_id)];
    if ((conv.op != "Conv2D" && conv.op != "DepthwiseConv2dNative") || conv.inputs.size() != 2 ||
        uses[static_cast<size_t>(conv_id)] != 1 || !attr_is(conv, "padding", "VALID", "") ||
        !attr_is(conv, "data_format", "NHWC", "NHWC")) {
      continue;
    }
    const std::vector<int64_t> ones = {1, 1, 1, 1};
    auto strides = conv.attrs.get_ints("strides", ones);
    auto conv_dilations = conv.attrs.get_ints("dilations", ones);
    if (!strides.ok() || *strides != ones || !conv_dilations.ok() || *conv_dilations != ones) {
      continue;
    }
    const int s2b_id = conv.inputs[0].node;
    const Node& s2b = g.nodes[static_cast<size_t>(s2b_id)];
    if (s2b.op != "SpaceToBatchND" || s2b.inputs.size() != 3 || conv.inputs[0].index != 0 ||
        uses[static_cast<size_t>(s2b_id)] != 1) {
      continue;
    }
    const auto block = const_ints(g, s2b.inputs[1]);
    const auto paddings = const_ints(g, s2b.inputs[2]);
    const auto block_again = const_ints(g, b2s.inputs[1]);
    const auto crops = const_ints(g, b2s.inputs[2]);
    if (!block || !paddings || !block_again || !crops || block->size() != 2 ||
        *block != *block_again || paddings->size() != 4 || crops->size() != 4 || (*block)[0] < 1 ||
        (*block)[1] < 1) {
      continue;
    }
    const Tensor* filter = nullptr;
    if (is_const(g, conv.inputs[1])) filter = &const_value(g, conv.inputs[1]);
    std::vector<int64_t> explicit_paddings = {0, 0, 0, 0, 0, 0, 0, 0};
    bool negative = false, all_zero = true, same = filter != nullptr && filter->rank() == 4;
    for (size_t d = 0; d < 2; ++d) {
      const int64_t before = (*paddings)[2 * d] - (*crops)[2 * d];
      const int64_t after = (*paddings)[2 * d + 1] - (*crops)[2 * d + 1];
      negative |= before < 0 || after < 0;
      all_zero &= before == 0 && after == 0;
      explicit_paddings[2 + 2 * d] = before;
      explicit_paddings[3 + 2 * d] = after;
      if (same) {
        const int64_t total = (filter->dim(static_cast<int>(d)) - 1) * (*block)[d];
        same = before == total / 2 && after == total - total / 2;
      }
    }
    if (negative) continue;
    Fold f{s2b_id, conv_id, {1, (*block)[0], (*block)[1], 1}, {}, "EXPLICIT"};
    if (all_zero) {
      f.padding = "VALID";
    } else if (same) {
      f.padding = "SAME";
    } else {
      f.explicit_paddings = std::move(explicit_paddings);
    }
    skip[static_cast<size_t>(s2b_id)] = skip[static_cast<size_t>(conv_id)] = 1;
    by_batch_to_space.emplace(static_cast<int>(i), std::move(f));
  }
  if (by_batch_to_space.empty()) return g;

  Rewriter rw(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& node = g.nodes[i];
    if (skip[i]) continue;  // emitted as the dilated convolution
    Node copy = node;
    if (auto it = by_batch_to_space.find(static_cast<int>(i)); it != by_batch_to_space.end()) {
      const Fold& f = it->second;
      const Node& s2b = g.nodes[static_cast<size_t>(f.space_to_batch)];
      copy = g.nodes[static_cast<size_t>(f.conv)];
      copy.name = node.name;
      copy.inputs = {s2b.inputs[0], copy.inputs[1]};
      copy.control_inputs.clear();
      copy.attrs.set("dilations", f.dilations);
      copy.attrs.set("padding", f.padding);
      copy.attrs.set("explicit_paddings", f.explicit_paddings);
      copy.output_shapes = node.output_shapes;
      ++stats.dilated_convs_folded;
    }
    rw.replace(i, std::move(copy));
  }
  return rw.finish();
}

// Conv2D / DepthwiseConv2dNative [-> BiasAdd] -> FusedBatchNorm(is_training=false), with
// constant filter, bias and batch-norm parameters and no other users of the intermediate
// values, becomes Conv [-> BiasAdd] with scaled filter and shifted bias:
//   s = scale / sqrt(variance + epsilon); filter' = filter * s; bias' = (bias - mean) * s + offset
Expected<Graph> fold_batch_norms(const Graph& g, OptimizeStats& stats) {
  const std::vector<int> uses = count_uses(g);
  std::vector<char> skip(g.nodes.size(), 0);
  struct Fold {
    int conv, bias_add, bn;
    Tensor filter, bias;
  };
  std::vector<Fold> folds;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& bn = g.nodes[i];
    if (bn.op != "FusedBatchNorm" && bn.op != "FusedBatchNormV2" && bn.op != "FusedBatchNormV3")
      continue;
    auto training = bn.attrs.get_bool("is_training", true);
    auto eps = bn.attrs.get_float("epsilon", 1e-4f);
    if (!training.ok() || *training || !eps.ok() || !attr_is(bn, "data_format", "NHWC", "NHWC"))
      continue;
    if (bn.inputs.size() != 5 || bn.inputs[0].index != 0) continue;
    bool params_const = true;
    for (int k = 1; k < 5; ++k)
      params_const = params_const && is_const(g, bn.inputs[static_cast<size_t>(k)]);
    if (!params_const) continue;
    // Only output 0 (y) may be used.
    bool other_outputs_used = false;
    for (const auto& n : g.nodes) {
      for (const auto& in : n.inputs)
        other_outputs_used |= in.node == static_cast<int>(i) && in.index != 0;
    }
    for (const auto& o : g.outputs)
      other_outputs_used |= o.node == static_cast<int>(i) && o.index != 0;
    if (other_outputs_used) continue;

    int producer = bn.inputs[0].node;
    int bias_add = -1;
    if (g.nodes[static_cast<size_t>(producer)].op == "BiasAdd") {
      const Node& b = g.nodes[static_cast<size_t>(producer)];
      if (b.inputs.size() != 2 || uses[static_cast<size_t>(producer)] != 1 ||
          !is_const(g, b.inputs[1]) || !attr_is(b, "data_format", "NHWC", "NHWC")) {
        continue;
      }
      bias_add = producer;
      producer = b.inputs[0].node;
    }
    const Node& conv = g.nodes[static_cast<size_t>(producer)];
    if ((conv.op != "Conv2D" && conv.op != "DepthwiseConv2dNative") || conv.inputs.size() != 2 ||
        uses[static_cast<size_t>(producer)] != 1 || !is_const(g, conv.inputs[1]) ||
        !attr_is(conv, "data_format", "NHWC", "NHWC")) {
      continue;
    }
    const Tensor& filter = const_value(g, conv.inputs[1]);
    if (filter.dtype() != DType::kFloat32 || filter.rank() != 4) continue;
    const int64_t channels = conv.op == "Conv2D" ? filter.dim(3) : filter.dim(2) * filter.dim(3);
    const Tensor* params[4];
    bool shapes_ok = true;
    for (int k = 0; k < 4; ++k) {
      params[k] = &const_value(g, bn.inputs[static_cast<size_t>(k) + 1]);
      shapes_ok = shapes_ok && params[k]->dtype() == DType::kFloat32 &&
                  params[k]->num_elements() == channels;
    }
    const Tensor* old_bias =
        bias_add >= 0 ? &const_value(g, g.nodes[static_cast<size_t>(bias_add)].inputs[1]) : nullptr;
    if (!shapes_ok || (old_bias && (old_bias->dtype() != DType::kFloat32 ||
                                    old_bias->num_elements() != channels))) {
      continue;
    }
    const float* scale = params[0]->data<float>();
    const float* offset = params[1]->data<float>();
    const float* mean = params[2]->data<float>();
    const float* variance = params[3]->data<float>();
    std::vector<float> s(static_cast<size_t>(channels));
    Tensor bias(DType::kFloat32, {channels});
    for (int64_t c = 0; c < channels; ++c) {
      s[static_cast<size_t>(c)] = scale[c] / std::sqrt(variance[c] + *eps);
      const float b = old_bias ? old_bias->data<float>()[c] : 0.0f;
      bias.mutable_data<float>()[c] = (b - mean[c]) * s[static_cast<size_t>(c)] + offset[c];
    }
    // Output channel is the innermost axis of HWIO (Conv2D) and of the flattened
    // [H, W, C * multiplier] (depthwise) filter.
    Tensor scaled(DType::kFloat32, filter.shape());
    for (int64_t j = 0; j < filter.num_elements(); ++j) {
      scaled.mutable_data<float>()[j] =
          filter.data<float>()[j] * s[static_cast<size_t>(j % channels)];
    }
    folds.push_back({producer, bias_add, static_cast<int>(i), std::move(scaled), std::move(bias)});
    skip[static_cast<size_t>(producer)] = 1;
    if (bias_add >= 0) skip[static_cast<size_t>(bias_add)] = 1;
  }
  if (folds.empty()) return g;

  Rewriter rw(g);
  std::map<int, const Fold*> by_bn;
  for (const auto& f : folds) by_bn[f.bn] = &f;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& node = g.nodes[i];
    if (skip[i]) continue;  // emitted with its batch norm
    if (auto it = by_bn.find(static_cast<int>(i)); it != by_bn.end()) {
      const Fold& f = *it->second;
      Node conv = g.nodes[static_cast<size_t>(f.conv)];
      const int filter = rw.add(make_const(conv.name + "/folded_filter", f.filter));
      conv.inputs = {rw.map(conv.inputs[0]), {filter, 0}};
      conv.control_inputs.clear();
      const int conv_id = rw.add(std::move(conv));
      const int bias = rw.add(make_const(node.name + "/folded_bias", f.bias));
      Node add;
      add.name = node.name;
      add.op = "BiasAdd";
      add.function = node.function;
      add.attrs.set("T", DType::kFloat32);
      add.spec = ops::OpRegistry::global().find("BiasAdd");
      add.inputs = {{conv_id, 0}, {bias, 0}};
      const int add_id = rw.add(std::move(add));
      std::vector<ValueRef> outs(static_cast<size_t>(node.num_outputs), ValueRef{add_id, 0});
      rw.set_outputs(i, std::move(outs));
      ++stats.batch_norms_folded;
      continue;
    }
    rw.replace(i, node);
  }
  return rw.finish();
}

// Whether a Mean's constant axes of a rank-4 (NHWC) input are exactly {1, 2}.
bool reduces_height_and_width(const Tensor& axes) {
  if ((axes.dtype() != DType::kInt32 && axes.dtype() != DType::kInt64) || axes.rank() > 1 ||
      axes.num_elements() != 2) {
    return false;
  }
  std::set<int64_t> resolved;
  for (int64_t k = 0; k < 2; ++k) {
    const auto a = static_cast<int64_t>(element_as_double(axes, k));
    resolved.insert(a < 0 ? a + 4 : a);
  }
  return resolved == std::set<int64_t>{1, 2};
}

// A convolution or matmul with constant weights and what follows it into one fused node:
//   [Mul ->] op -> [BiasAdd const] -> [AddV2/Add residual] -> [Relu | Relu6 | x * Sigmoid(x)]
// where each intermediate value has no other user (see src/ops/fused_ops.cc). The Mul in front
// (Conv2D only) is squeeze-and-excitation's channel gate, which the fast kernel folds into the
// filter.
Expected<Graph> fuse_layers(const Graph& g, bool fast_kernels, OptimizeStats& stats) {
  const size_t n = g.nodes.size();
  std::vector<std::vector<int>> consumers(n);
  for (size_t i = 0; i < n; ++i) {
    for (const auto& in : g.nodes[i].inputs)
      consumers[static_cast<size_t>(in.node)].push_back(static_cast<int>(i));
  }
  std::vector<char> is_output(n, 0);
  for (const auto& o : g.outputs) is_output[static_cast<size_t>(o.node)] = 1;
  // A node joins at most one chain: a residual Add fed by two convolutions goes to the first.
  std::vector<char> claimed(n, 0);
  auto sole_consumer = [&](int node) -> const Node* {
    const auto& c = consumers[static_cast<size_t>(node)];
    if (c.size() != 1 || is_output[static_cast<size_t>(node)] ||
        claimed[static_cast<size_t>(c[0])]) {
      return nullptr;
    }
    return &g.nodes[static_cast<size_t>(c[0])];
  };
  struct Chain {
    int first = -1;
    int last = -1;
    std::vector<int> absorbed;  // nodes replaced by the fused node, besides `last`
    int folded_pad = -1;        // a Pad node whose padding the convolution takes over
    int input_mul = -1;         // a Mul node whose product is the convolution's input
    int spatial_mean = -1;      // a Mean over height and width of the chain's result
    std::vector<int64_t> explicit_paddings;
    bool has_bias = false;
    ValueRef bias{};
    bool has_residual = false;
    ValueRef residual{};
    std::string activation;
  };
  std::vector<int> chain_of_last(n, -1);
  std::vector<int> chain_of_mean(n, -1);
  std::vector<char> absorbed(n, 0);
  std::vector<Chain> chains;
  for (size_t i = 0; i < n; ++i) {
    const Node& base = g.nodes[i];
    if (base.op != "Conv2D" && base.op != "DepthwiseConv2dNative" && base.op != "MatMul") continue;
    if (base.inputs.size() != 2 || !is_const(g, base.inputs[1]) ||
        const_value(g, base.inputs[1]).dtype() != DType::kFloat32) {
      continue;
    }
    if (base.op != "MatMul" && !attr_is(base, "data_format", "NHWC", "NHWC")) continue;
    if (base.op == "MatMul") {
      auto ta = base.attrs.get_bool("transpose_a", false);
      if (!ta.ok() || *ta) continue;
    }
    Chain c;
    c.first = c.last = static_cast<int>(i);
    auto id_of = [&](const Node* node) { return static_cast<int>(node - g.nodes.data()); };
    // A zero Pad of height and width right before a VALID/EXPLICIT convolution becomes the
    // convolution's explicit padding (Keras ZeroPadding2D, TF-Slim's fixed padding).
    if (base.op != "MatMul") {
      const int pad_id = base.inputs[0].node;
      const Node& pad = g.nodes[static_cast<size_t>(pad_id)];
      auto padding = base.attrs.get_string("padding", "");
      if (pad.op == "Pad" && pad.inputs.size() == 2 && is_const(g, pad.inputs[1]) &&
          consumers[static_cast<size_t>(pad_id)].size() == 1 &&
          !is_output[static_cast<size_t>(pad_id)] && padding.ok() &&
          (*padding == "VALID" || *padding == "EXPLICIT")) {
        const Tensor& p = const_value(g, pad.inputs[1]);
        if (p.num_elements() == 8 && p.dim(0) == 4) {
          std::vector<int64_t> v(8);
          for (int k = 0; k < 8; ++k)
            v[static_cast<size_t>(k)] = static_cast<int64_t>(element_as_double(p, k));
          auto old = base.attrs.get_ints("explicit_paddings", std::vector<int64_t>(8, 0));
          if (v[0] == 0 && v[1] == 0 && v[6] == 0 && v[7] == 0 && old.ok() && old->size() == 8) {
            for (int k = 2; k < 6; ++k) (*old)[static_cast<size_t>(k)] += v[static_cast<size_t>(k)];
            c.folded_pad = pad_id;
            c.explicit_paddings = *old;
          }
        }
      }
    }
    if (base.op == "Conv2D" && c.folded_pad < 0) {
      const int mul_id = base.inputs[0].node;
      const Node& mul = g.nodes[static_cast<size_t>(mul_id)];
      if (mul.op == "Mul" && mul.inputs.size() == 2 && base.inputs[0].index == 0 &&
          consumers[static_cast<size_t>(mul_id)].size() == 1 &&
          !is_output[static_cast<size_t>(mul_id)] && !claimed[static_cast<size_t>(mul_id)]) {
        c.input_mul = mul_id;
      }
    }
    if (const Node* next = sole_consumer(c.last);
        next && next->op == "BiasAdd" && next->inputs.size() == 2 &&
        next->inputs[0].node == c.last && is_const(g, next->inputs[1]) &&
        attr_is(*next, "data_format", "NHWC", "NHWC")) {
      c.has_bias = true;
      c.bias = next->inputs[1];
      c.absorbed.push_back(c.last);
      c.last = id_of(next);
    }
    if (const Node* next = sole_consumer(c.last);
        next && (next->op == "AddV2" || next->op == "Add") && next->inputs.size() == 2 &&
        (next->inputs[0].node == c.last) != (next->inputs[1].node == c.last)) {
      c.has_residual = true;
      c.residual = next->inputs[0].node == c.last ? next->inputs[1] : next->inputs[0];
      c.absorbed.push_back(c.last);
      c.last = id_of(next);
    }
    if (const Node* next = sole_consumer(c.last);
        next && (next->op == "Relu" || next->op == "Relu6") && next->inputs.size() == 1) {
      c.activation = next->op;
      c.absorbed.push_back(c.last);
      c.last = id_of(next);
    } else if (const auto& users = consumers[static_cast<size_t>(c.last)];
               users.size() == 2 && !is_output[static_cast<size_t>(c.last)]) {
      // Swish: Mul(t, Sigmoid(t)) in either operand order.
      const Node* a = &g.nodes[static_cast<size_t>(users[0])];
      const Node* b = &g.nodes[static_cast<size_t>(users[1])];
      if (a->op == "Mul") std::swap(a, b);
      const int sigmoid = id_of(a);
      if (a->op == "Sigmoid" && b->op == "Mul" && a->inputs.size() == 1 && b->inputs.size() == 2 &&
          consumers[static_cast<size_t>(sigmoid)].size() == 1 &&
          !claimed[static_cast<size_t>(sigmoid)] && !claimed[static_cast<size_t>(id_of(b))] &&
          !is_output[static_cast<size_t>(sigmoid)] &&
          ((b->inputs[0].node == c.last && b->inputs[1].node == sigmoid) ||
           (b->inputs[1].node == c.last && b->inputs[0].node == sigmoid))) {
        c.absorbed.push_back(sigmoid);
        c.absorbed.push_back(c.last);
        c.activation = "Swish";
        c.last = id_of(b);
      }
    }
    // Global average pooling of the result (squeeze-and-excitation's squeeze, a classifier's
    // pooling) becomes the fused node's second output, computed in the activation's pass.
    if (base.op != "MatMul") {
      for (int user : consumers[static_cast<size_t>(c.last)]) {
        const Node& mean = g.nodes[static_cast<size_t>(user)];
        if (mean.op == "Mean" && mean.inputs.size() == 2 && mean.inputs[0].node == c.last &&
            mean.inputs[0].index == 0 && !claimed[static_cast<size_t>(user)] &&
            is_const(g, mean.inputs[1]) &&
            reduces_height_and_width(const_value(g, mean.inputs[1])) &&
            mean.attrs.get_bool("keep_dims", false).ok()) {
          c.spatial_mean = user;
          break;
        }
      }
    }
    for (int k : c.absorbed) absorbed[static_cast<size_t>(k)] = claimed[static_cast<size_t>(k)] = 1;
    claimed[static_cast<size_t>(c.last)] = 1;
    if (c.spatial_mean >= 0) {
      absorbed[static_cast<size_t>(c.spatial_mean)] = claimed[static_cast<size_t>(c.spatial_mean)] =
          1;
      chain_of_mean[static_cast<size_t>(c.spatial_mean)] = static_cast<int>(chains.size());
    }
    if (c.folded_pad >= 0) absorbed[static_cast<size_t>(c.folded_pad)] = 1;
    if (c.input_mul >= 0) {
      absorbed[static_cast<size_t>(c.input_mul)] = claimed[static_cast<size_t>(c.input_mul)] = 1;
    }
    chain_of_last[static_cast<size_t>(c.last)] = static_cast<int>(chains.size());
    chains.push_back(std::move(c));
  }
  if (chains.empty()) return g;

  Rewriter rw(g);
  std::vector<int> fused_id_of_chain(chains.size(), -1);
  for (size_t i = 0; i < n; ++i) {
    const Node& node = g.nodes[i];
    if (int ci = chain_of_mean[i]; ci >= 0) {
      // Its chain's node comes first: the Mean reads the chain's result.
      const int id = fused_id_of_chain[static_cast<size_t>(ci)];
      if (id < 0) return internal_error("Mean '" + node.name + "' precedes its fused layer");
      rw.set_outputs(i, {{id, 1}});
      continue;
    }
    if (absorbed[i]) continue;
    if (int ci = chain_of_last[i]; ci >= 0) {
      const Chain& c = chains[static_cast<size_t>(ci)];
      const Node& base = g.nodes[static_cast<size_t>(c.first)];
      Node fused;
      fused.name = node.name;
      fused.op = "_HubimgFused" + base.op;
      fused.function = base.function;
      fused.attrs = base.attrs;
      fused.attrs.set("has_bias", c.has_bias);
      fused.attrs.set("has_residual", c.has_residual);
      fused.attrs.set("activation", c.activation);
      if (c.input_mul >= 0) fused.attrs.set("has_input_mul", true);
      if (c.spatial_mean >= 0) {
        fused.attrs.set("spatial_mean", true);
        fused.attrs.set("spatial_mean_keep_dims", g.nodes[static_cast<size_t>(c.spatial_mean)]
                                                      .attrs.get_bool("keep_dims", false)
                                                      .value());
        fused.num_outputs = 2;
      }
      fused.spec = ops::OpRegistry::global().find(fused.op);
      if (fused.spec == nullptr) return internal_error("fused op " + fused.op + " not registered");
      const Node* mul = c.input_mul >= 0 ? &g.nodes[static_cast<size_t>(c.input_mul)] : nullptr;
      const ValueRef input = c.folded_pad >= 0
                                 ? g.nodes[static_cast<size_t>(c.folded_pad)].inputs[0]
                             : mul ? mul->inputs[0]
                                   : base.inputs[0];
      fused.inputs = {rw.map(input), rw.map(base.inputs[1])};
      if (c.folded_pad >= 0) {
        fused.attrs.set("padding", std::string("EXPLICIT"));
        fused.attrs.set("explicit_paddings", c.explicit_paddings);
      }
      if (c.has_bias) fused.inputs.push_back(rw.map(c.bias));
      if (c.has_residual) fused.inputs.push_back(rw.map(c.residual));
      if (mul) fused.inputs.push_back(rw.map(mul->inputs[1]));
      if (fast_kernels) {
        const Tensor& filter = const_value(g, base.inputs[1]);
        const Tensor bias = c.has_bias ? const_value(g, c.bias) : Tensor();
        auto prepared = ops::fast::prepare_fused(fused.name, fused.op, fused.attrs, filter, bias);
        if (prepared.ok()) {
          fused.prepared = std::move(prepared).value();
          ++stats.fast_kernels;
        }
      }
      const int id = rw.add(std::move(fused));
      rw.set_outputs(i, {{id, 0}});
      fused_id_of_chain[static_cast<size_t>(ci)] = id;
      ++stats.layers_fused;
      continue;
    }
    rw.replace(i, node);
  }
  return rw.finish();
}

}  // namespace

Expected<std::shared_ptr<Graph>> optimize_for_inference(const Graph& graph,
                                                        std::span<Variable* const> variables,
                                                        const OptimizeOptions& options,
                                                        OptimizeStats* stats_out) {
  OptimizeStats stats;
  stats.nodes_before = static_cast<int>(graph.nodes.size());
  if (!graph.side_effect_nodes.empty()) {
    if (stats_out) *stats_out = stats;
    return std::make_shared<Graph>(graph);
  }
  HUBIMG_ASSIGN_OR_RETURN(Graph g, freeze_and_fold(graph, variables, options, stats));
  if (options.fuse) {
    HUBIMG_ASSIGN_OR_RETURN(g, fold_space_to_batch_convs(g, stats));
  }
  if (options.fold_batch_norm) {
    HUBIMG_ASSIGN_OR_RETURN(g, fold_batch_norms(g, stats));
    if (stats.batch_norms_folded > 0 && options.fold_constants) {
      HUBIMG_ASSIGN_OR_RETURN(g, freeze_and_fold(g, variables, options, stats));
    }
  }
  prune(g);  // folded inputs, unused constants
  if (options.fuse) {
    HUBIMG_ASSIGN_OR_RETURN(g, fuse_layers(g, options.fast_kernels, stats));
  }
  stats.nodes_after = static_cast<int>(g.nodes.size());
  if (stats_out) *stats_out = stats;
  return std::make_shared<Graph>(std::move(g));
}

}  // namespace hubimg::graph
