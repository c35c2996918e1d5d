// Shape and data-movement ops with the semantics of TensorFlow's CPU kernels
// (tensorflow/core/kernels/{reshape,shape,strided_slice,slice,pack,unpack,split,concat,tile,
// transpose,broadcast_to,pad,mirror_pad,reverse,roll,bitcast,gather,one_hot}_op*.cc and
// tensorflow/core/util/strided_slice_op.cc).
#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "ops/array_util.h"
#include "ops/broadcast.h"
#include "ops/cast.h"
#include "ops/fast_paths.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

int64_t product(const Dims& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= dims[i];
  return p;
}

Expected<DType> index_out_type(const KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(DType t, ctx.attrs().get_type("out_type", DType::kInt32));
  if (t != DType::kInt32 && t != DType::kInt64) {
    return ctx.error("out_type must be int32 or int64, got " + dtype_name(t));
  }
  return t;
}

// An int32/int64 tensor of `values`; an error when int32 cannot hold them.
Expected<Tensor> index_tensor(const KernelContext& ctx, DType dtype, Dims shape,
                              const std::vector<int64_t>& values) {
  if (dtype == DType::kInt32) {
    for (int64_t v : values) {
      if (v > std::numeric_limits<int32_t>::max()) {
        return ctx.error("value " + std::to_string(v) + " does not fit out_type int32");
      }
    }
  }
  return int_tensor(dtype, std::move(shape), values);
}

// ---------------------------------------------------------------------------------------------
// Reshape, Squeeze, ExpandDims, Shape, ShapeN, Size, Rank.

Status reshape_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(auto sizes, int_values(ctx, 1, "shape"));
  if (ctx.input(1).rank() > 1) {
    return ctx.error("shape must be a vector, got " + ctx.input(1).description());
  }
  Dims shape;
  int64_t known = 1;
  int unknown = -1;
  for (size_t d = 0; d < sizes.size(); ++d) {
    const int64_t size = sizes[d];
    if (size == -1) {
      if (unknown != -1) {
        return ctx.error("only one input size may be -1, not both " + std::to_string(unknown) +
                         " and " + std::to_string(d));
      }
      unknown = static_cast<int>(d);
      shape.push_back(1);
      continue;
    }
    if (size < 0) {
      return ctx.error("size " + std::to_string(d) + " must be non-negative, not " +
                       std::to_string(size));
    }
    shape.push_back(size);
    auto n = checked_num_elements(shape);
    if (!n.ok()) return ctx.error(n.status().message());
    known = *n;
  }
  if (unknown != -1) {
    if (known == 0) {
      return ctx.error(
          "Reshape cannot infer the missing input size for an empty tensor unless all "
          "specified input sizes are non-zero");
    }
    const int64_t missing = input.num_elements() / known;
    if (missing * known != input.num_elements()) {
      return ctx.error("Input to reshape is a tensor with " + std::to_string(input.num_elements()) +
                       " values, but the requested shape requires a multiple of " +
                       std::to_string(known));
    }
    shape[static_cast<size_t>(unknown)] = missing;
  }
  auto out = input.reshaped(shape);
  if (!out.ok()) {
    return ctx.error("Input to reshape is a tensor with " + std::to_string(input.num_elements()) +
                     " values, but the requested shape " + dims_to_string(shape) + " has " +
                     std::to_string(product(shape, 0, shape.size())));
  }
  ctx.set_output(0, std::move(out).value());
  return {};
}

Status squeeze_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(auto axes, ctx.attrs().get_ints("squeeze_dims", std::vector<int64_t>{}));
  const int rank = input.rank();
  std::vector<bool> squeeze(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, a, rank, "squeeze dim"));
    if (input.dim(axis) != 1) {
      return ctx.error("Can not squeeze dim[" + std::to_string(axis) +
                       "], expected a dimension of 1, got " + std::to_string(input.dim(axis)));
    }
    squeeze[static_cast<size_t>(axis)] = true;
  }
  Dims shape;
  for (int k = 0; k < rank; ++k) {
    const bool drop = axes.empty() ? input.dim(k) == 1 : squeeze[static_cast<size_t>(k)];
    if (!drop) shape.push_back(input.dim(k));
  }
  ctx.set_output(0, *input.reshaped(std::move(shape)));
  return {};
}

Status expand_dims_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(int64_t dim, int_scalar(ctx, 1, "dim"));
  HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, dim, input.rank() + 1, "dim"));
  Dims shape = input.shape();
  shape.insert(shape.begin() + axis, 1);
  ctx.set_output(0, *input.reshaped(std::move(shape)));
  return {};
}

Status shape_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  HUBIMG_ASSIGN_OR_RETURN(DType out_type, index_out_type(ctx));
  const Dims& shape = ctx.input(0).shape();
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, index_tensor(ctx, out_type, {ctx.input(0).rank()}, shape));
  ctx.set_output(0, std::move(out));
  return {};
}

Status shape_n_kernel(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(DType out_type, index_out_type(ctx));
  if (ctx.num_outputs() != ctx.num_inputs()) {
    return ctx.error("expects as many outputs as inputs, got " + std::to_string(ctx.num_outputs()) +
                     " and " + std::to_string(ctx.num_inputs()));
  }
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Dims& shape = ctx.input(i).shape();
    HUBIMG_ASSIGN_OR_RETURN(Tensor out, index_tensor(ctx, out_type, {ctx.input(i).rank()}, shape));
    ctx.set_output(i, std::move(out));
  }
  return {};
}

Status size_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  HUBIMG_ASSIGN_OR_RETURN(DType out_type, index_out_type(ctx));
  HUBIMG_ASSIGN_OR_RETURN(Tensor out,
                          index_tensor(ctx, out_type, {}, {ctx.input(0).num_elements()}));
  ctx.set_output(0, std::move(out));
  return {};
}

Status rank_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  ctx.set_output(0, Tensor::scalar<int32_t>(ctx.input(0).rank()));
  return {};
}

// InvertPermutation: y[x[i]] = i for a permutation x of 0..n-1 (int32 or int64).
Status invert_permutation_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  if (x.rank() != 1) return ctx.error("x must be a vector, got " + x.description());
  auto invert = [&]<typename T>() -> Status {
    const int64_t n = x.num_elements();
    Tensor y(x.dtype(), {n});
    std::vector<char> seen(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v = static_cast<int64_t>(x.data<T>()[i]);
      if (v < 0 || v >= n || seen[static_cast<size_t>(v)]) {
        return ctx.error("x is not a permutation of 0.." + std::to_string(n - 1) + ": " +
                         x.description());
      }
      seen[static_cast<size_t>(v)] = 1;
      y.mutable_data<T>()[v] = static_cast<T>(i);
    }
    ctx.set_output(0, std::move(y));
    return {};
  };
  if (x.dtype() == DType::kInt32) return invert.template operator()<int32_t>();
  if (x.dtype() == DType::kInt64) return invert.template operator()<int64_t>();
  return ctx.error("x must be int32 or int64, got " + x.description());
}

// ---------------------------------------------------------------------------------------------
// StridedSlice and Slice.

struct StridedSlicePlan {
  Dims processing_shape;  // one entry per input axis
  Dims final_shape;       // after new axes are added and shrunk axes removed
  std::vector<int64_t> begin;
  std::vector<int64_t> strides;
};

