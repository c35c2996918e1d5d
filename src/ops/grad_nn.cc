// Gradient rules of the nn op family (TensorFlow's definitions: tensorflow/python/ops/nn_grad.py
// and math_grad.py for MatMul / BatchMatMul / Einsum).
#include <algorithm>

#include "ops/gradient.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

using Grads = std::vector<GradValue>;

// Rule for an op whose input 0's gradient is `op(first, second)` over the cotangent, the
// forward input and the forward output. TensorFlow's elementwise activation rules all have
// this form.
enum class Operand { kGrad, kInput, kOutput };

GradientRule elementwise_rule(const std::string& op, Operand first, Operand second,
                              const std::vector<std::string>& copied_attrs = {}) {
  return [=](GradientBuilder& b) -> Expected<Grads> {
    const GradValue g = b.grad(0);
    if (!g.valid() || !b.needs_grad(0)) return Grads(1);
    auto value = [&](Operand o) {
      return o == Operand::kGrad ? g : o == Operand::kInput ? b.input(0) : b.output(0);
    };
    AttrMap attrs;
    for (const auto& name : copied_attrs) {
      if (const AttrValue* v = b.attrs().find(name)) attrs.set(name, *v);
    }
    HUBIMG_ASSIGN_OR_RETURN(GradValue dx, b.add1(op, {value(first), value(second)}, attrs));
    return Grads{dx};
  };
}

Expected<GradValue> last_axis_sum(GradientBuilder& b, GradValue v) {
  HUBIMG_ASSIGN_OR_RETURN(GradValue axis, b.constant(Tensor::from_vector<int32_t>({1}, {-1})));
  return b.add1("Sum", {v, axis}, {{"keep_dims", true}});
}

