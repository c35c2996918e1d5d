// Finite-difference checks of the array family's gradient rules (src/ops/grad_array.cc) and of
// the helper kernels they use.
#include "ops/grad_check.h"
#include "ops/op_test_util.h"

namespace hubimg::ops::testing {
namespace {

HUBIMG_GRAD_CASES(ArrayShape) {
  std::vector<GradCase> cases;
  cases.push_back({"Reshape", {}, {uniform({2, 3}, -1, 1, 1), ints32({2}, {3, -1})}});
  cases.push_back({"Reshape", {}, {uniform({1, 2, 2, 3}, -1, 1, 2), ints64({2}, {1, 12})}});
  cases.push_back({"Squeeze", {}, {uniform({3, 1, 2, 1}, -1, 1, 3)}});
  cases.push_back(
      {"Squeeze", {{"squeeze_dims", std::vector<int64_t>{-1}}}, {uniform({3, 1, 2, 1}, -1, 1, 4)}});
  cases.push_back({"ExpandDims", {}, {uniform({3, 2}, -1, 1, 5), scalar_i32(-1)}});
  cases.push_back({"ExpandDims", {}, {uniform({1, 2}, -1, 1, 6), scalar_i32(0)}});
  cases.push_back({"Transpose", {}, {uniform({2, 3, 4}, -1, 1, 7), ints32({3}, {2, 0, 1})}});
  cases.push_back({"Transpose", {}, {uniform({3, 2, 2, 4}, -1, 1, 8), ints64({4}, {0, 3, 1, 2})}});
  cases.push_back({"BroadcastTo", {}, {uniform({3, 1}, -1, 1, 9), ints32({3}, {2, 3, 4})}});
  cases.push_back({"BroadcastTo", {}, {uniform({}, -1, 1, 10), ints32({2}, {2, 3})}});
  cases.push_back(
      {"BroadcastTo", {}, {uniform({1, 1, 1, 3}, -1, 1, 11), ints32({4}, {3, 2, 2, 3})}});
  cases.push_back({"Tile", {}, {uniform({2, 3}, -1, 1, 12), ints32({2}, {2, 1})}});
  cases.push_back({"Tile", {}, {uniform({1, 2, 1}, -1, 1, 13), ints64({3}, {3, 2, 2})}});
  cases.push_back({"Fill", {}, {ints32({2}, {2, 3}), uniform({}, -1, 1, 14)}});
  return cases;
}

HUBIMG_GRAD_CASES(ArrayPieces) {
  std::vector<GradCase> cases;
  cases.push_back({"ConcatV2",
                   {{"N", int64_t{2}}},
                   {uniform({2, 3}, -1, 1, 1), uniform({2, 2}, -1, 1, 2), scalar_i32(1)}});
  cases.push_back({"ConcatV2",
                   {{"N", int64_t{3}}},
                   {uniform({1, 2, 2, 2}, -1, 1, 3), uniform({1, 2, 2, 1}, -1, 1, 4),
                    uniform({1, 2, 2, 3}, -1, 1, 5), scalar_i32(-1)}});
  cases.push_back({"ConcatV2",
                   {{"N", int64_t{2}}},
                   {uniform({3, 2}, -1, 1, 6), uniform({1, 2}, -1, 1, 7), ints64({}, {0})}});
  cases.push_back({"Pack",
                   {{"N", int64_t{3}}, {"axis", int64_t{0}}},
                   {uniform({2}, -1, 1, 8), uniform({2}, -1, 1, 9), uniform({2}, -1, 1, 10)}});
  cases.push_back({"Pack",
                   {{"N", int64_t{2}}, {"axis", int64_t{-1}}},
                   {uniform({3, 2}, -1, 1, 11), uniform({3, 2}, -1, 1, 12)}});
  cases.push_back(
      {"Unpack", {{"num", int64_t{3}}, {"axis", int64_t{0}}}, {uniform({3, 2}, -1, 1, 13)}});
  cases.push_back(
      {"Unpack", {{"num", int64_t{2}}, {"axis", int64_t{-1}}}, {uniform({1, 3, 2}, -1, 1, 14)}});
  cases.push_back(
      {"Split", {{"num_split", int64_t{2}}}, {scalar_i32(1), uniform({3, 4}, -1, 1, 15)}});
  cases.push_back(
      {"Split", {{"num_split", int64_t{3}}}, {scalar_i32(-1), uniform({1, 2, 6}, -1, 1, 16)}});
  cases.push_back({"SplitV",
                   {{"num_split", int64_t{3}}},
                   {uniform({3, 6}, -1, 1, 17), ints32({3}, {1, 2, 3}), scalar_i32(1)}});
  cases.push_back({"SplitV",
                   {{"num_split", int64_t{2}}},
                   {uniform({4, 2}, -1, 1, 18), ints64({2}, {3, -1}), scalar_i32(0)}});
  cases.push_back(
      {"Slice", {}, {uniform({3, 4}, -1, 1, 19), ints32({2}, {1, 1}), ints32({2}, {2, -1})}});
  cases.push_back(
      {"Slice",
       {},
       {uniform({1, 3, 3, 2}, -1, 1, 20), ints64({4}, {0, 1, 0, 1}), ints64({4}, {1, 2, 3, 1})}});
  cases.push_back({"Pad", {}, {uniform({2, 3}, -1, 1, 21), ints32({2, 2}, {1, 0, 2, 1})}});
  cases.push_back(
      {"Pad", {}, {uniform({1, 2, 2, 1}, -1, 1, 22), ints64({4, 2}, {0, 0, 1, 1, 1, 1, 0, 0})}});
  cases.push_back(
      {"PadV2",
       {},
       {uniform({2, 2}, -1, 1, 23), ints32({2, 2}, {1, 1, 0, 2}), uniform({}, -1, 1, 24)}});
  cases.back().differentiate = {0};
  return cases;
}

HUBIMG_GRAD_CASES(ArrayMoreRules) {
  std::vector<GradCase> cases;
  // Concat (v1): the axis comes first.
  cases.push_back({"Concat",
                   {{"N", int64_t{2}}},
                   {scalar_i32(1), uniform({2, 3}, -1, 1, 1), uniform({2, 2}, -1, 1, 2)}});
  cases.push_back({"Concat",
                   {{"N", int64_t{3}}},
                   {scalar_i32(-1), uniform({1, 2, 2, 2}, -1, 1, 3),
                    uniform({1, 2, 2, 1}, -1, 1, 4), uniform({1, 2, 2, 3}, -1, 1, 5)}});
  cases.push_back({"ReverseV2", {}, {uniform({2, 3, 4}, -1, 1, 6), ints32({1}, {1})}});
  cases.push_back({"ReverseV2", {}, {uniform({1, 3, 4, 2}, -1, 1, 7), ints64({2}, {2, -1})}});
  cases.push_back(
      {"Roll", {}, {uniform({2, 5, 3}, -1, 1, 30), ints32({2}, {2, -1}), ints32({2}, {1, 2})}});
  cases.push_back(
      {"Roll", {}, {uniform({1, 4, 4, 2}, -1, 1, 31), ints64({}, {-3}), ints64({}, {1})}});
  for (const char* mode : {"REFLECT", "SYMMETRIC"}) {
    cases.push_back({"MirrorPad",
                     {{"mode", std::string(mode)}},
                     {uniform({3, 4}, -1, 1, 8), ints32({2, 2}, {1, 2, 2, 0})},
                     {},
                     {},
                     {"T"},
                     mode});
    cases.push_back({"MirrorPad",
                     {{"mode", std::string(mode)}},
                     {uniform({1, 3, 3, 2}, -1, 1, 9), ints64({4, 2}, {0, 0, 2, 1, 1, 2, 0, 0})},
                     {},
                     {},
                     {"T"},
                     std::string(mode) + " NHWC"});
  }
  // Repeated indices must add up.
  cases.push_back(
      {"GatherV2", {}, {uniform({4, 3}, -1, 1, 10), ints32({5}, {3, 0, 3, 1, 3}), scalar_i32(0)}});
  cases.push_back({"GatherV2",
                   {},
                   {uniform({2, 5, 3}, -1, 1, 11), ints64({2, 2}, {4, 1, 1, 0}), scalar_i32(-2)}});
  cases.push_back(
      {"GatherV2",
       {{"batch_dims", int64_t{1}}},
       {uniform({2, 4, 3}, -1, 1, 12), ints32({2, 3}, {0, 3, 3, 2, 1, 2}), scalar_i32(1)},
       {},
       {},
       {"T"},
       "batch_dims 1"});
  cases.push_back({"Gather", {}, {uniform({3, 2}, -1, 1, 13), ints32({4}, {2, 2, 0, 1})}});
  return cases;
}

// block_shape and paddings/crops are fed as they are (never differentiated); the padded
// positions of SpaceToBatchND and the cropped ones of BatchToSpaceND carry no gradient. The
// depth ops follow.
HUBIMG_GRAD_CASES(ArraySpaceBatch) {
  std::vector<GradCase> cases;
  auto block_case = [&](const char* op, std::vector<Tensor> inputs, const char* label) {
    cases.push_back({op, {}, std::move(inputs), {}, {}, {"T"}, label});
  };
  block_case("SpaceToBatchND",
             {uniform({2, 5, 6, 3}, -1, 1, 1), ints32({2}, {2, 2}), ints32({2, 2}, {2, 3, 2, 2})},
             "dilated-convolution SAME paddings");
  block_case("SpaceToBatchND",
             {uniform({3, 6, 2}, -1, 1, 2), ints64({1}, {3}), ints64({1, 2}, {1, 2})},
             "M=1, int64");
  block_case(
      "SpaceToBatchND",
      {uniform({1, 3, 4, 2, 2}, -1, 1, 3), ints32({2}, {3, 2}), ints64({2, 2}, {0, 0, 1, 1})},
      "trailing dims");
  block_case("BatchToSpaceND",
             {uniform({8, 5, 6, 3}, -1, 1, 4), ints32({2}, {2, 2}), ints32({2, 2}, {0, 1, 0, 2})},
             "dilated-convolution crops");
  block_case("BatchToSpaceND",
             {uniform({6, 3, 2}, -1, 1, 5), ints64({1}, {3}), ints64({1, 2}, {2, 1})},
             "M=1, int64");
  block_case(
      "BatchToSpaceND",
      {uniform({12, 2, 3, 2, 2}, -1, 1, 6), ints32({2}, {3, 2}), ints64({2, 2}, {1, 1, 0, 1})},
      "trailing dims");
  cases.push_back(
      {"SpaceToDepth", {{"block_size", int64_t{2}}}, {uniform({2, 4, 6, 3}, -1, 1, 7)}});
  cases.push_back(
      {"SpaceToDepth", {{"block_size", int64_t{3}}}, {uniform({1, 3, 6, 2}, -1, 1, 8)}});
  cases.push_back(
      {"DepthToSpace", {{"block_size", int64_t{2}}}, {uniform({2, 2, 3, 8}, -1, 1, 9)}});
  cases.push_back(
      {"DepthToSpace", {{"block_size", int64_t{3}}}, {uniform({1, 2, 1, 18}, -1, 1, 10)}});
  return cases;
}

GradCase strided(Dims shape, std::vector<int32_t> begin, std::vector<int32_t> end,
                 std::vector<int32_t> strides, AttrMap masks, uint32_t seed) {
  const int64_t n = static_cast<int64_t>(begin.size());
  return {"StridedSlice",
          std::move(masks),
          {uniform(std::move(shape), -1, 1, seed), ints32({n}, begin), ints32({n}, end),
           ints32({n}, strides)}};
}

HUBIMG_GRAD_CASES(ArrayStridedSlice) {
  std::vector<GradCase> cases;
  cases.push_back(strided({4, 3}, {1, 0}, {3, 3}, {1, 1}, {}, 1));
  cases.push_back(strided({5, 4}, {0, 3}, {5, 0}, {2, -1}, {}, 2));  // negative
  cases.push_back(strided({3, 4}, {1, 0}, {2, 0}, {1, 1},
                          {{"shrink_axis_mask", int64_t{1}}, {"end_mask", int64_t{2}}}, 3));
  cases.push_back(strided({2, 3, 4}, {0, 1}, {0, 0}, {1, 2},
                          {{"ellipsis_mask", int64_t{1}}, {"end_mask", int64_t{2}}},
                          4));  // [..., 1::2]
  cases.push_back(
      strided({3, 2}, {0, 0, 0}, {0, 0, 0}, {1, 1, 1},
              {{"new_axis_mask", int64_t{2}}, {"begin_mask", int64_t{5}}, {"end_mask", int64_t{5}}},
              5));  // [:, None, :]
  cases.push_back(strided({1, 4, 4, 2}, {0, -3, 1, 0}, {1, -1, 4, 2}, {1, 1, 2, 1}, {}, 6));
  return cases;
}

TEST(StridedSliceGrad, ScattersIntoZerosWhereStridedSliceReads) {
  // x[1:4:2, ::-1] of a [5, 2]: rows 1 and 3, columns reversed.
  AttrMap masks = {{"begin_mask", int64_t{2}}, {"end_mask", int64_t{2}}};
  Tensor g = run1("StridedSliceGrad",
                  {i32({2}, {5, 2}), i32({2}, {1, 0}), i32({2}, {4, 0}), i32({2}, {2, -1}),
                   f32({2, 2}, {1, 2, 3, 4})},
                  masks);
  expect_values<float>(g, {5, 2}, {0, 0, 2, 1, 0, 0, 4, 3, 0, 0});
  expect_error("StridedSliceGrad",
               {i32({2}, {5, 2}), i32({2}, {1, 0}), i32({2}, {4, 0}), i32({2}, {2, -1}),
                f32({3}, {1, 2, 3})},
               masks, "does not match");
}

TEST(InvertPermutation, InvertsAndRejectsNonPermutations) {
  expect_values<int32_t>(run1("InvertPermutation", {i32({4}, {2, 0, 3, 1})}), {4}, {1, 3, 0, 2});
  expect_values<int64_t>(run1("InvertPermutation", {i64({1}, {0})}), {1}, {0});
  expect_error("InvertPermutation", {i32({3}, {0, 0, 1})}, {}, "not a permutation");
  expect_error("InvertPermutation", {i32({2}, {0, 2})}, {}, "not a permutation");
}

TEST(L2Loss, IsHalfTheSumOfSquares) {
  expect_values<float>(run1("L2Loss", {f32({3}, {1, -2, 3})}), {}, {7.0f});
  expect_values<double>(run1("L2Loss", {f64({0}, {})}), {}, {0.0});
}

}  // namespace
}  // namespace hubimg::ops::testing