// TensorFlow's ValidateStridedSliceOp: expands the sparse spec (with ellipsis and new axes)
// into one begin/end/stride per input axis, canonicalises and clamps them, and computes the
// shapes.
Expected<StridedSlicePlan> plan_strided_slice(const KernelContext& ctx, const Dims& input_shape) {
  HUBIMG_ASSIGN_OR_RETURN(auto begin_spec, int_values(ctx, 1, "begin"));
  HUBIMG_ASSIGN_OR_RETURN(auto end_spec, int_values(ctx, 2, "end"));
  HUBIMG_ASSIGN_OR_RETURN(auto stride_spec, int_values(ctx, 3, "strides"));
  const AttrMap& attrs = ctx.attrs();
  HUBIMG_ASSIGN_OR_RETURN(int64_t begin_mask, attrs.get_int("begin_mask", 0));
  HUBIMG_ASSIGN_OR_RETURN(int64_t end_mask, attrs.get_int("end_mask", 0));
  HUBIMG_ASSIGN_OR_RETURN(int64_t ellipsis_mask, attrs.get_int("ellipsis_mask", 0));
  HUBIMG_ASSIGN_OR_RETURN(int64_t new_axis_mask, attrs.get_int("new_axis_mask", 0));
  HUBIMG_ASSIGN_OR_RETURN(int64_t shrink_axis_mask, attrs.get_int("shrink_axis_mask", 0));

  if (ctx.input(1).rank() != 1 || ctx.input(2).rank() != 1 || ctx.input(3).rank() != 1 ||
      begin_spec.size() != stride_spec.size() || end_spec.size() != stride_spec.size() ||
      stride_spec.size() >= 32) {
    return ctx.error("Expected begin, end, and strides to be 1D equal size tensors, but got " +
                     ctx.input(1).description() + ", " + ctx.input(2).description() + ", and " +
                     ctx.input(3).description());
  }
  if (ellipsis_mask != 0 && (ellipsis_mask & (ellipsis_mask - 1)) != 0) {
    return ctx.error("Multiple ellipses in slice spec not allowed");
  }
  auto bit = [](int64_t mask, size_t i) { return ((mask >> i) & 1) != 0; };

  // Step 1: new axes after the ellipsis, and an implicit ellipsis at the end.
  size_t sparse_dims = stride_spec.size();
  int64_t new_axes_after_ellipsis = 0;
  bool ellipsis_seen = false;
  for (size_t i = 0; i < sparse_dims; ++i) {
    if (ellipsis_seen && bit(new_axis_mask, i)) ++new_axes_after_ellipsis;
    if (bit(ellipsis_mask, i)) ellipsis_seen = true;
  }
  if (!ellipsis_seen) {
    ellipsis_mask |= int64_t{1} << sparse_dims;
    ++sparse_dims;
  }

  // Step 2: the dense spec, one entry per input axis.
  constexpr int64_t kShrinkAxis = -1;
  constexpr int64_t kNewAxis = -2;
  const auto dims = static_cast<int64_t>(input_shape.size());
  std::vector<int64_t> begin(static_cast<size_t>(dims), 0);
  std::vector<int64_t> end(static_cast<size_t>(dims), 0);
  std::vector<int64_t> strides(static_cast<size_t>(dims), 1);
  std::vector<bool> dense_begin_mask(static_cast<size_t>(dims), false);
  std::vector<bool> dense_end_mask(static_cast<size_t>(dims), false);
  std::vector<bool> dense_shrink(static_cast<size_t>(dims), false);
  std::vector<int64_t> final_gather;
  int64_t full_index = 0;
  for (size_t i = 0; i < sparse_dims; ++i) {
    if (bit(ellipsis_mask, i)) {
      const int64_t next_index = std::min(
          dims - static_cast<int64_t>(sparse_dims - i) + 1 + new_axes_after_ellipsis, dims);
      for (; full_index < next_index; ++full_index) {
        const auto f = static_cast<size_t>(full_index);
        dense_begin_mask[f] = dense_end_mask[f] = true;
        final_gather.push_back(full_index);
      }
    } else if (bit(new_axis_mask, i)) {
      final_gather.push_back(kNewAxis);
    } else {
      if (full_index == dims) {
        return ctx.error("Index out of range using input dim " + std::to_string(full_index) +
                         "; input has only " + std::to_string(dims) + " dims");
      }
      const auto f = static_cast<size_t>(full_index);
      begin[f] = begin_spec[i];
      end[f] = end_spec[i];
      strides[f] = stride_spec[i];
      dense_begin_mask[f] = bit(begin_mask, i);
      dense_end_mask[f] = bit(end_mask, i);
      if (bit(shrink_axis_mask, i)) {
        final_gather.push_back(kShrinkAxis);
        dense_shrink[f] = true;
      } else {
        final_gather.push_back(full_index);
      }
      ++full_index;
    }
  }

  // Step 3: canonical, clamped begin/end per axis and the processing shape.
  StridedSlicePlan plan;
  for (int64_t i = 0; i < dims; ++i) {
    const auto f = static_cast<size_t>(i);
    int64_t& b = begin[f];
    int64_t& e = end[f];
    const int64_t stride = strides[f];
    const int64_t dim = input_shape[f];
    if (stride == 0) return ctx.error("strides[" + std::to_string(i) + "] must be non-zero");
    const bool shrink = dense_shrink[f];
    if (shrink && stride <= 0) {
      return ctx.error("only stride 1 allowed on non-range indexing.");
    }
    const int64_t valid_lo = stride > 0 ? 0 : -1;
    const int64_t valid_hi = stride > 0 ? dim : dim - 1;
    auto canonical = [&](int64_t x, bool masked, bool is_end) {
      if (masked) return (stride > 0) != is_end ? valid_lo : valid_hi;
      const int64_t fwd = x < 0 ? dim + x : x;
      return std::clamp(fwd, valid_lo, valid_hi);
    };
    if (shrink) {
      const int64_t fwd = b < 0 ? dim + b : b;
      if (fwd < 0 || fwd >= dim) {
        return ctx.error("slice index " + std::to_string(b) + " of dimension " + std::to_string(i) +
                         " out of bounds.");
      }
      b = fwd;
      e = fwd + 1;
    } else {
      b = canonical(b, dense_begin_mask[f], false);
      e = canonical(e, dense_end_mask[f], true);
    }
    const int64_t interval = e - b;
    int64_t size = 0;
    if (interval != 0 && (interval < 0) == (stride < 0)) {
      size = interval / stride + (interval % stride != 0 ? 1 : 0);
    }
    plan.processing_shape.push_back(size);
  }

  // Step 4: the final shape.
  for (int64_t g : final_gather) {
    if (g >= 0) {
      plan.final_shape.push_back(plan.processing_shape[static_cast<size_t>(g)]);
    } else if (g == kNewAxis) {
      plan.final_shape.push_back(1);
    }
  }
  plan.begin = std::move(begin);
  plan.strides = std::move(strides);
  return plan;
}

Status strided_slice_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 4));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(StridedSlicePlan plan, plan_strided_slice(ctx, input.shape()));
  const Dims in_strides = row_major_strides(input.shape());
  AxisMaps maps(plan.processing_shape.size());
  for (size_t k = 0; k < maps.size(); ++k) {
    for (int64_t j = 0; j < plan.processing_shape[k]; ++j) {
      maps[k].push_back((plan.begin[k] + j * plan.strides[k]) * in_strides[k]);
    }
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, remap(ctx, input, plan.processing_shape, maps));
  ctx.set_output(0, *out.reshaped(plan.final_shape));
  return {};
}

