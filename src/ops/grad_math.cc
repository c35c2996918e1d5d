// Gradient rules of the math op family (TensorFlow's definitions: tensorflow/python/ops/*_grad.py).
#include <cmath>
#include <numbers>

#include "ops/gradient.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

using Grads = std::vector<GradValue>;

// The float dtype of the forward node's values: its "T" attribute, else what the graph knows.
Expected<DType> value_type(GradientBuilder& b, GradValue v) {
  DType t = b.dtype(v);
  if (t != DType::kInvalid) return t;
  auto attr = b.attrs().get_type("T");
  if (attr.ok()) return *attr;
  return b.error("cannot tell the dtype of an input");
}

// A scalar Const of `dtype` (a float type) holding `value`.
Expected<GradValue> scalar(GradientBuilder& b, DType dtype, double value) {
  switch (dtype) {
    case DType::kFloat64: return b.constant(Tensor::scalar<double>(value));
    case DType::kFloat32: return b.constant(Tensor::scalar<float>(static_cast<float>(value)));
    default: {
      HUBIMG_ASSIGN_OR_RETURN(GradValue f,
                              b.constant(Tensor::scalar<float>(static_cast<float>(value))));
      return b.add1("Cast", {f}, {{"SrcT", DType::kFloat32}, {"DstT", dtype}});
    }
  }
}

Expected<GradValue> binary(GradientBuilder& b, std::string_view op, GradValue x, GradValue y) {
  return b.add1(op, {x, y});
}
Expected<GradValue> unary(GradientBuilder& b, std::string_view op, GradValue x) {
  return b.add1(op, {x});
}

// Gradient of a broadcasting binary op from the elementwise partials (already multiplied by the
// cotangent): each summed down to its input's shape.
Expected<Grads> unbroadcast(GradientBuilder& b, std::optional<GradValue> gx,
                            std::optional<GradValue> gy) {
  Grads out(2);
  if (gx && b.needs_grad(0)) {
    HUBIMG_ASSIGN_OR_RETURN(out[0], reduce_to_input_shape(b, *gx, b.input(0), b.input(1), 0));
  }
  if (gy && b.needs_grad(1)) {
    HUBIMG_ASSIGN_OR_RETURN(out[1], reduce_to_input_shape(b, *gy, b.input(0), b.input(1), 1));
  }
  return out;
}

// Elementwise rule g * f'(x) where `derivative` builds f'(x) from (x, y).
template <typename F>
GradientRule unary_rule(F derivative) {
  return [derivative](GradientBuilder& b) -> Expected<Grads> {
    const GradValue g = b.grad(0);
    if (!g.valid()) return Grads(1);
    HUBIMG_ASSIGN_OR_RETURN(DType t, value_type(b, b.input(0)));
    HUBIMG_ASSIGN_OR_RETURN(GradValue d, derivative(b, b.input(0), b.output(0), t));
    HUBIMG_ASSIGN_OR_RETURN(GradValue gx, binary(b, "Mul", g, d));
    return Grads{gx};
  };
}

