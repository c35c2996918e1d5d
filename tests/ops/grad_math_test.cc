// Finite-difference checks of the math family's gradient rules (src/ops/grad_math.cc).
#include "ops/grad_check.h"

namespace hubimg::ops::testing {
namespace {

// Shapes of broadcasting binary ops: same shape, scalar, row, column, [N,1,1,C] vs [N,H,W,C],
// rank mismatch, batch 1 and 3.
const std::vector<std::pair<Dims, Dims>>& broadcast_pairs() {
  static const std::vector<std::pair<Dims, Dims>> pairs = {
      {{2, 3}, {2, 3}},
      {{2, 3}, {}},
      {{}, {2, 3}},
      {{2, 3}, {3}},
      {{2, 3}, {2, 1}},
      {{3, 1}, {1, 4}},
      {{3, 1, 1, 2}, {3, 2, 2, 2}},
      {{1, 2, 2, 3}, {3}},
      {{4}, {2, 3, 4}},
  };
  return pairs;
}

std::string label_of(const Dims& a, const Dims& b) {
  auto s = [](const Dims& d) {
    std::string r = "[";
    for (size_t i = 0; i < d.size(); ++i) r += (i ? "," : "") + std::to_string(d[i]);
    return r + "]";
  };
  return s(a) + " vs " + s(b);
}

HUBIMG_GRAD_CASES(MathBinary) {
  std::vector<GradCase> cases;
  uint32_t seed = 10;
  for (const auto& [a, b] : broadcast_pairs()) {
    for (const char* op : {"Add", "AddV2", "Sub", "Mul", "SquaredDifference"}) {
      cases.push_back({op, {}, {uniform(a, -2, 2, seed++), uniform(b, -2, 2, seed++)}});
      cases.back().label = label_of(a, b);
    }
    for (const char* op : {"RealDiv", "Div", "DivNoNan"}) {
      cases.push_back({op, {}, {uniform(a, -2, 2, seed++), uniform(b, 0.5, 2, seed++)}});
      cases.back().label = label_of(a, b);
    }
    // Independent continuous values: no element sits on the x == y kink.
    for (const char* op : {"Maximum", "Minimum"}) {
      cases.push_back({op, {}, {uniform(a, -2, 2, seed++), uniform(b, -2, 2, seed++)}});
      cases.back().label = label_of(a, b);
    }
    cases.push_back({"Pow", {}, {uniform(a, 0.5, 2, seed++), uniform(b, -1.5, 2, seed++)}});
    cases.back().label = label_of(a, b);
  }
  return cases;
}

HUBIMG_GRAD_CASES(MathUnary) {
  std::vector<GradCase> cases;
  for (const Dims& shape : std::vector<Dims>{{}, {5}, {1, 3}, {3, 2, 2}}) {
    cases.push_back({"Neg", {}, {uniform(shape, -2, 2, 1)}});
    cases.push_back({"Abs", {}, {distinct(shape, -2, 2, 2, 0.2)}});
    cases.push_back({"Square", {}, {uniform(shape, -2, 2, 3)}});
    cases.push_back({"Sqrt", {}, {uniform(shape, 0.5, 3, 4)}});
    cases.push_back({"Rsqrt", {}, {uniform(shape, 0.5, 3, 5)}});
    cases.push_back({"Exp", {}, {uniform(shape, -2, 2, 6)}});
    cases.push_back({"Log", {}, {uniform(shape, 0.3, 3, 7)}});
    cases.push_back({"Log1p", {}, {uniform(shape, -0.5, 3, 8)}});
    cases.push_back({"Expm1", {}, {uniform(shape, -2, 2, 9)}});
    cases.push_back({"Reciprocal", {}, {distinct(shape, -2, 2, 10, 0.4)}});
    cases.push_back({"Inv", {}, {distinct(shape, -2, 2, 11, 0.4)}});
    cases.push_back({"Erf", {}, {uniform(shape, -2, 2, 12)}});
    cases.push_back({"Sin", {}, {uniform(shape, -3, 3, 13)}});
    cases.push_back({"Cos", {}, {uniform(shape, -3, 3, 14)}});
    // Piecewise constant: zero gradient away from the steps.
    cases.push_back({"Sign", {}, {distinct(shape, -2, 2, 15, 0.2)}});
    cases.push_back({"Floor", {}, {uniform(shape, 0.2, 0.8, 16)}});
    cases.push_back({"Ceil", {}, {uniform(shape, 1.2, 1.8, 17)}});
    cases.push_back({"Round", {}, {uniform(shape, 1.1, 1.4, 18)}});
  }
  return cases;
}

HUBIMG_GRAD_CASES(MathReduce) {
  std::vector<GradCase> cases;
  struct Axes {
    Dims shape;
    Tensor axes;
  };
  const std::vector<Axes> patterns = {
      {{3, 4}, scalar_i32(0)},
      {{3, 4}, scalar_i32(-1)},
      {{3, 4}, ints32({2}, {0, 1})},
      {{3, 2, 2, 4}, ints32({2}, {1, 2})},
      {{1, 2, 2, 4}, ints32({2}, {-3, -2})},
      {{3, 2, 4}, ints32({0}, {})},
      {{5}, ints32({1}, {0})},
      {{2, 3, 4}, ints64({1}, {1})},
  };
  uint32_t seed = 100;
  for (const auto& p : patterns) {
    for (bool keep : {false, true}) {
      AttrMap attrs = {{"keep_dims", keep}};
      for (const char* op : {"Sum", "Mean"}) {
        cases.push_back({op, attrs, {uniform(p.shape, -2, 2, seed++), p.axes}});
      }
      for (const char* op : {"Max", "Min"}) {
        cases.push_back({op, attrs, {distinct(p.shape, -2, 2, seed++), p.axes}});
      }
    }
  }
  return cases;
}

HUBIMG_GRAD_CASES(MathOther) {
  std::vector<GradCase> cases;
  cases.push_back(
      {"AddN",
       {{"N", int64_t{3}}},
       {uniform({2, 3}, -1, 1, 1), uniform({2, 3}, -1, 1, 2), uniform({2, 3}, -1, 1, 3)}});
  cases.push_back({"AddN", {{"N", int64_t{1}}}, {uniform({4}, -1, 1, 4)}});
  GradCase cast{
      "Cast", {{"SrcT", DType::kFloat32}, {"DstT", DType::kFloat64}}, {uniform({2, 3}, -1, 1, 5)}};
  cast.float_type_attrs = {"SrcT"};
  cases.push_back(cast);
  GradCase cast_back{
      "Cast", {{"SrcT", DType::kFloat64}, {"DstT", DType::kFloat32}}, {uniform({3}, -1, 1, 6)}};
  cast_back.float_type_attrs = {"SrcT"};
  cast_back.tolerance = 1e-4;  // the float32 output rounds the differences
  cast_back.step = 1e-2;
  cases.push_back(cast_back);
  Tensor cond = bools({2, 3}, {true, false, true, false, false, true});
  cases.push_back({"Select", {}, {cond, uniform({2, 3}, -1, 1, 7), uniform({2, 3}, -1, 1, 8)}});
  Tensor rows = bools({3}, {true, false, true});
  cases.push_back({"Select", {}, {rows, uniform({3, 2}, -1, 1, 9), uniform({3, 2}, -1, 1, 10)}});
  cases.push_back({"SelectV2", {}, {cond, uniform({2, 3}, -1, 1, 11), uniform({2, 3}, -1, 1, 12)}});
  Tensor col = bools({2, 1}, {true, false});
  cases.push_back({"SelectV2", {}, {col, uniform({3}, -1, 1, 13), uniform({}, -1, 1, 14)}});
  cases.push_back({"SelectV2", {}, {rows, uniform({2, 1}, -1, 1, 15), uniform({2, 3}, -1, 1, 16)}});
  cases.push_back(
      {"EnsureShape", {{"shape", PartialShape::known({-1, 3})}}, {uniform({2, 3}, -1, 1, 17)}});
  cases.push_back({"CheckNumerics", {{"message", std::string("bad")}}, {uniform({4}, -1, 1, 18)}});
  cases.push_back({"Identity", {}, {uniform({2, 3}, -1, 1, 19)}});
  cases.push_back({"Snapshot", {}, {uniform({3}, -1, 1, 20)}});
  return cases;
}

}  // namespace
}  // namespace hubimg::ops::testing