// StridedSliceGrad(shape, begin, end, strides, dy): zeros of `shape` with dy written where
// StridedSlice with the same arguments and masks reads
// (tensorflow/core/kernels/strided_slice_op.cc).
Status strided_slice_grad_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 5));
  HUBIMG_ASSIGN_OR_RETURN(auto shape_values, int_values(ctx, 0, "shape"));
  if (ctx.input(0).rank() != 1)
    return ctx.error("shape must be a vector, got " + ctx.input(0).description());
  Dims shape(shape_values.begin(), shape_values.end());
  for (int64_t d : shape) {
    if (d < 0) return ctx.error("shape has a negative dimension: " + ctx.input(0).description());
  }
  HUBIMG_ASSIGN_OR_RETURN(StridedSlicePlan plan, plan_strided_slice(ctx, shape));
  const Tensor& dy = ctx.input(4);
  HUBIMG_ASSIGN_OR_RETURN(int64_t count, checked_num_elements(plan.processing_shape));
  if (dy.num_elements() != count) {
    return ctx.error("dy " + dy.description() + " does not match the slice's " +
                     std::to_string(count) + " elements");
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, Tensor::create(dy.dtype(), shape));
  if (dy.dtype() == DType::kString) return ctx.error("string dy is not supported");
  const size_t elem = dtype_size(dy.dtype());
  const Dims strides = row_major_strides(shape);
  const size_t rank = plan.processing_shape.size();
  std::vector<int64_t> index(rank, 0);
  const auto* src = static_cast<const uint8_t*>(dy.raw_data());
  auto* dst = static_cast<uint8_t*>(out.raw_mutable_data());
  for (int64_t i = 0; i < count; ++i) {
    int64_t offset = 0;
    for (size_t k = 0; k < rank; ++k)
      offset += (plan.begin[k] + index[k] * plan.strides[k]) * strides[k];
    std::memcpy(dst + static_cast<size_t>(offset) * elem, src + static_cast<size_t>(i) * elem,
                elem);
    for (size_t k = rank; k-- > 0;) {
      if (++index[k] < plan.processing_shape[k]) break;
      index[k] = 0;
    }
  }
  ctx.set_output(0, std::move(out));
  return {};
}

Status slice_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(auto begin, int_values(ctx, 1, "begin"));
  HUBIMG_ASSIGN_OR_RETURN(auto size, int_values(ctx, 2, "size"));
  const auto rank = static_cast<size_t>(input.rank());
  if (ctx.input(1).rank() != 1 || ctx.input(2).rank() != 1 || begin.size() != rank ||
      size.size() != rank) {
    return ctx.error("Expected begin and size arguments to be 1-D tensors of size " +
                     std::to_string(rank) + ", but got " + ctx.input(1).description() + " and " +
                     ctx.input(2).description());
  }
  const Dims in_strides = row_major_strides(input.shape());
  Dims out_shape;
  AxisMaps maps(rank);
  for (size_t k = 0; k < rank; ++k) {
    const int64_t dim = input.shape()[k];
    const int64_t b = begin[k];
    const int64_t s = size[k] == -1 ? dim - b : size[k];
    if (b < 0 || b > dim) {
      return ctx.error("Expected begin[" + std::to_string(k) + "] in [0, " + std::to_string(dim) +
                       "], but got " + std::to_string(b));
    }
    if (s < 0 || s > dim - b) {
      return ctx.error("Expected size[" + std::to_string(k) + "] in [0, " +
                       std::to_string(dim - b) + "], but got " + std::to_string(size[k]));
    }
    out_shape.push_back(s);
    for (int64_t j = 0; j < s; ++j) maps[k].push_back((b + j) * in_strides[k]);
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, remap(ctx, input, std::move(out_shape), maps));
  ctx.set_output(0, std::move(out));
  return {};
}

// ---------------------------------------------------------------------------------------------
// Concatenation and splitting.

// Concatenates `parts` (same dtype and rank, equal dims except `axis`) along `axis`.
Expected<Tensor> concat_parts(const KernelContext& ctx, std::span<const Tensor> parts, int axis) {
  Dims shape = parts[0].shape();
  shape[static_cast<size_t>(axis)] = 0;
  for (const Tensor& p : parts) shape[static_cast<size_t>(axis)] += p.dim(axis);
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, parts[0].dtype(), shape));
  const int64_t outer = product(shape, 0, static_cast<size_t>(axis));
  const int64_t inner = product(shape, static_cast<size_t>(axis) + 1, shape.size());
  HUBIMG_RETURN_IF_ERROR(dispatch_by_width(ctx, out.dtype(), [&]<typename U>() -> Status {
    U* dst = mutable_elements<U>(out);
    for (int64_t o = 0; o < outer; ++o) {
      for (const Tensor& p : parts) {
        const int64_t chunk = p.dim(axis) * inner;
        if (chunk == 0) continue;
        const U* src = elements<U>(p) + o * chunk;
        std::copy(src, src + chunk, dst);
        dst += chunk;
      }
    }
    return {};
  }));
  return out;
}

Status check_concat_inputs(const KernelContext& ctx, std::span<const Tensor> parts, int axis) {
  const Tensor& first = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) {
    const Tensor& p = parts[i];
    bool ok = p.dtype() == first.dtype() && p.rank() == first.rank();
    for (int k = 0; ok && k < first.rank(); ++k) ok = k == axis || p.dim(k) == first.dim(k);
    if (!ok) {
      return ctx.error("ConcatOp : Dimension mismatch or dtype mismatch: input 0 is " +
                       first.description() + " and input " + std::to_string(i) + " is " +
                       p.description() + " (concat axis " + std::to_string(axis) + ")");
    }
  }
  return {};
}

Status concat_with_axis(KernelContext& ctx, std::span<const Tensor> values, size_t axis_input) {
  if (values.empty()) return ctx.error("needs at least one value to concatenate");
  HUBIMG_ASSIGN_OR_RETURN(int64_t axis_value, int_scalar(ctx, axis_input, "axis"));
  const int rank = values[0].rank();
  if (rank == 0) return ctx.error("cannot concatenate scalars; use Pack");
  HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, axis_value, rank));
  HUBIMG_RETURN_IF_ERROR(check_concat_inputs(ctx, values, axis));
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, concat_parts(ctx, values, axis));
  ctx.set_output(0, std::move(out));
  return {};
}

Status concat_v2_kernel(KernelContext& ctx) {
  if (ctx.num_inputs() < 2) return ctx.error("expects values and an axis");
  return concat_with_axis(ctx, ctx.inputs().first(ctx.num_inputs() - 1), ctx.num_inputs() - 1);
}

Status concat_v1_kernel(KernelContext& ctx) {
  if (ctx.num_inputs() < 2) return ctx.error("expects an axis and values");
  return concat_with_axis(ctx, ctx.inputs().subspan(1), 0);
}

Status pack_kernel(KernelContext& ctx) {
  if (ctx.num_inputs() == 0) return ctx.error("needs at least one value to pack");
  HUBIMG_ASSIGN_OR_RETURN(int64_t axis_value, ctx.attrs().get_int("axis", 0));
  const Tensor& first = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, axis_value, first.rank() + 1));
  std::vector<Tensor> parts;
  Dims expanded = first.shape();
  expanded.insert(expanded.begin() + axis, 1);
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& v = ctx.input(i);
    if (v.shape() != first.shape() || v.dtype() != first.dtype()) {
      return ctx.error("Shapes of all inputs must match: values[0] is " + first.description() +
                       " != values[" + std::to_string(i) + "] " + v.description());
    }
    parts.push_back(*v.reshaped(expanded));
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, concat_parts(ctx, parts, axis));
  ctx.set_output(0, std::move(out));
  return {};
}