// The shape `x` has after reducing over `axes` with keep_dims: dims at the (possibly negative)
// axes set to 1 (TensorFlow's math_ops.reduced_shape), built from small int32 ops.
Expected<GradValue> reduced_shape(GradientBuilder& b, GradValue x, GradValue axes) {
  HUBIMG_ASSIGN_OR_RETURN(GradValue shape, unary(b, "Shape", x));
  HUBIMG_ASSIGN_OR_RETURN(GradValue rank, unary(b, "Size", shape));
  HUBIMG_ASSIGN_OR_RETURN(GradValue zero, b.constant(Tensor::scalar<int32_t>(0)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue one, b.constant(Tensor::scalar<int32_t>(1)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue dims, b.add1("Range", {zero, rank, one}));
  HUBIMG_ASSIGN_OR_RETURN(
      GradValue axes32,
      b.add1("Cast", {axes},
             {{"SrcT", b.dtype(axes) == DType::kInt64 ? DType::kInt64 : DType::kInt32},
              {"DstT", DType::kInt32}}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue axes_mod, binary(b, "FloorMod", axes32, rank));
  HUBIMG_ASSIGN_OR_RETURN(
      GradValue column, b.constant(Tensor::from_vector<int32_t>({2}, std::vector<int32_t>{-1, 1})));
  HUBIMG_ASSIGN_OR_RETURN(
      GradValue row, b.constant(Tensor::from_vector<int32_t>({2}, std::vector<int32_t>{1, -1})));
  HUBIMG_ASSIGN_OR_RETURN(GradValue dims_col, binary(b, "Reshape", dims, column));
  HUBIMG_ASSIGN_OR_RETURN(GradValue axes_row, binary(b, "Reshape", axes_mod, row));
  HUBIMG_ASSIGN_OR_RETURN(GradValue hit, binary(b, "Equal", dims_col, axes_row));
  HUBIMG_ASSIGN_OR_RETURN(GradValue reduced, b.add1("Any", {hit, one}, {{"keep_dims", false}}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue ones, unary(b, "OnesLike", shape));
  return b.add1("SelectV2", {reduced, ones, shape});
}

// The cotangent of a reduction, broadcast back to the input's shape.
Expected<GradValue> broadcast_back(GradientBuilder& b, GradValue g) {
  HUBIMG_ASSIGN_OR_RETURN(GradValue kept, reduced_shape(b, b.input(0), b.input(1)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue g_kept, binary(b, "Reshape", g, kept));
  HUBIMG_ASSIGN_OR_RETURN(GradValue shape, unary(b, "Shape", b.input(0)));
  return binary(b, "BroadcastTo", g_kept, shape);
}

Expected<Grads> sum_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(2);
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, broadcast_back(b, b.grad(0)));
  return Grads{gx, {}};
}

// Prod(x, axes): each element's cotangent times the product of the other elements reduced with
// it (_HubimgProdGrad; TensorFlow's _ProdGrad computes the same from exclusive cumprods).
Expected<Grads> prod_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(2);
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx,
                          b.add1("_HubimgProdGrad", {b.input(0), b.input(1), b.grad(0)}));
  return Grads{gx, {}};
}

Expected<Grads> mean_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(2);
  HUBIMG_ASSIGN_OR_RETURN(DType t, value_type(b, b.input(0)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, broadcast_back(b, b.grad(0)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue in_size, unary(b, "Size", b.input(0)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue out_size, unary(b, "Size", b.output(0)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue in_f,
                          b.add1("Cast", {in_size}, {{"SrcT", DType::kInt32}, {"DstT", t}}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue out_f,
                          b.add1("Cast", {out_size}, {{"SrcT", DType::kInt32}, {"DstT", t}}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue factor, binary(b, "DivNoNan", in_f, out_f));
  HUBIMG_ASSIGN_OR_RETURN(GradValue scaled, binary(b, "RealDiv", gx, factor));
  return Grads{scaled, {}};
}

// Max / Min: the cotangent split equally between the elements equal to the result.
Expected<Grads> extremum_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(2);
  HUBIMG_ASSIGN_OR_RETURN(DType t, value_type(b, b.input(0)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue kept, reduced_shape(b, b.input(0), b.input(1)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue y, binary(b, "Reshape", b.output(0), kept));
  HUBIMG_ASSIGN_OR_RETURN(GradValue g, binary(b, "Reshape", b.grad(0), kept));
  HUBIMG_ASSIGN_OR_RETURN(GradValue equal, binary(b, "Equal", y, b.input(0)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue indicators,
                          b.add1("Cast", {equal}, {{"SrcT", DType::kBool}, {"DstT", t}}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue count,
                          b.add1("Sum", {indicators, b.input(1)}, {{"keep_dims", true}}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue share, binary(b, "RealDiv", indicators, count));
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, binary(b, "Mul", share, g));
  return Grads{gx, {}};
}

Expected<Grads> add_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid()) return Grads(2);
  return unbroadcast(b, g, g);
}

Expected<Grads> sub_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid()) return Grads(2);
  std::optional<GradValue> gy;
  if (b.needs_grad(1)) {
    HUBIMG_ASSIGN_OR_RETURN(gy, unary(b, "Neg", g));
  }
  return unbroadcast(b, g, gy);
}

Expected<Grads> mul_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid()) return Grads(2);
  std::optional<GradValue> gx, gy;
  if (b.needs_grad(0)) {
    HUBIMG_ASSIGN_OR_RETURN(gx, binary(b, "Mul", g, b.input(1)));
  }
  if (b.needs_grad(1)) {
    HUBIMG_ASSIGN_OR_RETURN(gy, binary(b, "Mul", b.input(0), g));
  }
  return unbroadcast(b, gx, gy);
}

// RealDiv / Div (floats) and DivNoNan (`div` names the division op used).
GradientRule div_rule(std::string_view div) {
  return [div = std::string(div)](GradientBuilder& b) -> Expected<Grads> {
    const GradValue g = b.grad(0);
    if (!g.valid()) return Grads(2);
    const GradValue x = b.input(0), y = b.input(1);
    std::optional<GradValue> gx, gy;
    if (b.needs_grad(0)) {
      HUBIMG_ASSIGN_OR_RETURN(gx, binary(b, div, g, y));
    }
    if (b.needs_grad(1)) {
      HUBIMG_ASSIGN_OR_RETURN(GradValue neg_x, unary(b, "Neg", x));
      HUBIMG_ASSIGN_OR_RETURN(GradValue q1, binary(b, div, neg_x, y));
      HUBIMG_ASSIGN_OR_RETURN(GradValue q2, binary(b, div, q1, y));
      HUBIMG_ASSIGN_OR_RETURN(gy, binary(b, "Mul", g, q2));
    }
    return unbroadcast(b, gx, gy);
  };
}

// Maximum (x where x >= y) and Minimum (x where x <= y).
GradientRule extremum2_rule(std::string_view compare) {
  return [compare = std::string(compare)](GradientBuilder& b) -> Expected<Grads> {
    const GradValue g = b.grad(0);
    if (!g.valid()) return Grads(2);
    HUBIMG_ASSIGN_OR_RETURN(GradValue mask, binary(b, compare, b.input(0), b.input(1)));
    HUBIMG_ASSIGN_OR_RETURN(GradValue zeros, unary(b, "ZerosLike", g));
    std::optional<GradValue> gx, gy;
    if (b.needs_grad(0)) {
      HUBIMG_ASSIGN_OR_RETURN(gx, b.add1("SelectV2", {mask, g, zeros}));
    }
    if (b.needs_grad(1)) {
      HUBIMG_ASSIGN_OR_RETURN(gy, b.add1("SelectV2", {mask, zeros, g}));
    }
    return unbroadcast(b, gx, gy);
  };
}

Expected<Grads> squared_difference_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid()) return Grads(2);
  HUBIMG_ASSIGN_OR_RETURN(DType t, value_type(b, b.input(0)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue two, scalar(b, t, 2.0));
  HUBIMG_ASSIGN_OR_RETURN(GradValue diff, binary(b, "Sub", b.input(0), b.input(1)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue g2, binary(b, "Mul", two, g));
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, binary(b, "Mul", g2, diff));
  std::optional<GradValue> gy;
  if (b.needs_grad(1)) {
    HUBIMG_ASSIGN_OR_RETURN(gy, unary(b, "Neg", gx));
  }
  return unbroadcast(b, gx, gy);
}

Expected<Grads> pow_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid()) return Grads(2);
  const GradValue x = b.input(0), y = b.input(1), z = b.output(0);
  HUBIMG_ASSIGN_OR_RETURN(DType t, value_type(b, x));
  std::optional<GradValue> gx, gy;
  if (b.needs_grad(0)) {
    HUBIMG_ASSIGN_OR_RETURN(GradValue one, scalar(b, t, 1.0));
    HUBIMG_ASSIGN_OR_RETURN(GradValue y_minus_1, binary(b, "Sub", y, one));
    HUBIMG_ASSIGN_OR_RETURN(GradValue p, binary(b, "Pow", x, y_minus_1));
    HUBIMG_ASSIGN_OR_RETURN(GradValue gy_p, binary(b, "Mul", y, p));
    HUBIMG_ASSIGN_OR_RETURN(gx, binary(b, "Mul", g, gy_p));
  }
  if (b.needs_grad(1)) {
    // log(x) where x > 0, else 0 (TensorFlow's choice for the undefined part).
    HUBIMG_ASSIGN_OR_RETURN(GradValue zero, scalar(b, t, 0.0));
    HUBIMG_ASSIGN_OR_RETURN(GradValue mask, binary(b, "Greater", x, zero));
    HUBIMG_ASSIGN_OR_RETURN(GradValue ones, unary(b, "OnesLike", x));
    HUBIMG_ASSIGN_OR_RETURN(GradValue zeros, unary(b, "ZerosLike", x));
    HUBIMG_ASSIGN_OR_RETURN(GradValue safe_x, b.add1("SelectV2", {mask, x, ones}));
    HUBIMG_ASSIGN_OR_RETURN(GradValue log_safe, unary(b, "Log", safe_x));
    HUBIMG_ASSIGN_OR_RETURN(GradValue log_x, b.add1("SelectV2", {mask, log_safe, zeros}));
    HUBIMG_ASSIGN_OR_RETURN(GradValue gz, binary(b, "Mul", g, z));
    HUBIMG_ASSIGN_OR_RETURN(gy, binary(b, "Mul", gz, log_x));
  }
  return unbroadcast(b, gx, gy);
}

