#include "ops/cast.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace hubimg::ops {
namespace {

template <typename T>
inline constexpr bool kIsHalf = std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;

int32_t truncate_to_int32(double v) {
  if (!(v > -2147483649.0 && v < 2147483648.0)) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(v);
}

int64_t truncate_to_int64(double v) {
  constexpr double kTwo63 = 9223372036854775808.0;
  if (!(v >= -kTwo63 && v < kTwo63)) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

template <typename To>
To float_to_integer(double v) {
  if constexpr (std::is_same_v<To, int64_t>) {
    return truncate_to_int64(v);
  } else if constexpr (std::is_same_v<To, uint64_t>) {
    constexpr double kTwo63 = 9223372036854775808.0;
    if (v >= kTwo63) {
      return static_cast<uint64_t>(truncate_to_int64(v - kTwo63)) ^ (uint64_t{1} << 63);
    }
    return static_cast<uint64_t>(truncate_to_int64(v));
  } else if constexpr (std::is_same_v<To, uint32_t>) {
    return static_cast<uint32_t>(truncate_to_int64(v));
  } else {
    return static_cast<To>(truncate_to_int32(v));
  }
}

BFloat16 truncate_to_bfloat16(float f) {
  if (std::isnan(f)) return BFloat16::from_float(f);
  return {static_cast<uint16_t>(std::bit_cast<uint32_t>(f) >> 16)};
}

template <typename To, typename From>
To convert(From x, bool truncate) {
  if constexpr (kIsHalf<From>) {
    return convert<To>(x.to_float(), truncate);
  } else if constexpr (std::is_same_v<To, bool>) {
    return x != From{0};
  } else if constexpr (std::is_same_v<To, Float16>) {
    return Float16::from_float(static_cast<float>(x));
  } else if constexpr (std::is_same_v<To, BFloat16>) {
    if constexpr (std::is_same_v<From, float>) {
      if (truncate) return truncate_to_bfloat16(x);
    }
    return BFloat16::from_float(static_cast<float>(x));
  } else if constexpr (std::is_floating_point_v<To>) {  // NOLINT(bugprone-branch-clone)
    return static_cast<To>(x);
  } else if constexpr (std::is_floating_point_v<From>) {
    return float_to_integer<To>(static_cast<double>(x));
  } else {
    return static_cast<To>(x);
  }
}

template <typename Fn>
bool dispatch_numeric(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: fn.template operator()<float>(); return true;
    case DType::kFloat64: fn.template operator()<double>(); return true;
    case DType::kFloat16: fn.template operator()<Float16>(); return true;
    case DType::kBFloat16: fn.template operator()<BFloat16>(); return true;
    case DType::kBool: fn.template operator()<bool>(); return true;
    case DType::kInt8: fn.template operator()<int8_t>(); return true;
    case DType::kInt16: fn.template operator()<int16_t>(); return true;
    case DType::kInt32: fn.template operator()<int32_t>(); return true;
    case DType::kInt64: fn.template operator()<int64_t>(); return true;
    case DType::kUInt8: fn.template operator()<uint8_t>(); return true;
    case DType::kUInt16: fn.template operator()<uint16_t>(); return true;
    case DType::kUInt32: fn.template operator()<uint32_t>(); return true;
    case DType::kUInt64: fn.template operator()<uint64_t>(); return true;
    default: return false;
  }
}

}  // namespace

Expected<Tensor> cast_tensor(const Tensor& src, DType dst, bool truncate) {
  if (src.dtype() == dst) return src;
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, Tensor::create(dst, src.shape()));
  bool supported = false;
  const bool src_ok = dispatch_numeric(src.dtype(), [&]<typename From>() {
    supported = dispatch_numeric(dst, [&]<typename To>() {
      const From* in = src.data<From>();
      To* o = out.mutable_data<To>();
      for (int64_t i = 0; i < src.num_elements(); ++i) o[i] = convert<To>(in[i], truncate);
    });
  });
  if (!src_ok || !supported) {
    return unimplemented("cannot cast " + dtype_name(src.dtype()) + " to " + dtype_name(dst));
  }
  return out;
}

}  // namespace hubimg::ops
