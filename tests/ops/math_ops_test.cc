// Elementwise, comparison, selection, reduction, Cast, Range, Cumsum and AddN kernels.
// Expected values are computed by hand from TensorFlow's documented semantics.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/op_registry.h"
#include "ops/op_test_util.h"

namespace hubimg::ops {
namespace {

using namespace ::hubimg::ops::testing;  // NOLINT(google-build-using-namespace)

Tensor boolean(Dims shape, std::vector<bool> v) {
  Tensor t(DType::kBool, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) t.mutable_data<bool>()[i] = v[i];
  return t;
}
Tensor half(Dims shape, std::vector<float> v) {
  Tensor t(DType::kFloat16, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) t.mutable_data<Float16>()[i] = Float16::from_float(v[i]);
  return t;
}

void expect_bools(const Tensor& t, const Dims& shape, const std::vector<bool>& expected) {
  ASSERT_EQ(t.dtype(), DType::kBool);
  ASSERT_EQ(t.shape(), shape);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(t.data<bool>()[i], expected[i]) << "element " << i;
  }
}
void expect_near(const Tensor& t, const Dims& shape, const std::vector<float>& expected,
                 float tolerance = 1e-6f) {
  ASSERT_EQ(t.dtype(), DType::kFloat32);
  ASSERT_EQ(t.shape(), shape);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(t.data<float>()[i], expected[i], tolerance) << "element " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// Broadcasting binary arithmetic.

TEST(BinaryOps, AddScalarAndVector) {
  expect_values<float>(run1("AddV2", {f32({}, {10}), f32({3}, {1, 2, 3})}), {3}, {11, 12, 13});
  expect_values<float>(run1("Add", {f32({3}, {1, 2, 3}), f32({}, {10})}), {3}, {11, 12, 13});
}

TEST(BinaryOps, BroadcastColumnAgainstRow) {
  // [3,1] + [1,4] -> [3,4]: out[i][j] = a[i] + b[j].
  const Tensor out = run1("AddV2", {f32({3, 1}, {0, 10, 20}), f32({1, 4}, {1, 2, 3, 4})});
  expect_values<float>(out, {3, 4}, {1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24});
}

TEST(BinaryOps, BroadcastRank3AgainstRank2) {
  // [2,1,3] * [4,1] -> [2,4,3]: out[i][j][k] = a[i][0][k] * b[j][0].
  const Tensor a = f32({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor b = f32({4, 1}, {1, 10, 100, 1000});
  std::vector<float> expected;
  for (float ai : {0.f, 3.f}) {
    for (float bj : {1.f, 10.f, 100.f, 1000.f}) {
      for (float k : {1.f, 2.f, 3.f}) expected.push_back((ai + k) * bj);
    }
  }
  expect_values<float>(run1("Mul", {a, b}), {2, 4, 3}, expected);
}

TEST(BinaryOps, BroadcastWithZeroSizedDimension) {
  expect_values<float>(run1("Sub", {f32({0, 3}, {}), f32({1, 3}, {1, 2, 3})}), {0, 3}, {});
}

TEST(BinaryOps, IncompatibleShapesNameTheNode) {
  expect_error("AddV2", {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({4}, {1, 2, 3, 4})}, {},
               "Incompatible shapes: [2, 3] vs. [4]");
}

TEST(BinaryOps, DtypeMismatchIsAnError) {
  expect_error("Mul", {f32({1}, {1}), i32({1}, {1})}, {}, "dtype");
}

TEST(BinaryOps, IntegerOverflowWraps) {
  constexpr int32_t kMax = std::numeric_limits<int32_t>::max();
  constexpr int32_t kMin = std::numeric_limits<int32_t>::min();
  expect_values<int32_t>(run1("AddV2", {i32({2}, {kMax, kMin}), i32({2}, {1, -1})}), {2},
                         {kMin, kMax});
  expect_values<int32_t>(run1("Mul", {i32({1}, {65536}), i32({1}, {65536})}), {1}, {0});
  expect_values<uint8_t>(run1("AddV2", {u8({2}, {250, 3}), u8({2}, {10, 4})}), {2}, {4, 7});
  expect_values<uint8_t>(run1("Sub", {u8({1}, {3}), u8({1}, {4})}), {1}, {255});
}

TEST(BinaryOps, RealDivAndDivOnFloats) {
  expect_values<float>(run1("RealDiv", {f32({3}, {1, -3, 1}), f32({3}, {4, 2, 0})}), {3},
                       {0.25f, -1.5f, kInf});
  expect_values<double>(run1("Div", {f64({1}, {1}), f64({1}, {8})}), {1}, {0.125});
}

TEST(BinaryOps, IntegerDivTruncatesTowardZero) {
  expect_values<int32_t>(run1("Div", {i32({4}, {7, -7, 7, -7}), i32({4}, {2, 2, -2, -2})}), {4},
                         {3, -3, -3, 3});
  expect_values<int32_t>(run1("TruncateDiv", {i32({2}, {-7, 7}), i32({}, {2})}), {2}, {-3, 3});
  expect_values<int32_t>(run1("TruncateMod", {i32({4}, {7, -7, 7, -7}), i32({4}, {3, 3, -3, -3})}),
                         {4}, {1, -1, 1, -1});
}

TEST(BinaryOps, IntegerDivisionByZeroIsAnError) {
  for (const char* op : {"Div", "FloorDiv", "FloorMod", "TruncateDiv", "TruncateMod"}) {
    SCOPED_TRACE(op);
    expect_error(op, {i32({2}, {1, 2}), i32({2}, {1, 0})}, {}, "Integer division by zero");
  }
  expect_error("FloorDiv", {i64({}, {5}), i64({3}, {0, 1, 2})}, {}, "Integer division by zero");
}

TEST(BinaryOps, MostNegativeIntegerDividedByMinusOneWraps) {
  constexpr int32_t kMin = std::numeric_limits<int32_t>::min();
  expect_values<int32_t>(run1("FloorDiv", {i32({1}, {kMin}), i32({1}, {-1})}), {1}, {kMin});
  expect_values<int32_t>(run1("FloorMod", {i32({1}, {kMin}), i32({1}, {-1})}), {1}, {0});
}

TEST(BinaryOps, FloorDivRoundsTowardNegativeInfinity) {
  expect_values<int32_t>(
      run1("FloorDiv", {i32({5}, {7, -7, 7, -7, -6}), i32({5}, {2, 2, -2, -2, 3})}), {5},
      {3, -4, -4, 3, -2});
  expect_values<float>(run1("FloorDiv", {f32({3}, {7, -7, 7.5f}), f32({3}, {2, 2, -2})}), {3},
                       {3, -4, -4});
  expect_values<uint8_t>(run1("FloorDiv", {u8({1}, {255}), u8({1}, {2})}), {1}, {127});
}

TEST(BinaryOps, FloorModTakesTheDivisorsSign) {
  // Python semantics: -7 % 3 == 2, 7 % -3 == -2, -7 % -3 == -1.
  expect_values<int32_t>(run1("FloorMod", {i32({4}, {7, -7, 7, -7}), i32({4}, {3, 3, -3, -3})}),
                         {4}, {1, 2, -2, -1});
  expect_values<int64_t>(run1("FloorMod", {i64({2}, {-1, 6}), i64({}, {3})}), {2}, {2, 0});
  expect_values<float>(
      run1("FloorMod", {f32({4}, {-7.5f, 7.5f, 7.5f, -6}), f32({4}, {2, -2, 2, 3})}), {4},
      {0.5f, -0.5f, 1.5f, 0});
}

TEST(BinaryOps, DivNoNanGivesZeroForZeroDivisor) {
  expect_values<float>(run1("DivNoNan", {f32({3}, {1, 2, 0}), f32({3}, {0, 4, 0})}), {3},
                       {0, 0.5f, 0});
}

TEST(BinaryOps, MaximumAndMinimumPropagateNaN) {
  expect_values<float>(run1("Maximum", {f32({3}, {1, kNaN, 5}), f32({3}, {2, 0, kNaN})}), {3},
                       {2, kNaN, kNaN});
  expect_values<float>(run1("Minimum", {f32({3}, {1, kNaN, 5}), f32({}, {2})}), {3}, {1, kNaN, 2});
  expect_values<int32_t>(run1("Maximum", {i32({2, 1}, {1, 5}), i32({3}, {0, 3, 6})}), {2, 3},
                         {1, 3, 6, 5, 5, 6});
}

TEST(BinaryOps, SquaredDifference) {
  expect_values<float>(run1("SquaredDifference", {f32({2}, {1, 5}), f32({}, {3})}), {2}, {4, 4});
  expect_values<int32_t>(run1("SquaredDifference", {i32({1}, {-2}), i32({1}, {3})}), {1}, {25});
}

TEST(BinaryOps, PowOnFloatsAndIntegers) {
  expect_values<float>(run1("Pow", {f32({3}, {2, 9, 0}), f32({3}, {3, 0.5f, 0})}), {3}, {8, 3, 1});
  expect_values<int32_t>(run1("Pow", {i32({4}, {3, -2, 0, 2}), i32({4}, {4, 3, 0, 31})}), {4},
                         {81, -8, 1, std::numeric_limits<int32_t>::min()});
  expect_error("Pow", {i32({1}, {2}), i32({1}, {-1})}, {}, "negative integer powers");
}

TEST(BinaryOps, HalfPrecisionComputesThroughFloat) {
  const Tensor out = run1("AddV2", {half({2}, {1.5f, 0.1f}), half({2}, {2.25f, 0.2f})});
  ASSERT_EQ(out.dtype(), DType::kFloat16);
  EXPECT_EQ(out.data<Float16>()[0].to_float(), 3.75f);
  // 0.1 and 0.2 in half are 0.0999755859375 and 0.199951171875; their float sum
  // 0.2999267578125 lies halfway between halves 0x34CC and 0x34CD and ties to even 0x34CC.
  EXPECT_EQ(out.data<Float16>()[1].bits, 0x34CC);
}

// ---------------------------------------------------------------------------------------------
// Comparisons and logical ops.

TEST(Comparisons, BroadcastToBool) {
  const Tensor a = f32({2, 1}, {1, 3});
  const Tensor b = f32({3}, {0, 1, 2});
  expect_bools(run1("Less", {a, b}), {2, 3}, {false, false, true, false, false, false});
  expect_bools(run1("LessEqual", {a, b}), {2, 3}, {false, true, true, false, false, false});
  expect_bools(run1("Greater", {a, b}), {2, 3}, {true, false, false, true, true, true});
  expect_bools(run1("GreaterEqual", {a, b}), {2, 3}, {true, true, false, true, true, true});
  expect_bools(run1("Equal", {a, b}), {2, 3}, {false, true, false, false, false, false});
  expect_bools(run1("NotEqual", {a, b}), {2, 3}, {true, false, true, true, true, true});
}

TEST(Comparisons, NaNIsUnequalToEverything) {
  expect_bools(run1("Equal", {f32({2}, {kNaN, 1}), f32({2}, {kNaN, 1})}), {2}, {false, true});
  expect_bools(run1("NotEqual", {f32({1}, {kNaN}), f32({1}, {kNaN})}), {1}, {true});
  expect_bools(run1("Less", {f32({1}, {kNaN}), f32({1}, {1})}), {1}, {false});
}

TEST(Comparisons, EqualityOnBoolsAndStrings) {
  expect_bools(run1("Equal", {boolean({2}, {true, false}), boolean({}, {true})}), {2},
               {true, false});
  const Tensor s = Tensor::from_strings({2}, {"cat", "dog"});
  expect_bools(run1("Equal", {s, Tensor::from_strings({}, {"dog"})}), {2}, {false, true});
}

TEST(Comparisons, IncompatibleShapeErrorAttribute) {
  const Tensor a = f32({2}, {1, 2});
  const Tensor b = f32({3}, {1, 2, 3});
  expect_error("Equal", {a, b}, {}, "Incompatible shapes");
  const AttrMap lenient{{"incompatible_shape_error", false}};
  expect_bools(run1("Equal", {a, b}, lenient), {}, {false});
  expect_bools(run1("NotEqual", {a, b}, lenient), {}, {true});
}

TEST(Comparisons, LogicalOps) {
  const Tensor a = boolean({4}, {true, true, false, false});
  const Tensor b = boolean({4}, {true, false, true, false});
  expect_bools(run1("LogicalAnd", {a, b}), {4}, {true, false, false, false});
  expect_bools(run1("LogicalOr", {a, b}), {4}, {true, true, true, false});
  expect_bools(run1("LogicalNot", {a}), {4}, {false, false, true, true});
  expect_error("LogicalAnd", {f32({1}, {1}), f32({1}, {1})}, {}, "unsupported dtype float32");
}

// ---------------------------------------------------------------------------------------------
// Unary math.

TEST(UnaryOps, NegAbsSquareSignOnIntegersWrap) {
  constexpr int32_t kMin = std::numeric_limits<int32_t>::min();
  expect_values<int32_t>(run1("Neg", {i32({3}, {5, -5, kMin})}), {3}, {-5, 5, kMin});
  expect_values<int32_t>(run1("Abs", {i32({3}, {5, -5, kMin})}), {3}, {5, 5, kMin});
  expect_values<int32_t>(run1("Square", {i32({2}, {-3, 65536})}), {2}, {9, 0});
  expect_values<int64_t>(run1("Sign", {i64({3}, {-9, 0, 4})}), {3}, {-1, 0, 1});
}

TEST(UnaryOps, FloatSignAndAbs) {
  expect_values<float>(run1("Sign", {f32({4}, {-2.5f, 0, 3, kNaN})}), {4}, {-1, 0, 1, kNaN});
  expect_values<float>(run1("Abs", {f32({2}, {-2.5f, -0.0f})}), {2}, {2.5f, 0});
  expect_values<float>(run1("Neg", {f32({1}, {2.5f})}), {1}, {-2.5f});
}

TEST(UnaryOps, TranscendentalFunctions) {
  const float pi = 3.14159265358979f;
  expect_near(run1("Exp", {f32({2}, {0, 1})}), {2}, {1, 2.7182818f});
  expect_near(run1("Log", {f32({2}, {1, 2.7182818f})}), {2}, {0, 1});
  expect_near(run1("Sqrt", {f32({2}, {4, 2})}), {2}, {2, 1.4142135f});
  expect_near(run1("Rsqrt", {f32({2}, {4, 0.25f})}), {2}, {0.5f, 2});
  expect_near(run1("Reciprocal", {f32({2}, {4, -0.5f})}), {2}, {0.25f, -2});
  expect_near(run1("Inv", {f32({1}, {8})}), {1}, {0.125f});
  expect_near(run1("Expm1", {f32({1}, {1e-10f})}), {1}, {1e-10f}, 1e-16f);
  expect_near(run1("Log1p", {f32({1}, {1e-10f})}), {1}, {1e-10f}, 1e-16f);
  expect_near(run1("Erf", {f32({3}, {0, 0.5f, -3})}), {3}, {0, 0.5204999f, -0.9999779f});
  expect_near(run1("Sin", {f32({2}, {0, pi / 2})}), {2}, {0, 1});
  expect_near(run1("Cos", {f32({2}, {0, pi})}), {2}, {1, -1});
  expect_near(run1("Tan", {f32({1}, {pi / 4})}), {1}, {1});
  expect_values<float>(run1("Log", {f32({2}, {0, -1})}), {2}, {-kInf, kNaN});
}

TEST(UnaryOps, FloorCeil) {
  expect_values<float>(run1("Floor", {f32({3}, {-1.5f, 1.5f, 2})}), {3}, {-2, 1, 2});
  expect_values<float>(run1("Ceil", {f32({3}, {-1.5f, 1.5f, 2})}), {3}, {-1, 2, 2});
}

TEST(UnaryOps, RoundHalfToEven) {
  expect_values<float>(
      run1("Round",
           {f32({10}, {-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f, 3.5f, 2.4f, -2.6f, 0.49999997f})}),
      {10}, {-2, -2, -0.0f, 0, 2, 2, 4, 2, -3, 0});
  expect_values<double>(run1("Round", {f64({2}, {4.5, -4.5})}), {2}, {4, -4});
  expect_values<int32_t>(run1("Round", {i32({2}, {3, -3})}), {2}, {3, -3});
}

TEST(UnaryOps, IsNanIsInfIsFinite) {
  const Tensor x = f32({3}, {kNaN, kInf, 1});
  expect_bools(run1("IsNan", {x}), {3}, {true, false, false});
  expect_bools(run1("IsInf", {x}), {3}, {false, true, false});
  expect_bools(run1("IsFinite", {x}), {3}, {false, false, true});
}

TEST(UnaryOps, FloatOnlyOpsRejectIntegers) {
  auto r = run_op("Exp", std::vector<Tensor>{i32({1}, {1})}, {}, kNode);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find(kNode), std::string::npos);
  EXPECT_NE(r.status().message().find("int32"), std::string::npos);
}

TEST(UnaryOps, HalfPrecisionResultKeepsDtype) {
  const Tensor out = run1("Sqrt", {half({1}, {6.25f})});
  ASSERT_EQ(out.dtype(), DType::kFloat16);
  EXPECT_EQ(out.data<Float16>()[0].to_float(), 2.5f);
}

// ---------------------------------------------------------------------------------------------
// Select / SelectV2.

TEST(Select, SameShapeCondition) {
  expect_values<float>(run1("Select", {boolean({3}, {true, false, true}), f32({3}, {1, 2, 3}),
                                       f32({3}, {-1, -2, -3})}),
                       {3}, {1, -2, 3});
}

TEST(Select, VectorConditionPicksRows) {
  expect_values<int32_t>(run1("Select", {boolean({2}, {false, true}), i32({2, 2}, {1, 2, 3, 4}),
                                         i32({2, 2}, {5, 6, 7, 8})}),
                         {2, 2}, {5, 6, 3, 4});
}

TEST(Select, ScalarConditionPicksWholeTensor) {
  expect_values<float>(run1("Select", {boolean({}, {false}), f32({2}, {1, 2}), f32({2}, {3, 4})}),
                       {2}, {3, 4});
}

TEST(Select, MismatchedConditionIsAnError) {
  expect_error(
      "Select",
      {boolean({3}, {true, true, true}), f32({2, 2}, {1, 2, 3, 4}), f32({2, 2}, {1, 2, 3, 4})}, {},
      "condition");
  expect_error("Select", {boolean({2}, {true, true}), f32({2}, {1, 2}), f32({3}, {1, 2, 3})}, {},
               "same shape");
}

TEST(SelectV2, BroadcastsAllThreeOperands) {
  // cond [2,1], then [3], else scalar -> [2,3].
  expect_values<float>(
      run1("SelectV2", {boolean({2, 1}, {true, false}), f32({3}, {1, 2, 3}), f32({}, {0})}), {2, 3},
      {1, 2, 3, 0, 0, 0});
  const Tensor s =
      run1("SelectV2", {boolean({2}, {false, true}), Tensor::from_strings({2}, {"a", "b"}),
                        Tensor::from_strings({}, {"z"})});
  ASSERT_EQ(s.dtype(), DType::kString);
  EXPECT_EQ(s.strings(), (std::vector<std::string>{"z", "b"}));
  expect_error("SelectV2", {boolean({2}, {true, true}), f32({3}, {1, 2, 3}), f32({}, {0})}, {},
               "Incompatible shapes");
}

// ---------------------------------------------------------------------------------------------
// Reductions.

const Tensor kFloatMatrix = f32({2, 3}, {1, 2, 3, 4, 5, 6});

TEST(Reductions, SumOverEachAxisAndAll) {
  expect_values<float>(run1("Sum", {kFloatMatrix, i32({}, {0})}), {3}, {5, 7, 9});
  expect_values<float>(run1("Sum", {kFloatMatrix, i32({1}, {1})}), {2}, {6, 15});
  expect_values<float>(run1("Sum", {kFloatMatrix, i64({1}, {-1})}), {2}, {6, 15});
  expect_values<float>(run1("Sum", {kFloatMatrix, i32({2}, {0, 1})}), {}, {21});
  expect_values<float>(run1("Sum", {kFloatMatrix, i32({0}, {})}), {2, 3}, {1, 2, 3, 4, 5, 6});
  expect_values<float>(run1("Sum", {kFloatMatrix, i32({2}, {1, -1})}), {2}, {6, 15});
}

TEST(Reductions, KeepDims) {
  const AttrMap keep{{"keep_dims", true}};
  expect_values<float>(run1("Sum", {kFloatMatrix, i32({}, {1})}, keep), {2, 1}, {6, 15});
  expect_values<float>(run1("Mean", {kFloatMatrix, i32({2}, {0, 1})}, keep), {1, 1}, {3.5f});
}

TEST(Reductions, MeanOverMiddleAxisOfRank3) {
  // x[i][j][k] = 100i + 10j + k over [2,3,2]; mean over j is 100i + 10 + k.
  std::vector<float> v;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 2; ++k) v.push_back(static_cast<float>(100 * i + 10 * j + k));
  expect_values<float>(run1("Mean", {f32({2, 3, 2}, v), i32({}, {-2})}), {2, 2},
                       {10, 11, 110, 111});
}

TEST(Reductions, IntegerMeanTruncatesAndSumWraps) {
  expect_values<int32_t>(run1("Mean", {i32({2, 2}, {1, 2, -1, -2}), i32({}, {1})}), {2}, {1, -1});
  constexpr int32_t kMax = std::numeric_limits<int32_t>::max();
  expect_values<int32_t>(run1("Sum", {i32({2}, {kMax, 1}), i32({}, {0})}), {},
                         {std::numeric_limits<int32_t>::min()});
}

TEST(Reductions, ProdMaxMin) {
  expect_values<float>(run1("Prod", {kFloatMatrix, i32({}, {0})}), {3}, {4, 10, 18});
  expect_values<float>(run1("Max", {kFloatMatrix, i32({}, {1})}), {2}, {3, 6});
  expect_values<float>(run1("Min", {kFloatMatrix, i32({}, {0})}), {3}, {1, 2, 3});
  expect_values<int64_t>(run1("Max", {i64({3}, {-5, -2, -9}), i32({}, {0})}), {}, {-2});
}

TEST(Reductions, MaxAndMinPropagateNaN) {
  expect_values<float>(run1("Max", {f32({3}, {1, kNaN, 3}), i32({}, {0})}), {}, {kNaN});
  expect_values<float>(run1("Min", {f32({3}, {kNaN, 1, 3}), i32({}, {0})}), {}, {kNaN});
}

TEST(Reductions, EmptyReductionsGiveTheIdentity) {
  const Tensor empty = f32({2, 0}, {});
  expect_values<float>(run1("Sum", {empty, i32({}, {1})}), {2}, {0, 0});
  expect_values<float>(run1("Prod", {empty, i32({}, {1})}), {2}, {1, 1});
  expect_values<float>(run1("Max", {empty, i32({}, {1})}), {2}, {-kInf, -kInf});
  expect_values<float>(run1("Min", {empty, i32({}, {1})}), {2}, {kInf, kInf});
  expect_values<float>(run1("Mean", {empty, i32({}, {1})}), {2}, {kNaN, kNaN});
}

TEST(Reductions, AllAndAny) {
  const Tensor b = boolean({2, 2}, {true, false, true, true});
  expect_bools(run1("All", {b, i32({}, {1})}), {2}, {false, true});
  expect_bools(run1("Any", {b, i32({}, {0})}), {2}, {true, true});
  expect_bools(run1("All", {b, i32({2}, {0, 1})}, {{"keep_dims", true}}), {1, 1}, {false});
}

TEST(Reductions, BadAxisIsAnError) {
  expect_error("Sum", {kFloatMatrix, i32({}, {2})}, {}, "Invalid reduction dimension 2");
  expect_error("Mean", {kFloatMatrix, i32({}, {-3})}, {}, "Invalid reduction dimension -3");
  expect_error("Sum", {kFloatMatrix, f32({}, {0})}, {}, "int32 or int64");
}

TEST(Reductions, HalfPrecisionSum) {
  const Tensor out = run1("Sum", {half({3}, {0.5f, 0.25f, 2}), i32({}, {0})});
  ASSERT_EQ(out.dtype(), DType::kFloat16);
  EXPECT_EQ(out.data<Float16>()[0].to_float(), 2.75f);
}

TEST(ArgMinMax, FirstIndexOfExtremeAlongAxis) {
  const Tensor x = f32({2, 3}, {3, 9, 9, 7, 1, 7});
  expect_values<int64_t>(run1("ArgMax", {x, i32({}, {1})}), {2}, {1, 0});
  expect_values<int64_t>(run1("ArgMin", {x, i32({}, {1})}), {2}, {0, 1});
  expect_values<int64_t>(run1("ArgMax", {x, i32({}, {0})}), {3}, {1, 0, 0});
  expect_values<int32_t>(run1("ArgMax", {x, i64({}, {-1})}, {{"output_type", DType::kInt32}}), {2},
                         {1, 0});
}

TEST(ArgMinMax, EmptyAxisAndBadAxisAreErrors) {
  expect_error("ArgMax", {f32({2, 0}, {}), i32({}, {1})}, {}, "empty");
  expect_error("ArgMin", {kFloatMatrix, i32({}, {2})}, {}, "out of range");
}

// ---------------------------------------------------------------------------------------------
// Cast.

Tensor cast(const Tensor& x, DType to, bool truncate = false) {
  return run1("Cast", {x}, {{"SrcT", x.dtype()}, {"DstT", to}, {"Truncate", truncate}});
}

TEST(Cast, FloatToIntTruncatesTowardZero) {
  expect_values<int32_t>(cast(f32({4}, {1.9f, -1.9f, 0.5f, -0.0f}), DType::kInt32), {4},
                         {1, -1, 0, 0});
  expect_values<int64_t>(cast(f64({1}, {-3.99}), DType::kInt64), {1}, {-3});
}

TEST(Cast, OutOfRangeAndNaNFollowX86) {
  constexpr int32_t kMin32 = std::numeric_limits<int32_t>::min();
  constexpr int64_t kMin64 = std::numeric_limits<int64_t>::min();
  expect_values<int32_t>(cast(f32({4}, {kNaN, 3e9f, -3e9f, kInf}), DType::kInt32), {4},
                         {kMin32, kMin32, kMin32, kMin32});
  expect_values<int64_t>(cast(f64({2}, {kNaN, 1e19}), DType::kInt64), {2}, {kMin64, kMin64});
  // Narrow integers convert through int32 and wrap (TensorFlow: 100000.0 -> int16 -31072).
  Tensor i16 = cast(f32({2}, {100000.0f, -40000.0f}), DType::kInt16);
  ASSERT_EQ(i16.dtype(), DType::kInt16);
  EXPECT_EQ(i16.data<int16_t>()[0], -31072);
  EXPECT_EQ(i16.data<int16_t>()[1], 25536);
  expect_values<uint8_t>(cast(f32({3}, {-1.0f, 300.0f, 255.9f}), DType::kUInt8), {3},
                         {255, 44, 255});
}

TEST(Cast, IntegerToIntegerWraps) {
  expect_values<int32_t>(cast(i64({2}, {(int64_t{1} << 32) + 5, -1}), DType::kInt32), {2}, {5, -1});
  expect_values<uint8_t>(cast(i32({2}, {-1, 256}), DType::kUInt8), {2}, {255, 0});
  expect_values<int32_t>(cast(u8({1}, {200}), DType::kInt32), {1}, {200});
}

TEST(Cast, BoolConversions) {
  expect_bools(cast(f32({4}, {0, -0.0f, 0.1f, kNaN}), DType::kBool), {4},
               {false, false, true, true});
  expect_bools(cast(i32({2}, {0, -7}), DType::kBool), {2}, {false, true});
  expect_values<float>(cast(boolean({2}, {true, false}), DType::kFloat32), {2}, {1, 0});
  expect_values<int64_t>(cast(boolean({1}, {true}), DType::kInt64), {1}, {1});
}

TEST(Cast, HalfAndBfloat16RoundToNearestEven) {
  const Tensor h = cast(f32({3}, {0.1f, 1.0f / 3.0f, 65520.0f}), DType::kFloat16);
  ASSERT_EQ(h.dtype(), DType::kFloat16);
  EXPECT_EQ(h.data<Float16>()[0].bits, 0x2E66);
  EXPECT_EQ(h.data<Float16>()[1].bits, 0x3555);
  EXPECT_EQ(h.data<Float16>()[2].bits, 0x7C00);  // halfway to 65536 rounds up to infinity
  // 0x3F808000 lies halfway between bfloat16 0x3F80 and 0x3F81: ties go to even 0x3F80;
  // 0x3F818000 lies halfway between 0x3F81 and 0x3F82: ties go to 0x3F82.
  const Tensor b =
      cast(f32({2}, {std::bit_cast<float>(0x3F808000u), std::bit_cast<float>(0x3F818000u)}),
           DType::kBFloat16);
  ASSERT_EQ(b.dtype(), DType::kBFloat16);
  EXPECT_EQ(b.data<BFloat16>()[0].bits, 0x3F80);
  EXPECT_EQ(b.data<BFloat16>()[1].bits, 0x3F82);
  const Tensor t = cast(f32({1}, {std::bit_cast<float>(0x3F81FFFFu)}), DType::kBFloat16, true);
  EXPECT_EQ(t.data<BFloat16>()[0].bits, 0x3F81);
  expect_values<float>(cast(h, DType::kFloat32), {3}, {0.0999755859375f, 0.333251953125f, kInf});
  expect_values<int32_t>(cast(half({1}, {-2.75f}), DType::kInt32), {1}, {-2});
}

TEST(Cast, MissingDstTIsAnError) {
  auto r = run_op("Cast", std::vector<Tensor>{f32({1}, {1})}, {}, kNode);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("DstT"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Range, Cumsum, AddN.

TEST(Range, IntegerCountsAndValues) {
  expect_values<int32_t>(run1("Range", {i32({}, {0}), i32({}, {10}), i32({}, {3})}), {4},
                         {0, 3, 6, 9});
  expect_values<int32_t>(run1("Range", {i32({}, {10}), i32({}, {0}), i32({}, {-3})}), {4},
                         {10, 7, 4, 1});
  expect_values<int64_t>(run1("Range", {i64({}, {5}), i64({}, {5}), i64({}, {1})}), {0}, {});
}

TEST(Range, FloatCountIsCeilOfSpanOverDelta) {
  expect_values<float>(run1("Range", {f32({}, {0}), f32({}, {1}), f32({}, {0.25f})}), {4},
                       {0, 0.25f, 0.5f, 0.75f});
  expect_values<float>(run1("Range", {f32({}, {1}), f32({}, {-1}), f32({}, {-0.75f})}), {3},
                       {1, 0.25f, -0.5f});
}

TEST(Range, InvalidArgumentsAreErrors) {
  expect_error("Range", {i32({}, {0}), i32({}, {5}), i32({}, {0})}, {}, "delta != 0");
  expect_error("Range", {i32({}, {5}), i32({}, {0}), i32({}, {1})}, {}, "start <= limit");
  expect_error("Range", {i32({}, {0}), i32({}, {5}), i32({}, {-1})}, {}, "start >= limit");
  expect_error("Range", {i32({2}, {0, 1}), i32({}, {5}), i32({}, {1})}, {}, "scalar");
}

TEST(Cumsum, ExclusiveAndReverse) {
  const Tensor x = f32({3}, {1, 2, 3});
  const Tensor axis = i32({}, {0});
  expect_values<float>(run1("Cumsum", {x, axis}), {3}, {1, 3, 6});
  expect_values<float>(run1("Cumsum", {x, axis}, {{"exclusive", true}}), {3}, {0, 1, 3});
  expect_values<float>(run1("Cumsum", {x, axis}, {{"reverse", true}}), {3}, {6, 5, 3});
  expect_values<float>(run1("Cumsum", {x, axis}, {{"exclusive", true}, {"reverse", true}}), {3},
                       {5, 3, 0});
  expect_values<int32_t>(run1("Cumsum", {i32({2, 2}, {1, 2, 3, 4}), i32({}, {-1})}), {2, 2},
                         {1, 3, 3, 7});
}

TEST(AddN, SumsAllInputs) {
  expect_values<float>(run1("AddN", {f32({2}, {1, 2}), f32({2}, {10, 20}), f32({2}, {100, 200})}),
                       {2}, {111, 222});
  expect_error("AddN", {f32({2}, {1, 2}), f32({3}, {1, 2, 3})}, {}, "same shape");
}

}  // namespace
}  // namespace hubimg::ops
