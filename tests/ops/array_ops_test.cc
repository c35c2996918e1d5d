// Shape and data-movement kernels. Expected values come from TensorFlow's op documentation
// examples (StridedSlice, Tile, Pad, OneHot) and from NumPy indexing written out by hand.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ops/op_registry.h"
#include "ops/op_test_util.h"

namespace hubimg::ops {
namespace {

using namespace ::hubimg::ops::testing;  // NOLINT(google-build-using-namespace)

Tensor strings(Dims shape, std::vector<std::string> v) {
  return Tensor::from_strings(std::move(shape), std::move(v));
}

// ---------------------------------------------------------------------------------------------
// Reshape, Squeeze, ExpandDims, Shape, ShapeN, Size, Rank.

const Tensor kIntMatrix = i32({2, 3}, {1, 2, 3, 4, 5, 6});

TEST(Reshape, InfersOneMinusOne) {
  expect_values<int32_t>(run1("Reshape", {kIntMatrix, i32({2}, {3, -1})}), {3, 2},
                         {1, 2, 3, 4, 5, 6});
  expect_values<int32_t>(run1("Reshape", {kIntMatrix, i64({1}, {-1})}), {6}, {1, 2, 3, 4, 5, 6});
  expect_values<int32_t>(run1("Reshape", {i32({1}, {7}), i32({0}, {})}), {}, {7});
  expect_values<float>(run1("Reshape", {f32({0, 3}, {}), i32({2}, {-1, 3})}), {0, 3}, {});
}

TEST(Reshape, BadSizesAreErrors) {
  expect_error("Reshape", {kIntMatrix, i32({2}, {4, -1})}, {}, "requires a multiple of 4");
  expect_error("Reshape", {kIntMatrix, i32({2}, {2, 2})}, {}, "6 values");
  expect_error("Reshape", {kIntMatrix, i32({2}, {-1, -1})}, {}, "only one input size may be -1");
  expect_error("Reshape", {kIntMatrix, i32({2}, {-2, 3})}, {}, "must be non-negative");
  expect_error("Reshape", {f32({0, 3}, {}), i32({2}, {-1, 0})}, {}, "cannot infer");
}

TEST(Reshape, StringTensorsShareTheirValues) {
  const Tensor out = run1("Reshape", {strings({2, 2}, {"a", "b", "c", "d"}), i32({1}, {4})});
  ASSERT_EQ(out.shape(), (Dims{4}));
  EXPECT_EQ(out.strings(), (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(Squeeze, AllOrSelectedUnitDims) {
  const Tensor x = f32({1, 2, 1, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(run1("Squeeze", {x}).shape(), (Dims{2, 3}));
  EXPECT_EQ(run1("Squeeze", {x}, {{"squeeze_dims", std::vector<int64_t>{2}}}).shape(),
            (Dims{1, 2, 3}));
  EXPECT_EQ(run1("Squeeze", {x}, {{"squeeze_dims", std::vector<int64_t>{-2, 0}}}).shape(),
            (Dims{2, 3}));
  expect_error("Squeeze", {x}, {{"squeeze_dims", std::vector<int64_t>{1}}},
               "expected a dimension of 1, got 2");
  expect_error("Squeeze", {x}, {{"squeeze_dims", std::vector<int64_t>{4}}}, "out of range");
}

TEST(ExpandDims, InsertsAtPositiveAndNegativeAxes) {
  EXPECT_EQ(run1("ExpandDims", {kIntMatrix, i32({}, {0})}).shape(), (Dims{1, 2, 3}));
  EXPECT_EQ(run1("ExpandDims", {kIntMatrix, i32({}, {-1})}).shape(), (Dims{2, 3, 1}));
  EXPECT_EQ(run1("ExpandDims", {kIntMatrix, i64({1}, {2})}).shape(), (Dims{2, 3, 1}));
  EXPECT_EQ(run1("ExpandDims", {kIntMatrix, i32({}, {-3})}).shape(), (Dims{1, 2, 3}));
  expect_error("ExpandDims", {kIntMatrix, i32({}, {3})}, {}, "out of range");
  expect_error("ExpandDims", {kIntMatrix, i32({}, {-4})}, {}, "out of range");
}

TEST(ShapeOps, ShapeSizeRank) {
  const Tensor x = f32({2, 0, 5}, {});
  expect_values<int32_t>(run1("Shape", {x}), {3}, {2, 0, 5});
  expect_values<int64_t>(run1("Shape", {x}, {{"out_type", DType::kInt64}}), {3}, {2, 0, 5});
  expect_values<int32_t>(run1("Shape", {f32({}, {1})}), {0}, {});
  expect_values<int32_t>(run1("Size", {kIntMatrix}), {}, {6});
  expect_values<int64_t>(run1("Size", {kIntMatrix}, {{"out_type", DType::kInt64}}), {}, {6});
  expect_values<int32_t>(run1("Rank", {x}), {}, {3});
  const auto shapes = run("ShapeN", {kIntMatrix, x}, {{"N", int64_t{2}}});
  ASSERT_EQ(shapes.size(), 2u);
  expect_values<int32_t>(shapes[0], {2}, {2, 3});
  expect_values<int32_t>(shapes[1], {3}, {2, 0, 5});
}

// ---------------------------------------------------------------------------------------------
// StridedSlice.

// t from the tf.strided_slice documentation, shape [3, 2, 3].
const Tensor kDocTensor = i32({3, 2, 3}, {1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6});

struct SliceSpec {
  std::vector<int32_t> begin, end, strides;
  int64_t begin_mask = 0, end_mask = 0, ellipsis_mask = 0, new_axis_mask = 0, shrink_axis_mask = 0;
};

Expected<std::vector<Tensor>> strided_slice(const Tensor& input, const SliceSpec& s) {
  const auto n = static_cast<int64_t>(s.begin.size());
  AttrMap attrs;
  // Real SavedModels strip zero masks; only set the non-zero ones.
  if (s.begin_mask) attrs.set("begin_mask", s.begin_mask);
  if (s.end_mask) attrs.set("end_mask", s.end_mask);
  if (s.ellipsis_mask) attrs.set("ellipsis_mask", s.ellipsis_mask);
  if (s.new_axis_mask) attrs.set("new_axis_mask", s.new_axis_mask);
  if (s.shrink_axis_mask) attrs.set("shrink_axis_mask", s.shrink_axis_mask);
  const std::vector<Tensor> inputs = {input, i32({n}, s.begin), i32({n}, s.end),
                                      i32({n}, s.strides)};
  return run_op("StridedSlice", inputs, attrs, kNode);
}
Tensor slice_ok(const Tensor& input, const SliceSpec& s) {
  auto r = strided_slice(input, s);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? (*r)[0] : Tensor();
}
void slice_error(const Tensor& input, const SliceSpec& s, const std::string& fragment) {
  auto r = strided_slice(input, s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(kNode), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
}

TEST(StridedSlice, DocumentationExamples) {
  expect_values<int32_t>(slice_ok(kDocTensor, {{1, 0, 0}, {2, 1, 3}, {1, 1, 1}}), {1, 1, 3},
                         {3, 3, 3});
  expect_values<int32_t>(slice_ok(kDocTensor, {{1, 0, 0}, {2, 2, 3}, {1, 1, 1}}), {1, 2, 3},
                         {3, 3, 3, 4, 4, 4});
  expect_values<int32_t>(slice_ok(kDocTensor, {{1, -1, 0}, {2, -3, 3}, {1, -1, 1}}), {1, 2, 3},
                         {4, 4, 4, 3, 3, 3});
}

TEST(StridedSlice, ShrinkAxis) {
  // t[1] and t[-1]
  expect_values<int32_t>(slice_ok(kDocTensor, {{1}, {2}, {1}, 0, 0, 0, 0, 1}), {2, 3},
                         {3, 3, 3, 4, 4, 4});
  expect_values<int32_t>(slice_ok(kDocTensor, {{-1}, {0}, {1}, 0, 0, 0, 0, 1}), {2, 3},
                         {5, 5, 5, 6, 6, 6});
  // t[:, 1]
  expect_values<int32_t>(slice_ok(kDocTensor, {{0, 1}, {0, 2}, {1, 1}, 1, 1, 0, 0, 2}), {3, 3},
                         {2, 2, 2, 4, 4, 4, 6, 6, 6});
  // t[1, 0, 2] is a scalar
  expect_values<int32_t>(slice_ok(kDocTensor, {{1, 0, 2}, {2, 1, 3}, {1, 1, 1}, 0, 0, 0, 0, 7}), {},
                         {3});
}

TEST(StridedSlice, ShrinkOutOfBoundsIsAnError) {
  slice_error(kDocTensor, {{3}, {4}, {1}, 0, 0, 0, 0, 1}, "out of bounds");
  slice_error(kDocTensor, {{-4}, {0}, {1}, 0, 0, 0, 0, 1}, "out of bounds");
}

TEST(StridedSlice, Ellipsis) {
  // t[..., 0]
  expect_values<int32_t>(slice_ok(kDocTensor, {{0, 0}, {0, 1}, {1, 1}, 0, 0, 1, 0, 2}), {3, 2},
                         {1, 2, 3, 4, 5, 6});
  // t[1, ...]
  expect_values<int32_t>(slice_ok(kDocTensor, {{1, 0}, {2, 0}, {1, 1}, 0, 0, 2, 0, 1}), {2, 3},
                         {3, 3, 3, 4, 4, 4});
  slice_error(kDocTensor, {{0, 0}, {0, 0}, {1, 1}, 0, 0, 3}, "Multiple ellipses");
}

TEST(StridedSlice, NewAxis) {
  // t[tf.newaxis, 0]
  expect_values<int32_t>(slice_ok(kDocTensor, {{0, 0}, {0, 1}, {1, 1}, 0, 0, 0, 1, 2}), {1, 2, 3},
                         {1, 1, 1, 2, 2, 2});
  // t[..., tf.newaxis]
  EXPECT_EQ(slice_ok(kDocTensor, {{0, 0}, {0, 0}, {1, 1}, 0, 0, 1, 2}).shape(), (Dims{3, 2, 3, 1}));
  // t[..., tf.newaxis, 0]: a new axis after the ellipsis shortens the ellipsis.
  expect_values<int32_t>(slice_ok(kDocTensor, {{0, 0, 0}, {0, 0, 1}, {1, 1, 1}, 0, 0, 1, 2, 4}),
                         {3, 2, 1}, {1, 2, 3, 4, 5, 6});
  // t[:, tf.newaxis, 1:2]
  expect_values<int32_t>(slice_ok(kDocTensor, {{0, 0, 1}, {0, 0, 2}, {1, 1, 1}, 1, 1, 0, 2}),
                         {3, 1, 1, 3}, {2, 2, 2, 4, 4, 4, 6, 6, 6});
}

TEST(StridedSlice, NegativeStrides) {
  // t[::-1]
  expect_values<int32_t>(slice_ok(kDocTensor, {{0}, {0}, {-1}, 1, 1}), {3, 2, 3},
                         {5, 5, 5, 6, 6, 6, 3, 3, 3, 4, 4, 4, 1, 1, 1, 2, 2, 2});
  // t[2:0:-1, :, 1:]
  expect_values<int32_t>(slice_ok(kDocTensor, {{2, 0, 1}, {0, 0, 3}, {-1, 1, 1}, 2, 2}), {2, 2, 2},
                         {5, 5, 6, 6, 3, 3, 4, 4});
  const Tensor x = i32({10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  expect_values<int32_t>(slice_ok(x, {{8}, {1}, {-3}}), {3}, {8, 5, 2});
  expect_values<int32_t>(slice_ok(x, {{-1}, {-11}, {-4}}), {3}, {9, 5, 1});
  expect_values<int32_t>(slice_ok(x, {{0}, {0}, {-2}, 1, 1}), {5}, {9, 7, 5, 3, 1});
}

TEST(StridedSlice, ClampingAndEmptyRanges) {
  const Tensor x = i32({10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  expect_values<int32_t>(slice_ok(x, {{0}, {0}, {3}, 1, 1}), {4}, {0, 3, 6, 9});
  expect_values<int32_t>(slice_ok(x, {{7}, {100}, {1}}), {3}, {7, 8, 9});
  expect_values<int32_t>(slice_ok(x, {{-100}, {2}, {1}}), {2}, {0, 1});
  expect_values<int32_t>(slice_ok(x, {{5}, {2}, {1}}), {0}, {});
  expect_values<int32_t>(slice_ok(x, {{-2}, {0}, {1}, 0, 1}), {2}, {8, 9});
  // t[1:100] on the documentation tensor keeps two rows.
  EXPECT_EQ(slice_ok(kDocTensor, {{1}, {100}, {1}}).shape(), (Dims{2, 2, 3}));
}

TEST(StridedSlice, Int64IndicesAndStringInput) {
  const Tensor s = strings({4}, {"a", "b", "c", "d"});
  auto r = run_op("StridedSlice",
                  std::vector<Tensor>{s, i64({1}, {1}), i64({1}, {4}), i64({1}, {2})}, {}, kNode);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)[0].strings(), (std::vector<std::string>{"b", "d"}));
}

TEST(StridedSlice, InvalidSpecsAreErrors) {
  slice_error(kDocTensor, {{0}, {1}, {0}}, "strides[0] must be non-zero");
  slice_error(kDocTensor, {{0, 0, 0, 0}, {1, 1, 1, 1}, {1, 1, 1, 1}}, "Index out of range");
  auto r = run_op("StridedSlice",
                  std::vector<Tensor>{kDocTensor, i32({2}, {0, 0}), i32({1}, {1}), i32({1}, {1})},
                  {}, kNode);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("1D equal size"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Slice.

TEST(Slice, SizeMinusOneTakesTheRest) {
  expect_values<int32_t>(run1("Slice", {kIntMatrix, i32({2}, {0, 1}), i32({2}, {2, -1})}), {2, 2},
                         {2, 3, 5, 6});
  expect_values<int32_t>(run1("Slice", {kIntMatrix, i64({2}, {1, 0}), i64({2}, {1, 2})}), {1, 2},
                         {4, 5});
  expect_values<int32_t>(run1("Slice", {kIntMatrix, i32({2}, {2, 3}), i32({2}, {0, 0})}), {0, 0},
                         {});
}

TEST(Slice, OutOfRangeIsAnError) {
  expect_error("Slice", {kIntMatrix, i32({2}, {0, 4}), i32({2}, {1, -1})}, {},
               "Expected begin[1] in [0, 3], but got 4");
  expect_error("Slice", {kIntMatrix, i32({2}, {1, 1}), i32({2}, {2, 1})}, {},
               "Expected size[0] in [0, 1], but got 2");
  expect_error("Slice", {kIntMatrix, i32({1}, {0}), i32({1}, {1})}, {}, "1-D tensors of size 2");
}

// ---------------------------------------------------------------------------------------------
// Pack, Unpack, Split, SplitV, ConcatV2.

TEST(Pack, StacksAlongAnyAxis) {
  const Tensor a = i32({2}, {1, 2});
  const Tensor b = i32({2}, {3, 4});
  const Tensor c = i32({2}, {5, 6});
  const AttrMap n3{{"N", int64_t{3}}};
  expect_values<int32_t>(run1("Pack", {a, b, c}, n3), {3, 2}, {1, 2, 3, 4, 5, 6});
  expect_values<int32_t>(run1("Pack", {a, b, c}, {{"N", int64_t{3}}, {"axis", int64_t{1}}}), {2, 3},
                         {1, 3, 5, 2, 4, 6});
  expect_values<int32_t>(run1("Pack", {a, b, c}, {{"N", int64_t{3}}, {"axis", int64_t{-1}}}),
                         {2, 3}, {1, 3, 5, 2, 4, 6});
  expect_values<float>(run1("Pack", {f32({}, {1}), f32({}, {2})}), {2}, {1, 2});
  expect_error("Pack", {a, i32({3}, {1, 2, 3})}, {}, "Shapes of all inputs must match");
  expect_error("Pack", {a, b}, {{"axis", int64_t{2}}}, "out of range");
}

TEST(Unpack, SplitsIntoSlicesWithoutTheAxis) {
  auto rows = run("Unpack", {kIntMatrix}, {{"num", int64_t{2}}});
  ASSERT_EQ(rows.size(), 2u);
  expect_values<int32_t>(rows[0], {3}, {1, 2, 3});
  expect_values<int32_t>(rows[1], {3}, {4, 5, 6});
  auto cols = run("Unpack", {kIntMatrix}, {{"num", int64_t{3}}, {"axis", int64_t{-1}}});
  ASSERT_EQ(cols.size(), 3u);
  expect_values<int32_t>(cols[0], {2}, {1, 4});
  expect_values<int32_t>(cols[2], {2}, {3, 6});
  expect_error("Unpack", {kIntMatrix}, {{"num", int64_t{3}}}, "must equal 3");
}

TEST(Split, EqualParts) {
  const Tensor x = i32({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  auto parts = run("Split", {i32({}, {1}), x}, {{"num_split", int64_t{2}}});
  ASSERT_EQ(parts.size(), 2u);
  expect_values<int32_t>(parts[0], {2, 2}, {1, 2, 5, 6});
  expect_values<int32_t>(parts[1], {2, 2}, {3, 4, 7, 8});
  parts = run("Split", {i32({}, {-2}), x}, {{"num_split", int64_t{2}}});
  ASSERT_EQ(parts.size(), 2u);
  expect_values<int32_t>(parts[1], {1, 4}, {5, 6, 7, 8});
  expect_error("Split", {i32({}, {1}), x}, {{"num_split", int64_t{3}}}, "evenly divide");
}

TEST(SplitV, SizesWithOneInferred) {
  const Tensor x = f32({5}, {0, 1, 2, 3, 4});
  auto parts = run("SplitV", {x, i32({3}, {1, -1, 2}), i32({}, {0})}, {{"num_split", int64_t{3}}});
  ASSERT_EQ(parts.size(), 3u);
  expect_values<float>(parts[0], {1}, {0});
  expect_values<float>(parts[1], {2}, {1, 2});
  expect_values<float>(parts[2], {2}, {3, 4});
  const AttrMap two{{"num_split", int64_t{2}}};
  expect_error("SplitV", {x, i64({2}, {-1, -1}), i32({}, {0})}, two, "only be one -1");
  expect_error("SplitV", {x, i32({2}, {2, 2}), i32({}, {0})}, two, "Determined shape");
  expect_error("SplitV", {x, i32({2}, {6, -1}), i32({}, {0})}, two, "Determined shape");
}

TEST(ConcatV2, AlongFirstAndLastAxis) {
  const Tensor a = i32({2, 2}, {1, 2, 3, 4});
  expect_values<int32_t>(run1("ConcatV2", {a, i32({1, 2}, {5, 6}), i32({}, {0})}), {3, 2},
                         {1, 2, 3, 4, 5, 6});
  expect_values<int32_t>(run1("ConcatV2", {a, i32({2, 1}, {5, 6}), i64({}, {-1})}), {2, 3},
                         {1, 2, 5, 3, 4, 6});
  expect_values<int32_t>(run1("Concat", {i32({}, {1}), a, i32({2, 1}, {5, 6})}), {2, 3},
                         {1, 2, 5, 3, 4, 6});
  const Tensor s = run1("ConcatV2", {strings({1}, {"x"}), strings({2}, {"y", "z"}), i32({}, {0})});
  EXPECT_EQ(s.strings(), (std::vector<std::string>{"x", "y", "z"}));
}

TEST(ConcatV2, MismatchesAreErrors) {
  const Tensor a = i32({2, 2}, {1, 2, 3, 4});
  expect_error("ConcatV2", {a, i32({1, 3}, {5, 6, 7}), i32({}, {0})}, {}, "Dimension mismatch");
  expect_error("ConcatV2", {a, f32({1, 2}, {5, 6}), i32({}, {0})}, {}, "dtype mismatch");
  expect_error("ConcatV2", {a, a, i32({}, {2})}, {}, "out of range");
}

// ---------------------------------------------------------------------------------------------
// Tile, Fill, Transpose, BroadcastTo, BroadcastArgs, ReverseV2.

TEST(Tile, DocumentationExample) {
  expect_values<int32_t>(run1("Tile", {kIntMatrix, i32({2}, {1, 2})}), {2, 6},
                         {1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6});
  expect_values<int32_t>(run1("Tile", {kIntMatrix, i32({2}, {2, 1})}), {4, 3},
                         {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6});
  expect_values<int32_t>(run1("Tile", {kIntMatrix, i64({2}, {2, 2})}), {4, 6},
                         {1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6});
  expect_values<int32_t>(run1("Tile", {kIntMatrix, i32({2}, {0, 1})}), {0, 3}, {});
  expect_error("Tile", {kIntMatrix, i32({1}, {2})}, {}, "vector of length 2");
  expect_error("Tile", {kIntMatrix, i32({2}, {1, -1})}, {}, ">= 0");
}

TEST(Fill, ScalarValueEverywhere) {
  expect_values<int32_t>(run1("Fill", {i32({2}, {2, 3}), i32({}, {7})}), {2, 3},
                         {7, 7, 7, 7, 7, 7});
  const Tensor s = run1("Fill", {i64({1}, {2}), strings({}, {"hi"})});
  EXPECT_EQ(s.strings(), (std::vector<std::string>{"hi", "hi"}));
  expect_error("Fill", {i32({1}, {-1}), i32({}, {7})}, {}, "negative");
  expect_error("Fill", {i32({1}, {2}), i32({1}, {7})}, {}, "scalar");
}

TEST(Transpose, MatrixAndRank3) {
  expect_values<int32_t>(run1("Transpose", {kIntMatrix, i32({2}, {1, 0})}), {3, 2},
                         {1, 4, 2, 5, 3, 6});
  // x[i][j][k] = 100i + 10j + k over [2,3,4]; perm [2,0,1] gives y[k][i][j] = x[i][j][k].
  std::vector<int32_t> x;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) x.push_back(100 * i + 10 * j + k);
  std::vector<int32_t> y;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) y.push_back(100 * i + 10 * j + k);
  expect_values<int32_t>(run1("Transpose", {i32({2, 3, 4}, x), i64({3}, {2, 0, 1})}), {4, 2, 3}, y);
  expect_error("Transpose", {kIntMatrix, i32({2}, {0, 0})}, {}, "not a permutation");
  expect_error("Transpose", {kIntMatrix, i32({3}, {0, 1, 2})}, {}, "vector of size 2");
}

TEST(BroadcastTo, ExpandsUnitAndMissingDims) {
  expect_values<float>(run1("BroadcastTo", {f32({3}, {1, 2, 3}), i32({2}, {2, 3})}), {2, 3},
                       {1, 2, 3, 1, 2, 3});
  // [2,1] -> [2,2,3]: out[a][b][c] = in[b][0].
  expect_values<float>(run1("BroadcastTo", {f32({2, 1}, {1, 2}), i64({3}, {2, 2, 3})}), {2, 2, 3},
                       {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2});
  expect_error("BroadcastTo", {f32({3}, {1, 2, 3}), i32({2}, {2, 2})}, {}, "Unable to broadcast");
  expect_error("BroadcastTo", {f32({2, 3}, {1, 2, 3, 4, 5, 6}), i32({1}, {3})}, {},
               "Unable to broadcast");
}

TEST(BroadcastArgs, ComputesTheBroadcastShape) {
  expect_values<int32_t>(run1("BroadcastArgs", {i32({2}, {2, 1}), i32({1}, {3})}), {2}, {2, 3});
  expect_values<int64_t>(run1("BroadcastArgs", {i64({3}, {5, 1, 4}), i64({2}, {6, 1})}), {3},
                         {5, 6, 4});
  expect_error("BroadcastArgs", {i32({1}, {2}), i32({1}, {3})}, {}, "Incompatible shapes");
}

TEST(ReverseV2, ReversesListedAxes) {
  expect_values<int32_t>(run1("ReverseV2", {kIntMatrix, i32({1}, {1})}), {2, 3},
                         {3, 2, 1, 6, 5, 4});
  expect_values<int32_t>(run1("ReverseV2", {kIntMatrix, i64({2}, {0, -1})}), {2, 3},
                         {6, 5, 4, 3, 2, 1});
  expect_values<int32_t>(run1("ReverseV2", {kIntMatrix, i32({0}, {})}), {2, 3}, {1, 2, 3, 4, 5, 6});
  expect_error("ReverseV2", {kIntMatrix, i32({2}, {1, -1})}, {}, "more than once");
}

// The examples of tf.roll's documentation, then the rules around them.
TEST(Roll, RollsListedAxes) {
  const Tensor v = i32({5}, {0, 1, 2, 3, 4});
  expect_values<int32_t>(run1("Roll", {v, i32({}, {2}), i32({}, {0})}), {5}, {3, 4, 0, 1, 2});
  const Tensor m = i32({2, 5}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  expect_values<int32_t>(run1("Roll", {m, i32({2}, {1, -2}), i32({2}, {0, 1})}), {2, 5},
                         {7, 8, 9, 5, 6, 2, 3, 4, 0, 1});
  expect_values<int32_t>(run1("Roll", {m, i32({2}, {2, -3}), i64({2}, {1, 1})}), {2, 5},
                         {1, 2, 3, 4, 0, 6, 7, 8, 9, 5});  // one axis twice: shifts add up
  expect_values<int32_t>(run1("Roll", {m, i64({1}, {-6}), i32({1}, {-1})}), {2, 5},
                         {1, 2, 3, 4, 0, 6, 7, 8, 9, 5});  // negative axis; |shift| > size
  // Shifts that are multiples of the size, one beyond int32, leave the input as it is.
  expect_values<int32_t>(run1("Roll", {m, i64({1}, {5'000'000'000}), i32({1}, {1})}), {2, 5},
                         {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  expect_values<float>(run1("Roll", {f32({2, 0}, {}), i32({}, {3}), i32({}, {1})}), {2, 0}, {});
  expect_error("Roll", {m, i32({1, 1}, {1}), i32({1}, {0})}, {}, "shift must be a scalar");
  expect_error("Roll", {m, i32({2}, {1, 1}), i32({1}, {0})}, {}, "same size");
  expect_error("Roll", {m, i32({}, {1}), i32({}, {2})}, {}, "axis");
  expect_error("Roll", {i32({}, {1}), i32({}, {1}), i32({}, {0})}, {}, "1-D or higher");
}

// ---------------------------------------------------------------------------------------------
// Pad, PadV2, MirrorPad: the tf.pad documentation example, t = [[1,2,3],[4,5,6]],
// paddings = [[1,1],[2,2]].

const Tensor kPaddings = i32({2, 2}, {1, 1, 2, 2});

TEST(Pad, ConstantZero) {
  expect_values<int32_t>(run1("Pad", {kIntMatrix, kPaddings}), {4, 7}, {0, 0, 0, 0, 0, 0, 0,  //
                                                                        0, 0, 1, 2, 3, 0, 0,  //
                                                                        0, 0, 4, 5, 6, 0, 0,  //
                                                                        0, 0, 0, 0, 0, 0, 0});
}

TEST(Pad, ConstantValue) {
  expect_values<float>(run1("PadV2", {f32({2}, {1, 2}), i64({1, 2}, {1, 2}), f32({}, {-9})}), {5},
                       {-9, 1, 2, -9, -9});
  expect_error("PadV2", {f32({2}, {1, 2}), i32({1, 2}, {1, 2}), i32({}, {9})}, {},
               "constant_values");
}

TEST(Pad, InvalidPaddingsAreErrors) {
  expect_error("Pad", {kIntMatrix, i32({2, 2}, {1, -1, 0, 0})}, {}, "non-negative");
  expect_error("Pad", {kIntMatrix, i32({1, 2}, {1, 1})}, {}, "paddings must be a matrix");
}

TEST(MirrorPad, Reflect) {
  expect_values<int32_t>(
      run1("MirrorPad", {kIntMatrix, kPaddings}, {{"mode", std::string("REFLECT")}}), {4, 7},
      {6, 5, 4, 5, 6, 5, 4,  //
       3, 2, 1, 2, 3, 2, 1,  //
       6, 5, 4, 5, 6, 5, 4,  //
       3, 2, 1, 2, 3, 2, 1});
}

TEST(MirrorPad, Symmetric) {
  expect_values<int32_t>(
      run1("MirrorPad", {kIntMatrix, kPaddings}, {{"mode", std::string("SYMMETRIC")}}), {4, 7},
      {2, 1, 1, 2, 3, 3, 2,  //
       2, 1, 1, 2, 3, 3, 2,  //
       5, 4, 4, 5, 6, 6, 5,  //
       5, 4, 4, 5, 6, 6, 5});
}

TEST(MirrorPad, PaddingLimitsAndModeAreChecked) {
  const Tensor too_wide = i32({2, 2}, {0, 0, 3, 0});
  expect_error("MirrorPad", {kIntMatrix, too_wide}, {{"mode", std::string("REFLECT")}},
               "no greater than");
  expect_values<int32_t>(
      run1("MirrorPad", {kIntMatrix, too_wide}, {{"mode", std::string("SYMMETRIC")}}), {2, 6},
      {3, 2, 1, 1, 2, 3, 6, 5, 4, 4, 5, 6});
  expect_error("MirrorPad", {kIntMatrix, kPaddings}, {}, "mode");
  expect_error("MirrorPad", {kIntMatrix, kPaddings}, {{"mode", std::string("CONSTANT")}},
               "REFLECT or SYMMETRIC");
}

// ---------------------------------------------------------------------------------------------
// ZerosLike, OnesLike, Bitcast, GatherV2, OneHot.

TEST(ZerosOnesLike, KeepShapeAndDtype) {
  expect_values<int32_t>(run1("ZerosLike", {kIntMatrix}), {2, 3}, {0, 0, 0, 0, 0, 0});
  expect_values<float>(run1("OnesLike", {f32({2}, {5, 6})}), {2}, {1, 1});
  const Tensor b = run1("OnesLike", {Tensor(DType::kBool, {2})});
  ASSERT_EQ(b.dtype(), DType::kBool);
  EXPECT_TRUE(b.data<bool>()[0] && b.data<bool>()[1]);
  const Tensor h = run1("OnesLike", {Tensor(DType::kFloat16, {1})});
  EXPECT_EQ(h.data<Float16>()[0].bits, 0x3C00);
}

TEST(Bitcast, ShapeFollowsElementSizes) {
  expect_values<uint32_t>(run1("Bitcast", {f32({1}, {1.0f})}, {{"type", DType::kUInt32}}), {1},
                          {0x3F800000u});
  // Little-endian bytes of 0x01020304.
  expect_values<uint8_t>(run1("Bitcast", {i32({1}, {0x01020304})}, {{"type", DType::kUInt8}}),
                         {1, 4}, {4, 3, 2, 1});
  expect_values<int32_t>(
      run1("Bitcast", {u8({2, 4}, {1, 0, 0, 0, 0, 1, 0, 0})}, {{"type", DType::kInt32}}), {2},
      {1, 256});
  expect_error("Bitcast", {i32({3}, {1, 2, 3})}, {{"type", DType::kInt64}}, "must end in 2");
  expect_error("Bitcast", {i32({1}, {1})}, {{"type", DType::kBool}}, "cannot bitcast");
}

TEST(GatherV2, AlongAxes) {
  const Tensor params = i32({3, 2}, {1, 2, 3, 4, 5, 6});
  expect_values<int32_t>(run1("GatherV2", {params, i32({2}, {2, 0}), i32({}, {0})}), {2, 2},
                         {5, 6, 1, 2});
  expect_values<int32_t>(run1("GatherV2", {params, i64({1}, {1}), i32({}, {-1})}), {3, 1},
                         {2, 4, 6});
  expect_values<int32_t>(run1("GatherV2", {params, i32({2, 2}, {0, 1, 1, 2}), i32({}, {0})}),
                         {2, 2, 2}, {1, 2, 3, 4, 3, 4, 5, 6});
  expect_values<int32_t>(run1("GatherV2", {params, i32({}, {1}), i32({}, {0})}), {2}, {3, 4});
  expect_values<int32_t>(run1("Gather", {params, i32({1}, {2})}), {1, 2}, {5, 6});
  const Tensor s =
      run1("GatherV2", {strings({3}, {"a", "b", "c"}), i32({2}, {2, 2}), i32({}, {0})});
  EXPECT_EQ(s.strings(), (std::vector<std::string>{"c", "c"}));
}

TEST(GatherV2, BatchDims) {
  // params [2,3], indices [[2,0],[1,1]], axis 1, batch_dims 1: out[b][k] = params[b][idx[b][k]].
  expect_values<int32_t>(run1("GatherV2", {kIntMatrix, i32({2, 2}, {2, 0, 1, 1}), i32({}, {1})},
                              {{"batch_dims", int64_t{1}}}),
                         {2, 2}, {3, 1, 5, 5});
}

TEST(GatherV2, OutOfRangeIndexIsAnError) {
  const Tensor params = i32({3, 2}, {1, 2, 3, 4, 5, 6});
  expect_error("GatherV2", {params, i32({2}, {0, 3}), i32({}, {0})}, {},
               "indices[1] = 3 is not in [0, 3)");
  expect_error("GatherV2", {params, i32({1}, {-1}), i32({}, {0})}, {}, "is not in [0, 3)");
  expect_error("GatherV2", {params, i32({1}, {0}), i32({}, {2})}, {}, "out of range");
}

TEST(OneHot, LastAxisAndFirstAxis) {
  const Tensor indices = i32({4}, {0, 2, -1, 1});
  const Tensor depth = i32({}, {3});
  expect_values<int32_t>(run1("OneHot", {indices, depth, i32({}, {5}), i32({}, {0})}), {4, 3},
                         {5, 0, 0, 0, 0, 5, 0, 0, 0, 0, 5, 0});
  expect_values<float>(
      run1("OneHot", {indices, depth, f32({}, {1}), f32({}, {-1})}, {{"axis", int64_t{0}}}), {3, 4},
      {1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1});
  expect_values<float>(run1("OneHot", {i64({2, 1}, {1, 7}), depth, f32({}, {1}), f32({}, {0})}),
                       {2, 1, 3}, {0, 1, 0, 0, 0, 0});
  expect_error("OneHot", {indices, i32({}, {-1}), f32({}, {1}), f32({}, {0})}, {}, "depth");
  expect_error("OneHot", {indices, depth, f32({}, {1}), f32({}, {0})}, {{"axis", int64_t{2}}},
               "Expected axis");
}

}  // namespace
}  // namespace hubimg::ops