// Softmax: (g - sum(g * y, -1, keepdims)) * y.
Expected<Grads> softmax_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid() || !b.needs_grad(0)) return Grads(1);
  const GradValue y = b.output(0);
  HUBIMG_ASSIGN_OR_RETURN(GradValue gy, b.add1("Mul", {g, y}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue sum, last_axis_sum(b, gy));
  HUBIMG_ASSIGN_OR_RETURN(GradValue centered, b.add1("Sub", {g, sum}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue dx, b.add1("Mul", {centered, y}));
  return Grads{dx};
}

// LogSoftmax: g - sum(g, -1, keepdims) * exp(y).
Expected<Grads> log_softmax_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid() || !b.needs_grad(0)) return Grads(1);
  HUBIMG_ASSIGN_OR_RETURN(GradValue sum, last_axis_sum(b, g));
  HUBIMG_ASSIGN_OR_RETURN(GradValue softmax, b.add1("Exp", {b.output(0)}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue scaled, b.add1("Mul", {sum, softmax}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue dx, b.add1("Sub", {g, scaled}));
  return Grads{dx};
}

// Conv2D and DepthwiseConv2dNative: the backprop ops with the forward node's attributes.
GradientRule conv_rule(const std::string& backprop_input, const std::string& backprop_filter) {
  return [=](GradientBuilder& b) -> Expected<Grads> {
    Grads out(2);
    const GradValue g = b.grad(0);
    if (!g.valid()) return out;
    if (b.needs_grad(0)) {
      HUBIMG_ASSIGN_OR_RETURN(GradValue shape, b.add1("Shape", {b.input(0)}));
      HUBIMG_ASSIGN_OR_RETURN(out[0], b.add1(backprop_input, {shape, b.input(1), g}, b.attrs()));
    }
    if (b.needs_grad(1)) {
      HUBIMG_ASSIGN_OR_RETURN(GradValue shape, b.add1("Shape", {b.input(1)}));
      HUBIMG_ASSIGN_OR_RETURN(out[1], b.add1(backprop_filter, {b.input(0), shape, g}, b.attrs()));
    }
    return out;
  };
}

// The backprop ops differentiated as forward ops (nn_grad.py _Conv2DBackpropInputGrad and
// friends): Conv2DBackpropInput is Keras's Conv2DTranspose. Every input is linear in the
// others, so each gradient is another member of the same conv family, with the same attributes.
// BackpropInput(sizes, filter, dy): filter <- BackpropFilter(g, shape(filter), dy),
//                                  dy <- forward(g, filter).
GradientRule conv_backprop_input_rule(const std::string& forward,
                                      const std::string& backprop_filter) {
  return [=](GradientBuilder& b) -> Expected<Grads> {
    Grads out(3);
    const GradValue g = b.grad(0);
    if (!g.valid()) return out;
    if (b.needs_grad(1)) {
      HUBIMG_ASSIGN_OR_RETURN(GradValue shape, b.add1("Shape", {b.input(1)}));
      HUBIMG_ASSIGN_OR_RETURN(out[1], b.add1(backprop_filter, {g, shape, b.input(2)}, b.attrs()));
    }
    if (b.needs_grad(2)) {
      HUBIMG_ASSIGN_OR_RETURN(out[2], b.add1(forward, {g, b.input(1)}, b.attrs()));
    }
    return out;
  };
}

// BackpropFilter(x, sizes, dy): x <- BackpropInput(shape(x), g, dy), dy <- forward(x, g).
GradientRule conv_backprop_filter_rule(const std::string& forward,
                                       const std::string& backprop_input) {
  return [=](GradientBuilder& b) -> Expected<Grads> {
    Grads out(3);
    const GradValue g = b.grad(0);
    if (!g.valid()) return out;
    if (b.needs_grad(0)) {
      HUBIMG_ASSIGN_OR_RETURN(GradValue shape, b.add1("Shape", {b.input(0)}));
      HUBIMG_ASSIGN_OR_RETURN(out[0], b.add1(backprop_input, {shape, g, b.input(2)}, b.attrs()));
    }
    if (b.needs_grad(2)) {
      HUBIMG_ASSIGN_OR_RETURN(out[2], b.add1(forward, {b.input(0), g}, b.attrs()));
    }
    return out;
  };
}

// FusedBatchNorm / V2 / V3 (nn_grad.py _BaseFusedBatchNormGrad): training differentiates
// through the batch statistics saved in reserve_space_1/2; inference uses the population
// mean and variance inputs. Mean and variance never get a gradient, nor do outputs 1...
GradientRule fused_batch_norm_rule(const std::string& grad_op, bool v3) {
  return [=](GradientBuilder& b) -> Expected<Grads> {
    Grads out(5);
    const GradValue g = b.grad(0);
    if (!g.valid()) return out;
    HUBIMG_ASSIGN_OR_RETURN(bool is_training, b.attrs().get_bool("is_training", true));
    std::vector<GradValue> inputs = {g, b.input(0), b.input(1)};
    if (is_training) {
      inputs.push_back(b.output(3));
      inputs.push_back(b.output(4));
    } else {
      inputs.push_back(b.input(3));
      inputs.push_back(b.input(4));
    }
    if (v3) inputs.push_back(b.output(5));
    AttrMap attrs;
    for (const char* name : {"T", "U", "epsilon", "data_format"}) {
      if (const AttrValue* v = b.attrs().find(name)) attrs.set(name, *v);
    }
    attrs.set("is_training", is_training);
    HUBIMG_ASSIGN_OR_RETURN(auto grads, b.add(grad_op, std::move(inputs), std::move(attrs)));
    if (grads.size() < 3) return b.error(grad_op + " must have 3 or more outputs");
    out[0] = grads[0];
    out[1] = grads[1];
    out[2] = grads[2];
    return out;
  };
}

Expected<Grads> max_pool_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid() || !b.needs_grad(0)) return Grads(1);
  HUBIMG_ASSIGN_OR_RETURN(GradValue dx,
                          b.add1("MaxPoolGrad", {b.input(0), b.output(0), g}, b.attrs()));
  return Grads{dx};
}

Expected<Grads> max_pool_v2_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid() || !b.needs_grad(0)) return Grads(3);
  HUBIMG_ASSIGN_OR_RETURN(
      GradValue dx,
      b.add1("MaxPoolGradV2", {b.input(0), b.output(0), g, b.input(1), b.input(2)}, b.attrs()));
  return Grads{dx, {}, {}};
}