Expected<Grads> neg_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(1);
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, unary(b, "Neg", b.grad(0)));
  return Grads{gx};
}

// Pass-through (Identity-like ops): the cotangent of output 0 to input 0.
Expected<Grads> identity_grad(GradientBuilder& b) {
  Grads out(b.num_inputs());
  if (!out.empty()) out[0] = b.grad(0);
  return out;
}

// Piecewise-constant ops: a zero gradient.
Expected<Grads> zero_grad(GradientBuilder& b) {
  Grads out(b.num_inputs());
  if (!b.grad(0).valid() || out.empty()) return out;
  HUBIMG_ASSIGN_OR_RETURN(out[0], unary(b, "ZerosLike", b.input(0)));
  return out;
}

Expected<Grads> add_n_grad(GradientBuilder& b) {
  return Grads(b.num_inputs(), b.grad(0));
}

Expected<Grads> l2_loss_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(1);
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, binary(b, "Mul", b.input(0), b.grad(0)));
  return Grads{gx};
}

bool is_float_type(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 ||
         t == DType::kBFloat16;
}

Expected<Grads> cast_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(1);
  HUBIMG_ASSIGN_OR_RETURN(DType src, b.attrs().get_type("SrcT"));
  HUBIMG_ASSIGN_OR_RETURN(DType dst, b.attrs().get_type("DstT"));
  if (!is_float_type(src) || !is_float_type(dst)) return Grads(1);
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx,
                          b.add1("Cast", {b.grad(0)}, {{"SrcT", dst}, {"DstT", src}}));
  return Grads{gx};
}

