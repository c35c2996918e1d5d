// Gradient rules of the nn op family (TensorFlow's definitions: tensorflow/python/ops/nn_grad.py
// and math_grad.py for MatMul / BatchMatMul).
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
  r.set_gradient("FusedBatchNorm", fused_batch_norm_rule("FusedBatchNormGrad", false));
  r.set_gradient("FusedBatchNormV2", fused_batch_norm_rule("FusedBatchNormGradV2", false));
  r.set_gradient("FusedBatchNormV3", fused_batch_norm_rule("FusedBatchNormGradV3", true));
  r.set_gradient("MaxPool", max_pool_grad);
  r.set_gradient("MaxPoolV2", max_pool_v2_grad);
  r.set_gradient("AvgPool", avg_pool_grad);
  r.set_gradient("BiasAdd", bias_add_rule(true));
  r.set_gradient("BiasAddV1", bias_add_rule(false));
  r.set_gradient("MatMul", matmul_rule("transpose_a", "transpose_b", false));
  r.set_gradient("BatchMatMul", matmul_rule("adj_x", "adj_y", false));
  r.set_gradient("BatchMatMulV2", matmul_rule("adj_x", "adj_y", true));
  r.set_gradient("BatchMatMulV3", matmul_rule("adj_x", "adj_y", true));
}

}  // namespace hubimg::ops