// Splits `value` along `axis` into pieces of `sizes` (which sum to the axis size).
Expected<std::vector<Tensor>> split_parts(const KernelContext& ctx, const Tensor& value, int axis,
                                          const std::vector<int64_t>& sizes) {
  const Dims& shape = value.shape();
  const int64_t outer = product(shape, 0, static_cast<size_t>(axis));
  const int64_t inner = product(shape, static_cast<size_t>(axis) + 1, shape.size());
  const int64_t row = value.dim(axis) * inner;
  std::vector<Tensor> parts;
  int64_t start = 0;
  for (int64_t size : sizes) {
    Dims part_shape = shape;
    part_shape[static_cast<size_t>(axis)] = size;
    HUBIMG_ASSIGN_OR_RETURN(Tensor part, allocate(ctx, value.dtype(), part_shape));
    const int64_t chunk = size * inner;
    HUBIMG_RETURN_IF_ERROR(dispatch_by_width(ctx, value.dtype(), [&]<typename U>() -> Status {
      if (chunk == 0) return {};
      const U* src = elements<U>(value);
      U* dst = mutable_elements<U>(part);
      for (int64_t o = 0; o < outer; ++o) {
        std::copy(src + o * row + start * inner, src + o * row + start * inner + chunk,
                  dst + o * chunk);
      }
      return {};
    }));
    parts.push_back(std::move(part));
    start += size;
  }
  return parts;
}

Status set_outputs(KernelContext& ctx, std::vector<Tensor> parts) {
  if (parts.size() != ctx.num_outputs()) {
    return ctx.error("produces " + std::to_string(parts.size()) + " outputs but the node has " +
                     std::to_string(ctx.num_outputs()));
  }
  for (size_t i = 0; i < parts.size(); ++i) ctx.set_output(i, std::move(parts[i]));
  return {};
}

Status unpack_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  const Tensor& value = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(int64_t axis_value, ctx.attrs().get_int("axis", 0));
  HUBIMG_ASSIGN_OR_RETURN(int64_t num, ctx.attrs().get_int("num"));
  HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, axis_value, value.rank()));
  if (value.dim(axis) != num) {
    return ctx.error("Input shape axis " + std::to_string(axis) + " must equal " +
                     std::to_string(num) + ", got shape " + dims_to_string(value.shape()));
  }
  HUBIMG_ASSIGN_OR_RETURN(auto parts, split_parts(ctx, value, axis, std::vector<int64_t>(num, 1)));
  Dims squeezed = value.shape();
  squeezed.erase(squeezed.begin() + axis);
  for (Tensor& p : parts) p = *p.reshaped(squeezed);
  return set_outputs(ctx, std::move(parts));
}

Status split_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& value = ctx.input(1);
  HUBIMG_ASSIGN_OR_RETURN(int64_t axis_value, int_scalar(ctx, 0, "split_dim"));
  HUBIMG_ASSIGN_OR_RETURN(int64_t num_split, ctx.attrs().get_int("num_split"));
  HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, axis_value, value.rank(), "split_dim"));
  if (num_split <= 0 || value.dim(axis) % num_split != 0) {
    return ctx.error(
        "Number of ways to split should evenly divide the split dimension, but got "
        "split_dim " +
        std::to_string(axis) + " (size = " + std::to_string(value.dim(axis)) + ") and num_split " +
        std::to_string(num_split));
  }
  HUBIMG_ASSIGN_OR_RETURN(
      auto parts,
      split_parts(ctx, value, axis, std::vector<int64_t>(num_split, value.dim(axis) / num_split)));
  return set_outputs(ctx, std::move(parts));
}

Status split_v_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  const Tensor& value = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(auto sizes, int_values(ctx, 1, "size_splits"));
  HUBIMG_ASSIGN_OR_RETURN(int64_t axis_value, int_scalar(ctx, 2, "split_dim"));
  HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, axis_value, value.rank(), "split_dim"));
  const int64_t dim = value.dim(axis);
  int64_t known = 0;
  int unknown = -1;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == -1) {
      if (unknown != -1) return ctx.error("There can only be one -1 in the input.");
      unknown = static_cast<int>(i);
    } else if (sizes[i] < 0) {
      return ctx.error("size_splits[" + std::to_string(i) + "] = " + std::to_string(sizes[i]) +
                       " must be non-negative");
    } else {
      known += sizes[i];
    }
  }
  if (unknown != -1) {
    if (known > dim) {
      return ctx.error(
          "Determined shape must either match input shape along split_dim exactly "
          "if fully specified, or be less than the size of the input along "
          "split_dim if not fully specified.  Got: " +
          std::to_string(known));
    }
    sizes[static_cast<size_t>(unknown)] = dim - known;
  } else if (known != dim) {
    return ctx.error(
        "Determined shape must either match input shape along split_dim exactly if "
        "fully specified, or be less than the size of the input along split_dim "
        "if not fully specified.  Got: " +
        std::to_string(known));
  }
  HUBIMG_ASSIGN_OR_RETURN(auto parts, split_parts(ctx, value, axis, sizes));
  return set_outputs(ctx, std::move(parts));
}

// ---------------------------------------------------------------------------------------------
// Tile, Fill, Transpose, BroadcastTo, BroadcastArgs, ReverseV2, Roll.

Status tile_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(auto multiples, int_values(ctx, 1, "multiples"));
  if (ctx.input(1).rank() != 1 || multiples.size() != static_cast<size_t>(input.rank())) {
    return ctx.error("Expected multiples argument to be a vector of length " +
                     std::to_string(input.rank()) + " but got " + ctx.input(1).description());
  }
  const Dims in_strides = row_major_strides(input.shape());
  Dims out_shape;
  for (size_t k = 0; k < multiples.size(); ++k) {
    if (multiples[k] < 0) {
      return ctx.error("Expected multiples[" + std::to_string(k) + "] >= 0, but got " +
                       std::to_string(multiples[k]));
    }
    int64_t tiled = 0;
    if (__builtin_mul_overflow(input.shape()[k], multiples[k], &tiled)) {
      return ctx.error(StatusCode::kOutOfRange, "multiples[" + std::to_string(k) +
                                                    "] = " + std::to_string(multiples[k]) +
                                                    " overflows the dimension");
    }
    out_shape.push_back(tiled);
  }
  HUBIMG_RETURN_IF_ERROR(check_remap_size(ctx, input.dtype(), out_shape));
  AxisMaps maps(out_shape.size());
  for (size_t k = 0; k < out_shape.size(); ++k) {
    for (int64_t j = 0; j < out_shape[k]; ++j) {
      maps[k].push_back((j % input.shape()[k]) * in_strides[k]);
    }
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, remap(ctx, input, std::move(out_shape), maps));
  ctx.set_output(0, std::move(out));
  return {};
}

Status fill_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  HUBIMG_ASSIGN_OR_RETURN(Dims shape, shape_from_input(ctx, 0, "dims"));
  const Tensor& value = ctx.input(1);
  if (value.rank() != 0) return ctx.error("value must be a scalar, got " + value.description());
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, value.dtype(), std::move(shape)));
  HUBIMG_RETURN_IF_ERROR(dispatch_by_width(ctx, value.dtype(), [&]<typename U>() -> Status {
    U* dst = mutable_elements<U>(out);
    std::fill(dst, dst + out.num_elements(), elements<U>(value)[0]);
    return {};
  }));
  ctx.set_output(0, std::move(out));
  return {};
}

Status transpose_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(auto perm, int_values(ctx, 1, "perm"));
  const auto rank = static_cast<size_t>(input.rank());
  if (ctx.input(1).rank() != 1 || perm.size() != rank) {
    return ctx.error("transpose expects a vector of size " + std::to_string(rank) +
                     ". But input(1) is a vector of size " + std::to_string(perm.size()));
  }
  std::vector<bool> seen(rank, false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)]) {
      return ctx.error("perm " + dims_to_string(perm) + " is not a permutation of 0.." +
                       std::to_string(static_cast<int64_t>(rank) - 1));
    }
    seen[static_cast<size_t>(p)] = true;
  }
  const Dims in_strides = row_major_strides(input.shape());
  Dims out_shape;
  AxisMaps maps(rank);
  for (size_t k = 0; k < rank; ++k) {
    const auto from = static_cast<size_t>(perm[k]);
    out_shape.push_back(input.shape()[from]);
    for (int64_t j = 0; j < input.shape()[from]; ++j) maps[k].push_back(j * in_strides[from]);
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, remap(ctx, input, std::move(out_shape), maps));
  ctx.set_output(0, std::move(out));
  return {};
}