// Select(c, t, e): t's gradient where c, e's elsewhere (same shapes, or c a vector over rows).
Expected<Grads> select_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid()) return Grads(3);
  HUBIMG_ASSIGN_OR_RETURN(GradValue zeros, unary(b, "ZerosLike", g));
  Grads out(3);
  if (b.needs_grad(1)) {
    HUBIMG_ASSIGN_OR_RETURN(out[1], b.add1("Select", {b.input(0), g, zeros}));
  }
  if (b.needs_grad(2)) {
    HUBIMG_ASSIGN_OR_RETURN(out[2], b.add1("Select", {b.input(0), zeros, g}));
  }
  return out;
}

// SelectV2 broadcasts all three inputs: each branch's share summed down to its shape.
Expected<Grads> select_v2_grad(GradientBuilder& b) {
  const GradValue g = b.grad(0);
  if (!g.valid()) return Grads(3);
  HUBIMG_ASSIGN_OR_RETURN(GradValue zeros, unary(b, "ZerosLike", g));
  Grads out(3);
  for (size_t k : {size_t{1}, size_t{2}}) {
    if (!b.needs_grad(k)) continue;
    HUBIMG_ASSIGN_OR_RETURN(
        GradValue share, b.add1("SelectV2", {b.input(0), k == 1 ? g : zeros, k == 1 ? zeros : g}));
    // BroadcastGradientArgs(shape(branch), shape(g)) names the axes the branch was broadcast on.
    HUBIMG_ASSIGN_OR_RETURN(out[k], reduce_to_input_shape(b, share, b.input(k), g, 0));
  }
  return out;
}