Expected<Grads> avg_pool_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid() || !b.needs_grad(0)) return Grads(1);
  HUBIMG_ASSIGN_OR_RETURN(GradValue shape, b.add1("Shape", {b.input(0)}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue dx, b.add1("AvgPoolGrad", {shape, g}, b.attrs()));
  return Grads{dx};
}

// ExtractImagePatches(images): the patches' cotangent added back to the cells they copied.
Expected<Grads> extract_image_patches_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid() || !b.needs_grad(0)) return Grads(1);
  HUBIMG_ASSIGN_OR_RETURN(GradValue shape, b.add1("Shape", {b.input(0)}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue dx,
                          b.add1("_HubimgExtractImagePatchesGrad", {g, shape}, b.attrs()));
  return Grads{dx};
}

// _HubimgExtractImagePatchesGrad(grad, images_shape) is linear in grad, the adjoint of
// ExtractImagePatches: its own adjoint is ExtractImagePatches again.
Expected<Grads> extract_image_patches_grad_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid() || !b.needs_grad(0)) return Grads(2);
  HUBIMG_ASSIGN_OR_RETURN(GradValue dgrad, b.add1("ExtractImagePatches", {g}, b.attrs()));
  return Grads{dgrad, {}};
}

// TopKV2 / TopK: the values' cotangent goes back to the entries they were taken from (the
// indices along the last axis); the indices carry none (TensorFlow's _TopKGrad).
Expected<Grads> top_k_grad(GradientBuilder& b) {
  Grads out(b.num_inputs());
  const GradValue g = b.grad(0);
  if (!g.valid() || !b.needs_grad(0)) return out;
  HUBIMG_ASSIGN_OR_RETURN(GradValue shape, b.add1("Shape", {b.input(0)}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue last_axis, b.constant(Tensor::scalar<int32_t>(-1)));
  // Values = GatherV2(input, indices, axis -1, batch_dims -1): every leading axis is a batch.
  HUBIMG_ASSIGN_OR_RETURN(out[0], b.add1("_HubimgGatherGrad", {g, b.output(1), shape, last_axis},
                                         {{"batch_dims", int64_t{-1}}}));
  return out;
}

// LRN(x): LRNGrad(grad, x, LRN(x)) with the forward node's attributes (TensorFlow's _LRNGrad).
Expected<Grads> lrn_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid() || !b.needs_grad(0)) return Grads(1);
  HUBIMG_ASSIGN_OR_RETURN(GradValue dx, b.add1("LRNGrad", {g, b.input(0), b.output(0)}, b.attrs()));
  return Grads{dx};
}

// BiasAdd: the cotangent passes to the value; the bias gets its sum over all but channels.
// BiasAddV1 (always channels-last) sums over every axis but the last, which BiasAddGrad in
// NHWC computes.
GradientRule bias_add_rule(bool read_data_format) {
  return [=](GradientBuilder& b) -> Expected<Grads> {
    Grads out(2);
    const GradValue g = b.grad(0);
    if (!g.valid()) return out;
    out[0] = g;
    if (b.needs_grad(1)) {
      AttrMap attrs;
      if (const AttrValue* t = b.attrs().find("T")) attrs.set("T", *t);
      std::string format = "NHWC";
      if (read_data_format) {
        HUBIMG_ASSIGN_OR_RETURN(format, b.attrs().get_string("data_format", "NHWC"));
      }
      attrs.set("data_format", format);
      HUBIMG_ASSIGN_OR_RETURN(out[1], b.add1("BiasAddGrad", {g}, attrs));
    }
    return out;
  };
}