Status broadcast_to_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(Dims shape, shape_from_input(ctx, 1, "shape"));
  const auto result = broadcast_shape(input.shape(), shape);
  if (input.rank() > static_cast<int>(shape.size()) || !result || *result != shape) {
    return ctx.error("Unable to broadcast tensor of shape " + dims_to_string(input.shape()) +
                     " to tensor of shape " + dims_to_string(shape));
  }
  HUBIMG_RETURN_IF_ERROR(check_remap_size(ctx, input.dtype(), shape));
  HUBIMG_ASSIGN_OR_RETURN(Tensor out,
                          remap(ctx, input, shape, broadcast_maps(input.shape(), shape)));
  ctx.set_output(0, std::move(out));
  return {};
}

Status broadcast_args_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  if (ctx.input(0).dtype() != ctx.input(1).dtype()) {
    return ctx.error("s0 and s1 must have the same dtype, got " + ctx.input(0).description() +
                     " and " + ctx.input(1).description());
  }
  HUBIMG_ASSIGN_OR_RETURN(Dims s0, int_vector(ctx, 0, "s0"));
  HUBIMG_ASSIGN_OR_RETURN(Dims s1, int_vector(ctx, 1, "s1"));
  const auto result = broadcast_shape(s0, s1);
  if (!result) {
    return ctx.error("Incompatible shapes: " + dims_to_string(s0) + " vs. " + dims_to_string(s1));
  }
  ctx.set_output(0,
                 int_tensor(ctx.input(0).dtype(), {static_cast<int64_t>(result->size())}, *result));
  return {};
}

Status reverse_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(auto axes, int_vector(ctx, 1, "axis"));
  const auto rank = static_cast<size_t>(input.rank());
  std::vector<bool> reversed(rank, false);
  for (int64_t a : axes) {
    HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, a, input.rank()));
    if (reversed[static_cast<size_t>(axis)]) {
      return ctx.error("axis " + std::to_string(axis) + " specified more than once.");
    }
    reversed[static_cast<size_t>(axis)] = true;
  }
  const Dims in_strides = row_major_strides(input.shape());
  AxisMaps maps(rank);
  for (size_t k = 0; k < rank; ++k) {
    const int64_t dim = input.shape()[k];
    for (int64_t j = 0; j < dim; ++j) {
      maps[k].push_back((reversed[k] ? dim - 1 - j : j) * in_strides[k]);
    }
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, remap(ctx, input, input.shape(), maps));
  ctx.set_output(0, std::move(out));
  return {};
}

// Roll(input, shift, axis): output[..., j, ...] = input[..., (j - shift) mod n, ...] along each
// listed axis (tf.roll; Swin Transformer's shifted windows). shift and axis are scalars or
// vectors of one size; an axis listed twice is rolled by the sum of its shifts.
Status roll_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  const Tensor& input = ctx.input(0);
  if (input.rank() < 1) return ctx.error("input must be 1-D or higher, got " + input.description());
  for (size_t i : {size_t{1}, size_t{2}}) {
    if (ctx.input(i).rank() > 1) {
      return ctx.error(std::string(i == 1 ? "shift" : "axis") +
                       " must be a scalar or a 1-D vector. Found: " + ctx.input(i).description());
    }
  }
  HUBIMG_ASSIGN_OR_RETURN(auto shifts, int_values(ctx, 1, "shift"));
  HUBIMG_ASSIGN_OR_RETURN(auto axes, int_values(ctx, 2, "axis"));
  if (shifts.size() != axes.size()) {
    return ctx.error("shift and axis must have the same size, got " + ctx.input(1).description() +
                     " and " + ctx.input(2).description());
  }
  const auto rank = static_cast<size_t>(input.rank());
  std::vector<int64_t> total(rank, 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, axes[i], input.rank()));
    const int64_t dim = input.shape()[static_cast<size_t>(axis)];
    if (dim == 0) continue;
    // Reduced modulo the dimension first: the sum of several int64 shifts cannot overflow.
    int64_t& t = total[static_cast<size_t>(axis)];
    t = ((t + shifts[i] % dim) % dim + dim) % dim;
  }
  const Dims in_strides = row_major_strides(input.shape());
  AxisMaps maps(rank);
  for (size_t k = 0; k < rank; ++k) {
    const int64_t dim = input.shape()[k];
    for (int64_t j = 0; j < dim; ++j)
      maps[k].push_back(((j - total[k] + dim) % dim) * in_strides[k]);
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, remap(ctx, input, input.shape(), maps));
  ctx.set_output(0, std::move(out));
  return {};
}

// ---------------------------------------------------------------------------------------------
// Pad, PadV2, MirrorPad.

Expected<std::vector<std::pair<int64_t, int64_t>>> read_paddings(const KernelContext& ctx,
                                                                 const Tensor& input) {
  HUBIMG_ASSIGN_OR_RETURN(auto values, int_values(ctx, 1, "paddings"));
  const Tensor& p = ctx.input(1);
  if (p.rank() != 2 || p.dim(0) != input.rank() || p.dim(1) != 2) {
    return ctx.error("paddings must be a matrix of shape [" + std::to_string(input.rank()) +
                     ", 2], got " + p.description());
  }
  std::vector<std::pair<int64_t, int64_t>> paddings;
  for (size_t k = 0; k < values.size() / 2; ++k) {
    const int64_t before = values[2 * k];
    const int64_t after = values[2 * k + 1];
    if (before < 0 || after < 0) {
      return ctx.error("Paddings must be non-negative: " + std::to_string(before) + " " +
                       std::to_string(after));
    }
    paddings.emplace_back(before, after);
  }
  return paddings;
}

// Fast path of Pad/PadV2 (see fast_paths.h) for every fixed-width dtype: the axes after the
// last padded one form contiguous blocks, so each output row (an index over the axes before the
// last padded one) is fill, one memcpy of the input row, fill — or all fill where an outer axis
// is padded. Rows are spread over the thread pool.
template <typename U>
void fast_pad(const Tensor& input, const std::vector<std::pair<int64_t, int64_t>>& paddings,
              const Dims& out_shape, U fill, Tensor& out) {
  const int rank = input.rank();
  int last = 0;  // the last padded axis (0 when none is)
  for (int k = 0; k < rank; ++k) {
    const auto [before, after] = paddings[static_cast<size_t>(k)];
    if (before != 0 || after != 0) last = k;
  }
  int64_t block = 1;  // elements after axis `last`, the same in input and output
  for (int k = last + 1; k < rank; ++k) block *= input.dim(k);
  int64_t rows = 1;
  for (int k = 0; k < last; ++k) rows *= out_shape[static_cast<size_t>(k)];
  const auto [before_last, after_last] = paddings[static_cast<size_t>(last)];
  const int64_t head = before_last * block;
  const int64_t body = input.dim(last) * block;
  const int64_t tail = after_last * block;
  const int64_t out_row = head + body + tail;
  const U* src = static_cast<const U*>(input.raw_data());
  U* dst = static_cast<U*>(out.raw_mutable_data());
  const auto fill_n = [fill](U* p, int64_t n) {
    if (fill == U{0}) {
      std::memset(p, 0, static_cast<size_t>(n) * sizeof(U));
    } else {
      std::fill(p, p + n, fill);
    }
  };
  parallel_rows(rows, out_row, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      U* o = dst + r * out_row;
      // The input row of output row r, unless an outer axis puts it in the padding.
      int64_t rest = r, offset = 0, stride = body;
      bool inside = true;
      for (int k = last - 1; k >= 0 && inside; --k) {
        const auto axis = static_cast<size_t>(k);
        const int64_t i = rest % out_shape[axis] - paddings[axis].first;
        rest /= out_shape[axis];
        inside = i >= 0 && i < input.dim(k);
        offset += i * stride;
        stride *= input.dim(k);
      }
      if (!inside) {
        fill_n(o, out_row);
        continue;
      }
      fill_n(o, head);
      if (body > 0) std::memcpy(o + head, src + offset, static_cast<size_t>(body) * sizeof(U));
      fill_n(o + head + body, tail);
    }
  });
}

