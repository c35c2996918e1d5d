// Dtype dispatch over a compile-time set of type classes: only the C++ types in the set are
// instantiated, so a kernel body may use operations that exist only for those types.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "hubimg/tensor.h"
#include "ops/op_registry.h"

namespace hubimg::ops {

enum TypeSet : unsigned {
  kFloatTypes = 1u << 0,        // float, double
  kSignedIntTypes = 1u << 1,    // int8, int16, int32, int64
  kUnsignedIntTypes = 1u << 2,  // uint8, uint16, uint32, uint64
  kBoolType = 1u << 3,
  kStringType = 1u << 4,
  kIntTypes = kSignedIntTypes | kUnsignedIntTypes,
  kRealTypes = kFloatTypes | kIntTypes,
};

template <typename T>
inline constexpr bool kIsInteger = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// The storage type float16/bfloat16 values are computed in.
inline bool is_half_precision(DType dtype) {
  return dtype == DType::kFloat16 || dtype == DType::kBFloat16;
}

// Calls fn.template operator()<T>() for the C++ type T of `dtype` when its class is in `Set`;
// otherwise an error naming the node and the dtype.
// The cases differ per instantiation (`Set`); some instantiations make them identical.
// NOLINTBEGIN(bugprone-branch-clone)
template <unsigned Set, typename Fn>
Status dispatch_types(const KernelContext& ctx, DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32:
      if constexpr ((Set & kFloatTypes) != 0) return fn.template operator()<float>();
      break;
    case DType::kFloat64:
      if constexpr ((Set & kFloatTypes) != 0) return fn.template operator()<double>();
      break;
    case DType::kInt8:
      if constexpr ((Set & kSignedIntTypes) != 0) return fn.template operator()<int8_t>();
      break;
    case DType::kInt16:
      if constexpr ((Set & kSignedIntTypes) != 0) return fn.template operator()<int16_t>();
      break;
    case DType::kInt32:
      if constexpr ((Set & kSignedIntTypes) != 0) return fn.template operator()<int32_t>();
      break;
    case DType::kInt64:
      if constexpr ((Set & kSignedIntTypes) != 0) return fn.template operator()<int64_t>();
      break;
    case DType::kUInt8:
      if constexpr ((Set & kUnsignedIntTypes) != 0) return fn.template operator()<uint8_t>();
      break;
    case DType::kUInt16:
      if constexpr ((Set & kUnsignedIntTypes) != 0) return fn.template operator()<uint16_t>();
      break;
    case DType::kUInt32:
      if constexpr ((Set & kUnsignedIntTypes) != 0) return fn.template operator()<uint32_t>();
      break;
    case DType::kUInt64:
      if constexpr ((Set & kUnsignedIntTypes) != 0) return fn.template operator()<uint64_t>();
      break;
    case DType::kBool:
      if constexpr ((Set & kBoolType) != 0) return fn.template operator()<bool>();
      break;
    case DType::kString:
      if constexpr ((Set & kStringType) != 0) return fn.template operator()<std::string>();
      break;
    default: break;
  }
  return ctx.error(StatusCode::kUnimplemented, "unsupported dtype " + dtype_name(dtype));
}
// NOLINTEND(bugprone-branch-clone)

// Typed element access that also covers string tensors.
template <typename T>
const T* typed_data(const Tensor& t) {
  if constexpr (std::is_same_v<T, std::string>) {
    return t.strings().data();
  } else {
    return t.data<T>();
  }
}
template <typename T>
T* typed_mutable_data(Tensor& t) {
  if constexpr (std::is_same_v<T, std::string>) {
    return t.mutable_strings().data();
  } else {
    return t.mutable_data<T>();
  }
}

// Integer arithmetic that wraps like two's complement hardware instead of overflowing (UB).
template <typename T>
using WrapType = std::conditional_t<(sizeof(T) < 4), uint32_t, std::make_unsigned_t<T>>;
template <typename T>
T wrapping_add(T x, T y) {
  return static_cast<T>(static_cast<WrapType<T>>(x) + static_cast<WrapType<T>>(y));
}
template <typename T>
T wrapping_sub(T x, T y) {
  return static_cast<T>(static_cast<WrapType<T>>(x) - static_cast<WrapType<T>>(y));
}
template <typename T>
T wrapping_mul(T x, T y) {
  return static_cast<T>(static_cast<WrapType<T>>(x) * static_cast<WrapType<T>>(y));
}
template <typename T>
T wrapping_neg(T x) {
  return static_cast<T>(WrapType<T>{0} - static_cast<WrapType<T>>(x));
}

}  // namespace hubimg::ops