// Cumsum(x, axis): the cotangent summed the other way (same exclusive, reverse flipped).
Expected<Grads> cumsum_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(2);
  HUBIMG_ASSIGN_OR_RETURN(bool exclusive, b.attrs().get_bool("exclusive", false));
  HUBIMG_ASSIGN_OR_RETURN(bool reverse, b.attrs().get_bool("reverse", false));
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, b.add1("Cumsum", {b.grad(0), b.input(1)},
                                               {{"exclusive", exclusive}, {"reverse", !reverse}}));
  return Grads{gx, {}};
}

}  // namespace

void register_math_gradients(OpRegistry& r) {
  r.set_gradient("Add", add_grad);
  r.set_gradient("AddV2", add_grad);
  r.set_gradient("Sub", sub_grad);
  r.set_gradient("Mul", mul_grad);
  r.set_gradient("RealDiv", div_rule("RealDiv"));
  r.set_gradient("Div", div_rule("RealDiv"));
  r.set_gradient("DivNoNan", div_rule("DivNoNan"));
  r.set_gradient("Maximum", extremum2_rule("GreaterEqual"));
  r.set_gradient("Minimum", extremum2_rule("LessEqual"));
  r.set_gradient("SquaredDifference", squared_difference_grad);
  r.set_gradient("Pow", pow_grad);
  r.set_gradient("Neg", neg_grad);
  r.set_gradient("Abs", unary_rule([](GradientBuilder& b, GradValue x, GradValue, DType) {
                   return unary(b, "Sign", x);
                 }));
  r.set_gradient("Square", unary_rule([](GradientBuilder& b, GradValue x, GradValue,
                                         DType t) -> Expected<GradValue> {
                   HUBIMG_ASSIGN_OR_RETURN(GradValue two, scalar(b, t, 2.0));
                   return binary(b, "Mul", two, x);
                 }));
  // d sqrt(x) = 0.5 / y; d rsqrt(x) = -0.5 * y^3 (TensorFlow's SqrtGrad / RsqrtGrad).
  r.set_gradient("Sqrt", unary_rule([](GradientBuilder& b, GradValue, GradValue y,
                                       DType t) -> Expected<GradValue> {
                   HUBIMG_ASSIGN_OR_RETURN(GradValue half, scalar(b, t, 0.5));
                   return binary(b, "RealDiv", half, y);
                 }));
  r.set_gradient("Rsqrt", unary_rule([](GradientBuilder& b, GradValue, GradValue y,
                                        DType t) -> Expected<GradValue> {
                   HUBIMG_ASSIGN_OR_RETURN(GradValue c, scalar(b, t, -0.5));
                   HUBIMG_ASSIGN_OR_RETURN(GradValue y2, binary(b, "Mul", y, y));
                   HUBIMG_ASSIGN_OR_RETURN(GradValue y3, binary(b, "Mul", y2, y));
                   return binary(b, "Mul", c, y3);
                 }));
  r.set_gradient("Exp", unary_rule([](GradientBuilder&, GradValue, GradValue y,
                                      DType) -> Expected<GradValue> { return y; }));
  r.set_gradient("Log", unary_rule([](GradientBuilder& b, GradValue x, GradValue, DType) {
                   return unary(b, "Reciprocal", x);
                 }));
  r.set_gradient("Log1p", unary_rule([](GradientBuilder& b, GradValue x, GradValue,
                                        DType t) -> Expected<GradValue> {
                   HUBIMG_ASSIGN_OR_RETURN(GradValue one, scalar(b, t, 1.0));
                   HUBIMG_ASSIGN_OR_RETURN(GradValue x1, binary(b, "AddV2", one, x));
                   return unary(b, "Reciprocal", x1);
                 }));
  r.set_gradient("Expm1", unary_rule([](GradientBuilder& b, GradValue x, GradValue, DType) {
                   return unary(b, "Exp", x);
                 }));
  auto reciprocal =
      unary_rule([](GradientBuilder& b, GradValue, GradValue y, DType) -> Expected<GradValue> {
        HUBIMG_ASSIGN_OR_RETURN(GradValue y2, binary(b, "Mul", y, y));
        return unary(b, "Neg", y2);
      });
  r.set_gradient("Reciprocal", reciprocal);
  r.set_gradient("Inv", reciprocal);
  r.set_gradient(
      "Erf",
      unary_rule([](GradientBuilder& b, GradValue x, GradValue, DType t) -> Expected<GradValue> {
        HUBIMG_ASSIGN_OR_RETURN(GradValue c, scalar(b, t, 2.0 / std::sqrt(std::numbers::pi)));
        HUBIMG_ASSIGN_OR_RETURN(GradValue x2, binary(b, "Mul", x, x));
        HUBIMG_ASSIGN_OR_RETURN(GradValue neg, unary(b, "Neg", x2));
        HUBIMG_ASSIGN_OR_RETURN(GradValue e, unary(b, "Exp", neg));
        return binary(b, "Mul", c, e);
      }));
  r.set_gradient("Sin", unary_rule([](GradientBuilder& b, GradValue x, GradValue, DType) {
                   return unary(b, "Cos", x);
                 }));
  r.set_gradient("Cos", unary_rule([](GradientBuilder& b, GradValue x, GradValue,
                                      DType) -> Expected<GradValue> {
                   HUBIMG_ASSIGN_OR_RETURN(GradValue s, unary(b, "Sin", x));
                   return unary(b, "Neg", s);
                 }));
  // Tan: g * sec(x)^2, as TensorFlow's _TanGrad.
  r.set_gradient("Tan", unary_rule([](GradientBuilder& b, GradValue x, GradValue,
                                      DType) -> Expected<GradValue> {
                   HUBIMG_ASSIGN_OR_RETURN(GradValue c, unary(b, "Cos", x));
                   HUBIMG_ASSIGN_OR_RETURN(GradValue sec, unary(b, "Reciprocal", c));
                   return unary(b, "Square", sec);
                 }));
  // FloorMod(x, y) = x - floor(x / y) * y: gx = g, gy = -g * floor_div(x, y) (_FloorModGrad).
  r.set_gradient("FloorMod", [](GradientBuilder& b) -> Expected<Grads> {
    const GradValue g = b.grad(0);
    if (!g.valid()) return Grads(2);
    HUBIMG_ASSIGN_OR_RETURN(GradValue q, binary(b, "FloorDiv", b.input(0), b.input(1)));
    HUBIMG_ASSIGN_OR_RETURN(GradValue neg_q, unary(b, "Neg", q));
    HUBIMG_ASSIGN_OR_RETURN(GradValue gy, binary(b, "Mul", g, neg_q));
    return unbroadcast(b, g, gy);
  });
  r.set_gradient("Sign", zero_grad);
  r.set_gradient("Floor", zero_grad);
  r.set_gradient("Ceil", zero_grad);
  r.set_gradient("Round", zero_grad);
  r.set_gradient("Sum", sum_grad);
  r.set_gradient("Mean", mean_grad);
  r.set_gradient("Prod", prod_grad);
  r.set_gradient("Max", extremum_grad);
  r.set_gradient("Min", extremum_grad);
  r.set_gradient("AddN", add_n_grad);
  r.set_gradient("Cumsum", cumsum_grad);
  if (r.find("L2Loss") != nullptr) r.set_gradient("L2Loss", l2_loss_grad);
  r.set_gradient("Cast", cast_grad);
  r.set_gradient("Select", select_grad);
  r.set_gradient("SelectV2", select_v2_grad);
  for (const char* op : {"Snapshot", "EnsureShape", "CheckNumerics", "Identity"}) {
    if (r.find(op) != nullptr) r.set_gradient(op, identity_grad);
  }
  r.set_not_differentiable({"Equal",       "NotEqual",   "Greater",   "GreaterEqual", "Less",
                            "LessEqual",   "LogicalAnd", "LogicalOr", "LogicalNot",   "IsNan",
                            "IsInf",       "IsFinite",   "ArgMax",    "ArgMin",       "All",
                            "Any",         "Range",      "FloorDiv",  "TruncateDiv",  "TruncateMod",
                            "StopGradient"});
}

}  // namespace hubimg::ops