Status pad_kernel(KernelContext& ctx) {
  if (ctx.num_inputs() != 2 && ctx.num_inputs() != 3) {
    return ctx.error("expects 2 or 3 inputs, got " + std::to_string(ctx.num_inputs()));
  }
  const Tensor& input = ctx.input(0);
  const Tensor* fill = nullptr;
  if (ctx.num_inputs() == 3) {
    fill = &ctx.input(2);
    if (fill->num_elements() != 1 || fill->rank() > 1 || fill->dtype() != input.dtype()) {
      return ctx.error("constant_values must be a scalar of the input's dtype, got " +
                       fill->description());
    }
  }
  HUBIMG_ASSIGN_OR_RETURN(auto paddings, read_paddings(ctx, input));
  // The output size is checked against the tensor budget before anything of its size (the
  // output, the per-axis index maps) is built.
  Dims out_shape;
  for (size_t k = 0; k < paddings.size(); ++k) {
    const auto [before, after] = paddings[k];
    int64_t padded = 0;
    if (__builtin_add_overflow(before, input.shape()[k], &padded) ||
        __builtin_add_overflow(padded, after, &padded)) {
      return ctx.error(StatusCode::kOutOfRange, "paddings " + std::to_string(before) + ", " +
                                                    std::to_string(after) + " overflow dimension " +
                                                    std::to_string(k));
    }
    out_shape.push_back(padded);
  }
  if (auto size = check_tensor_size(input.dtype(), out_shape); !size.ok()) {
    return ctx.error(size.code(), "output " + size.message());
  }
  if (fast_paths_enabled() && input.rank() >= 1 && dtype_size(input.dtype()) != 0 &&
      input.dtype() != DType::kString) {
    Tensor out = Tensor::uninitialized(input.dtype(), out_shape);
    if (out.num_elements() > 0) {
      HUBIMG_RETURN_IF_ERROR(dispatch_by_width(ctx, input.dtype(), [&]<typename U>() -> Status {
        if constexpr (!std::is_same_v<U, std::string>) {
          U value{0};
          if (fill != nullptr) std::memcpy(&value, fill->raw_data(), sizeof(U));
          fast_pad<U>(input, paddings, out.shape(), value, out);
        }
        return {};
      }));
    }
    ctx.set_output(0, std::move(out));
    return {};
  }
  HUBIMG_RETURN_IF_ERROR(check_remap_size(ctx, input.dtype(), out_shape));
  const Dims in_strides = row_major_strides(input.shape());
  AxisMaps maps(paddings.size());
  for (size_t k = 0; k < paddings.size(); ++k) {
    const int64_t dim = input.shape()[k];
    const int64_t before = paddings[k].first;
    for (int64_t j = 0; j < out_shape[k]; ++j) {
      const int64_t src = j - before;
      maps[k].push_back(src >= 0 && src < dim ? src * in_strides[k] : kFill);
    }
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, remap(ctx, input, std::move(out_shape), maps, fill));
  ctx.set_output(0, std::move(out));
  return {};
}

Status mirror_pad_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(std::string mode, ctx.attrs().get_string("mode"));
  if (mode != "REFLECT" && mode != "SYMMETRIC") {
    return ctx.error("mode must be REFLECT or SYMMETRIC, got '" + mode + "'");
  }
  const bool reflect = mode == "REFLECT";
  HUBIMG_ASSIGN_OR_RETURN(auto paddings, read_paddings(ctx, input));
  const Dims in_strides = row_major_strides(input.shape());
  Dims out_shape;
  AxisMaps maps(paddings.size());
  for (size_t k = 0; k < paddings.size(); ++k) {
    const int64_t dim = input.shape()[k];
    const auto [before, after] = paddings[k];
    const int64_t limit = reflect ? dim - 1 : dim;
    if (before > limit || after > limit) {
      return ctx.error("paddings must be no greater than the dimension size" +
                       std::string(reflect ? " minus 1 (REFLECT)" : " (SYMMETRIC)") + ": " +
                       std::to_string(before) + ", " + std::to_string(after) + " greater than " +
                       std::to_string(limit) + " for dimension " + std::to_string(k));
    }
    out_shape.push_back(before + dim + after);
  }
  HUBIMG_RETURN_IF_ERROR(check_remap_size(ctx, input.dtype(), out_shape));
  for (size_t k = 0; k < paddings.size(); ++k) {
    const int64_t dim = input.shape()[k];
    const int64_t before = paddings[k].first;
    for (int64_t j = 0; j < out_shape[k]; ++j) {
      int64_t src = j - before;
      if (src < 0) src = reflect ? -src : -src - 1;
      if (src >= dim) src = reflect ? 2 * dim - 2 - src : 2 * dim - 1 - src;
      maps[k].push_back(src * in_strides[k]);
    }
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, remap(ctx, input, std::move(out_shape), maps));
  ctx.set_output(0, std::move(out));
  return {};
}

// ---------------------------------------------------------------------------------------------
// ZerosLike, OnesLike, Bitcast, GatherV2, OneHot.

Status zeros_like_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, ctx.input(0).dtype(), ctx.input(0).shape()));
  ctx.set_output(0, std::move(out));
  return {};
}

Status ones_like_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  const Tensor& input = ctx.input(0);
  auto one = cast_tensor(Tensor::scalar<float>(1.0f), input.dtype());
  if (!one.ok()) return ctx.error(one.status().code(), one.status().message());
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, input.dtype(), input.shape()));
  HUBIMG_RETURN_IF_ERROR(dispatch_by_width(ctx, input.dtype(), [&]<typename U>() -> Status {
    U* dst = mutable_elements<U>(out);
    std::fill(dst, dst + out.num_elements(), elements<U>(*one)[0]);
    return {};
  }));
  ctx.set_output(0, std::move(out));
  return {};
}

Status bitcast_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(DType to, ctx.attrs().get_type("type"));
  auto bitcastable = [](DType t) {
    return dtype_is_numeric(t) && t != DType::kBool && dtype_size(t) > 0;
  };
  if (!bitcastable(input.dtype()) || !bitcastable(to)) {
    return ctx.error("cannot bitcast " + dtype_name(input.dtype()) + " to " + dtype_name(to));
  }
  const auto in_size = static_cast<int64_t>(dtype_size(input.dtype()));
  const auto out_size = static_cast<int64_t>(dtype_size(to));
  Dims shape = input.shape();
  if (in_size > out_size) {
    shape.push_back(in_size / out_size);
  } else if (in_size < out_size) {
    if (shape.empty() || shape.back() != out_size / in_size) {
      return ctx.error("Cannot bitcast from " + dtype_name(input.dtype()) + " to " +
                       dtype_name(to) + ": shape " + dims_to_string(input.shape()) +
                       " must end in " + std::to_string(out_size / in_size));
    }
    shape.pop_back();
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, to, std::move(shape)));
  if (input.byte_size() > 0)
    std::memcpy(out.raw_mutable_data(), input.raw_data(), input.byte_size());
  ctx.set_output(0, std::move(out));
  return {};
}