// MatMul (math_grad.py _MatMulGrad) and BatchMatMul* (_BatchMatMul / _BatchMatMulV2):
//   (t_a, t_b) = (F, F): da = g b^T,       db = a^T g
//                (F, T): da = g b,         db = g^T a
//                (T, F): da = b g^T,       db = a g
//                (T, T): da = b^T g^T,     db = g^T a^T
// V2 / V3 broadcast the batch dimensions; their gradients are summed back over them.
GradientRule matmul_rule(std::string ta_name, std::string tb_name, bool broadcasts) {
  return [=](GradientBuilder& b) -> Expected<Grads> {
    Grads out(2);
    const GradValue g = b.grad(0);
    if (!g.valid()) return out;
    HUBIMG_ASSIGN_OR_RETURN(bool ta, b.attrs().get_bool(ta_name, false));
    HUBIMG_ASSIGN_OR_RETURN(bool tb, b.attrs().get_bool(tb_name, false));
    const GradValue a = b.input(0);
    const GradValue w = b.input(1);
    const std::string op(b.op());
    auto product = [&](GradValue x, GradValue y, bool tx, bool ty) {
      AttrMap attrs = b.attrs();
      attrs.set(ta_name, tx);
      attrs.set(tb_name, ty);
      return b.add1(op, {x, y}, attrs);
    };
    struct Product {
      GradValue x, y;
      bool tx, ty;
    };
    Product pa, pb;
    if (!ta && !tb) {
      pa = {g, w, false, true};
      pb = {a, g, true, false};
    } else if (!ta && tb) {
      pa = {g, w, false, false};
      pb = {g, a, true, false};
    } else if (ta && !tb) {
      pa = {w, g, false, true};
      pb = {a, g, false, false};
    } else {
      pa = {w, g, true, true};
      pb = {g, a, true, true};
    }
    HUBIMG_ASSIGN_OR_RETURN(out[0], product(pa.x, pa.y, pa.tx, pa.ty));
    HUBIMG_ASSIGN_OR_RETURN(out[1], product(pb.x, pb.y, pb.tx, pb.ty));
    if (!broadcasts) return out;
    // Batch dims: shape[:-2] of each input; BroadcastGradientArgs gives the axes to sum.
    HUBIMG_ASSIGN_OR_RETURN(GradValue sa, b.add1("Shape", {a}));
    HUBIMG_ASSIGN_OR_RETURN(GradValue sw, b.add1("Shape", {w}));
    HUBIMG_ASSIGN_OR_RETURN(GradValue begin, b.constant(Tensor::from_vector<int32_t>({1}, {0})));
    HUBIMG_ASSIGN_OR_RETURN(GradValue end, b.constant(Tensor::from_vector<int32_t>({1}, {-2})));
    HUBIMG_ASSIGN_OR_RETURN(GradValue step, b.constant(Tensor::from_vector<int32_t>({1}, {1})));
    HUBIMG_ASSIGN_OR_RETURN(GradValue batch_a, b.add1("StridedSlice", {sa, begin, end, step}));
    HUBIMG_ASSIGN_OR_RETURN(GradValue batch_w, b.add1("StridedSlice", {sw, begin, end, step}));
    HUBIMG_ASSIGN_OR_RETURN(auto axes, b.add("BroadcastGradientArgs", {batch_a, batch_w}));
    if (axes.size() != 2) return b.error("BroadcastGradientArgs must have two outputs");
    const GradValue shapes[2] = {sa, sw};
    for (size_t i = 0; i < 2; ++i) {
      HUBIMG_ASSIGN_OR_RETURN(GradValue summed,
                              b.add1("Sum", {out[i], axes[i]}, {{"keep_dims", false}}));
      HUBIMG_ASSIGN_OR_RETURN(out[i], b.add1("Reshape", {summed, shapes[i]}));
    }
    return out;
  };
}

// Einsum (math_grad.py _EinsumGrad). Subscripts are handled as strings in which '.' stands for
// the whole ellipsis ("...").
//   unary  z = einsum("x->z", a):   da = einsum("z->x", g), labels summed away broadcast back;
//   binary z = einsum("x,y->z", a, b):
//     da = einsum("z,y->x'", g, b) with x' = x without the labels found in neither y nor z
//     (which are broadcast back as in the unary case), and likewise db; when z has an ellipsis,
//     each gradient is summed over the ellipsis dims its operand broadcast
//     (BroadcastGradientArgs).
// Repeated labels in an operand (a diagonal) need an einsum with repeated output labels, which
// the kernel refuses with an error naming the node.
struct EinsumSubscripts {
  std::vector<std::string> inputs;
  std::string output;
};

