// The float32 fast paths inside the reference kernels (src/ops/fast_paths.h) against the
// reference code they replace: every case runs once with the fast paths on and once with them off
// and expects bit-identical results (the fast paths compute the same expressions in the same
// order). Shapes cover odd channel counts, broadcast patterns, empty tensors and tensors large
// enough to be split over the thread pool; values include NaN, infinities and signed zeros.
#include "ops/fast_paths.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ops/op_registry.h"
#include "ops/op_test_util.h"

namespace hubimg::ops {
namespace {

using namespace ::hubimg::ops::testing;  // NOLINT(google-build-using-namespace)
using Ints = std::vector<int64_t>;

// Deterministic float32 values in [-4, 4); with `specials`, some NaN, +-inf and +-0.
Tensor random_f32(const Dims& shape, uint32_t seed, bool specials = true) {
  Tensor t(DType::kFloat32, shape);
  float* p = t.mutable_data<float>();
  uint32_t s = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = static_cast<float>(s >> 8) / static_cast<float>(1u << 24) * 8.0f - 4.0f;
    if (specials) {
      switch ((s >> 3) % 61) {
        case 0: p[i] = kNaN; break;
        case 1: p[i] = kInf; break;
        case 2: p[i] = -kInf; break;
        case 3: p[i] = 0.0f; break;
        case 4: p[i] = -0.0f; break;
        default: break;
      }
    }
  }
  return t;
}

// Same dtype, shape and bytes (-0 does not match +0), except that any NaN matches any NaN.
void expect_identical(const Tensor& fast, const Tensor& reference) {
  ASSERT_TRUE(fast.valid());
  ASSERT_TRUE(reference.valid());
  ASSERT_EQ(fast.dtype(), reference.dtype());
  ASSERT_EQ(fast.shape(), reference.shape());
  const auto* a = static_cast<const unsigned char*>(fast.raw_data());
  const auto* b = static_cast<const unsigned char*>(reference.raw_data());
  const size_t width = dtype_size(fast.dtype());
  for (int64_t i = 0; i < fast.num_elements(); ++i) {
    if (fast.dtype() == DType::kFloat32 && std::isnan(fast.data<float>()[i]) &&
        std::isnan(reference.data<float>()[i])) {
      continue;  // the sign and payload of a NaN may differ between vector and scalar code
    }
    if (std::memcmp(a + i * width, b + i * width, width) != 0) {
      ADD_FAILURE() << "element " << i << ": fast " << element_as_double(fast, i) << ", reference "
                    << element_as_double(reference, i);
      return;
    }
  }
}

// Runs `op` with the fast paths on and off on fresh copies of `inputs` (so no run sees buffers
// the other may have overwritten in place) and compares the first outputs.
void expect_fast_matches_reference(const std::string& op, const std::vector<Tensor>& inputs,
                                   const AttrMap& attrs = {}) {
  SCOPED_TRACE(op);
  const auto copies = [&] {
    std::vector<Tensor> c;
    for (const Tensor& t : inputs) c.push_back(t.clone());
    return c;
  };
  Tensor reference;
  {
    ScopedFastPaths off(false);
    reference = run1(op, copies(), attrs);
  }
  ASSERT_TRUE(fast_paths_enabled());
  expect_identical(run1(op, copies(), attrs), reference);
}

// ---------------------------------------------------------------------------------------------
// Binary elementwise ops.

struct BinaryCase {
  Dims a, b;
};

const std::vector<BinaryCase>& binary_cases() {
  static const std::vector<BinaryCase> cases = {
      {{2, 3, 4, 5}, {2, 3, 4, 5}},                    // same shape
      {{}, {}},                                        // scalars
      {{}, {7, 3}},                                    // scalar first
      {{7, 3}, {}},                                    // scalar second
      {{1}, {5, 1, 2}},                                // one-element vector
      {{2, 5, 5, 3}, {3}},                             // input normalization: inner vector
      {{2, 5, 5, 3}, {1, 1, 3}},                       // inner vector with leading ones
      {{2, 5, 5, 3}, {1, 1, 1, 3}},                    //
      {{3}, {2, 5, 5, 3}},                             // inner vector first
      {{4, 6, 1}, {1}},                                // C = 1
      {{3, 4, 4, 17}, {17}},                           // odd C
      {{3, 4, 4, 17}, {3, 1, 1, 17}},                  // squeeze-excite: outer rows
      {{3, 1, 1, 17}, {3, 4, 4, 17}},                  // outer rows first
      {{2, 3, 3, 1}, {2, 1, 1, 1}},                    // outer rows, C = 1
      {{3, 1}, {1, 4}},                                // outer product
      {{4, 1, 5}, {3, 1}},                             // mixed broadcast
      {{2, 3, 1, 5}, {1, 3, 4, 1}},                    //
      {{2, 1, 2, 1, 2, 1, 2}, {1, 2, 1, 2, 1, 2, 1}},  // 7 collapsed axes: reference code
      {{1, 1}, {1}},                                   // every axis size 1
      {{0, 3}, {3}},                                   // empty
      {{2, 0, 4}, {1}},                                //
      {{0}, {}},                                       //
      {{2, 40, 40, 3}, {3}},                           // large: tiled vector, thread pool
      {{2, 30, 30, 300}, {300}},                       // large inner vector
      {{4, 30, 30, 32}, {4, 1, 1, 32}},                // large squeeze-excite
      {{3, 90, 90}, {3, 90, 90}},                      // large same shape
      {{3, 90, 90}, {}},                               // large scalar
      {{600, 1}, {1, 300}},                            // large outer product
  };
  return cases;
}

TEST(FastBinary, MatchesReferenceForEveryBroadcastPattern) {
  ScopedFastPaths on(true);  // also under HUBIMG_FAST_PATHS=0
  const char* ops[] = {"Add",      "AddV2",   "Sub",
                       "Mul",      "RealDiv", "Div",
                       "Maximum",  "Minimum", "SquaredDifference",
                       "FloorMod", "Pow",     "Less",
                       "Equal",    "DivNoNan"};
  uint32_t seed = 1;
  for (const BinaryCase& c : binary_cases()) {
    SCOPED_TRACE(dims_to_string(c.a) + " op " + dims_to_string(c.b));
    const Tensor a = random_f32(c.a, seed++);
    const Tensor b = random_f32(c.b, seed++);
    for (const char* op : ops) expect_fast_matches_reference(op, {a, b});
  }
}

TEST(FastBinary, WritesInPlaceIntoASoleOwnedInput) {
  ScopedFastPaths on(true);  // also under HUBIMG_FAST_PATHS=0
  const Tensor x = random_f32({2, 5, 5, 17}, 3);
  const Tensor s = random_f32({2, 1, 1, 17}, 4);
  Tensor expected;
  {
    ScopedFastPaths off(false);
    expected = run1("Mul", {x.clone(), s.clone()});
  }
  // Input 0 exclusively owned: the output is its buffer.
  std::vector<Tensor> inputs = {x.clone(), s.clone()};
  auto out = run_op("Mul", inputs, {}, kNode);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE((*out)[0].shares_buffer_with(inputs[0]));
  expect_identical((*out)[0], expected);

  // The broadcast operand first: input 1 has the output's shape and is overwritten.
  inputs = {s.clone(), x.clone()};
  out = run_op("Mul", inputs, {}, kNode);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE((*out)[0].shares_buffer_with(inputs[1]));
  expect_identical((*out)[0], expected);

  // Same shape, both sole-owned: input 0 is reused.
  const Tensor y = random_f32({2, 5, 5, 17}, 5);
  inputs = {x.clone(), y.clone()};
  out = run_op("AddV2", inputs, {}, kNode);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE((*out)[0].shares_buffer_with(inputs[0]));
}

TEST(FastBinary, LeavesSharedInputsAlone) {
  ScopedFastPaths on(true);  // also under HUBIMG_FAST_PATHS=0
  const Tensor x = random_f32({2, 5, 5, 17}, 6);
  const Tensor s = random_f32({2, 1, 1, 17}, 7);
  const Tensor x_before = x.clone();
  std::vector<Tensor> inputs = {x, s};  // x is also held here: shared
  auto out = run_op("Mul", inputs, {}, kNode);
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE((*out)[0].shares_buffer_with(x));
  expect_identical(x, x_before);

  // A view (not an allocation of ours) is never written, even when sole-held.
  std::vector<float> memory(static_cast<size_t>(x.num_elements()), 1.5f);
  inputs = {Tensor::wrap(DType::kFloat32, x.shape(), memory.data(), nullptr), s};
  out = run_op("Mul", inputs, {}, kNode);
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE((*out)[0].shares_buffer_with(inputs[0]));
  for (float v : memory) EXPECT_EQ(v, 1.5f);

  // Same value on both sides: two holders, nothing reused.
  const Tensor z = random_f32({3, 7}, 8);
  inputs = {z, z};
  out = run_op("Mul", inputs, {}, kNode);
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE((*out)[0].shares_buffer_with(z));

  // A bool result never reuses a float buffer.
  inputs = {x.clone(), x.clone()};
  out = run_op("Less", inputs, {}, kNode);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].dtype(), DType::kBool);
  EXPECT_FALSE((*out)[0].shares_buffer_with(inputs[0]));
}