// GatherV2 (params, indices, axis) with attr batch_dims, and Gather (params, indices).
Status gather(KernelContext& ctx, int64_t axis_value, int64_t batch_dims) {
  const Tensor& params = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(auto indices, int_values(ctx, 1, "indices"));
  const Tensor& indices_t = ctx.input(1);
  if (batch_dims < 0) batch_dims += indices_t.rank();
  if (batch_dims < 0 || batch_dims > indices_t.rank() || batch_dims > params.rank()) {
    return ctx.error("batch_dims " + std::to_string(batch_dims) + " is out of range for params " +
                     params.description() + " and indices " + indices_t.description());
  }
  HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, axis_value, params.rank()));
  if (axis < batch_dims) {
    return ctx.error("batch_dims (" + std::to_string(batch_dims) +
                     ") must be less than or equal to axis (" + std::to_string(axis) + ")");
  }
  for (int64_t k = 0; k < batch_dims; ++k) {
    if (params.dim(static_cast<int>(k)) != indices_t.dim(static_cast<int>(k))) {
      return ctx.error("params.shape[" + std::to_string(k) + "] must equal indices.shape[" +
                       std::to_string(k) + "]: " + params.description() + " vs " +
                       indices_t.description());
    }
  }
  const Dims& ps = params.shape();
  const auto bd = static_cast<size_t>(batch_dims);
  const auto ax = static_cast<size_t>(axis);
  Dims out_shape(ps.begin(), ps.begin() + axis);
  out_shape.insert(out_shape.end(), indices_t.shape().begin() + batch_dims,
                   indices_t.shape().end());
  out_shape.insert(out_shape.end(), ps.begin() + axis + 1, ps.end());
  const int64_t batch = product(ps, 0, bd);
  const int64_t outer = product(ps, bd, ax);
  const int64_t axis_size = ps[ax];
  const int64_t inner = product(ps, ax + 1, ps.size());
  const int64_t per_batch = product(indices_t.shape(), bd, indices_t.shape().size());
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0 || indices[i] >= axis_size) {
      return ctx.error("indices[" + std::to_string(i) + "] = " + std::to_string(indices[i]) +
                       " is not in [0, " + std::to_string(axis_size) + ")");
    }
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, params.dtype(), std::move(out_shape)));
  HUBIMG_RETURN_IF_ERROR(dispatch_by_width(ctx, params.dtype(), [&]<typename U>() -> Status {
    if (out.num_elements() == 0) return {};
    const U* src = elements<U>(params);
    U* dst = mutable_elements<U>(out);
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t k = 0; k < per_batch; ++k) {
          const int64_t index = indices[static_cast<size_t>(b * per_batch + k)];
          const U* from = src + ((b * outer + o) * axis_size + index) * inner;
          std::copy(from, from + inner, dst);
          dst += inner;
        }
      }
    }
    return {};
  }));
  ctx.set_output(0, std::move(out));
  return {};
}

Status gather_v2_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  HUBIMG_ASSIGN_OR_RETURN(int64_t axis, int_scalar(ctx, 2, "axis"));
  HUBIMG_ASSIGN_OR_RETURN(int64_t batch_dims, ctx.attrs().get_int("batch_dims", 0));
  return gather(ctx, axis, batch_dims);
}

Status gather_v1_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  return gather(ctx, 0, 0);
}

