// SpaceToBatchND, BatchToSpaceND, SpaceToDepth and DepthToSpace (src/ops/space_batch_ops.cc).
// Expected values come from the worked examples of TensorFlow's op documentation and
// spacetobatch_op_test.py, and from TF's documented decompositions (SpaceToBatchND: pad,
// reshape, transpose, reshape, the inverse ending in a crop; the depth ops: reshape to 6-D,
// transpose, reshape) computed here with explicit loops over every element, independently of
// the kernels' index formulas.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ops/array_util.h"
#include "ops/op_registry.h"
#include "ops/op_test_util.h"

namespace hubimg::ops {
namespace {

using namespace ::hubimg::ops::testing;  // NOLINT(google-build-using-namespace)

// ---------------------------------------------------------------------------------------------
// The reference: TensorFlow's decomposition on a plain array of doubles.

struct Array {
  Dims shape;
  std::vector<double> values;
};

int64_t count(const Dims& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// The multi-index of flat position `flat` in a row-major array of `shape`.
std::vector<int64_t> unflatten(int64_t flat, const Dims& shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t k = shape.size(); k-- > 0;) {
    index[k] = flat % shape[k];
    flat /= shape[k];
  }
  return index;
}

int64_t flatten(const std::vector<int64_t>& index, const Dims& shape) {
  int64_t flat = 0;
  for (size_t k = 0; k < shape.size(); ++k) flat = flat * shape[k] + index[k];
  return flat;
}

// Zero padding: pads[k] = {before, after} for every axis.
Array pad(const Array& in, const std::vector<std::pair<int64_t, int64_t>>& pads) {
  Array out;
  for (size_t k = 0; k < in.shape.size(); ++k) {
    out.shape.push_back(pads[k].first + in.shape[k] + pads[k].second);
  }
  out.values.assign(static_cast<size_t>(count(out.shape)), 0.0);
  for (int64_t i = 0; i < count(in.shape); ++i) {
    std::vector<int64_t> index = unflatten(i, in.shape);
    for (size_t k = 0; k < index.size(); ++k) index[k] += pads[k].first;
    out.values[static_cast<size_t>(flatten(index, out.shape))] = in.values[static_cast<size_t>(i)];
  }
  return out;
}

// out.shape[k] = in.shape[perm[k]], out[i] = in[j] with j[perm[k]] = i[k].
Array transpose(const Array& in, const std::vector<size_t>& perm) {
  Array out;
  for (size_t p : perm) out.shape.push_back(in.shape[p]);
  out.values.resize(in.values.size());
  for (int64_t i = 0; i < count(out.shape); ++i) {
    const std::vector<int64_t> index = unflatten(i, out.shape);
    std::vector<int64_t> source(index.size());
    for (size_t k = 0; k < perm.size(); ++k) source[perm[k]] = index[k];
    out.values[static_cast<size_t>(i)] = in.values[static_cast<size_t>(flatten(source, in.shape))];
  }
  return out;
}

Array reshape(Array a, Dims shape) {
  EXPECT_EQ(count(shape), count(a.shape));
  a.shape = std::move(shape);
  return a;
}

// Keeps [start, size - end) of every axis.
Array crop(const Array& in, const std::vector<std::pair<int64_t, int64_t>>& crops) {
  Array out;
  for (size_t k = 0; k < in.shape.size(); ++k) {
    out.shape.push_back(in.shape[k] - crops[k].first - crops[k].second);
  }
  for (int64_t i = 0; i < count(out.shape); ++i) {
    std::vector<int64_t> index = unflatten(i, out.shape);
    for (size_t k = 0; k < index.size(); ++k) index[k] += crops[k].first;
    out.values.push_back(in.values[static_cast<size_t>(flatten(index, in.shape))]);
  }
  return out;
}

using Amounts = std::vector<std::pair<int64_t, int64_t>>;

// tf.space_to_batch_nd's documentation, steps 1-4.
Array space_to_batch_reference(const Array& x, const std::vector<int64_t>& block,
                               const Amounts& paddings) {
  const size_t m = block.size();
  const size_t rest = x.shape.size() - 1 - m;
  Amounts all_pads = {{0, 0}};
  all_pads.insert(all_pads.end(), paddings.begin(), paddings.end());
  all_pads.resize(x.shape.size(), {0, 0});
  const Array padded = pad(x, all_pads);
  Dims split = {x.shape[0]};  // [batch, p1/b1, b1, ..., pM/bM, bM] + remaining
  Dims out_shape = {x.shape[0]};
  for (size_t i = 0; i < m; ++i) {
    split.push_back(padded.shape[i + 1] / block[i]);
    split.push_back(block[i]);
    out_shape[0] *= block[i];
    out_shape.push_back(padded.shape[i + 1] / block[i]);
  }
  std::vector<size_t> perm;  // block dims, batch, grid dims, remaining
  for (size_t i = 0; i < m; ++i) perm.push_back(2 * i + 2);
  perm.push_back(0);
  for (size_t i = 0; i < m; ++i) perm.push_back(2 * i + 1);
  for (size_t r = 0; r < rest; ++r) {
    split.push_back(x.shape[1 + m + r]);
    out_shape.push_back(x.shape[1 + m + r]);
    perm.push_back(1 + 2 * m + r);
  }
  return reshape(transpose(reshape(padded, split), perm), out_shape);
}

// tf.batch_to_space_nd's documentation, steps 1-4.
Array batch_to_space_reference(const Array& x, const std::vector<int64_t>& block,
                               const Amounts& crops) {
  const size_t m = block.size();
  const size_t rank = x.shape.size();
  Dims split(block.begin(), block.end());  // block + [batch / prod(block)] + input_shape[1:]
  split.push_back(x.shape[0] / count(block));
  split.insert(split.end(), x.shape.begin() + 1, x.shape.end());
  std::vector<size_t> perm = {m};  // batch, (grid_i, block_i) pairs, remaining
  Dims joined = {x.shape[0] / count(block)};
  for (size_t i = 0; i < m; ++i) {
    perm.push_back(m + 1 + i);
    perm.push_back(i);
    joined.push_back(x.shape[i + 1] * block[i]);
  }
  for (size_t k = m + 1; k < rank; ++k) {
    perm.push_back(m + k);
    joined.push_back(x.shape[k]);
  }
  Amounts all_crops = {{0, 0}};
  all_crops.insert(all_crops.end(), crops.begin(), crops.end());
  all_crops.resize(rank, {0, 0});
  return crop(reshape(transpose(reshape(x, split), perm), joined), all_crops);
}

// ---------------------------------------------------------------------------------------------
// Running the kernels.

Tensor block_tensor(DType dtype, const std::vector<int64_t>& block) {
  return int_tensor(dtype, {static_cast<int64_t>(block.size())}, block);
}
Tensor amounts_tensor(DType dtype, const Amounts& amounts) {
  std::vector<int64_t> flat;
  for (const auto& [start, end] : amounts) {
    flat.push_back(start);
    flat.push_back(end);
  }
  return int_tensor(dtype, {static_cast<int64_t>(amounts.size()), 2}, flat);
}

// 1, 2, 3, ... (no element is 0, so padding is told apart from data; below 250 for uint8).
template <typename T>
Tensor counting(const Dims& shape) {
  Tensor t(dtype_of<T>(), shape);
  for (int64_t i = 0; i < t.num_elements(); ++i)
    t.mutable_data<T>()[i] = static_cast<T>(i % 249 + 1);
  return t;
}

template <typename T>
Array as_array(const Tensor& t) {
  Array a{t.shape(), {}};
  for (int64_t i = 0; i < t.num_elements(); ++i)
    a.values.push_back(static_cast<double>(t.data<T>()[i]));
  return a;
}

template <typename T>
void expect_equals_array(const Tensor& got, const Array& want) {
  ASSERT_EQ(got.dtype(), dtype_of<T>());
  ASSERT_EQ(got.shape(), want.shape);
  for (int64_t i = 0; i < got.num_elements(); ++i) {
    ASSERT_EQ(static_cast<double>(got.data<T>()[i]), want.values[static_cast<size_t>(i)])
        << "element " << i;
  }
}

struct Case {
  Dims shape;  // SpaceToBatchND's input
  std::vector<int64_t> block;
  Amounts paddings;
};

// Both ops against the reference (BatchToSpaceND taking SpaceToBatchND's reference output and
// the paddings as crops, so it must give the input back), with every index dtype combination.
template <typename T>
void check_against_reference(const Case& c) {
  SCOPED_TRACE(dims_to_string(c.shape) + " block " + dims_to_string(c.block) + " dtype " +
               dtype_name(dtype_of<T>()));
  const Tensor x = counting<T>(c.shape);
  const Array want = space_to_batch_reference(as_array<T>(x), c.block, c.paddings);
  for (DType block_dtype : {DType::kInt32, DType::kInt64}) {
    for (DType amounts_dtype : {DType::kInt32, DType::kInt64}) {
      const Tensor block = block_tensor(block_dtype, c.block);
      const Tensor amounts = amounts_tensor(amounts_dtype, c.paddings);
      const Tensor batched = run1("SpaceToBatchND", {x, block, amounts});
      expect_equals_array<T>(batched, want);
      const Array back = batch_to_space_reference(want, c.block, c.paddings);
      expect_equals_array<T>(run1("BatchToSpaceND", {batched, block, amounts}), back);
      expect_equals_array<T>(run1("BatchToSpaceND", {batched, block, amounts}), as_array<T>(x));
    }
  }
}

const std::vector<Case>& reference_cases() {
  static const std::vector<Case> cases = {
      {{1, 4, 4, 1}, {2, 2}, {{0, 0}, {0, 0}}},
      {{3, 5, 6, 2}, {2, 3}, {{1, 2}, {0, 3}}},   // batch > 1, uneven paddings
      {{2, 9, 10, 3}, {2, 2}, {{2, 3}, {2, 2}}},  // tf.nn.convolution's SAME, rate 2, 3x3
      {{2, 7, 3}, {3}, {{1, 1}}},                 // M = 1, one remaining dim
      {{2, 6, 5, 2, 3}, {2}, {{0, 0}}},           // M = 1, three remaining dims
      {{1, 4, 6}, {2, 3}, {{0, 0}, {0, 0}}},      // no remaining dims
      {{4, 2, 3, 2}, {1, 3}, {{0, 0}, {1, 2}}},   // block 1 on a spatial dim
      // From spacetobatch_op_test.py's testDirect.
      {{3, 1, 2, 0}, {3}, {{0, 2}}},
      {{3, 0, 2, 5}, {3}, {{0, 0}}},
      {{3, 0, 2, 5}, {3}, {{1, 2}}},
      {{3, 3, 4, 5, 2}, {3, 4, 2}, {{1, 2}, {0, 0}, {3, 0}}},
      {{3, 3, 4, 5, 2}, {3, 4, 2, 2}, {{1, 2}, {0, 0}, {3, 0}, {0, 0}}},
      {{3, 2, 2, 3, 4, 5, 2, 5},
       {1, 1, 3, 4, 2, 2},
       {{0, 0}, {0, 0}, {1, 2}, {0, 0}, {3, 0}, {0, 0}}},
  };
  return cases;
}

TEST(SpaceToBatchND, MatchesTheDocumentedDecompositionInEveryDtype) {
  for (const Case& c : reference_cases()) {
    check_against_reference<float>(c);
    check_against_reference<double>(c);
    check_against_reference<int32_t>(c);
    check_against_reference<int64_t>(c);
    check_against_reference<uint8_t>(c);
  }
  // The narrower and rarer real types move the same way.
  check_against_reference<int8_t>(reference_cases()[1]);
  check_against_reference<uint16_t>(reference_cases()[1]);
  check_against_reference<int16_t>(reference_cases()[2]);
}

const Tensor kBlock22 = i32({2}, {2, 2});
const Tensor kNoPadding22 = i32({2, 2}, {0, 0, 0, 0});

// The four examples of SpaceToBatchND's and BatchToSpaceND's documentation (each op's example k
// is the other's inverse).
TEST(SpaceToBatchND, DocumentationExamples) {
  // (1)
  const Tensor x1 = f32({1, 2, 2, 1}, {1, 2, 3, 4});
  const Tensor y1 = f32({4, 1, 1, 1}, {1, 2, 3, 4});
  expect_values<float>(run1("SpaceToBatchND", {x1, kBlock22, kNoPadding22}), {4, 1, 1, 1},
                       {1, 2, 3, 4});
  expect_values<float>(run1("BatchToSpaceND", {y1, kBlock22, kNoPadding22}), {1, 2, 2, 1},
                       {1, 2, 3, 4});
  // (2)
  const std::vector<float> twelve = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  expect_values<float>(run1("SpaceToBatchND", {f32({1, 2, 2, 3}, twelve), kBlock22, kNoPadding22}),
                       {4, 1, 1, 3}, twelve);
  expect_values<float>(run1("BatchToSpaceND", {f32({4, 1, 1, 3}, twelve), kBlock22, kNoPadding22}),
                       {1, 2, 2, 3}, twelve);
  // (3)
  std::vector<int32_t> sixteen;
  for (int v = 1; v <= 16; ++v) sixteen.push_back(v);
  const std::vector<int32_t> blocked3 = {1, 3, 9, 11, 2, 4, 10, 12, 5, 7, 13, 15, 6, 8, 14, 16};
  expect_values<int32_t>(
      run1("SpaceToBatchND", {i32({1, 4, 4, 1}, sixteen), kBlock22, kNoPadding22}), {4, 2, 2, 1},
      blocked3);
  expect_values<int32_t>(
      run1("BatchToSpaceND", {i32({4, 2, 2, 1}, blocked3), kBlock22, kNoPadding22}), {1, 4, 4, 1},
      sixteen);
  // (4) batch 2, paddings [[0, 0], [2, 0]]
  const std::vector<int32_t> blocked4 = {0, 1, 3, 0, 9,  11, 0, 2, 4, 0, 10, 12,
                                         0, 5, 7, 0, 13, 15, 0, 6, 8, 0, 14, 16};
  const Tensor pad4 = i64({2, 2}, {0, 0, 2, 0});
  expect_values<int32_t>(run1("SpaceToBatchND", {i32({2, 2, 4, 1}, sixteen), kBlock22, pad4}),
                         {8, 1, 3, 1}, blocked4);
  expect_values<int32_t>(run1("BatchToSpaceND", {i32({8, 1, 3, 1}, blocked4), kBlock22, pad4}),
                         {2, 2, 4, 1}, sixteen);
}

// spacetobatch_op_test.py's hand-written pairs.
TEST(SpaceToBatchND, TensorFlowTestCases) {
  // testOneBlockDimZeroRemainingDims
  const Tensor block2 = i32({1}, {2});
  const Tensor pad10 = i32({1, 2}, {1, 0});
  expect_values<float>(run1("SpaceToBatchND", {f32({2, 3}, {1, 2, 3, 4, 5, 6}), block2, pad10}),
                       {4, 2}, {0, 2, 0, 5, 1, 3, 4, 6});
  expect_values<float>(
      run1("BatchToSpaceND", {f32({4, 2}, {0, 2, 0, 5, 1, 3, 4, 6}), block2, pad10}), {2, 3},
      {1, 2, 3, 4, 5, 6});
  // testOneBlockDimOneRemainingDim
  const std::vector<float> in = {1, 11, 2, 21, 3, 31, 4, 41, 5, 51, 6, 61};
  const std::vector<float> out = {0, 0, 2, 21, 0, 0, 5, 51, 1, 11, 3, 31, 4, 41, 6, 61};
  expect_values<float>(run1("SpaceToBatchND", {f32({2, 3, 2}, in), block2, pad10}), {4, 2, 2}, out);
  expect_values<float>(run1("BatchToSpaceND", {f32({4, 2, 2}, out), block2, pad10}), {2, 3, 2}, in);
  // testSmallInput2x2Pad1x0 (SpaceToBatch with block_size 3, written as the ND op)
  const Tensor block33 = i32({2}, {3, 3});
  const Tensor pad1010 = i32({2, 2}, {1, 0, 1, 0});
  expect_values<float>(run1("SpaceToBatchND", {f32({1, 2, 2, 1}, {1, 2, 3, 4}), block33, pad1010}),
                       {9, 1, 1, 1}, {0, 0, 0, 0, 1, 2, 0, 3, 4});
  expect_values<float>(
      run1("BatchToSpaceND", {f32({9, 1, 1, 1}, {0, 0, 0, 0, 1, 2, 0, 3, 4}), block33, pad1010}),
      {1, 2, 2, 1}, {1, 2, 3, 4});
}

// M = 0 (block_shape []): both ops return the input (testZeroBlockDims* in TensorFlow).
TEST(SpaceToBatchND, NoBlockDimsLeaveTheInputAsItIs) {
  const Tensor none = i32({0}, {});
  const Tensor no_amounts = i32({0, 2}, {});
  expect_values<float>(run1("SpaceToBatchND", {f32({2}, {1, 2}), none, no_amounts}), {2}, {1, 2});
  expect_values<float>(run1("BatchToSpaceND", {f32({2, 2}, {1, 2, 3, 4}), none, no_amounts}),
                       {2, 2}, {1, 2, 3, 4});
  expect_values<float>(
      run1("SpaceToBatchND", {f32({2, 2}, {1, 2, 3, 4}), i64({1}, {1}), i64({1, 2}, {0, 0})}),
      {2, 2}, {1, 2, 3, 4});
}

// Every violation of the shape contract is an error naming the node and op.
TEST(SpaceToBatchND, BadInputsAreErrors) {
  const Tensor x = f32({1, 4, 4, 1}, std::vector<float>(16, 1.0f));
  for (const char* op : {"SpaceToBatchND", "BatchToSpaceND"}) {
    SCOPED_TRACE(op);
    const std::string amounts = std::string(op) == "SpaceToBatchND" ? "paddings" : "crops";
    expect_error(op, {x, i32({1, 2}, {2, 2}), kNoPadding22}, {}, "block_shape rank should be 1");
    expect_error(op, {x, i32({}, {2}), kNoPadding22}, {}, "block_shape rank should be 1");
    expect_error(op, {x, f32({2}, {2, 2}), kNoPadding22}, {}, "block_shape must be int32 or int64");
    expect_error(op, {x, kBlock22, f32({2, 2}, {0, 0, 0, 0})}, {},
                 amounts + " must be int32 or int64");
    expect_error(op, {f32({4, 4}, std::vector<float>(16, 1.0f)), kBlock22, kNoPadding22}, {},
                 "input rank should be >= 3 instead of 2");
    expect_error(op, {f32({}, {1}), i32({0}, {}), i32({0, 2}, {})}, {},
                 "input rank should be >= 1 instead of 0");
    expect_error(op, {x, kBlock22, i32({2}, {0, 0})}, {}, amounts + " should have shape [2, 2]");
    expect_error(op, {x, kBlock22, i32({1, 2}, {0, 0})}, {}, amounts + " should have shape [2, 2]");
    expect_error(op, {x, kBlock22, i32({2, 3}, {0, 0, 0, 0, 0, 0})}, {},
                 amounts + " should have shape [2, 2]");
    expect_error(op, {x, kBlock22, i32({2, 2}, {0, 0, -1, 0})}, {},
                 amounts + " must be non-negative, got [-1, 0] for spatial dim 1");
    expect_error(op, {x, i32({2}, {2, 0}), kNoPadding22}, {},
                 "All values in block_shape must be positive, got value 0 at index 1");
    expect_error(op, {x, i64({2}, {-2, 2}), kNoPadding22}, {},
                 "All values in block_shape must be positive, got value -2 at index 0");
    expect_error(op, {x, kBlock22}, {}, "expects 3 inputs, got 2");
    // bool and string are not real number types (TensorFlow registers neither).
    expect_error(op, {Tensor(DType::kBool, {1, 2, 2, 1}), kBlock22, kNoPadding22}, {},
                 "input dtype bool is not supported");
    expect_error(op,
                 {Tensor::from_strings({1, 2, 2, 1}, {"a", "b", "c", "d"}), kBlock22, kNoPadding22},
                 {}, "input dtype string is not supported");
    // More than 4 block dims that cannot be folded into the batch or depth: TensorFlow's limit.
    expect_error(op,
                 {f32({32, 2, 2, 2, 2, 2}, std::vector<float>(32 * 32, 1.0f)),
                  i32({5}, {2, 2, 2, 2, 2}), i32({5, 2}, std::vector<int32_t>(10, 0))},
                 {}, "Maximum number of non-combined block dimensions is 5");
  }
  // SpaceToBatchND: the padded size must be divisible by the block.
  expect_error("SpaceToBatchND", {x, i32({2}, {2, 3}), kNoPadding22}, {},
               "padded_shape[1]=4 is not divisible by block_shape[1]=3");
  expect_error("SpaceToBatchND", {x, kBlock22, i32({2, 2}, {1, 0, 0, 0})}, {},
               "padded_shape[0]=5 is not divisible by block_shape[0]=2");
  // BatchToSpaceND: the batch must be divisible by prod(block_shape), and crops may not exceed
  // the size.
  expect_error("BatchToSpaceND", {f32({3, 1, 1, 1}, {1, 2, 3}), kBlock22, kNoPadding22}, {},
               "Input batch dimension (3) is not divisible by product of block sizes (4)");
  expect_error("BatchToSpaceND",
               {f32({4, 1, 1, 1}, {1, 2, 3, 4}), kBlock22, i32({2, 2}, {2, 1, 0, 0})}, {},
               "crops[0]=[2, 1] exceed the size 2 of spatial dim 0 (1 * block_shape[0]=2)");
  expect_error("BatchToSpaceND",
               {f32({4, 1, 1, 1}, {1, 2, 3, 4}), kBlock22, i32({2, 2}, {0, 0, 3, 0})}, {},
               "crops[1]=[3, 0] exceed the size 2 of spatial dim 1");
  // Exactly the size is fine: an empty output.
  EXPECT_EQ(
      run1("BatchToSpaceND", {f32({4, 1, 1, 1}, {1, 2, 3, 4}), kBlock22, i32({2, 2}, {1, 1, 0, 0})})
          .shape(),
      (Dims{1, 0, 2, 1}));
}

// Sizes that overflow int64 or the tensor budget are errors, not crashes or huge allocations.
TEST(SpaceToBatchND, HugeSizesAreErrors) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const Tensor x = f32({1, 1, 1, 1}, {1});
  expect_error("SpaceToBatchND", {x, i64({2}, {int64_t{1} << 62, 4}), kNoPadding22}, {},
               "the product of block_shape");
  expect_error("SpaceToBatchND", {x, i64({2}, {1, 1}), i64({2, 2}, {kMax, 1, 0, 0})}, {},
               "overflow");
  // A 2^31 x 2^31 block: 2^62 output rows of one element each, far over the tensor budget.
  expect_error("SpaceToBatchND",
               {x, i64({2}, {int64_t{1} << 31, int64_t{1} << 31}),
                i64({2, 2}, {0, (int64_t{1} << 31) - 1, 0, (int64_t{1} << 31) - 1})},
               {}, "too many elements");
  expect_error("BatchToSpaceND", {x, i64({2}, {1, 1}), i64({2, 2}, {kMax, kMax, 0, 0})}, {},
               "exceed the size 1 of spatial dim 0");
  expect_error("BatchToSpaceND",
               {f32({4, 1, 1, 1}, {1, 2, 3, 4}), i64({2}, {kMax / 2, 2}), kNoPadding22}, {},
               "not divisible");
}

// ---------------------------------------------------------------------------------------------
// SpaceToDepth, DepthToSpace.

// DepthToSpace's documentation: [n, h, w, bs * bs * c] read as [n, h, w, bY, bX, c] and
// transposed to [n, h, bY, w, bX, c]. SpaceToDepth is the same transpose read backwards.
Array depth_to_space_reference(const Array& x, int64_t bs) {
  const Dims& s = x.shape;
  const int64_t c = s[3] / (bs * bs);
  const Array wide = transpose(reshape(x, {s[0], s[1], s[2], bs, bs, c}), {0, 1, 3, 2, 4, 5});
  return reshape(wide, {s[0], s[1] * bs, s[2] * bs, c});
}
Array space_to_depth_reference(const Array& x, int64_t bs) {
  const Dims& s = x.shape;
  const Array deep =
      transpose(reshape(x, {s[0], s[1] / bs, bs, s[2] / bs, bs, s[3]}), {0, 1, 3, 2, 4, 5});
  return reshape(deep, {s[0], s[1] / bs, s[2] / bs, bs * bs * s[3]});
}

AttrMap block_size(int64_t bs) {
  return {{"block_size", bs}};
}

template <typename T>
void check_depth_ops(const Dims& wide_shape, int64_t bs) {
  SCOPED_TRACE(dims_to_string(wide_shape) + " block_size " + std::to_string(bs) + " dtype " +
               dtype_name(dtype_of<T>()));
  const Tensor wide = counting<T>(wide_shape);
  const Array deep = space_to_depth_reference(as_array<T>(wide), bs);
  const Tensor got = run1("SpaceToDepth", {wide}, block_size(bs));
  expect_equals_array<T>(got, deep);
  expect_equals_array<T>(run1("DepthToSpace", {got}, block_size(bs)),
                         depth_to_space_reference(deep, bs));
  expect_equals_array<T>(run1("DepthToSpace", {got}, block_size(bs)), as_array<T>(wide));
}

TEST(SpaceToDepth, MatchesTheDocumentedTransposeInEveryDtype) {
  const std::vector<std::pair<Dims, int64_t>> cases = {
      {{1, 4, 4, 1}, 2}, {{2, 6, 4, 3}, 2}, {{3, 6, 9, 2}, 3}, {{1, 8, 8, 5}, 4},
      {{2, 0, 4, 3}, 2}, {{0, 2, 2, 1}, 2}, {{2, 2, 2, 0}, 2},
  };
  for (const auto& [shape, bs] : cases) {
    check_depth_ops<float>(shape, bs);
    check_depth_ops<double>(shape, bs);
    check_depth_ops<int32_t>(shape, bs);
    check_depth_ops<int64_t>(shape, bs);
    check_depth_ops<uint8_t>(shape, bs);
  }
  // Every dtype moves: bool and string too (TensorFlow registers all types).
  Tensor flags(DType::kBool, {1, 2, 2, 1});
  flags.mutable_data<bool>()[1] = true;
  const Tensor deep_flags = run1("SpaceToDepth", {flags}, block_size(2));
  ASSERT_EQ(deep_flags.shape(), (Dims{1, 1, 1, 4}));
  EXPECT_EQ(std::vector<bool>(deep_flags.data<bool>(), deep_flags.data<bool>() + 4),
            (std::vector<bool>{false, true, false, false}));
  const Tensor words = Tensor::from_strings({1, 1, 1, 4}, {"a", "b", "c", "d"});
  const Tensor spread = run1("DepthToSpace", {words}, block_size(2));
  ASSERT_EQ(spread.shape(), (Dims{1, 2, 2, 1}));
  EXPECT_EQ(spread.strings(), (std::vector<std::string>{"a", "b", "c", "d"}));
}

// The examples of SpaceToDepth's and DepthToSpace's documentation (each the other's inverse).
TEST(SpaceToDepth, DocumentationExamples) {
  const AttrMap two = block_size(2);
  expect_values<float>(run1("SpaceToDepth", {f32({1, 2, 2, 1}, {1, 2, 3, 4})}, two), {1, 1, 1, 4},
                       {1, 2, 3, 4});
  expect_values<float>(run1("DepthToSpace", {f32({1, 1, 1, 4}, {1, 2, 3, 4})}, two), {1, 2, 2, 1},
                       {1, 2, 3, 4});
  const std::vector<float> twelve = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  expect_values<float>(run1("SpaceToDepth", {f32({1, 2, 2, 3}, twelve)}, two), {1, 1, 1, 12},
                       twelve);
  expect_values<float>(run1("DepthToSpace", {f32({1, 1, 1, 12}, twelve)}, two), {1, 2, 2, 3},
                       twelve);
  std::vector<int32_t> sixteen;
  for (int v = 1; v <= 16; ++v) sixteen.push_back(v);
  const std::vector<int32_t> wide = {1, 2, 5, 6, 3, 4, 7, 8, 9, 10, 13, 14, 11, 12, 15, 16};
  expect_values<int32_t>(run1("SpaceToDepth", {i32({1, 4, 4, 1}, wide)}, two), {1, 2, 2, 4},
                         sixteen);
  expect_values<int32_t>(run1("DepthToSpace", {i32({1, 2, 2, 4}, sixteen)}, two), {1, 4, 4, 1},
                         wide);
}

TEST(SpaceToDepth, BadInputsAreErrors) {
  const Tensor x = f32({1, 4, 4, 4}, std::vector<float>(64, 1.0f));
  for (const char* op : {"SpaceToDepth", "DepthToSpace"}) {
    SCOPED_TRACE(op);
    for (const char* format : {"NCHW", "NCHW_VECT_C"}) {
      expect_error(op, {x}, {{"block_size", int64_t{2}}, {"data_format", std::string(format)}},
                   "data_format " + std::string(format) + " is not supported");
    }
    expect_error(op, {x}, {{"block_size", int64_t{2}}, {"data_format", std::string("HWCN")}},
                 "invalid data_format 'HWCN'");
    expect_error(op, {x}, block_size(1), "Block size should be > 1, but was: 1");
    expect_error(op, {x}, block_size(0), "Block size should be > 1, but was: 0");
    expect_error(op, {x}, {}, "block_size");
    expect_error(op, {f32({4, 4, 4}, std::vector<float>(64, 1.0f))}, block_size(2),
                 "Input rank should be 4 instead of 3");
    expect_error(op, {x, x}, block_size(2), "expects 1 inputs, got 2");
  }
  expect_error("SpaceToDepth", {f32({1, 4, 6, 1}, std::vector<float>(24, 1.0f))}, block_size(4),
               "Image width 6 and height 4 should be divisible by block_size: 4");
  expect_error("DepthToSpace", {x}, block_size(3),
               "Input depth dimension 4 should be divisible by: 9");
  // block_size * block_size past int64 on an empty image: an error, not an overflow.
  expect_error("SpaceToDepth", {f32({1, 0, 0, 1}, {})}, block_size(int64_t{1} << 40), "overflows");
  expect_error("DepthToSpace", {f32({1, 1, 1, 4}, {1, 2, 3, 4})}, block_size(int64_t{1} << 40),
               "overflows");
}

}  // namespace
}  // namespace hubimg::ops