TEST(FastBinary, ReferenceRunsWhenDisabledAndForOtherDtypes) {
  // With the fast paths off nothing is written in place.
  ScopedFastPaths off(false);
  std::vector<Tensor> inputs = {random_f32({4, 4}, 9), random_f32({4, 4}, 10)};
  auto out = run_op("Mul", inputs, {}, kNode);
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE((*out)[0].shares_buffer_with(inputs[0]));
}

TEST(FastBinary, ErrorsAreUnchanged) {
  expect_error("Mul", {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({2}, {1, 2})}, {},
               "Incompatible shapes");
}

// ---------------------------------------------------------------------------------------------
// Unary ops and activations.

TEST(FastUnary, MatchesReference) {
  ScopedFastPaths on(true);  // also under HUBIMG_FAST_PATHS=0
  const char* ops[] = {"Neg",      "Abs",      "Square",   "Sign",  "Exp",        "Log",
                       "Sqrt",     "Rsqrt",    "Floor",    "Round", "Reciprocal", "IsNan",
                       "Relu",     "Relu6",    "Elu",      "Selu",  "Sigmoid",    "Tanh",
                       "Softplus", "Softsign", "LeakyRelu"};
  const Dims shapes[] = {{}, {0}, {1}, {3}, {2, 3, 17}, {4, 60, 60, 3}};
  uint32_t seed = 100;
  for (const Dims& shape : shapes) {
    SCOPED_TRACE(dims_to_string(shape));
    const Tensor x = random_f32(shape, seed++);
    for (const char* op : ops) expect_fast_matches_reference(op, {x});
  }
}

