// Helpers shared by the array, math and random kernels: reading index-like inputs (shapes,
// axes, begin/size vectors), typed raw access by element width, and moving elements from a
// source tensor into an output through per-axis index maps (transpose, slice, tile, pad, ...).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "hubimg/tensor.h"
#include "ops/op_registry.h"

namespace hubimg::ops {

// `kernel`, with any error it returns that does not yet name the node (attribute lookups,
// tensor allocation) rewritten to name it, as KernelContext::error does.
Kernel with_node_errors(Kernel kernel);
// Registers `spec` with its kernel wrapped by with_node_errors.
void add_op(OpRegistry& registry, OpSpec spec);

// Row-major strides of `shape`, in elements.
Dims row_major_strides(const Dims& shape);

// The values of an int32 or int64 input, flattened (any rank); `what` names it in errors.
Expected<std::vector<int64_t>> int_values(const KernelContext& ctx, size_t input,
                                          std::string_view what);
// As int_values, but the input must be a scalar or a one-element vector.
Expected<int64_t> int_scalar(const KernelContext& ctx, size_t input, std::string_view what);
// As int_values, but the input must be a vector (a scalar is not accepted).
Expected<std::vector<int64_t>> int_vector(const KernelContext& ctx, size_t input,
                                          std::string_view what);
// A shape from an int32/int64 vector input: every entry must be >= 0 and the element count
// must fit (checked_num_elements).
Expected<Dims> shape_from_input(const KernelContext& ctx, size_t input, std::string_view what);

// Maps `axis` in [-rank, rank) to [0, rank); an error naming the node otherwise.
Expected<int> canonical_axis(const KernelContext& ctx, int64_t axis, int rank,
                             std::string_view what = "axis");

// A tensor holding int64 values converted to `dtype` (int32 or int64).
Tensor int_tensor(DType dtype, Dims shape, const std::vector<int64_t>& values);

// Calls fn.template operator()<U>() where U is an unsigned integer as wide as one element of
// `dtype` (uint8_t..uint64_t), or std::string for string tensors. Kernels that only move
// elements use it to be dtype-agnostic.
template <typename Fn>
Status dispatch_by_width(const KernelContext& ctx, DType dtype, Fn&& fn) {
  if (dtype == DType::kString) return fn.template operator()<std::string>();
  switch (dtype_size(dtype)) {
    case 1: return fn.template operator()<uint8_t>();
    case 2: return fn.template operator()<uint16_t>();
    case 4: return fn.template operator()<uint32_t>();
    case 8: return fn.template operator()<uint64_t>();
    default:
      return ctx.error(StatusCode::kUnimplemented,
                       "cannot move elements of dtype " + dtype_name(dtype));
  }
}

// Element pointers typed by width (see dispatch_by_width); no dtype check beyond the width.
template <typename U>
const U* elements(const Tensor& t) {
  if constexpr (std::is_same_v<U, std::string>) {
    return t.strings().data();
  } else {
    return static_cast<const U*>(t.raw_data());
  }
}
template <typename U>
U* mutable_elements(Tensor& t) {
  if constexpr (std::is_same_v<U, std::string>) {
    return t.mutable_strings().data();
  } else {
    return static_cast<U*>(t.raw_mutable_data());
  }
}

// A fresh tensor of `dtype` and `shape`, or an error naming the node (too large, bad dims).
Expected<Tensor> allocate(const KernelContext& ctx, DType dtype, Dims shape);
// Before a kernel builds anything sized by an output shape computed from model data: the output
// (`dtype` x `shape`) and the per-axis index maps a remap uses for it (one int64 per index of
// each axis) must fit max_tensor_bytes(). An error naming the node otherwise.
Status check_remap_size(const KernelContext& ctx, DType dtype, const Dims& shape);

// For every output axis k, maps[k][j] is the source offset (in elements) contributed by
// output index j along axis k, or kFill when that position has no source element.
// The source offset of an output element is the sum over axes.
using AxisMaps = std::vector<std::vector<int64_t>>;
inline constexpr int64_t kFill = -1;

// Source offsets of every output element of `out_shape` in row-major order (kFill where any
// axis says so).
std::vector<int64_t> source_offsets(const Dims& out_shape, const AxisMaps& maps);

// A tensor of `out_shape` whose elements are taken from `src` through `maps`; positions without
// a source take `fill` (a scalar of src's dtype) or zero when `fill` is null.
Expected<Tensor> remap(const KernelContext& ctx, const Tensor& src, Dims out_shape,
                       const AxisMaps& maps, const Tensor* fill = nullptr);

}  // namespace hubimg::ops
