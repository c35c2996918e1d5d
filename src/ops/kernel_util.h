// Helpers shared by kernels: dtype dispatch and input checks with errors that name the node.
#pragma once

#include <cstdint>

#include "hubimg/tensor.h"
#include "ops/op_registry.h"

namespace hubimg::ops {

// Calls fn.template operator()<T>() with the C++ type of `dtype` for the numeric dtypes
// TensorFlow kernels commonly register on CPU; an error naming the node otherwise.
template <typename Fn>
Status dispatch_real(const KernelContext& ctx, DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn.template operator()<float>();
    case DType::kFloat64: return fn.template operator()<double>();
    case DType::kInt32: return fn.template operator()<int32_t>();
    case DType::kInt64: return fn.template operator()<int64_t>();
    case DType::kUInt8: return fn.template operator()<uint8_t>();
    case DType::kInt8: return fn.template operator()<int8_t>();
    case DType::kInt16: return fn.template operator()<int16_t>();
    case DType::kUInt16: return fn.template operator()<uint16_t>();
    case DType::kUInt32: return fn.template operator()<uint32_t>();
    case DType::kUInt64: return fn.template operator()<uint64_t>();
    default: return ctx.error(StatusCode::kUnimplemented, "unsupported dtype " + dtype_name(dtype));
  }
}

template <typename Fn>
Status dispatch_float(const KernelContext& ctx, DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn.template operator()<float>();
    case DType::kFloat64: return fn.template operator()<double>();
    default: return ctx.error(StatusCode::kUnimplemented, "unsupported dtype " + dtype_name(dtype));
  }
}

inline Status expect_num_inputs(const KernelContext& ctx, size_t n) {
  if (ctx.num_inputs() != n) {
    return ctx.error("expects " + std::to_string(n) + " inputs, got " +
                     std::to_string(ctx.num_inputs()));
  }
  return {};
}

inline Status expect_rank(const KernelContext& ctx, size_t input, int rank) {
  if (ctx.input(input).rank() != rank) {
    return ctx.error("input " + std::to_string(input) + " must have rank " + std::to_string(rank) +
                     ", got " + ctx.input(input).description());
  }
  return {};
}

}  // namespace hubimg::ops