TEST(FastUnary, InPlaceOnlyWhenSoleOwned) {
  ScopedFastPaths on(true);  // also under HUBIMG_FAST_PATHS=0
  const Tensor x = random_f32({3, 5, 7}, 11);
  for (const char* op : {"Relu", "Sigmoid", "Exp", "Neg"}) {
    SCOPED_TRACE(op);
    std::vector<Tensor> inputs = {x.clone()};
    auto out = run_op(op, inputs, {}, kNode);
    ASSERT_TRUE(out.ok());
    EXPECT_TRUE((*out)[0].shares_buffer_with(inputs[0]));

    const Tensor before = x.clone();
    inputs = {x};
    out = run_op(op, inputs, {}, kNode);
    ASSERT_TRUE(out.ok());
    EXPECT_FALSE((*out)[0].shares_buffer_with(x));
    expect_identical(x, before);
  }
}

// ---------------------------------------------------------------------------------------------
// Reductions.

struct ReduceCase {
  Dims shape;
  std::vector<int32_t> axes;
};

TEST(FastReduce, MatchesReferenceOverAxesAndKeepDims) {
  ScopedFastPaths on(true);  // also under HUBIMG_FAST_PATHS=0
  const std::vector<ReduceCase> cases = {
      {{2, 5, 6, 3}, {1, 2}},  // global average pooling
      {{2, 5, 6, 3}, {2, 1}},  //
      {{2, 5, 6, 3}, {-3, -2}},
      {{2, 5, 6, 3}, {0}},
      {{2, 5, 6, 3}, {3}},  // innermost axis
      {{2, 5, 6, 3}, {-1}},
      {{2, 5, 6, 3}, {0, 1}},
      {{2, 5, 6, 3}, {1, 2, 3}},
      {{2, 5, 6, 3}, {0, 1, 2, 3}},
      {{2, 5, 6, 3}, {}},      // nothing reduced
      {{2, 5, 6, 3}, {0, 2}},  // not adjacent: reference code
      {{2, 5, 6, 3}, {1, 1}},  // repeated axis
      {{4, 1, 5, 1, 6}, {1, 2, 3}},
      {{4, 1, 5, 1, 6}, {2, 4}},   // adjacent once size-1 axes are dropped
      {{1, 7, 7, 1}, {1, 2}},      // C = 1
      {{3, 4, 4, 17}, {1, 2}},     // odd C
      {{2, 3, 3, 257}, {1, 2}},    // a chunk of one channel
      {{1, 7, 7, 1280}, {1, 2}},   // EfficientNet head
      {{2, 56, 56, 300}, {1, 2}},  // large: thread pool
      {{5000, 7}, {1}},            // many short rows
      {{}, {}},                    // scalar
      {{3, 0, 4}, {1}},            // empty reduction: identity / NaN mean
      {{0, 4}, {0}},
      {{0, 4}, {1}},  // empty output
  };
  uint32_t seed = 200;
  for (const ReduceCase& c : cases) {
    const Tensor x = random_f32(c.shape, seed++);
    const Tensor axes = i32({static_cast<int64_t>(c.axes.size())}, c.axes);
    for (bool keep : {false, true}) {
      SCOPED_TRACE(dims_to_string(c.shape) + " axes " +
                   dims_to_string({c.axes.begin(), c.axes.end()}) + (keep ? " keep_dims" : ""));
      for (const char* op : {"Sum", "Mean", "Max", "Min", "Prod"}) {
        expect_fast_matches_reference(op, {x, axes}, {{"keep_dims", keep}});
      }
    }
  }
  // Finite values: Max/Min results are real comparisons, not NaN propagation.
  const Tensor finite = random_f32({2, 9, 9, 19}, 7, /*specials=*/false);
  const Tensor axes = i64({2}, {1, 2});
  for (const char* op : {"Sum", "Mean", "Max", "Min"}) {
    expect_fast_matches_reference(op, {finite, axes}, {{"keep_dims", true}});
  }
}