Expected<EinsumSubscripts> parse_einsum(GradientBuilder& b) {
  HUBIMG_ASSIGN_OR_RETURN(std::string equation, b.attrs().get_string("equation"));
  std::string compact;
  for (size_t i = 0; i < equation.size(); ++i) {
    if (equation.compare(i, 3, "...") == 0) {
      compact += '.';
      i += 2;
    } else if (equation[i] != ' ') {
      compact += equation[i];
    }
  }
  const size_t arrow = compact.find("->");
  if (arrow == std::string::npos) return b.error("einsum equation '" + equation + "' has no '->'");
  EinsumSubscripts s;
  s.output = compact.substr(arrow + 2);
  const std::string lhs = compact.substr(0, arrow);
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    s.inputs.push_back(lhs.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (s.inputs.size() != b.num_inputs() || s.inputs.size() > 2) {
    return b.error("einsum equation '" + equation + "' does not fit the node's " +
                   std::to_string(b.num_inputs()) + " inputs");
  }
  return s;
}

std::string spelled_out(const std::string& subscripts) {
  std::string out;
  for (char c : subscripts) out += c == '.' ? std::string("...") : std::string(1, c);
  return out;
}

Expected<GradValue> einsum_node(GradientBuilder& b, std::vector<GradValue> inputs,
                                const std::string& equation) {
  AttrMap attrs = b.attrs();
  attrs.set("equation", spelled_out(equation));
  attrs.set("N", static_cast<int64_t>(inputs.size()));
  return b.add1("Einsum", std::move(inputs), attrs);
}

// [begin, end) of `shape` (an int32 vector); end 0 means through the last element.
Expected<GradValue> shape_slice(GradientBuilder& b, GradValue shape, int32_t begin, int32_t end) {
  HUBIMG_ASSIGN_OR_RETURN(GradValue first, b.constant(Tensor::from_vector<int32_t>({1}, {begin})));
  HUBIMG_ASSIGN_OR_RETURN(GradValue last, b.constant(Tensor::from_vector<int32_t>({1}, {end})));
  HUBIMG_ASSIGN_OR_RETURN(GradValue step, b.constant(Tensor::from_vector<int32_t>({1}, {1})));
  return b.add1("StridedSlice", {shape, first, last, step}, {{"end_mask", int64_t{end == 0}}});
}

// The axis of `label` in an operand with `subscripts`: counted from the front before the
// ellipsis, from the back (negative) after it.
int32_t label_axis(const std::string& subscripts, char label) {
  const size_t at = subscripts.find(label);
  const size_t ellipsis = subscripts.find('.');
  if (ellipsis == std::string::npos || at < ellipsis) return static_cast<int32_t>(at);
  return -static_cast<int32_t>(subscripts.size() - at);
}

// `grad` (subscripts `grad_subs`) broadcast back over the labels of `input_subs` that were
// summed away (`reduced`, in their order in input_subs): einsum("<reduced><grad_subs>->input",
// broadcast_to(reshape(grad, [1..1, shape(grad)]), [reduced dims, shape(grad)])).
Expected<GradValue> einsum_unreduce(GradientBuilder& b, GradValue grad,
                                    const std::string& grad_subs, const std::string& input_subs,
                                    GradValue input, const std::string& reduced) {
  HUBIMG_ASSIGN_OR_RETURN(GradValue input_shape, b.add1("Shape", {input}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue grad_shape, b.add1("Shape", {grad}));
  std::vector<GradValue> target;
  for (char label : reduced) {
    const int32_t axis = label_axis(input_subs, label);
    HUBIMG_ASSIGN_OR_RETURN(GradValue dim, shape_slice(b, input_shape, axis, axis + 1));
    target.push_back(dim);
  }
  HUBIMG_ASSIGN_OR_RETURN(GradValue ones, b.constant(Tensor::from_vector<int32_t>(
                                              {static_cast<int64_t>(reduced.size())},
                                              std::vector<int32_t>(reduced.size(), 1))));
  HUBIMG_ASSIGN_OR_RETURN(GradValue axis0, b.constant(Tensor::from_vector<int32_t>({}, {0})));
  target.push_back(grad_shape);
  target.push_back(axis0);
  const auto parts = static_cast<int64_t>(target.size() - 1);
  HUBIMG_ASSIGN_OR_RETURN(GradValue full_shape, b.add1("ConcatV2", target, {{"N", parts}}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue kept_shape,
                          b.add1("ConcatV2", {ones, grad_shape, axis0}, {{"N", int64_t{2}}}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue kept, b.add1("Reshape", {grad, kept_shape}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue broadcast, b.add1("BroadcastTo", {kept, full_shape}));
  return einsum_node(b, {broadcast}, reduced + grad_subs + "->" + input_subs);
}

// Labels of `subscripts` (each once, in order) that `keep` does not have.
std::string labels_not_in(const std::string& subscripts, const std::string& keep) {
  std::string out;
  for (char c : subscripts) {
    if (c != '.' && keep.find(c) == std::string::npos && out.find(c) == std::string::npos) {
      out += c;
    }
  }
  return out;
}

Expected<GradValue> einsum_grad_wrt(GradientBuilder& b, GradValue grad, GradValue other,
                                    GradValue input, const std::string& input_subs,
                                    const std::string& other_subs, const std::string& output_subs) {
  const std::string reduced = labels_not_in(input_subs, output_subs + other_subs);
  std::string left;
  for (char c : input_subs) {
    if (reduced.find(c) == std::string::npos) left += c;
  }
  HUBIMG_ASSIGN_OR_RETURN(
      GradValue grad_left,
      einsum_node(b, {grad, other}, output_subs + "," + other_subs + "->" + left));
  if (reduced.empty()) return grad_left;
  return einsum_unreduce(b, grad_left, left, input_subs, input, reduced);
}

Expected<Grads> einsum_grad(GradientBuilder& b) {
  Grads out(b.num_inputs());
  const GradValue g = b.grad(0);
  if (!g.valid()) return out;
  HUBIMG_ASSIGN_OR_RETURN(EinsumSubscripts s, parse_einsum(b));
  if (s.inputs.size() == 1) {
    const std::string reduced = labels_not_in(s.inputs[0], s.output);
    if (reduced.empty()) {
      HUBIMG_ASSIGN_OR_RETURN(out[0], einsum_node(b, {g}, s.output + "->" + s.inputs[0]));
    } else {
      HUBIMG_ASSIGN_OR_RETURN(out[0],
                              einsum_unreduce(b, g, s.output, s.inputs[0], b.input(0), reduced));
    }
    return out;
  }
  const bool broadcasts = s.output.find('.') != std::string::npos;
  for (std::string& subs : s.inputs) {
    if (broadcasts && subs.find('.') == std::string::npos) subs += '.';
  }
  for (size_t i = 0; i < 2; ++i) {
    if (!b.needs_grad(i)) continue;
    HUBIMG_ASSIGN_OR_RETURN(out[i], einsum_grad_wrt(b, g, b.input(1 - i), b.input(i), s.inputs[i],
                                                    s.inputs[1 - i], s.output));
  }
  if (!broadcasts) return out;
  // Sum each gradient over the ellipsis dims its operand broadcast, then restore its shape.
  GradValue shapes[2], batch_shapes[2];
  int32_t batch_begin[2];
  for (size_t i = 0; i < 2; ++i) {
    const std::string& subs = s.inputs[i];
    const size_t ellipsis = subs.find('.');
    batch_begin[i] = static_cast<int32_t>(ellipsis);
    const auto after = static_cast<int32_t>(subs.size() - ellipsis - 1);
    HUBIMG_ASSIGN_OR_RETURN(shapes[i], b.add1("Shape", {b.input(i)}));
    HUBIMG_ASSIGN_OR_RETURN(batch_shapes[i],
                            shape_slice(b, shapes[i], batch_begin[i], after == 0 ? 0 : -after));
  }
  HUBIMG_ASSIGN_OR_RETURN(auto axes,
                          b.add("BroadcastGradientArgs", {batch_shapes[0], batch_shapes[1]}));
  if (axes.size() != 2) return b.error("BroadcastGradientArgs must have two outputs");
  for (size_t i = 0; i < 2; ++i) {
    if (!out[i].valid()) continue;
    HUBIMG_ASSIGN_OR_RETURN(GradValue offset,
                            b.constant(Tensor::from_vector<int32_t>({}, {batch_begin[i]})));
    HUBIMG_ASSIGN_OR_RETURN(GradValue sum_axes, b.add1("AddV2", {axes[i], offset}));
    HUBIMG_ASSIGN_OR_RETURN(GradValue summed,
                            b.add1("Sum", {out[i], sum_axes}, {{"keep_dims", false}}));
    HUBIMG_ASSIGN_OR_RETURN(out[i], b.add1("Reshape", {summed, shapes[i]}));
  }
  return out;
}

}  // namespace

void register_nn_gradients(OpRegistry& r) {
  using O = Operand;
  r.set_gradient("Relu", elementwise_rule("ReluGrad", O::kGrad, O::kOutput));
  r.set_gradient("Relu6", elementwise_rule("Relu6Grad", O::kGrad, O::kOutput));
  r.set_gradient("LeakyRelu", elementwise_rule("LeakyReluGrad", O::kGrad, O::kInput, {"alpha"}));
  r.set_gradient("Elu", elementwise_rule("EluGrad", O::kGrad, O::kOutput));
  r.set_gradient("Selu", elementwise_rule("SeluGrad", O::kGrad, O::kOutput));
  r.set_gradient("Softplus", elementwise_rule("SoftplusGrad", O::kGrad, O::kInput));
  r.set_gradient("Softsign", elementwise_rule("SoftsignGrad", O::kGrad, O::kInput));
  r.set_gradient("Sigmoid", elementwise_rule("SigmoidGrad", O::kOutput, O::kGrad));
  r.set_gradient("Tanh", elementwise_rule("TanhGrad", O::kOutput, O::kGrad));
  r.set_gradient("Softmax", softmax_grad);
  r.set_gradient("LogSoftmax", log_softmax_grad);
  r.set_gradient("Conv2D", conv_rule("Conv2DBackpropInput", "Conv2DBackpropFilter"));
  r.set_gradient("DepthwiseConv2dNative", conv_rule("DepthwiseConv2dNativeBackpropInput",
                                                    "DepthwiseConv2dNativeBackpropFilter"));
  r.set_gradient("Conv2DBackpropInput", conv_backprop_input_rule("Conv2D", "Conv2DBackpropFilter"));
  r.set_gradient("Conv2DBackpropFilter",
                 conv_backprop_filter_rule("Conv2D", "Conv2DBackpropInput"));
  r.set_gradient(
      "DepthwiseConv2dNativeBackpropInput",
      conv_backprop_input_rule("DepthwiseConv2dNative", "DepthwiseConv2dNativeBackpropFilter"));
  r.set_gradient(
      "DepthwiseConv2dNativeBackpropFilter",
      conv_backprop_filter_rule("DepthwiseConv2dNative", "DepthwiseConv2dNativeBackpropInput"));
  r.set_gradient("FusedBatchNorm", fused_batch_norm_rule("FusedBatchNormGrad", false));
  r.set_gradient("FusedBatchNormV2", fused_batch_norm_rule("FusedBatchNormGradV2", false));
  r.set_gradient("FusedBatchNormV3", fused_batch_norm_rule("FusedBatchNormGradV3", true));
  r.set_gradient("MaxPool", max_pool_grad);
  r.set_gradient("MaxPoolV2", max_pool_v2_grad);
  r.set_gradient("AvgPool", avg_pool_grad);
  r.set_gradient("TopKV2", top_k_grad);
  r.set_gradient("TopK", top_k_grad);
  r.set_gradient("LRN", lrn_grad);
  r.set_gradient("ExtractImagePatches", extract_image_patches_grad);
  r.set_gradient("_HubimgExtractImagePatchesGrad", extract_image_patches_grad_grad);
  r.set_gradient("BiasAdd", bias_add_rule(true));
  r.set_gradient("BiasAddV1", bias_add_rule(false));
  r.set_gradient("MatMul", matmul_rule("transpose_a", "transpose_b", false));
  r.set_gradient("BatchMatMul", matmul_rule("adj_x", "adj_y", false));
  r.set_gradient("BatchMatMulV2", matmul_rule("adj_x", "adj_y", true));
  r.set_gradient("BatchMatMulV3", matmul_rule("adj_x", "adj_y", true));
  r.set_gradient("Einsum", einsum_grad);
}

}  // namespace hubimg::ops