namespace hubimg::ops::testing {
namespace {
HUBIMG_GRAD_CASES(MathLoss) {
  std::vector<GradCase> cases = {{"L2Loss", {}, {uniform({2, 3}, -1, 1, 1)}},
                                 {"L2Loss", {}, {uniform({}, -1, 1, 2)}}};
  for (bool exclusive : {false, true}) {
    for (bool reverse : {false, true}) {
      cases.push_back({"Cumsum",
                       {{"exclusive", exclusive}, {"reverse", reverse}},
                       {uniform({3, 4}, -1, 1, 3), scalar_i32(reverse ? 1 : -2)}});
    }
  }
  // Logits with batch 1 and 3; only the loss output gets a cotangent (the second output is
  // the backprop TensorFlow returns for it, which carries no gradient).
  for (const auto& [batch, classes] : std::vector<std::pair<int64_t, int64_t>>{{1, 4}, {3, 5}}) {
    std::vector<int32_t> labels;
    for (int64_t i = 0; i < batch; ++i)
      labels.push_back(static_cast<int32_t>((2 * i + 1) % classes));
    GradCase xent{"SparseSoftmaxCrossEntropyWithLogits",
                  {{"Tlabels", DType::kInt32}},
                  {uniform({batch, classes}, -3, 3, 30 + static_cast<uint32_t>(batch)),
                   ints32({batch}, labels)}};
    xent.cotangent_outputs = {0};
    xent.label = "batch " + std::to_string(batch);
    cases.push_back(xent);
  }
  GradCase xent64{"SparseSoftmaxCrossEntropyWithLogits",
                  {{"Tlabels", DType::kInt64}},
                  {uniform({2, 3}, -3, 3, 40), ints64({2}, {2, 0})}};
  xent64.cotangent_outputs = {0};
  xent64.label = "int64 labels";
  cases.push_back(xent64);
  return cases;
}
HUBIMG_GRAD_CASES(MathMoreRules) {
  std::vector<GradCase> cases;
  cases.push_back({"Tan", {}, {uniform({2, 3}, -1.2, 1.2, 1)}});
  // floor(x / y) = 1 everywhere (no jumps within the step): gy = -g.
  cases.push_back({"FloorMod", {}, {uniform({2, 3}, 2.2, 2.8, 2), uniform({2, 3}, 1.6, 1.9, 3)}});
  cases.push_back({"FloorMod", {}, {uniform({2, 3}, -2.8, -2.2, 4), uniform({3}, 1.6, 1.9, 5)}});
  cases.push_back({"Prod", {}, {uniform({2, 3}, 0.5, 1.5, 6), ints32({1}, {1})}});
  cases.push_back(
      {"Prod", {{"keep_dims", true}}, {uniform({2, 3, 4}, -1.5, 1.5, 7), ints64({2}, {0, -1})}});
  cases.push_back({"Prod", {}, {uniform({3, 2}, -1, 1, 8), ints32({}, {0})}});
  // A zero in the reduced group: only its own gradient is non-zero.
  Tensor with_zero = uniform({2, 3}, 0.5, 1.5, 9);
  with_zero.mutable_data<double>()[1] = 0.0;
  cases.push_back({"Prod", {}, {with_zero, ints32({1}, {1})}, {}, {}, {"T"}, "a zero"});
  return cases;
}

}  // namespace
}  // namespace hubimg::ops::testing