TEST(FastReduce, ErrorsAreUnchanged) {
  expect_error("Mean", {f32({2, 3}, {1, 2, 3, 4, 5, 6}), i32({1}, {2})}, {},
               "Invalid reduction dimension");
}

// ---------------------------------------------------------------------------------------------
// Pooling.

struct PoolCase {
  Dims input;
  int64_t kh, kw, sh, sw;
};

TEST(FastPool, MatchesReferenceOverWindowsStridesAndPadding) {
  ScopedFastPaths on(true);  // also under HUBIMG_FAST_PATHS=0
  const std::vector<PoolCase> cases = {
      {{1, 5, 5, 1}, 1, 1, 1, 1},    {{1, 5, 5, 3}, 2, 2, 2, 2},
      {{3, 7, 6, 17}, 3, 3, 2, 2},   {{2, 9, 9, 3}, 3, 2, 1, 3},
      {{2, 8, 8, 16}, 2, 2, 1, 1},   {{1, 6, 7, 5}, 5, 5, 3, 3},
      {{2, 4, 4, 300}, 3, 3, 1, 1},  {{1, 1, 1, 4}, 1, 1, 1, 1},
      {{4, 23, 23, 64}, 3, 3, 2, 2},  // large: thread pool
      {{0, 5, 5, 3}, 2, 2, 2, 2},     // empty batch
      {{2, 5, 5, 0}, 2, 2, 2, 2},     // no channels
  };
  uint32_t seed = 300;
  for (const PoolCase& c : cases) {
    const Tensor x = random_f32(c.input, seed++);
    for (const std::string padding : {"VALID", "SAME"}) {
      SCOPED_TRACE(dims_to_string(c.input) + " window " + std::to_string(c.kh) + "x" +
                   std::to_string(c.kw) + " stride " + std::to_string(c.sh) + "x" +
                   std::to_string(c.sw) + " " + padding);
      if (padding == "VALID" && (c.input[1] < c.kh || c.input[2] < c.kw)) continue;
      const AttrMap attrs{{"ksize", Ints{1, c.kh, c.kw, 1}},
                          {"strides", Ints{1, c.sh, c.sw, 1}},
                          {"padding", padding}};
      expect_fast_matches_reference("MaxPool", {x}, attrs);
      expect_fast_matches_reference("AvgPool", {x}, attrs);
    }
  }
}

TEST(FastPool, ExplicitPaddingAndMaxPoolV2) {
  ScopedFastPaths on(true);  // also under HUBIMG_FAST_PATHS=0
  const Tensor x = random_f32({2, 6, 7, 5}, 400);
  AttrMap attrs{{"ksize", Ints{1, 3, 3, 1}},
                {"strides", Ints{1, 2, 1, 1}},
                {"padding", std::string("EXPLICIT")},
                {"explicit_paddings", Ints{0, 0, 1, 2, 2, 0, 0, 0}}};
  expect_fast_matches_reference("MaxPool", {x}, attrs);
  const Tensor ksize = Tensor::from_vector<int32_t>({4}, std::vector<int32_t>{1, 2, 3, 1});
  const Tensor strides = Tensor::from_vector<int32_t>({4}, std::vector<int32_t>{1, 2, 2, 1});
  expect_fast_matches_reference("MaxPoolV2", {x, ksize, strides},
                                {{"padding", std::string("SAME")}});
}