Status one_hot_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 4));
  HUBIMG_ASSIGN_OR_RETURN(auto indices, int_values(ctx, 0, "indices"));
  const Tensor& indices_t = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(int64_t depth, int_scalar(ctx, 1, "depth"));
  const Tensor& on = ctx.input(2);
  const Tensor& off = ctx.input(3);
  if (on.rank() != 0 || off.rank() != 0 || on.dtype() != off.dtype()) {
    return ctx.error("on_value and off_value must be scalars of the same dtype, got " +
                     on.description() + " and " + off.description());
  }
  if (depth < 0) return ctx.error("depth must be non-negative, got: " + std::to_string(depth));
  HUBIMG_ASSIGN_OR_RETURN(int64_t axis_value, ctx.attrs().get_int("axis", -1));
  const int rank = indices_t.rank();
  if (axis_value < -1 || axis_value > rank) {
    return ctx.error("Expected axis to be -1 or between [0, " + std::to_string(rank + 1) +
                     ").  But received: " + std::to_string(axis_value));
  }
  const auto axis = static_cast<size_t>(axis_value == -1 ? rank : axis_value);
  Dims out_shape = indices_t.shape();
  out_shape.insert(out_shape.begin() + static_cast<int64_t>(axis), depth);
  const int64_t outer = product(indices_t.shape(), 0, axis);
  const int64_t inner = product(indices_t.shape(), axis, indices_t.shape().size());
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, on.dtype(), std::move(out_shape)));
  HUBIMG_RETURN_IF_ERROR(dispatch_by_width(ctx, on.dtype(), [&]<typename U>() -> Status {
    U* dst = mutable_elements<U>(out);
    const U on_value = elements<U>(on)[0];
    const U off_value = elements<U>(off)[0];
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t d = 0; d < depth; ++d) {
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t index = indices[static_cast<size_t>(o * inner + i)];
          *dst++ = index == d ? on_value : off_value;
        }
      }
    }
    return {};
  }));
  ctx.set_output(0, std::move(out));
  return {};
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kArrayOpsOpDefs[] = R"pb(
  op {
    name: "Bitcast"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "type" }
    attr { name: "T" type: "type" }
    attr { name: "type" type: "type" }
  }
  op {
    name: "BroadcastArgs"
    input_arg { name: "s0" type_attr: "T" }
    input_arg { name: "s1" type_attr: "T" }
    output_arg { name: "r0" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "BroadcastTo"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "shape" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "Concat"
    input_arg { name: "concat_dim" type: DT_INT32 }
    input_arg { name: "values" type_attr: "T" number_attr: "N" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "N" type: "int" has_minimum: true minimum: 2 }
    attr { name: "T" type: "type" }
  }
  op {
    name: "ConcatV2"
    input_arg { name: "values" type_attr: "T" number_attr: "N" }
    input_arg { name: "axis" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "N" type: "int" has_minimum: true minimum: 2 }
    attr { name: "T" type: "type" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "ExpandDims"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "dim" type_attr: "Tdim" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tdim"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "Fill"
    input_arg { name: "dims" type_attr: "index_type" }
    input_arg { name: "value" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "index_type"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "Gather"
    input_arg { name: "params" type_attr: "Tparams" }
    input_arg { name: "indices" type_attr: "Tindices" }
    output_arg { name: "output" type_attr: "Tparams" }
    attr {
      name: "validate_indices"
      type: "bool"
      default_value { b: true }
    }
    attr { name: "Tparams" type: "type" }
    attr { name: "Tindices" type: "type" }
  }
  op {
    name: "GatherV2"
    input_arg { name: "params" type_attr: "Tparams" }
    input_arg { name: "indices" type_attr: "Tindices" }
    input_arg { name: "axis" type_attr: "Taxis" }
    output_arg { name: "output" type_attr: "Tparams" }
    attr {
      name: "batch_dims"
      type: "int"
      default_value { i: 0 }
    }
    attr { name: "Tparams" type: "type" }
    attr { name: "Tindices" type: "type" }
    attr { name: "Taxis" type: "type" }
  }
  op {
    name: "InvertPermutation"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "MirrorPad"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "paddings" type_attr: "Tpaddings" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tpaddings"
      type: "type"
      default_value { type: DT_INT32 }
    }
    attr { name: "mode" type: "string" }
  }
  op {
    name: "OneHot"
    input_arg { name: "indices" type_attr: "TI" }
    input_arg { name: "depth" type: DT_INT32 }
    input_arg { name: "on_value" type_attr: "T" }
    input_arg { name: "off_value" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "axis"
      type: "int"
      default_value { i: -1 }
    }
    attr { name: "T" type: "type" }
    attr {
      name: "TI"
      type: "type"
      default_value { type: DT_INT64 }
    }
  }
  op {
    name: "OnesLike"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Pack"
    input_arg { name: "values" type_attr: "T" number_attr: "N" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "N" type: "int" has_minimum: true minimum: 1 }
    attr { name: "T" type: "type" }
    attr {
      name: "axis"
      type: "int"
      default_value { i: 0 }
    }
  }
  op {
    name: "Pad"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "paddings" type_attr: "Tpaddings" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tpaddings"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "PadV2"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "paddings" type_attr: "Tpaddings" }
    input_arg { name: "constant_values" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tpaddings"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "Rank"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type: DT_INT32 }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Reshape"
    input_arg { name: "tensor" type_attr: "T" }
    input_arg { name: "shape" type_attr: "Tshape" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tshape"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "ReverseV2"
    input_arg { name: "tensor" type_attr: "T" }
    input_arg { name: "axis" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
    }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Roll"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "shift" type_attr: "Tshift" }
    input_arg { name: "axis" type_attr: "Taxis" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tshift"
      type: "type"
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
    attr {
      name: "Taxis"
      type: "type"
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "Shape"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "out_type" }
    attr { name: "T" type: "type" }
    attr {
      name: "out_type"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "ShapeN"
    input_arg { name: "input" type_attr: "T" number_attr: "N" }
    output_arg { name: "output" type_attr: "out_type" number_attr: "N" }
    attr { name: "N" type: "int" has_minimum: true minimum: 1 }
    attr { name: "T" type: "type" }
    attr {
      name: "out_type"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "Size"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "out_type" }
    attr { name: "T" type: "type" }
    attr {
      name: "out_type"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "Slice"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "begin" type_attr: "Index" }
    input_arg { name: "size" type_attr: "Index" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Index"
      type: "type"
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "Split"
    input_arg { name: "split_dim" type: DT_INT32 }
    input_arg { name: "value" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" number_attr: "num_split" }
    attr { name: "num_split" type: "int" has_minimum: true minimum: 1 }
    attr { name: "T" type: "type" }
  }
  op {
    name: "SplitV"
    input_arg { name: "value" type_attr: "T" }
    input_arg { name: "size_splits" type_attr: "Tlen" }
    input_arg { name: "split_dim" type: DT_INT32 }
    output_arg { name: "output" type_attr: "T" number_attr: "num_split" }
    attr { name: "num_split" type: "int" has_minimum: true minimum: 1 }
    attr { name: "T" type: "type" }
    attr {
      name: "Tlen"
      type: "type"
      default_value { type: DT_INT64 }
    }
  }
  op {
    name: "Squeeze"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "squeeze_dims"
      type: "list(int)"
      default_value { list {} }
      has_minimum: true
    }
  }
  op {
    name: "StridedSlice"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "begin" type_attr: "Index" }
    input_arg { name: "end" type_attr: "Index" }
    input_arg { name: "strides" type_attr: "Index" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Index"
      type: "type"
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
    attr {
      name: "begin_mask"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "end_mask"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "ellipsis_mask"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "new_axis_mask"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "shrink_axis_mask"
      type: "int"
      default_value { i: 0 }
    }
  }
  op {
    name: "StridedSliceGrad"
    input_arg { name: "shape" type_attr: "Index" }
    input_arg { name: "begin" type_attr: "Index" }
    input_arg { name: "end" type_attr: "Index" }
    input_arg { name: "strides" type_attr: "Index" }
    input_arg { name: "dy" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr { name: "Index" type: "type" }
    attr {
      name: "begin_mask"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "end_mask"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "ellipsis_mask"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "new_axis_mask"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "shrink_axis_mask"
      type: "int"
      default_value { i: 0 }
    }
  }
  op {
    name: "Tile"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "multiples" type_attr: "Tmultiples" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tmultiples"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "Transpose"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "perm" type_attr: "Tperm" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tperm"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "Unpack"
    input_arg { name: "value" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" number_attr: "num" }
    attr { name: "num" type: "int" has_minimum: true }
    attr { name: "T" type: "type" }
    attr {
      name: "axis"
      type: "int"
      default_value { i: 0 }
    }
  }
  op {
    name: "ZerosLike"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
)pb";

void register_array_ops(OpRegistry& r) {
  add_op(r, {"Reshape", {}, reshape_kernel});
  add_op(r, {"Squeeze", {}, squeeze_kernel});
  add_op(r, {"ExpandDims", {}, expand_dims_kernel});
  add_op(r, {"Shape", {}, shape_kernel});
  add_op(r, {"ShapeN", {}, shape_n_kernel});
  add_op(r, {"Size", {}, size_kernel});
  add_op(r, {"Rank", {}, rank_kernel});
  add_op(r, {"StridedSlice", {}, strided_slice_kernel});
  add_op(r, {"StridedSliceGrad", {}, strided_slice_grad_kernel});
  add_op(r, {"Slice", {}, slice_kernel});
  add_op(r, {"Pack", {}, pack_kernel});
  add_op(r, {"Unpack", {}, unpack_kernel});
  add_op(r, {"Split", {}, split_kernel});
  add_op(r, {"SplitV", {}, split_v_kernel});
  add_op(r, {"ConcatV2", {}, concat_v2_kernel});
  add_op(r, {"Concat", {}, concat_v1_kernel});
  add_op(r, {"Tile", {}, tile_kernel});
  add_op(r, {"Fill", {}, fill_kernel});
  add_op(r, {"Transpose", {}, transpose_kernel});
  add_op(r, {"InvertPermutation", {}, invert_permutation_kernel});
  add_op(r, {"BroadcastTo", {}, broadcast_to_kernel});
  add_op(r, {"BroadcastArgs", {}, broadcast_args_kernel});
  add_op(r, {"ReverseV2", {}, reverse_kernel});
  add_op(r, {"Roll", {}, roll_kernel});
  add_op(r, {"Pad", {}, pad_kernel});
  add_op(r, {"PadV2", {}, pad_kernel});
  add_op(r, {"MirrorPad", {}, mirror_pad_kernel});
  add_op(r, {"ZerosLike", {}, zeros_like_kernel});
  add_op(r, {"OnesLike", {}, ones_like_kernel});
  add_op(r, {"Bitcast", {}, bitcast_kernel});
  add_op(r, {"GatherV2", {}, gather_v2_kernel});
  add_op(r, {"Gather", {}, gather_v1_kernel});
  add_op(r, {"OneHot", {}, one_hot_kernel});

  r.set_row_rule(RowRule::kElementwise, {"ZerosLike", "OnesLike"});
  r.set_row_rule(RowRule::kPad, {"Pad", "PadV2", "MirrorPad"});
  r.set_row_rule(RowRule::kReshape, {"Reshape"});
  r.set_row_rule(RowRule::kExpandDims, {"ExpandDims"});
  r.set_row_rule(RowRule::kSqueeze, {"Squeeze"});
  r.set_row_rule(RowRule::kConcat, {"ConcatV2"});
  r.set_row_rule(RowRule::kRoll, {"Roll"});
  r.set_op_defs(kArrayOpsOpDefs);
}

}  // namespace hubimg::ops