TEST(FastPool, IntegerPoolingKeepsTheReferencePath) {
  const Tensor x = Tensor::from_vector<int32_t>({1, 2, 2, 1}, std::vector<int32_t>{4, -1, 7, 2});
  expect_values<int32_t>(run1("MaxPool", {x},
                              {{"ksize", Ints{1, 2, 2, 1}},
                               {"strides", Ints{1, 1, 1, 1}},
                               {"padding", std::string("VALID")}}),
                         {1, 1, 1, 1}, {7});
}

// ---------------------------------------------------------------------------------------------
// Pad and PadV2.

struct PadCase {
  Dims input;
  std::vector<int32_t> paddings;  // [rank, 2]
};

TEST(FastPad, MatchesReferenceOverRanksPaddingsAndDtypes) {
  ScopedFastPaths on(true);  // also under HUBIMG_FAST_PATHS=0
  const std::vector<PadCase> cases = {
      {{32 / 8, 11, 11, 64}, {0, 0, 1, 1, 1, 1, 0, 0}},  // ResNet stem pad
      {{2, 5, 5, 3}, {0, 0, 1, 1, 1, 1, 0, 0}},
      {{2, 5, 5, 3}, {0, 0, 0, 0, 0, 0, 0, 0}},  // nothing padded
      {{2, 5, 5, 3}, {1, 2, 0, 0, 0, 0, 0, 0}},  // batch only
      {{2, 5, 5, 3}, {0, 0, 0, 0, 0, 0, 2, 1}},  // channels only
      {{2, 5, 5, 3}, {1, 0, 2, 1, 0, 3, 1, 1}},  // everything
      {{2, 5, 5, 1}, {0, 0, 3, 0, 0, 2, 0, 0}},  // C = 1
      {{3, 4, 4, 17}, {0, 0, 2, 2, 2, 2, 0, 0}},
      {{7}, {2, 3}},
      {{3, 4}, {1, 0, 0, 2}},
      {{2, 1, 3, 2, 2}, {0, 1, 1, 0, 0, 0, 2, 2, 0, 0}},
      {{0, 3}, {1, 1, 1, 1}},  // empty input, padded output
      {{2, 0}, {1, 1, 0, 0}},  // empty input and output
      {{2, 3}, {0, 0, 0, 0}},
  };
  uint32_t seed = 500;
  for (const PadCase& c : cases) {
    SCOPED_TRACE(dims_to_string(c.input) + " paddings " +
                 dims_to_string({c.paddings.begin(), c.paddings.end()}));
    const Tensor paddings = i32({static_cast<int64_t>(c.input.size()), 2}, c.paddings);
    const Tensor x = random_f32(c.input, seed++);
    expect_fast_matches_reference("Pad", {x, paddings});
    expect_fast_matches_reference("PadV2", {x, paddings, Tensor::scalar<float>(-1.5f)});
    expect_fast_matches_reference("PadV2", {x, paddings, Tensor::scalar<float>(-0.0f)});
    expect_fast_matches_reference("PadV2", {x, paddings, Tensor::scalar<float>(kNaN)});
    // Other widths: int32, uint8, int64, float16 (moved, never computed).
    Tensor xi(DType::kInt32, c.input), xb(DType::kUInt8, c.input), xl(DType::kInt64, c.input),
        xh(DType::kFloat16, c.input);
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      xi.mutable_data<int32_t>()[i] = static_cast<int32_t>(i * 7 - 3);
      xb.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(i * 13);
      xl.mutable_data<int64_t>()[i] = i * 1000003 - 5;
      xh.mutable_data<Float16>()[i] = Float16::from_float(static_cast<float>(i) * 0.25f);
    }
    expect_fast_matches_reference("Pad", {xi, paddings});
    expect_fast_matches_reference("PadV2", {xi, paddings, Tensor::scalar<int32_t>(-9)});
    expect_fast_matches_reference("PadV2", {xb, paddings, Tensor::scalar<uint8_t>(200)});
    expect_fast_matches_reference("Pad", {xl, paddings});
    expect_fast_matches_reference("Pad", {xh, paddings});
  }
  // int64 paddings input.
  expect_fast_matches_reference("Pad", {random_f32({2, 3, 4}, 9), i64({3, 2}, {1, 0, 0, 1, 2, 2})});
}

TEST(FastPad, StringsKeepTheReferencePath) {
  const Tensor s = Tensor::from_strings({2}, {"a", "b"});
  const Tensor out = run1("Pad", {s, i32({1, 2}, {1, 0})});
  ASSERT_EQ(out.shape(), (Dims{3}));
  EXPECT_EQ(out.strings()[0], "");
  EXPECT_EQ(out.strings()[2], "b");
}

}  // namespace
}  // namespace hubimg::ops
